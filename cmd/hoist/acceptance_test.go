package main

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/internal/natstest"
)

// TestAcceptance is issue 2's script, as a new user would run it: the NATS
// URL from HOIST_NATS_URL, exit codes, outputs, nothing appended on errors,
// and the same log and state after a server restart.
func TestAcceptance(t *testing.T) {
	srv := natstest.Start(t)
	t.Setenv("HOIST_NATS_URL", srv.URL())
	t.Setenv("HOIST_ACTOR", "alice@laptop")
	const scope = "acme.prod.web"

	r := mustRun(t, 0, hoist("deploy", scope, "--image", "registry.local/web:1", "--replicas", "3", "--port", "8080", "--host", "web.example.com"))
	wantLine(t, r.stdout, "acme.prod.web: revision 1 (deployed image=registry.local/web:1 replicas=3 port=8080 hosts=web.example.com)")
	r = mustRun(t, 0, hoist("scale", scope, "5"))
	wantLine(t, r.stdout, "acme.prod.web: revision 2 (scaled to 5)")
	r = mustRun(t, 0, hoist("env", scope, "MODE=fast"))
	wantLine(t, r.stdout, "acme.prod.web: revision 3 (env set MODE=fast)")

	// log: three events, revisions 1..3, in aligned columns.
	r = mustRun(t, 0, hoist("log", scope))
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "REV") {
		t.Fatalf("log: want a header and 3 events, got:\n%s", r.stdout)
	}
	for i, want := range []string{"deployed image=registry.local/web:1", "scaled to 5", "env set MODE=fast"} {
		f := strings.Fields(lines[i+1])
		if f[0] != strconv.Itoa(i+1) || !strings.Contains(lines[i+1], "alice@laptop") || !strings.Contains(lines[i+1], want) {
			t.Errorf("log line %d = %q, want revision %d and %q", i+1, lines[i+1], i+1, want)
		}
		if strings.Index(lines[i+1], want) != strings.Index(lines[1], "deployed") {
			t.Errorf("log columns are not aligned:\n%s", r.stdout)
		}
	}
	logJSON := decodeJSON[[]map[string]any](t, mustRun(t, 0, hoist("log", scope, "--json")).stdout)
	if len(logJSON) != 3 || logJSON[2]["revision"] != 3.0 || logJSON[2]["kind"] != "env_changed" || logJSON[0]["actor"] != "alice@laptop" {
		t.Fatalf("log --json: %v", logJSON)
	}
	for _, k := range []string{"revision", "kind", "time", "actor", "data"} {
		if _, ok := logJSON[0][k]; !ok {
			t.Errorf("log --json entries lack %q: %v", k, logJSON[0])
		}
	}

	// state --at 1: replicas 3, no MODE.
	at1 := decodeJSON[stateJSON](t, mustRun(t, 0, hoist("state", scope, "--at", "1", "--json")).stdout)
	if at1.Revision != 1 || at1.Replicas != 3 || at1.Image != "registry.local/web:1" || at1.Port != 8080 || len(at1.Env) != 0 {
		t.Fatalf("state --at 1: %+v", at1)
	}

	// rollback --to 1: revision 4, and the state equals revision 1's.
	r = mustRun(t, 0, hoist("rollback", scope, "--to", "1"))
	wantLine(t, r.stdout, "acme.prod.web: revision 4 (rolled back to revision 1)")
	now := decodeJSON[stateJSON](t, mustRun(t, 0, hoist("state", scope, "--json")).stdout)
	if now.Revision != 4 || !sameSpec(now, at1) {
		t.Fatalf("state after rollback:\n%+v\nwant revision 1's:\n%+v", now, at1)
	}

	// A stale --expect-revision: exit 3, the message names 1 and 4.
	r = mustRun(t, 3, hoist("scale", scope, "2", "--expect-revision", "1"))
	if !strings.Contains(r.stderr, "expected revision 1") || !strings.Contains(r.stderr, "revision 4") {
		t.Errorf("conflict message should name revisions 1 and 4: %q", r.stderr)
	}
	// A bad scope: exit 2, naming the bad token.
	r = mustRun(t, 2, hoist("deploy", "Acme..web", "--image", "x"))
	if !strings.Contains(r.stderr, `"Acme"`) {
		t.Errorf("scope error should name the bad token: %q", r.stderr)
	}
	// A negative replica count: exit 2.
	r = mustRun(t, 2, hoist("scale", scope, "-1"))
	if !strings.Contains(r.stderr, "replicas") {
		t.Errorf("replica error should name replicas: %q", r.stderr)
	}
	// Nothing was appended by the three failures, anywhere.
	scopes := decodeJSON[[]scopeJSON](t, mustRun(t, 0, hoist("scopes", "--json")).stdout)
	if !reflect.DeepEqual(scopes, []scopeJSON{{Scope: scope, Revision: 4}}) {
		t.Fatalf("after the failed commands, scopes = %+v, want only %s at revision 4", scopes, scope)
	}

	// Restart the server on the same data: log and state are unchanged.
	logBefore := mustRun(t, 0, hoist("log", scope, "--json")).stdout
	stateBefore := mustRun(t, 0, hoist("state", scope, "--json")).stdout
	srv.Restart()
	var logAfter string
	natstest.Eventually(t, 20*time.Second, func() error {
		r := hoist("log", scope, "--json")
		if r.code != 0 {
			return errors.New(r.String())
		}
		logAfter = r.stdout
		return nil
	})
	if logAfter != logBefore {
		t.Errorf("log changed across a restart:\n%s\nvs\n%s", logBefore, logAfter)
	}
	if got := mustRun(t, 0, hoist("state", scope, "--json")).stdout; got != stateBefore {
		t.Errorf("state changed across a restart:\n%s\nvs\n%s", stateBefore, got)
	}
}

func wantLine(t *testing.T, out, line string) {
	t.Helper()
	if strings.TrimRight(out, "\n") != line {
		t.Errorf("output = %q, want %q", out, line)
	}
}

// sameSpec compares two states but for their revision, time and actor.
func sameSpec(a, b stateJSON) bool {
	a.Revision, a.Time, a.Actor = b.Revision, b.Time, b.Actor
	return reflect.DeepEqual(a, b)
}
