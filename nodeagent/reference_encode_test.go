package nodeagent

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/events"
)

// encodeReference must say exactly what json.Marshal says: both read back
// to the same reference.
func TestEncodeReferenceMatchesMarshal(t *testing.T) {
	deployed := encode(t, scopeEvent(1, &events.Deployed{Spec: events.Spec{Image: "web:1", Replicas: 2, Env: map[string]string{"A": "<&>"}}}))
	scaled := encode(t, scopeEvent(2, &events.Scaled{Replicas: 3}))
	refs := []*reference{
		{Version: referenceVersion, Node: "n1", Scopes: map[string]*referenceLog{}},
		{Version: referenceVersion, Node: "n\"1", Written: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
			Scopes: map[string]*referenceLog{
				"acme.prod.web": {Revision: 4, Sequence: 9, Synced: true, Events: []json.RawMessage{deployed, scaled}},
				"acme.prod.api": {Revision: 0, Sequence: 0, Synced: true},
				"acme.prod.new": {Events: []json.RawMessage{}},
			},
			NodeLog:  referenceNode{Synced: true, Revision: 2, Sequence: 12, Drained: true, Reason: "maintenance"},
			Failures: []deploy.Failure{{Scope: scopeWeb, Revision: 2, Reason: "unhealthy"}},
		},
	}
	for _, ref := range refs {
		fast, err := encodeReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		slow, err := json.Marshal(ref)
		if err != nil {
			t.Fatal(err)
		}
		var a, b reference
		if err := json.Unmarshal(fast, &a); err != nil {
			t.Fatalf("encodeReference wrote invalid JSON: %v\n%s", err, fast)
		}
		if err := json.Unmarshal(slow, &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("encodeReference and json.Marshal differ:\n%s\n%s", fast, slow)
		}
	}
}
