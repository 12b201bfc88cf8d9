package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// Every read command refuses a scope without events alike: bad input,
// exit 2.
func TestUnknownScope(t *testing.T) {
	url := natstest.Start(t).URL()
	for _, a := range [][]string{
		{"log", "acme.prod.nope"}, {"log", "acme.prod.nope", "--json"}, {"state", "acme.prod.nope", "--json"},
		{"status", "acme.prod.nope"}, {"status", "acme.prod.nope", "--json"}, {"wait", "acme.prod.nope"}, {"wait", "acme.prod.nope", "--json"},
	} {
		r := mustRun(t, exitUsage, hoistAt(url, a...))
		if r.stdout != "" || !strings.Contains(r.stderr, "no such scope acme.prod.nope") {
			t.Errorf("hoist %s: %s", strings.Join(a, " "), r)
		}
	}
	r := mustRun(t, 0, hoistAt(url, "scopes", "--json"))
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("scopes --json with no scopes: %q", r.stdout)
	}
	r = mustRun(t, 0, hoistAt(url, "scopes"))
	if r.stdout != "" || !strings.Contains(r.stderr, "no scopes yet") {
		t.Errorf("scopes with no scopes: %s", r)
	}
}

// A message that cannot be read holds its revision, is marked in the log
// and warned about on stderr, and is never fatal.
func TestUnreadableEventsAreWarnings(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.URL()
	const s = "acme.prod.web"
	mustRun(t, 0, hoistAt(url, "deploy", s, "--image", "web:1"))
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), events.ScopeSubject(events.MustParseScope(s), events.KindScaled, "ci"), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, 0, hoistAt(url, "log", s))
	if !strings.Contains(r.stderr, "warning: revision 2 changes nothing") || !strings.Contains(r.stdout, "deployed image=web:1") ||
		!strings.Contains(r.stdout, "REJECTED: malformed event") {
		t.Fatalf("log with garbage: %s", r)
	}
	r = mustRun(t, 0, hoistAt(url, "log", s, "--json"))
	type entry struct {
		Revision uint64
		Actor    string
		Rejected string
	}
	if log := decodeJSON[[]entry](t, r.stdout); len(log) != 2 || log[1].Revision != 2 || !strings.Contains(log[1].Rejected, "malformed") || log[1].Actor != "ci" {
		t.Fatalf("log --json with garbage: %s", r)
	}
	r = mustRun(t, 0, hoistAt(url, "state", s, "--json"))
	if !strings.Contains(r.stderr, "warning:") || decodeJSON[stateJSON](t, r.stdout).Image != "web:1" {
		t.Fatalf("state with garbage: %s", r)
	}
	// Publishing still works on top of it.
	r = mustRun(t, 0, hoistAt(url, "scale", s, "2"))
	wantLine(t, r.stdout, "acme.prod.web: revision 3 (scaled to 2)")
	r = mustRun(t, 0, hoistAt(url, "scopes", "--json"))
	if got := decodeJSON[[]scopeJSON](t, r.stdout); len(got) != 1 || got[0].Revision != 3 {
		t.Fatalf("scopes: %s", r)
	}
	mustRun(t, 0, hoistAt(url, "scale", s, "3", "--expect-revision", "3"))
}

func TestStateOutput(t *testing.T) {
	url := natstest.Start(t).URL()
	const s = "acme.prod.web"
	mustRun(t, 0, hoistAt(url, "deploy", s, "--image", "web:1", "--replicas", "3", "--env", "MODE=fast", "--env", "GREETING=hello world", "--memory", "256"))
	mustRun(t, 0, hoistAt(url, "remove", s))
	r := mustRun(t, 2, hoistAt(url, "state", s, "--at", "3"))
	if !strings.Contains(r.stderr, "has revisions 1-2: there is no revision 3") {
		t.Errorf("state --at beyond head: %q", r.stderr)
	}
	r = mustRun(t, 0, hoistAt(url, "state", s))
	for _, want := range []string{"revision  2", "status    removed", "replicas  3", "env       GREETING='hello world' MODE=fast", "memory    256 MB"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("state: want %q in\n%s", want, r.stdout)
		}
	}
	st := decodeJSON[stateJSON](t, mustRun(t, 0, hoistAt(url, "state", s, "--at", "1", "--json")).stdout)
	if st.Removed || st.Revision != 1 || st.Env["GREETING"] != "hello world" {
		t.Errorf("state --at 1: %+v", st)
	}
	r = mustRun(t, 0, hoistAt(url, "scopes"))
	if r.stdout != "SCOPE          REVISION\nacme.prod.web  2\n" {
		t.Errorf("scopes:\n%s", r.stdout)
	}
}

// An event that is read but cannot be applied (here a raw rollback to a
// revision that does not exist) holds its revision; hoist log marks it
// SKIPPED with why, in text and JSON, instead of listing it as a change.
func TestLogMarksEventsTheFoldSkips(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.URL()
	const scope = "acme.prod.web"
	mustRun(t, 0, hoistAt(url, "deploy", scope, "--image", "web:1"))
	e := &events.Event{Schema: events.SchemaVersion, ID: "raw-1", Kind: events.KindRolledBack, Scope: events.MustParseScope(scope),
		Revision: 2, Time: time.Now().UTC(), Actor: "mallory", Data: &events.RolledBack{To: 99}}
	body, err := events.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(context.Background(), events.ScopeSubject(e.Scope, e.Kind, "mallory"), body); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, 0, hoistAt(url, "log", scope))
	if !strings.Contains(r.stdout, "SKIPPED: rolls back to revision 99") {
		t.Errorf("log does not mark the skipped event:\n%s", r.stdout)
	}
	r = mustRun(t, 0, hoistAt(url, "log", scope, "--json"))
	if !strings.Contains(r.stdout, `"skipped": "rolls back to revision 99`) {
		t.Errorf("log --json does not mark the skipped event:\n%s", r.stdout)
	}
}

// wait --json says how the wait ended on stdout, with the exit code.
func TestWaitJSON(t *testing.T) {
	url := natstest.Start(t).URL()
	const s = "acme.prod.web"
	mustRun(t, 0, hoistAt(url, "deploy", s, "--image", "web:1"))
	r := mustRun(t, exitWait, hoistAt(url, "wait", s, "--timeout", "300ms", "--json"))
	got := decodeJSON[waitJSON](t, r.stdout)
	if got.Scope != s || got.Revision != 1 || got.Result != "timeout" || !strings.Contains(got.Reason, "timed out") || got.Nodes == nil {
		t.Fatalf("wait --json = %+v", got)
	}
}

// A plain rollback after a remove revives the scope with the spec it ran
// before, as 'hoist state' says it would.
func TestRollbackRevivesRemovedScope(t *testing.T) {
	url := natstest.Start(t).URL()
	const s = "acme.prod.web"
	mustRun(t, 0, hoistAt(url, "deploy", s, "--image", "web:1"))
	mustRun(t, 0, hoistAt(url, "scale", s, "3"))
	mustRun(t, 0, hoistAt(url, "remove", s))
	if r := mustRun(t, 0, hoistAt(url, "state", s)); !strings.Contains(r.stdout, "a deploy or rollback revives it") {
		t.Fatalf("state of a removed scope:\n%s", r.stdout)
	}
	if r := mustRun(t, 0, hoistAt(url, "rollback", s)); !strings.Contains(r.stdout, "revision 4") {
		t.Fatalf("rollback: %s", r)
	}
	st := decodeJSON[stateJSON](t, mustRun(t, 0, hoistAt(url, "state", s, "--json")).stdout)
	if st.Removed || st.Image != "web:1" || st.Replicas != 3 {
		t.Fatalf("after the rollback: %+v, want web:1 with 3 replicas, not removed", st)
	}
}
