package chaos

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// TestCluster runs the cluster faults on one three-server cluster of
// containers, with an agent and a balancer on the host serving a scope
// under HTTP load throughout: a follower and then the stream leader
// killed (docker kill) under publish load, then the stream leader cut off
// the network (docker network disconnect) under publish load.
func TestCluster(t *testing.T) {
	needHoist(t)
	c := startDockerCluster(t)
	f := startFleet(t, c.env(), "web.r"+c.id+".app", 2)
	load := startHTTPLoad(t, f, 50, "warm-up")
	stores := []*store.Store{c.store(t, c.urls()), c.store(t, c.urls())}
	t.Run("kill follower then leader", func(t *testing.T) { killFollowerThenLeader(t, c, stores, load) })
	t.Run("partition", func(t *testing.T) { partitionLeader(t, c, f, stores, load) })
	load.stop()
	for _, p := range []string{"warm-up", "follower killed", "leader killed", "healing", "partition", "partition healed"} {
		sent, failed, sample := load.counts(p)
		t.Logf("FIGURE http %q: %d requests through the balancer, %d failed %s", p, sent, failed, sample)
		if failed > 0 {
			// The goal is 0; an agent or balancer fault shows here, and is
			// reported, not hidden (docs/reliability.md).
			t.Logf("requests failed through the balancer during %q: %d of %d (first: %s)", p, failed, sent, sample)
		}
	}
}

func killFollowerThenLeader(t *testing.T, c *dockerCluster, stores []*store.Store, load *httpLoad) {
	n := pick(1000, 10000)
	began := time.Now()
	pl := startPublishers(t, stores, "r"+c.id+"k", 8, n, 3*time.Minute)
	pl.waitAcked(t, int64(n/5), 2*time.Minute)

	leader := mustLeader(t, c, 0, 1, 2)
	follower := (leader + 1) % 3
	load.setPhase("follower killed")
	c.kill(t, follower)
	t.Logf("killed follower %s at %d acked", c.servers[follower].name, pl.acked.Load())
	pl.waitAcked(t, int64(2*n/5), 2*time.Minute)
	c.start(t, follower)
	c.waitHealthy(t, follower, 2*time.Minute)
	c.waitCurrent(t, events.EventsStream, false, 2*time.Minute)
	t.Logf("%s back and current at %d acked", c.servers[follower].name, pl.acked.Load())

	load.setPhase("leader killed")
	leader = mustLeader(t, c, 0, 1, 2)
	c.kill(t, leader)
	killed := time.Now()
	t.Logf("killed stream leader %s at %d acked", c.servers[leader].name, pl.acked.Load())
	others := without(leader)
	c.waitLeaderOtherThan(t, leader)
	t.Logf("new stream leader %s after %s", c.servers[mustLeader(t, c, others...)].name, time.Since(killed).Round(time.Millisecond))
	pl.waitAcked(t, int64(4*n/5), 2*time.Minute)
	load.setPhase("healing")
	c.start(t, leader)
	pl.stopAndWait()
	t.Logf("publishing done after %s: %s", time.Since(began).Round(time.Millisecond), pl.summary())
	c.waitHealthy(t, leader, 2*time.Minute)

	got := c.checkSame(t, events.EventsStream)
	tl := pl.check(got)
	t.Logf("FIGURE cluster kill: %s", tl)
	if tl.lost != 0 || tl.duplicated != 0 || tl.unacked != 0 || tl.acked < n || tl.stored != tl.acked {
		t.Errorf("after the kills: %s; want at least %d acked, each stored once", tl, n)
	}
}

func partitionLeader(t *testing.T, c *dockerCluster, f *fleet, stores []*store.Store, load *httpLoad) {
	n := pick(500, 5000)
	scope, err := events.ParseScope(f.scope)
	if err != nil {
		t.Fatal(err)
	}
	headBefore := scopeHead(t, stores[0], scope)
	pl := startPublishers(t, stores, "r"+c.id+"p", 8, n, 3*time.Minute)
	pl.waitAcked(t, int64(n/4), 2*time.Minute)

	minority := mustLeader(t, c, 0, 1, 2)
	others := without(minority)
	load.setPhase("partition")
	c.disconnect(t, minority)
	cut := time.Now()
	t.Logf("cut %s (the stream leader) off the network at %d acked", c.servers[minority].name, pl.acked.Load())

	// A client on the minority's side: the CLI inside its container,
	// connected over loopback.
	inside := []string{"HOIST_NATS_URL=nats://127.0.0.1:4222", "HOIST_NATS_USER=" + c.user, "HOIST_NATS_PASSWORD=" + c.pass}
	first := c.exec(t, minority, 2*time.Minute, inside, "scale", f.scope, "3")
	t.Logf("FIGURE minority publish right after the cut: %s", first)
	c.waitLeaderOtherThan(t, minority)
	t.Logf("majority elected %s after %s", c.servers[mustLeader(t, c, others...)].name, time.Since(cut).Round(time.Millisecond))
	if first.code != 1 || !strings.Contains(first.stderr, "quorum") {
		t.Errorf("a publish on the minority side should fail (exit 1) and name the lost quorum: %s", first)
	}
	// Once the minority knows it has no leader (NATS's Raft takes about
	// 10 s after the cut), a publish there is refused at once.
	var refused result
	natstest.Eventually(t, time.Minute, func() error {
		refused = c.exec(t, minority, 2*time.Minute, inside, "scale", f.scope, "3")
		if refused.code != 1 || !strings.Contains(refused.stderr, store.ErrNoQuorum.Error()) || refused.took > 3*time.Second {
			return fmt.Errorf("not refused at once as having no quorum: %s", refused)
		}
		return nil
	})
	t.Logf("FIGURE minority publish %s after the cut: %s", time.Since(cut).Round(time.Second), refused)

	pl.waitAcked(t, int64(3*n/4), 2*time.Minute)
	load.setPhase("partition healed")
	c.connect(t, minority)
	pl.stopAndWait()
	t.Logf("publishing done: %s", pl.summary())
	c.waitHealthy(t, minority, 2*time.Minute)

	got := c.checkSame(t, events.EventsStream)
	tl := pl.check(got)
	t.Logf("FIGURE cluster partition: %s", tl)
	if tl.lost != 0 || tl.duplicated != 0 || tl.unacked != 0 || tl.acked < n || tl.stored != tl.acked {
		t.Errorf("after the partition: %s; want at least %d acked, each stored once", tl, n)
	}
	if after := scopeHead(t, stores[0], scope); after != headBefore {
		t.Errorf("the minority's publish changed %s: head %+v, was %+v", scope, after, headBefore)
	}
}

// checkSame waits for the stream to settle on every server, then reads
// each server's replica and wants them identical: the same last sequence
// and the same messages. It returns the messages.
func (c *dockerCluster) checkSame(t *testing.T, stream string) []stored {
	t.Helper()
	// Once, on a loaded machine, a server that was never cut off left the
	// stream out of its /jsz for over 2 minutes after the heal (cause not
	// found; the same run passes in 40 s on a quiet machine).
	c.waitCurrent(t, stream, true, 4*time.Minute)
	v, err := c.stream(0, stream)
	if err != nil {
		t.Fatal(err)
	}
	var want []stored
	for i, s := range c.servers {
		var got []stored
		natstest.Eventually(t, 30*time.Second, func() error {
			got, err = c.replicaContents(i, stream, v.State.LastSeq)
			return err
		})
		if uint64(len(got)) != v.State.Msgs {
			t.Errorf("%s holds %d messages of %s, its /jsz says %d", s.name, len(got), stream, v.State.Msgs)
		}
		if i == 0 {
			want = got
			continue
		}
		if len(got) != len(want) {
			t.Errorf("%s holds %d messages of %s, %s holds %d", s.name, len(got), stream, c.servers[0].name, len(want))
			continue
		}
		for k := range got {
			if got[k] != want[k] {
				t.Errorf("%s and %s diverge at sequence %d: %+v vs %+v", s.name, c.servers[0].name, want[k].seq, got[k], want[k])
				break
			}
		}
	}
	t.Logf("every server holds %d messages of %s, last sequence %d, identical", v.State.Msgs, stream, v.State.LastSeq)
	return want
}

// waitLeaderOtherThan waits until the servers other than old see a stream
// leader that is not old.
func (c *dockerCluster) waitLeaderOtherThan(t *testing.T, old int) {
	t.Helper()
	natstest.Eventually(t, time.Minute, func() error {
		l, err := c.leader(events.EventsStream, without(old)...)
		if err == nil && l == old {
			return fmt.Errorf("the others still see %s as the stream leader", c.servers[old].name)
		}
		return err
	})
}

func mustLeader(t *testing.T, c *dockerCluster, ask ...int) int {
	t.Helper()
	var l int
	natstest.Eventually(t, time.Minute, func() error {
		var err error
		l, err = c.leader(events.EventsStream, ask...)
		return err
	})
	return l
}

// without is the servers other than i.
func without(i int) []int {
	var out []int
	for j := range 3 {
		if j != i {
			out = append(out, j)
		}
	}
	return out
}

func scopeHead(t *testing.T, st *store.Store, scope events.Scope) events.Head {
	t.Helper()
	var h events.Head
	natstest.Eventually(t, time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		h, err = st.ScopeHead(ctx, scope)
		return err
	})
	return h
}
