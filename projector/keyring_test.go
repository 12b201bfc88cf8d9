package projector_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
	"github.com/hoist-dev/hoist/secrets"
)

// keyWorld is a scope's history built event by event, each event by the
// actor it names, as the subject would say.
type keyWorld struct {
	t     *testing.T
	h     *projector.History
	nodes map[string]*secrets.Key
}

func newKeyWorld(t *testing.T) *keyWorld {
	w := &keyWorld{t: t, h: projector.NewHistory(web), nodes: map[string]*secrets.Key{}}
	w.ok("admin", deployed("web:1", 1))
	return w
}

func (w *keyWorld) apply(actor string, p events.Payload) error {
	e := &events.Event{ID: "e", Kind: p.Kind(), Scope: web, Revision: w.h.Revision() + 1, Time: time.Unix(1, 0), Actor: actor, Data: p}
	if err := e.Validate(); err != nil {
		w.t.Fatalf("%s: %v", p.Kind(), err)
	}
	return w.h.Apply(e)
}

func (w *keyWorld) ok(actor string, p events.Payload) {
	w.t.Helper()
	if err := w.apply(actor, p); err != nil {
		w.t.Fatalf("%s by %s: %v", p.Kind(), actor, err)
	}
}

func (w *keyWorld) refused(actor string, p events.Payload, want string) {
	w.t.Helper()
	before := w.h.State()
	err := w.apply(actor, p)
	if err == nil || !strings.Contains(err.Error(), want) {
		w.t.Fatalf("%s by %s: got %v, want an error with %q", p.Kind(), actor, err, want)
	}
	if w.h.State().Spec != before.Spec {
		w.t.Fatal("a refused event changed the spec")
	}
}

func (w *keyWorld) node(name string) *secrets.Key {
	if k := w.nodes[name]; k != nil {
		return k
	}
	k, _ := secrets.GenerateKey()
	w.nodes[name] = k
	return k
}

func (w *keyWorld) grant(node string) {
	w.t.Helper()
	w.ok("admin", &events.SecretGranted{Node: node, NodeKey: w.node(node).Public().String(), Actor: "agent-" + node})
}

// key makes a scope key event by node, sealing k to the given nodes.
func (w *keyWorld) key(node string, version int, k *secrets.Key, to []string, resealed map[string]string) *events.SecretKey {
	ev := &events.SecretKey{Version: version, Public: k.Public().String(), Node: node, Seeds: map[string]string{}, Resealed: resealed}
	for _, n := range to {
		ev.Seeds[n], _ = secrets.SealKey(w.node(n).Public(), k)
	}
	return ev
}

func sealed(t *testing.T, k *secrets.Key, v string) string {
	s, err := secrets.Seal(k.Public(), []byte(v))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestKeyringGrantsKeysAndRotation(t *testing.T) {
	w := newKeyWorld(t)
	scopeKey, _ := secrets.GenerateKey()
	w.refused("ci", &events.SecretSet{Name: "DB", Secret: events.Secret{Key: 1, Sealed: sealed(t, scopeKey, "x")}}, "no secret key yet")

	// Only a granted node, in the name it was granted as, makes the key.
	w.refused("agent-n1", w.key("n1", 1, scopeKey, []string{"n1"}, nil), "node n1, which has no grant")
	w.grant("n1")
	w.refused("agent-n2", w.key("n1", 1, scopeKey, []string{"n1"}, nil), `published by "agent-n2"`)
	w.refused("agent-n1", w.key("n1", 1, scopeKey, []string{"n1", "n2"}, nil), "node n2, which has no grant")
	w.refused("agent-n1", w.key("n1", 2, scopeKey, []string{"n1"}, nil), "is key version 2, but the current one is 0")
	w.ok("agent-n1", w.key("n1", 1, scopeKey, []string{"n1"}, nil))
	ring := w.h.Keyring()
	if cur := ring.Current(); cur == nil || cur.Version != 1 || len(ring.Pending()) != 0 {
		t.Fatalf("after the first key: current %+v, pending %v", cur, ring.Pending())
	}

	// Secrets are sealed to the current key, and land in the spec.
	w.refused("ci", &events.SecretSet{Name: "DB", Secret: events.Secret{Key: 2, Sealed: sealed(t, scopeKey, "x")}}, "not to the current v1")
	w.ok("ci", &events.SecretSet{Name: "DB", Secret: events.Secret{Key: 1, Sealed: sealed(t, scopeKey, "pw1")}})
	dbSet := w.h.Revision()
	w.ok("ci", &events.SecretSet{Name: "TLS", Secret: events.Secret{Key: 1, Sealed: sealed(t, scopeKey, "pem"), File: "/run/secrets/tls"}})
	w.refused("ci", &events.SecretSet{Name: "OTHER", Secret: events.Secret{Key: 1, Sealed: sealed(t, scopeKey, "x"), File: "/run/secrets/tls"}}, "writes the file /run/secrets/tls of secret TLS")
	if got := w.h.State().Spec.Secrets; len(got) != 2 || got["DB"].Key != 1 {
		t.Fatalf("secrets %v", got)
	}

	// A new node is pending until a holder hands it the key; an ungranted
	// node cannot hand it out, or claim to be a granted one.
	w.grant("n2")
	if p := w.h.Keyring().Pending(); len(p) != 1 || p[0] != "n2" {
		t.Fatalf("pending %v, want [n2]", p)
	}
	other, _ := secrets.GenerateKey()
	w.refused("agent-n1", w.key("n1", 1, other, []string{"n2"}, nil), "another public key")
	w.ok("agent-n1", w.key("n1", 1, scopeKey, []string{"n2"}, nil))
	if p := w.h.Keyring().Pending(); len(p) != 0 {
		t.Fatalf("pending %v after the handover", p)
	}

	// Revoking asks for a new key; it must reseal every secret.
	w.ok("admin", &events.SecretRevoked{Node: "n2"})
	if w.h.Keyring().Rotate == 0 {
		t.Fatal("a revoke asked for no new key")
	}
	k2, _ := secrets.GenerateKey()
	w.refused("agent-n1", w.key("n1", 2, k2, []string{"n1"}, map[string]string{"DB": sealed(t, k2, "pw1")}), "reseals the secrets [DB], but the scope has [DB TLS]")
	w.refused("agent-n1", w.key("n1", 2, k2, []string{"n1", "n2"}, map[string]string{"DB": sealed(t, k2, "pw1"), "TLS": sealed(t, k2, "pem")}), "node n2, which has no grant")
	before := w.h.State().Spec
	w.ok("agent-n1", w.key("n1", 2, k2, []string{"n1"}, map[string]string{"DB": sealed(t, k2, "pw1"), "TLS": sealed(t, k2, "pem")}))
	after := w.h.State().Spec
	if after.Secrets["DB"].Key != 2 || after.Secrets["TLS"].File != "/run/secrets/tls" || before.Secrets["DB"].Key != 1 {
		t.Fatalf("resealed secrets %v (before %v)", after.Secrets, before.Secrets)
	}
	if w.h.Keyring().Rotate != 0 {
		t.Fatal("the new key left the rotation due")
	}

	// A rollback restores secrets sealed to an older key, which stays in
	// the ring; the grants stay as they are.
	w.ok("ci", &events.RolledBack{To: dbSet})
	if s := w.h.State().Spec.Secrets; s["DB"].Key != 1 || w.h.Keyring().Version(1) == nil {
		t.Fatalf("after rollback: %v", s)
	}
	if _, ok := w.h.Keyring().Grants["n2"]; ok {
		t.Fatal("a rollback brought a revoked grant back")
	}

	// A deploy cannot name a key the scope does not have.
	spec := w.h.State().Spec.Clone()
	spec.Secrets["DB"] = events.Secret{Key: 9, Sealed: sealed(t, k2, "x")}
	w.refused("ci", &events.Deployed{Spec: *spec}, "key v9, which the scope does not have")

	w.refused("ci", &events.SecretRemoved{Name: "NOPE"}, "does not have")
	w.ok("ci", &events.SecretRemoved{Name: "DB"})
	if s := w.h.State().Spec.Secrets; s != nil {
		t.Fatalf("secrets after removing the last: %v", s)
	}
	w.refused("admin", &events.SecretRevoked{Node: "n2"}, "has no grant")
}
