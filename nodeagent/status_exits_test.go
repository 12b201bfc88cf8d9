package nodeagent

import (
	"testing"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/events"
)

// An exit note shows on its slot's replacement for as long as that one
// runs, never on a replica that comes after it.
func TestExitNotesFollowTheReplacement(t *testing.T) {
	var n exitNotes
	exit := deploy.Exit{Index: 1, ID: "dead", Detail: "exit code 3", Output: []string{"boom"}}
	reps := func(ids ...string) []events.ReplicaStatus {
		var out []events.ReplicaStatus
		for i, id := range ids {
			out = append(out, events.ReplicaStatus{Index: i, ID: id})
		}
		return out
	}
	const want = "replaces dead, which exited (exit code 3); last output: boom"

	r := reps("a") // the replacement is not up yet
	n.show([]deploy.Exit{exit}, r)
	if r[0].Detail != "" || len(n) != 1 {
		t.Fatalf("detail %q on another slot, notes %d", r[0].Detail, len(n))
	}
	r = reps("a", "new")
	n.show(nil, r)
	if r[1].Detail != want || r[0].Detail != "" {
		t.Errorf("details %q, %q; want %q on slot 1", r[0].Detail, r[1].Detail, want)
	}
	r = reps("a", "new")
	r[1].Detail = "GET /up: 503"
	n.show(nil, r)
	if r[1].Detail != "GET /up: 503" {
		t.Errorf("the replica's own detail was replaced: %q", r[1].Detail)
	}
	r = reps("a", "newer") // a rollout replaced the replacement
	n.show(nil, r)
	if r[1].Detail != "" || len(n) != 0 {
		t.Errorf("the note outlived its replacement: %q, %d notes", r[1].Detail, len(n))
	}
}
