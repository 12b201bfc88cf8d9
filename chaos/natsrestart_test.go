package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// TestNATSRestartUnderPublishLoad restarts a NATS server (fsync before
// ack, as hoist server runs) again and again while eight publishers append
// with store.Store.Append and resend what was not acked with the same
// id. Every acked event must be stored once, at the revision its publisher
// was told. nodeagent.TestNATSRestart covers the agent's side of a restart.
func TestNATSRestartUnderPublishLoad(t *testing.T) {
	needHoist(t)
	n, restarts := pick(1000, 10000), pick(3, 20)
	srv := natstest.StartSyncAlways(t)
	stores := []*store.Store{srv.Store(t), srv.Store(t)}
	pl := startPublishers(t, stores, "restart", 8, n, 2*time.Minute)
	for k := 1; k <= restarts; k++ {
		pl.waitAcked(t, int64(k*n/(restarts+1)), 2*time.Minute)
		began := time.Now()
		srv.Restart()
		t.Logf("restart %d at %d acked took %s", k, pl.acked.Load(), time.Since(began).Round(time.Millisecond))
	}
	pl.stopAndWait()
	t.Logf("publishing done: %s", pl.summary())

	nc := srv.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, events.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := readStream(nc, events.EventsStream, st.CachedInfo().State.LastSeq)
	if err != nil {
		t.Fatal(err)
	}
	tl := pl.check(msgs)
	t.Logf("FIGURE nats restart: %d restarts, %s", restarts, tl)
	if tl.lost != 0 || tl.duplicated != 0 || tl.unacked != 0 || tl.acked < n || tl.stored != tl.acked {
		t.Errorf("after %d restarts: %s; want at least %d acked, each stored once", restarts, tl, n)
	}
}
