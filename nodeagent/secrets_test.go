package nodeagent

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/deploy/docker"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/imagetest"
	"github.com/hoist-dev/hoist/internal/natstest"
	"github.com/hoist-dev/hoist/projector"
	"github.com/hoist-dev/hoist/secrets"
)

// keyring folds the scope's history as any reader would.
func (w *dockerWorld) keyring(t *testing.T) (*projector.History, *projector.Keyring) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := w.store.ScopeHistory(ctx, scopeWeb, 0)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := projector.Fold(scopeWeb, r.Records)
	return h, h.Keyring()
}

// grant is what 'hoist secret grant' publishes, as an admin.
func (w *dockerWorld) grant(t *testing.T, node string, a *Agent, actor string) uint64 {
	t.Helper()
	return w.append(&events.SecretGranted{Node: node, NodeKey: a.nodeKey(), Actor: actor})
}

// setSecret is what 'hoist secret set' publishes: the value sealed to the
// scope's current key.
func (w *dockerWorld) setSecret(t *testing.T, name, value, file string) uint64 {
	t.Helper()
	_, ring := w.keyring(t)
	cur := ring.Current()
	if cur == nil {
		t.Fatal("no scope key to seal to")
	}
	pub, err := secrets.ParsePublicKey(cur.Public)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := secrets.Seal(pub, []byte(value))
	if err != nil {
		t.Fatal(err)
	}
	return w.append(&events.SecretSet{Name: name, Secret: events.Secret{Key: cur.Version, Sealed: sealed, File: file}})
}

func (w *dockerWorld) head(t *testing.T) uint64 {
	h, _ := w.keyring(t)
	return h.Revision()
}

// message is what the demo replica at backend answers as its message.
func message(t *testing.T, backend string) string {
	t.Helper()
	code, body, err := get("http://" + backend + "/")
	if err != nil || code != 200 {
		t.Fatalf("GET %s: %d %v", backend, code, err)
	}
	var id struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(body), &id); err != nil {
		t.Fatalf("GET %s: %v", backend, err)
	}
	return id.Message
}

func randomValue(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// The whole secret path on the real engine, with two agents: the first
// granted node makes the key, a secret reaches the replica as an env var
// and as a file, a node without a grant cannot open it and leaves its
// replicas alone, a later grant lets it serve, a rotation rolls every
// replica, and a revoke gives the scope a key the revoked node cannot open.
// No value is in the stream, a reference file, an agent's log or the
// replica's inspect output (for the file secret).
func TestSecretsReachOnlyGrantedNodes(t *testing.T) {
	w := newDockerWorld(t)
	node2 := testNodeName()
	t.Cleanup(func() { imagetest.RemoveByLabel(t, w.docker, deploy.LabelNode+"="+node2) })
	rt2, err := docker.New(docker.Config{Node: node2, Client: w.docker, HostIP: "127.0.0.1", Logger: w.log, CallTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var logs1, logs2 natstest.SyncBuffer
	o1 := w.options()
	o1.Actor, o1.Logger = "agent-1", slog.New(slog.NewTextHandler(io.MultiWriter(&logs1, tWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	o2 := w.options()
	o2.Node.Name, o2.Runtime, o2.Actor = node2, &countingRuntime{Runtime: rt2}, "agent-2"
	o2.ReferenceFile = filepath.Join(t.TempDir(), "reference.json")
	o2.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(&logs2, tWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))

	const file = "/run/secrets/message"
	rev := w.append(&events.Deployed{Spec: w.spec(1, map[string]string{"DEMO_MESSAGE_FILE": file})})
	a1 := w.open(o1)
	waitConverged(t, a1, scopeWeb, rev, 1)

	// The first grant: node 1's agent makes key v1.
	w.grant(t, w.node, a1, "agent-1")
	natstest.Eventually(t, 20*time.Second, func() error {
		if _, ring := w.keyring(t); ring.Current() == nil || len(ring.Pending()) > 0 {
			return fmt.Errorf("no key held yet: %+v", ring)
		}
		return nil
	})

	// A file secret the demo reads as its message, and an env secret.
	fileValue, envValue := randomValue("file-secret"), randomValue("env-secret")
	w.setSecret(t, "MESSAGE", fileValue, file)
	rev = w.setSecret(t, "API_TOKEN", envValue, "")
	st := waitConverged(t, a1, scopeWeb, rev, 1)
	if got := message(t, st.Replicas[0].Backend); got != fileValue {
		t.Fatalf("the replica's message is %q, want the file secret %q", got, fileValue)
	}
	inspect, err := w.docker.ContainerInspect(context.Background(), st.Replicas[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(inspect.Config.Env, "API_TOKEN="+envValue) {
		t.Fatalf("the env secret is not in the replica's env %v", inspect.Config.Env)
	}
	if strings.Contains(fmt.Sprint(inspect), fileValue) {
		t.Fatal("docker inspect shows the file secret")
	}
	if got := readContainerFile(t, w, st.Replicas[0].ID, file); got != fileValue {
		t.Fatalf("%s in the container holds %q", file, got)
	}

	// Node 2 serves the scope but has no grant: it starts nothing, says why.
	a2 := w.open(o2)
	natstest.Eventually(t, 30*time.Second, func() error {
		s := scopeStatus(a2, scopeWeb)
		if !strings.Contains(s.Error, "no grant") {
			return fmt.Errorf("node 2: phase %s, error %q", s.Phase, s.Error)
		}
		if len(s.Replicas) != 0 {
			return fmt.Errorf("node 2 runs %d replicas without a grant", len(s.Replicas))
		}
		return nil
	})

	// A grant: node 1 hands node 2 the key, and node 2 serves.
	w.grant(t, node2, a2, "agent-2")
	natstest.Eventually(t, 30*time.Second, func() error {
		if _, ring := w.keyring(t); len(ring.Pending()) > 0 {
			return fmt.Errorf("pending %v", ring.Pending())
		}
		return nil
	})
	head := w.head(t)
	st2 := waitConverged(t, a2, scopeWeb, head, 1)
	if got := message(t, st2.Replicas[0].Backend); got != fileValue {
		t.Fatalf("node 2's replica answers %q, want %q", got, fileValue)
	}

	// Rotation: a new key, the same values, every replica replaced.
	st1 := waitConverged(t, a1, scopeWeb, head, 1)
	before := []string{st1.Replicas[0].ID, st2.Replicas[0].ID}
	w.append(&events.SecretRotate{})
	natstest.Eventually(t, 30*time.Second, func() error {
		if _, ring := w.keyring(t); ring.Current().Version != 2 {
			return fmt.Errorf("key v%d", ring.Current().Version)
		}
		return nil
	})
	head = w.head(t)
	st1, st2 = waitConverged(t, a1, scopeWeb, head, 1), waitConverged(t, a2, scopeWeb, head, 1)
	if st1.Replicas[0].ID == before[0] || st2.Replicas[0].ID == before[1] {
		t.Fatal("a rotation left a replica in place")
	}
	if message(t, st1.Replicas[0].Backend) != fileValue || message(t, st2.Replicas[0].Backend) != fileValue {
		t.Fatal("a rotated replica lost the secret")
	}

	// Revoke node 2: key v3 is sealed to node 1 only. Node 2 cannot open
	// the resealed secrets, reports it, and leaves its replica serving.
	w.append(&events.SecretRevoked{Node: node2})
	natstest.Eventually(t, 30*time.Second, func() error {
		_, ring := w.keyring(t)
		if cur := ring.Current(); cur.Version != 3 || cur.Seeds[node2] != "" {
			return fmt.Errorf("key v%d sealed to %v", cur.Version, cur.Seeds)
		}
		return nil
	})
	head = w.head(t)
	waitConverged(t, a1, scopeWeb, head, 1)
	natstest.Eventually(t, 30*time.Second, func() error {
		s := scopeStatus(a2, scopeWeb)
		if !strings.Contains(s.Error, "no grant") {
			return fmt.Errorf("node 2 after the revoke: phase %s, error %q", s.Phase, s.Error)
		}
		return nil
	})
	if got := message(t, st2.Replicas[0].Backend); got != fileValue {
		t.Fatalf("node 2's running replica was touched: %q", got)
	}

	// No value anywhere but in the replicas.
	a1.Close()
	a2.Close()
	for what, text := range map[string]string{
		"the stream":             rawStream(t, w.rawJS()),
		"agent 1's log":          logs1.String(),
		"agent 2's log":          logs2.String(),
		"agent 1's reference":    readFile(t, o1.ReferenceFile),
		"agent 2's reference":    readFile(t, o2.ReferenceFile),
		"agent 1's key file dir": readDir(t, filepath.Dir(o1.ReferenceFile)),
	} {
		for _, v := range []string{fileValue, envValue} {
			if strings.Contains(text, v) {
				t.Errorf("%s holds a secret value", what)
			}
		}
	}
}

// rawStream is every message of HOIST_EVENTS, read past hoist.
func rawStream(t *testing.T, js jetstream.JetStream) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, events.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for seq := uint64(0); seq < info.State.LastSeq; {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("read the stream at %d of %d: %v", seq, info.State.LastSeq, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		seq = meta.Sequence.Stream
		b.WriteString(m.Subject())
		b.Write(m.Data())
	}
	return b.String()
}

func readFile(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readDir(t *testing.T, dir string) string {
	var b strings.Builder
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if data, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil {
			b.Write(data)
		}
	}
	return b.String()
}

// readContainerFile copies one file out of a container.
func readContainerFile(t *testing.T, w *dockerWorld, id, path string) string {
	t.Helper()
	rc, _, err := w.docker.CopyFromContainer(context.Background(), id, path)
	if err != nil {
		t.Fatalf("copy %s from the container: %v", path, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	if _, err := tr.Next(); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
