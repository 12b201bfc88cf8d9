package auth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/jwt/v2"
)

// The streams hoist keeps, named as in package events (which this package
// does not import).
const (
	eventsStream   = "HOIST_EVENTS"
	scoresStream   = "HOIST_SCORES"
	backendsStream = "HOIST_BACKENDS"
	reportsStream  = "HOIST_REPORTS"
	statsStream    = "HOIST_STATS"
	// leasesStream backs the leases bucket (HOIST_LEASES): who runs a
	// canary's analysis.
	leasesBucket = "HOIST_LEASES"
	leasesStream = "KV_" + leasesBucket
)

// inboxPrefix is the inbox prefix of a credential: its clients must
// connect with nats.CustomInboxPrefix(inboxPrefix(name)), because the only
// subjects they may subscribe to are under it.
func inboxPrefix(name string) string { return "_INBOX_" + name }

// Permissions is the access policy: what a role may publish and subscribe
// to. Reads go only through ephemeral push consumers created with one
// filter subject, which the create request carries in its subject
// ($JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>), and through direct
// gets of a subject's last message ($JS.API.DIRECT.GET.<stream>.<subject>),
// so a permission on those subjects pins what can be read. Everything else
// of the JetStream API (pull requests, stream info, message gets by
// sequence, deletes, lists) stays denied, because none of it names a
// subject a permission can check.
func Permissions(r Role) (jwt.Permissions, error) {
	r, err := r.Validate()
	if err != nil {
		return jwt.Permissions{}, err
	}
	if r.Kind == KindAdmin {
		return jwt.Permissions{Pub: jwt.Permission{Allow: jwt.StringList{">"}}, Sub: jwt.Permission{Allow: jwt.StringList{">"}}}, nil
	}
	var pub []string
	read := func(stream, filter string) {
		pub = append(pub, "$JS.API.CONSUMER.CREATE."+stream+".*."+filter, "$JS.API.DIRECT.GET."+stream+"."+filter)
	}
	switch r.Kind {
	case KindDeployer:
		for _, p := range r.Scopes {
			for _, k := range deployerKinds {
				pub = append(pub, "hoist.scope."+p+"."+k+"."+r.Name)
			}
			pub = append(pub, "hoist.score."+p+".*", "hoist.backends."+p+".*")
		}
		for _, p := range r.Scopes {
			read(eventsStream, "hoist.scope."+p+".>")
			read(scoresStream, "hoist.score."+p+".>")
			read(backendsStream, "hoist.backends."+p+".>")
			read(reportsStream, "hoist.status.*."+p)
			read(statsStream, "hoist.stats."+p+".>")
		}
		read(eventsStream, "hoist.node.>")
	case KindAgent:
		n := r.Node
		pub = append(pub, "hoist.node."+n+".node_drained."+r.Name, "hoist.node."+n+".node_undrained."+r.Name,
			"hoist.node."+n+".node_key."+r.Name)
		for _, s := range r.Scopes {
			// secret_key: the scope key sealed to granted nodes. Readers
			// accept it only from the actor a grant names.
			pub = append(pub, "hoist.backends."+s+"."+n, "hoist.status."+n+"."+s, "hoist.scope."+s+".secret_key."+r.Name)
			// A canary's analysis runs in the agents that serve it: the
			// owner publishes its steps. Readers accept an automatic step
			// only while the canary has an analysis a hand set.
			for _, k := range analysisKinds {
				pub = append(pub, "hoist.scope."+s+"."+k+"."+r.Name)
			}
			// The analysis's owner holds the scope's lease: it takes,
			// renews and releases it by publishing on the key's subject,
			// and reads who holds it with a direct get of that subject.
			key := "$KV." + leasesBucket + ".canary." + s
			pub = append(pub, key, "$JS.API.DIRECT.GET."+leasesStream+"."+key)
		}
		if len(r.Scopes) > 0 {
			// Opening the bucket reads its config (the lease TTL); the
			// stream holds nothing but leases.
			pub = append(pub, "$JS.API.STREAM.INFO."+leasesStream)
		}
		for _, s := range r.Scopes {
			read(eventsStream, "hoist.scope."+s+".>")
			read(scoresStream, "hoist.score."+s+".>")
			read(backendsStream, "hoist.backends."+s+"."+n)
			read(statsStream, "hoist.stats."+s+".>")
		}
		read(eventsStream, "hoist.node."+n+".>")
	case KindBalancer:
		// Its request statistics, under its own name only.
		pub = append(pub, "hoist.stats.*.*.*."+r.Name)
		read(backendsStream, "hoist.backends.>")
		read(scoresStream, "hoist.score.>")
		read(eventsStream, "hoist.node.>")
	case KindReader:
		for _, p := range r.Scopes {
			read(eventsStream, "hoist.scope."+p+".>")
			read(reportsStream, "hoist.status.*."+p)
			read(backendsStream, "hoist.backends."+p+".>")
			read(scoresStream, "hoist.score."+p+".>")
			read(statsStream, "hoist.stats."+p+".>")
		}
		read(eventsStream, "hoist.node.>")
	}
	return jwt.Permissions{
		Pub: jwt.Permission{Allow: jwt.StringList(dedupe(append([]string{"$JS.API.INFO"}, pub...)))},
		Sub: jwt.Permission{Allow: jwt.StringList{inboxPrefix(r.Name) + ".>"}},
		// Flow control asks a push consumer's client to answer on the FC
		// message's reply subject; response permissions allow that one
		// answer without a standing grant on $JS.FC.>.
		Resp: &jwt.ResponsePermission{MaxMsgs: 1},
	}, nil
}

// deployerKinds are the scope kinds a deployer publishes. Grants and
// revokes (secret_granted, secret_revoked) are an admin's: they extend
// trust to a machine. Scope keys (secret_key) are a granted agent's.
var deployerKinds = []string{
	"deployed", "scaled", "env_changed", "rolled_back", "removed",
	"secret_set", "secret_removed", "secret_rotate",
	"canary_started", "canary_shifted", "canary_promoted", "canary_aborted",
	"paused", "resumed", "maintenance_on", "maintenance_off",
}

// analysisKinds are the canary kinds an agent publishes when it owns a
// canary's analysis. It starts none: a canary's spec is a deployer's.
var analysisKinds = []string{"canary_shifted", "canary_promoted", "canary_aborted"}

func dedupe(s []string) []string {
	out := s[:0:0]
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// configPermissions renders the role's permissions as the permissions
// block of a user in a plain nats-server authorization config (users with
// passwords, no JWTs). They are the same subjects Permissions returns.
func configPermissions(r Role) (string, error) {
	p, err := Permissions(r)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	list := func(key string, subs []string, indent string) {
		fmt.Fprintf(&b, "%s%s: [\n", indent, key)
		for _, s := range subs {
			fmt.Fprintf(&b, "%s  %q\n", indent, s)
		}
		fmt.Fprintf(&b, "%s]\n", indent)
	}
	b.WriteString("permissions: {\n")
	b.WriteString("  publish: {\n")
	list("allow", p.Pub.Allow, "    ")
	b.WriteString("  }\n  subscribe: {\n")
	list("allow", p.Sub.Allow, "    ")
	b.WriteString("  }\n")
	if p.Resp != nil {
		fmt.Fprintf(&b, "  allow_responses: { max: %d }\n", p.Resp.MaxMsgs)
	}
	b.WriteString("}\n")
	return b.String(), nil
}

// AuthorizationConfig renders a nats-server authorization block with one
// user per role, each with its password read from the server's
// environment ($NAME_PASSWORD). It is for
// servers without JWT auth; the permissions are the same.
func AuthorizationConfig(roles []Role) (string, error) {
	var b strings.Builder
	b.WriteString("authorization {\n  users: [\n")
	for _, r := range roles {
		perms, err := configPermissions(r)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "    # %s\n", r)
		// An unquoted $VAR is read from the server's environment.
		fmt.Fprintf(&b, "    { user: %q, password: $%s_PASSWORD,\n", r.Name, strings.ToUpper(strings.ReplaceAll(r.Name, "-", "_")))
		for line := range strings.Lines(perms) {
			b.WriteString("      " + line)
		}
		b.WriteString("    }\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String(), nil
}
