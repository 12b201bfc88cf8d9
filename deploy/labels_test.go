package deploy

import (
	"slices"
	"testing"

	"github.com/hoist-dev/hoist/events"
)

func TestReplicaEnv(t *testing.T) {
	spec := &events.Spec{Command: []string{"x"}, Env: map[string]string{
		"MODE": "fast", "HOIST_NODE": "forged", "HOIST_REPLICA": "forged", "PORT": "1",
	}}
	rs := ReplicaSpec{Scope: events.MustParseScope("acme.prod.web"), Index: 2, Revision: 7, Spec: spec}
	got := ReplicaEnv("node-a", rs, 8080)
	want := []string{"HOIST_NODE=node-a", "HOIST_REPLICA=acme.prod.web#2", "HOIST_REVISION=7", "HOIST_SCOPE=acme.prod.web", "MODE=fast", "PORT=8080"}
	if !slices.Equal(got, want) {
		t.Errorf("ReplicaEnv = %q\nwant        %q", got, want)
	}
	// Without a port, PORT is the spec's own.
	if got := ReplicaEnv("node-a", rs, 0); !slices.Contains(got, "PORT=1") {
		t.Errorf("ReplicaEnv without a port = %q, want the spec's PORT=1", got)
	}
	if spec.Env["HOIST_NODE"] != "forged" {
		t.Error("ReplicaEnv changed the spec's env")
	}
}
