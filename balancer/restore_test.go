package balancer

import (
	"testing"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// A server restored from an older backup rewinds the drains the balancer
// folded: the balancer notices that the stream no longer holds what it
// read, reads it again, and its table follows the stream, not its memory.
func TestRestoredServerRewindsTheBalancer(t *testing.T) {
	srv := natstest.Start(t)
	b := natsBalancer(t, srv, nil)
	pub := &publisher{t: t, st: srv.Store(t)}
	sc := events.MustParseScope("acme.prod.web")
	pub.deploy(sc, events.Spec{Replicas: 1, Hosts: []string{"web.example.com"}})
	pub.announce(sc, "n1", "10.0.0.1:80")
	pub.node("n1", false)
	w := testConfig().DefaultScore
	waitWeight(t, b, sc, "10.0.0.1:80", w)

	backup := srv.Backup()
	pub = &publisher{t: t, st: srv.Store(t)}
	pub.node("n1", true)
	waitWeight(t, b, sc, "10.0.0.1:80", 0)

	srv.Restore(backup) // n1 was never drained, as far as the stream knows
	waitWeight(t, b, sc, "10.0.0.1:80", w)
}
