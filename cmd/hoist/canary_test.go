package main

import (
	"strings"
	"testing"

	"github.com/hoist-dev/hoist/internal/natstest"
)

func TestCanaryCommands(t *testing.T) {
	url := natstest.Start(t).URL()
	const s = "acme.prod.web"
	// Nothing to run a canary beside, or to shift: refused, exit 2.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"deploy", s, "--image", "web:2", "--canary", "10"}, "never been deployed"},
		{[]string{"canary", s, "50"}, "never been deployed"},
		{[]string{"promote", s}, "never been deployed"},
	} {
		if r := mustRun(t, 2, hoistAt(url, c.args...)); !strings.Contains(r.stderr, c.want) {
			t.Errorf("hoist %s: want %q in %q", strings.Join(c.args, " "), c.want, r.stderr)
		}
	}
	mustRun(t, 0, hoistAt(url, "deploy", s, "--image", "web:1", "--replicas", "3", "--port", "8080", "--env", "A=1"))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"canary", s, "50"}, "runs no canary: start one with 'hoist deploy acme.prod.web --image IMAGE --canary 10'"},
		{[]string{"promote", s}, "runs no canary"},
		{[]string{"abort", s}, "runs no canary"},
		{[]string{"deploy", s, "--image", "web:2", "--canary", "101"}, "want 0-100"},
		{[]string{"deploy", s, "--image", "web:2", "--canary", "10", "--canary-replicas", "0"}, "canary replicas per node"},
		{[]string{"deploy", s, "--image", "web:2", "--sticky"}, "--sticky needs --canary SHARE"},
		{[]string{"canary", s, "x"}, "share"},
		{[]string{"canary", s}, "SCOPE SHARE"},
	} {
		if r := mustRun(t, 2, hoistAt(url, c.args...)); !strings.Contains(r.stderr, c.want) {
			t.Errorf("hoist %s: want %q in %q", strings.Join(c.args, " "), c.want, r.stderr)
		}
	}
	if h := head(t, url, s); h != 1 {
		t.Fatalf("refusals appended: head %d", h)
	}

	// The canary's spec is the one the deploy would have made: options
	// left out keep their values.
	r := mustRun(t, 0, hoistAt(url, "deploy", s, "--image", "web:2", "--canary", "10", "--canary-replicas", "2", "--sticky"))
	wantLine(t, r.stdout, "acme.prod.web: revision 2 (started a canary at 10% (2 replicas per node, sticky): image=web:2 replicas=3 port=8080 env=A)")
	r = mustRun(t, 2, hoistAt(url, "deploy", s, "--image", "web:3", "--canary", "10"))
	if !strings.Contains(r.stderr, "a canary is running (revision 2, web:2 at 10%): promote it (hoist promote acme.prod.web) or abort it (hoist abort acme.prod.web) first") {
		t.Errorf("a second canary: %q", r.stderr)
	}
	r = mustRun(t, 0, hoistAt(url, "state", s))
	if !strings.Contains(r.stdout, "revision 2: 10% of new requests, 2 replicas per node, sticky, by hand") {
		t.Errorf("state shows no canary:\n%s", r.stdout)
	}
	if r = mustRun(t, 0, hoistAt(url, "state", s, "--json")); !strings.Contains(r.stdout, `"share": 10`) {
		t.Errorf("state --json shows no canary:\n%s", r.stdout)
	}
	r = mustRun(t, 0, hoistAt(url, "canary", s, "50"))
	wantLine(t, r.stdout, "acme.prod.web: revision 3 (shifted the canary to 50%)")
	r = mustRun(t, 0, hoistAt(url, "abort", s, "--reason", "p99 doubled"))
	wantLine(t, r.stdout, "acme.prod.web: revision 4 (aborted the canary: p99 doubled)")
	mustRun(t, 2, hoistAt(url, "abort", s))

	mustRun(t, 0, hoistAt(url, "deploy", s, "--image", "web:3", "--canary", "0"))
	r = mustRun(t, 0, hoistAt(url, "promote", s, "--json"))
	if !strings.Contains(r.stdout, `"kind": "canary_promoted"`) {
		t.Errorf("promote --json: %s", r.stdout)
	}
	r = mustRun(t, 0, hoistAt(url, "state", s))
	if !strings.Contains(r.stdout, "web:3") {
		t.Errorf("after the promotion the state is not web:3:\n%s", r.stdout)
	}
	// A canary of an env change alone runs the stable image.
	r = mustRun(t, 0, hoistAt(url, "deploy", s, "--canary", "10", "--env", "B=2"))
	wantLine(t, r.stdout, "acme.prod.web: revision 7 (started a canary at 10% (1 replica per node): image=web:3 replicas=3 port=8080 env=A,B)")
	// A plain deploy ends a running canary, and says so.
	r = mustRun(t, 0, hoistAt(url, "deploy", s, "--image", "web:4"))
	if !strings.Contains(r.stderr, "this deploy ends the canary of acme.prod.web (revision 7, at 10%)") {
		t.Errorf("deploy over a canary: stderr %q", r.stderr)
	}
	r = mustRun(t, 0, hoistAt(url, "log", s))
	for _, want := range []string{"started a canary at 10%", "shifted the canary to 50%", "aborted the canary: p99 doubled", "promoted the canary"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("log lacks %q:\n%s", want, r.stdout)
		}
	}
}
