package main

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// Junk on a status subject (the nats CLI, a broken client) stays in the
// reports stream for a day: status and wait say so once each, in one
// line that counts and names it, and never count it as a node's status.
func TestUnreadableStatusReportsWarnOnce(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.URL()
	st := srv.Store(t)
	nc := srv.Connect(t)
	const scope = "acme.prod.web"
	junk := func(node string) {
		t.Helper()
		// A request gets the stream's ack: the junk is stored.
		if _, err := nc.Request("hoist.status."+node+"."+scope, []byte("{not a status"), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	warnings := func(stderr string) []string {
		var out []string
		for line := range strings.SplitSeq(stderr, "\n") {
			if strings.Contains(line, "unreadable status report") {
				out = append(out, line)
			}
		}
		return out
	}

	mustRun(t, 0, hoistAt(url, "deploy", scope, "--image", "web:1")) // revision 1
	report(t, st, "node-1", 0, scopeReport(1, 0, events.PhaseProgressing, 0, 1, ""))
	junk("mallory")

	for _, args := range [][]string{{"status"}, {"status", scope}} {
		r := mustRun(t, 0, hoistAt(url, args...))
		w := warnings(r.stderr)
		if len(w) != 1 || !strings.HasPrefix(w[0], "hoist: 1 unreadable status report ignored (hoist.status.mallory.acme.prod.web: ") ||
			!strings.HasSuffix(w[0], "); it ages out of HOIST_REPORTS within 24h, or an admin purges now: nats stream purge HOIST_REPORTS --subject hoist.status.mallory.acme.prod.web -f") {
			t.Errorf("%v: want one warning line, got %q\n%s", args, w, r)
		}
		if strings.Contains(r.stdout, "mallory") {
			t.Errorf("%v: the junk shows as a node:\n%s", args, r)
		}
	}

	// wait reads every report again on each one that arrives: still one
	// line at the end, counting the junk that came meanwhile.
	done := make(chan result, 1)
	go func() { done <- hoistAt(url, "wait", scope, "--timeout", "30s") }()
	for i := range 3 {
		report(t, st, "node-1", 0, scopeReport(1, 0, events.PhaseProgressing, i%2, 1, ""))
	}
	junk("eve")
	report(t, st, "node-1", 0, scopeReport(1, 1, events.PhaseConverged, 1, 1, ""))
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("wait did not return")
	}
	if r.code != 0 {
		t.Fatalf("wait: %s", r)
	}
	w := warnings(r.stderr)
	if len(w) != 1 || !strings.HasPrefix(w[0], "hoist: 2 unreadable status reports ignored (hoist.status.eve.acme.prod.web: ") ||
		!strings.Contains(w[0], "; hoist.status.mallory.acme.prod.web: ") || !strings.HasSuffix(w[0], "); they age out of HOIST_REPORTS within 24h, or an admin purges now: nats stream purge HOIST_REPORTS --subject SUBJECT -f") {
		t.Errorf("wait: want one warning line for both, got %q\n%s", w, r)
	}

	// The purge the warning names, as the nats CLI sends it, ends it.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(t.Context(), events.ReportsStream)
	if err != nil {
		t.Fatal(err)
	}
	for _, node := range []string{"mallory", "eve"} {
		if err := stream.Purge(t.Context(), jetstream.WithPurgeSubject("hoist.status."+node+"."+scope)); err != nil {
			t.Fatal(err)
		}
	}
	if r := mustRun(t, 0, hoistAt(url, "status", scope)); len(warnings(r.stderr)) != 0 || !strings.Contains(r.stdout, "node-1") {
		t.Errorf("status after the purge: want node-1 and no warning\n%s", r)
	}
}
