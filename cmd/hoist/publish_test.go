package main

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// Flags may follow positionals in every command, and a negative number is
// a positional, not a flag.
func TestFlagsAfterPositionals(t *testing.T) {
	url := natstest.Start(t).URL()
	const s = "acme.prod.web"
	steps := []struct {
		args []string
		want string // in stdout
	}{
		{[]string{"deploy", s, "--image", "web:1"}, "revision 1"},
		{[]string{"deploy", "--image", "web:2", s}, "revision 2"},
		{[]string{"scale", s, "2", "--expect-revision", "2"}, "revision 3"},
		{[]string{"scale", "--expect-revision", "3", s, "3"}, "revision 4"},
		{[]string{"env", s, "A=1", "--unset", "B"}, "revision 5"},
		{[]string{"env", "--unset", "A", s, "B=2"}, "revision 6"},
		{[]string{"rollback", s, "--to", "1", "--expect-revision", "6"}, "revision 7"},
		{[]string{"rollback", "--to", "2", s}, "revision 8"},
		{[]string{"remove", s, "--expect-revision", "8"}, "revision 9"},
		{[]string{"remove", "--json", s}, `"revision": 10`},
		{[]string{"score", s, "127.0.0.1:31001", "75", "--json"}, `"score": 75`},
		{[]string{"score", "--json", s, "127.0.0.1:31001", "0"}, `"score": 0`},
		{[]string{"drain", "node-1", "--reason", "kernel upgrade"}, "node node-1: drained"},
		{[]string{"undrain", "node-1", "--json"}, `"kind": "node_undrained"`},
		{[]string{"drain", "--reason", "again", "node-1"}, "node node-1: drained"},
		{[]string{"log", s, "--json"}, `"revision": 10`},
		{[]string{"log", "--json", s}, `"revision": 10`},
		{[]string{"state", s, "--at", "1", "--json"}, `"image": "web:1"`},
		{[]string{"state", "--at", "2", "--json", s}, `"image": "web:2"`},
		{[]string{"scopes", "--json"}, `"revision": 10`},
	}
	for _, st := range steps {
		r := mustRun(t, 0, hoistAt(url, st.args...))
		if !strings.Contains(r.stdout, st.want) {
			t.Errorf("hoist %s: want %q in\n%s", strings.Join(st.args, " "), st.want, r.stdout)
		}
	}
	// "scale S -1" is a bad replica count, before or after other flags.
	for _, a := range [][]string{{"scale", s, "-1"}, {"scale", s, "-1", "--expect-revision", "10"}, {"scale", "--json", s, "-7"}} {
		r := mustRun(t, 2, hoistAt(url, a...))
		if !strings.Contains(r.stderr, "replicas is -") {
			t.Errorf("hoist %s: want the error to name replicas, got %q", strings.Join(a, " "), r.stderr)
		}
	}
	if h := head(t, url, s); h != 10 {
		t.Fatalf("head = %d after the refused scales, want 10", h)
	}
}

// Bad input is refused before hoist connects: exit 2 and a message naming
// what is wrong, even with no server to reach.
func TestInputIsValidatedBeforeConnecting(t *testing.T) {
	url := deadURL(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"deploy", "Acme..web", "--image", "x"}, `client "Acme"`},
		{[]string{"deploy", "acme..web", "--image", "x"}, `environment ""`},
		{[]string{"deploy", "acme.prod", "--image", "x"}, "3 dot-separated tokens"},
		{[]string{"deploy", "acme.prod.web"}, "--image IMAGE or --command"},
		{[]string{"deploy", "acme.prod.web", "--image", ""}, "--image is empty"},
		{[]string{"deploy", "acme.prod.web", "--command", `sh -c 'echo hi`}, "unterminated single quote"},
		{[]string{"deploy", "acme.prod.web", "--command", "   "}, "--command is empty"},
		{[]string{"deploy", "acme.prod.web", "--image", "x", "--replicas", "-1"}, "replicas is -1"},
		{[]string{"deploy", "acme.prod.web", "--image", "x", "--replicas", "lots"}, "replicas"},
		{[]string{"deploy", "acme.prod.web", "--image", "x", "--port", "70000"}, "port is 70000"},
		{[]string{"deploy", "acme.prod.web", "--image", "x", "--env", "NOVALUE"}, `"NOVALUE": want KEY=VALUE`},
		{[]string{"deploy", "acme.prod.web", "--image", "x", "--host", "Web.Example.com"}, "must be lowercase"},
		{[]string{"deploy", "acme.prod.web", "--image", "x", "--health-path", "healthz"}, "must start with '/'"},
		{[]string{"deploy", "acme.prod.web", "--image", "x", "--restart", "sometimes"}, "restart"},
		{[]string{"deploy", "acme.prod.web", "--image", "x", "--cache-max-bytes", "10"}, "--cache-max-bytes needs --cache-ttl"},
		{[]string{"deploy", "acme.prod.web", "extra", "--image", "x"}, "got 2 arguments"},
		{[]string{"scale", "acme.prod.web", "many"}, `replicas "many" is not a whole number`},
		{[]string{"scale", "acme.prod.web", "1001"}, "replicas is 1001"},
		{[]string{"scale", "acme.prod.web"}, "SCOPE REPLICAS"},
		{[]string{"env", "acme.prod.web"}, "sets and unsets nothing"},
		{[]string{"env", "acme.prod.web", "1A=x"}, `"1A" is not a valid name`},
		{[]string{"env", "acme.prod.web", "A=1", "--unset", "A"}, "both set and unset"},
		{[]string{"rollback", "acme.prod.web", "--to", "0"}, "--to 0"},
		{[]string{"rollback", "acme.prod.web", "--to", "-1"}, "-1"},
		{[]string{"scale", "acme.prod.web", "1", "--expect-revision", "x"}, "expect-revision"},
		{[]string{"score", "acme.prod.web", "not-an-address", "50"}, "not host:port"},
		{[]string{"score", "acme.prod.web", "node-1#x", "50"}, "is not a slot NODE#INDEX"},
		{[]string{"deploy", "acme.prod.web", "--image", "web:1", "--port", "0"}, "--port 0: want 1-65535"},
		{[]string{"deploy", "acme.prod.web", "--image", "Web:1"}, "repository name must be lowercase"},
		{[]string{"score", "acme.prod.web", "127.0.0.1:80", "101"}, "score is 101"},
		{[]string{"score", "acme.prod.web", "127.0.0.1:80", "-1"}, "score is -1"},
		{[]string{"drain", "Node_1"}, `invalid node name "Node_1"`},
		{[]string{"undrain"}, "NODE"},
		{[]string{"state", "acme.prod.web", "--at", "0"}, "--at 0"},
		{[]string{"log", "acme.prod.WEB"}, `solution "WEB"`},
		{[]string{"deploy", "acme.prod.web", "--image", "x", "--no-such-flag"}, "no-such-flag"},
	}
	for _, c := range cases {
		r := hoistAt(url, c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("hoist %s: want exit 2 and %q, got %s", strings.Join(c.args, " "), c.want, r)
		}
	}
}

// An event past the size limit is bad input, exit 2, and nothing is
// published: what it would be is known only once the state it builds on is
// read, so it is refused after connecting.
func TestAnEventTooLargeIsExit2(t *testing.T) {
	url := natstest.Start(t).URL()
	const s = "acme.prod.web"
	r := mustRun(t, 2, hoistAt(url, append([]string{"deploy", s, "--image", "web:1"}, bigEnv(600<<10)...)...))
	if !strings.Contains(r.stderr, "event is too large: ") {
		t.Errorf("stderr: %q", r.stderr)
	}
	if h := head(t, url, s); h != 0 {
		t.Fatalf("head %d, want nothing published", h)
	}
}

// Changes that the scope's current state makes meaningless are refused
// with exit 2, and nothing is published.
func TestRefusalsThatDependOnTheState(t *testing.T) {
	url := natstest.Start(t).URL()
	const s = "acme.prod.web"
	for _, a := range [][]string{{"scale", s, "2"}, {"env", s, "A=1"}, {"rollback", s}, {"rollback", s, "--to", "1"}, {"remove", s}} {
		r := mustRun(t, 2, hoistAt(url, a...))
		if !strings.Contains(r.stderr, "never been deployed") {
			t.Errorf("hoist %s: %q", strings.Join(a, " "), r.stderr)
		}
	}
	if h := head(t, url, s); h != 0 {
		t.Fatalf("refusals appended: head %d", h)
	}
	mustRun(t, 0, hoistAt(url, "deploy", s, "--image", "web:1"))
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"rollback", s}, "no earlier revision"},
		{[]string{"rollback", s, "--to", "1"}, "revision 1 is the head"},
		{[]string{"rollback", s, "--to", "5"}, "no revision 5"},
		{[]string{"undrain", "node-9"}, "node node-9 is not drained"},
	}
	for _, c := range cases {
		r := mustRun(t, 2, hoistAt(url, c.args...))
		if !strings.Contains(r.stderr, c.want) {
			t.Errorf("hoist %s: want %q in %q", strings.Join(c.args, " "), c.want, r.stderr)
		}
	}
	// Scaling to the same count twice leaves an unchanged spec: a plain
	// rollback must look past it.
	mustRun(t, 0, hoistAt(url, "scale", s, "3"))
	mustRun(t, 0, hoistAt(url, "env", s, "A=1"))
	r := mustRun(t, 0, hoistAt(url, "rollback", s))
	wantLine(t, r.stdout, "acme.prod.web: revision 4 (rolled back to revision 2)")
	mustRun(t, 0, hoistAt(url, "remove", s))
	r = mustRun(t, 2, hoistAt(url, "rollback", s, "--to", "5"))
	if !strings.Contains(r.stderr, "revision 5 is the head") {
		t.Errorf("rollback to the removal: %q", r.stderr)
	}
	if h := head(t, url, s); h != 5 {
		t.Fatalf("head = %d, want 5", h)
	}
}

// A deploy keeps what it does not mention: scale and env survive a new
// image, and the image survives a new command (which overrides its own).
func TestDeployKeepsWhatItDoesNotSet(t *testing.T) {
	url := natstest.Start(t).URL()
	const s = "acme.prod.web"
	mustRun(t, 0, hoistAt(url, "deploy", s, "--image", "web:1", "--port", "8080", "--host", "a.example.com", "--env", "LIST=a,b", "--health-path", "/up"))
	mustRun(t, 0, hoistAt(url, "scale", s, "4"))
	mustRun(t, 0, hoistAt(url, "env", s, "MODE=fast"))
	mustRun(t, 0, hoistAt(url, "deploy", s, "--command", `sh -c 'echo "hi there"'`, "--env", "B=2", "--cache-ttl", "30s"))
	st := decodeJSON[stateJSON](t, mustRun(t, 0, hoistAt(url, "state", s, "--json")).stdout)
	want := stateJSON{
		Scope: s, Revision: 4, Image: "web:1", Command: []string{"sh", "-c", `echo "hi there"`}, Replicas: 4, Port: 8080,
		Env: map[string]string{"LIST": "a,b", "MODE": "fast", "B": "2"}, Secrets: map[string]stateSecret{}, Hosts: []string{"a.example.com"}, HealthPath: "/up",
		Surge: 1, HealthTimeout: st.HealthTimeout, Cache: st.Cache, Time: st.Time, Actor: st.Actor,
	}
	if !reflect.DeepEqual(st, want) || st.Cache == nil || st.Cache.TTL.String() != "30s" {
		t.Fatalf("state:\n%+v\nwant\n%+v", st, want)
	}
	r := mustRun(t, 0, hoistAt(url, "log", s))
	if !strings.Contains(r.stdout, `deployed image=web:1 command='sh -c '\''echo "hi there"'\''' replicas=4`) {
		t.Errorf("log should quote the command:\n%s", r.stdout)
	}
}

// Every flag reads a HOIST_* variable; the NATS URL reads HOIST_NATS_URL.
func TestFlagsFromEnvironment(t *testing.T) {
	t.Setenv("HOIST_NATS_URL", natstest.Start(t).URL())
	t.Setenv("HOIST_IMAGE", "registry.local/web:7")
	t.Setenv("HOIST_REPLICAS", "2")
	r := mustRun(t, 0, hoist("deploy", "acme.prod.web"))
	if !strings.Contains(r.stdout, "image=registry.local/web:7 replicas=2") {
		t.Fatalf("deploy from HOIST_IMAGE/HOIST_REPLICAS: %s", r.stdout)
	}
	t.Setenv("HOIST_EXPECT_REVISION", "5")
	r = mustRun(t, 3, hoist("scale", "acme.prod.web", "3"))
	if !strings.Contains(r.stderr, "expected revision 5, but the head is revision 1") {
		t.Fatalf("HOIST_EXPECT_REVISION: %q", r.stderr)
	}
	t.Setenv("HOIST_EXPECT_REVISION", "1")
	mustRun(t, 0, hoist("scale", "acme.prod.web", "3"))
}

// Without a server, a command says so in one line naming the URL and how
// to start one, and exits 1.
func TestUnreachableNATS(t *testing.T) {
	url := deadURL(t)
	for _, a := range [][]string{{"scale", "acme.prod.web", "2"}, {"log", "acme.prod.web"}, {"scopes"}} {
		r := mustRun(t, 1, hoistAt(url, a...))
		first, _, _ := strings.Cut(r.stderr, "\n")
		if !strings.Contains(first, "cannot reach NATS at "+url) || !strings.Contains(r.stderr, "hoist server") {
			t.Errorf("hoist %s: %q", a[0], r.stderr)
		}
		if strings.Count(r.stderr, "hoist:") != 1 || strings.Count(r.stderr, "\n") > 2 || strings.Contains(r.stderr, "connect to NATS") {
			t.Errorf("hoist %s: want one message, not a stack of wrapped errors: %q", a[0], r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("hoist %s printed %q", a[0], r.stdout)
		}
	}
}

// The help of every publish and read command, and of server, shows an
// example.
func TestHelpShowsAnExample(t *testing.T) {
	cmds := append(append(publishCommands(), readCommands()...), serverCommand())
	for _, c := range cmds {
		r := mustRun(t, 0, hoist(c.Name, "--help"))
		if !strings.Contains(r.stdout, "Example:") || !strings.Contains(r.stdout, "hoist "+c.Name+" ") {
			t.Errorf("hoist %s --help has no example:\n%s", c.Name, r.stdout)
		}
	}
}

// Publishers racing without --expect-revision all get stored, each on its
// own revision: a lost race is decided again on the new head.
func TestRacingPublishersAllLand(t *testing.T) {
	url := natstest.Start(t).URL()
	const s = "acme.prod.web"
	mustRun(t, 0, hoistAt(url, "deploy", s, "--image", "web:1"))
	var wg sync.WaitGroup
	results := make([]result, 6)
	for i := range results {
		wg.Go(func() { results[i] = hoistAt(url, "scale", s, strconv.Itoa(i+1)) })
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, r := range results {
		if r.code != 0 {
			t.Fatalf("a racing publish failed: %s", r)
		}
		seen[strings.Fields(r.stdout)[2]] = true
	}
	if len(seen) != len(results) || head(t, url, s) != uint64(len(results)+1) {
		t.Fatalf("want %d distinct revisions, got %v (head %d)", len(results), seen, head(t, url, s))
	}
}

// deadURL is a NATS URL where nothing listens.
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "nats://" + addr
}

// A score of a backend no node reports is published with a warning that
// lists the backends there are; a reported one, slot or address, is not
// warned about.
func TestScoreWarnsOfUnknownBackend(t *testing.T) {
	srv := natstest.Start(t)
	const s = "acme.prod.web"
	mustRun(t, 0, hoistAt(srv.URL(), "deploy", s, "--image", "web:1"))
	st := srv.Store(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := st.PublishBackends(ctx, &events.BackendsReport{
		Node: "node-1", Scope: events.MustParseScope(s), Revision: 1, Time: time.Now(),
		Backends: []string{"127.0.0.1:31001"}, Slots: map[string]int{"127.0.0.1:31001": 0},
	}); err != nil {
		t.Fatal(err)
	}
	const listed = "Backends: node-1#0 (127.0.0.1:31001)"
	for _, tt := range []struct {
		args []string
		warn bool
	}{
		{[]string{"node-1#0", "50"}, false},
		{[]string{"127.0.0.1:31001", "50"}, false},
		{[]string{"127.0.0.1:31001", "50", "--by-address"}, false},
		{[]string{"node-9#3", "50"}, true},
		{[]string{"10.0.0.1:80", "50"}, true},
		{[]string{"10.0.0.1:80", "50", "--by-address"}, true},
	} {
		r := mustRun(t, 0, hoistAt(srv.URL(), append([]string{"score", s}, tt.args...)...))
		if got := strings.Contains(r.stderr, "warning: no node of "+s+" reports a backend "+tt.args[0]) && strings.Contains(r.stderr, listed); got != tt.warn {
			t.Errorf("score %v: warned %v, want %v; stderr %q", tt.args, got, tt.warn, r.stderr)
		}
	}
}

// bigEnv is --env flags of about size bytes in all, each value within the
// limit of one.
func bigEnv(size int) []string {
	var args []string
	for i := 0; size > 0; i++ {
		n := min(size, 32<<10)
		args = append(args, "--env", fmt.Sprintf("V%d=%s", i, strings.Repeat("x", n)))
		size -= n
	}
	return args
}
