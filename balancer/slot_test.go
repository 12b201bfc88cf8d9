package balancer

import (
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// A score given to a slot (NODE#INDEX) follows it: the replica a rollout
// puts in the slot, at a new host port, gets the slot's score, where a
// score of the old host:port stays behind with the old replica.
func TestScoreFollowsItsSlotAcrossARollout(t *testing.T) {
	srv := natstest.Start(t)
	b := natsBalancer(t, srv, nil)
	pub := &publisher{t: t, st: srv.Store(t)}
	sc := events.MustParseScope("acme.prod.web")
	pub.deploy(sc, events.Spec{Replicas: 2, Hosts: []string{"web.example.com"}})
	report := func(slots map[string]int) {
		backends := make([]string, 0, len(slots))
		for addr := range slots {
			backends = append(backends, addr)
		}
		pub.report(events.BackendsReport{Node: "n1", Scope: sc, Backends: backends, Slots: slots, Time: time.Now()})
	}
	report(map[string]int{"10.0.0.1:31001": 0, "10.0.0.1:31002": 1})
	pub.score(sc, events.Slot("n1", 0), 30)
	pub.score(sc, "10.0.0.1:31002", 60) // by address: stays with that replica
	waitWeight(t, b, sc, "10.0.0.1:31001", 30)
	waitWeight(t, b, sc, "10.0.0.1:31002", 60)

	// A rollout: both slots get new replicas at new ports.
	report(map[string]int{"10.0.0.1:32001": 0, "10.0.0.1:32002": 1})
	waitWeight(t, b, sc, "10.0.0.1:32001", 30)
	waitWeight(t, b, sc, "10.0.0.1:32002", testConfig().DefaultScore)

	// A newer score of the address wins over the slot's, and the other
	// way round.
	pub.score(sc, "10.0.0.1:32001", 10)
	waitWeight(t, b, sc, "10.0.0.1:32001", 10)
	pub.score(sc, events.Slot("n1", 0), 70)
	waitWeight(t, b, sc, "10.0.0.1:32001", 70)
}
