package chaos

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hoist-dev/hoist/events"
)

// stored is one message as a server holds it.
type stored struct {
	seq     uint64
	subject string
	digest  [32]byte
	id      string // the event's id, "" if the body is not an event
}

// replicaContents reads every message of stream 1..last from server i's
// own replica: a direct get from a client connected to that server alone
// is answered by the local replica (queue subscribers on the server that
// received the request are preferred, and only current replicas
// subscribe), in batches (nats-server ≥ 2.11).
func (c *dockerCluster) replicaContents(i int, stream string, last uint64) ([]stored, error) {
	nc, err := nats.Connect(c.url(i), nats.UserInfo(c.user, c.pass), nats.NoReconnect(), nats.IgnoreDiscoveredServers(),
		nats.Timeout(3*time.Second))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.servers[i].name, err)
	}
	defer nc.Close()
	out, err := readStream(nc, stream, last)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.servers[i].name, err)
	}
	return out, nil
}

// readStream reads messages 1..last of stream with batched direct gets.
func readStream(nc *nats.Conn, stream string, last uint64) ([]stored, error) {
	const batch = 500
	out := make([]stored, 0, last)
	for from := uint64(1); from <= last; {
		msgs, err := directBatch(nc, stream, from, batch)
		if err != nil {
			return nil, fmt.Errorf("direct get from %d: %w", from, err)
		}
		if len(msgs) == 0 {
			return nil, fmt.Errorf("direct get from %d: no messages, want up to %d", from, last)
		}
		for _, m := range msgs {
			if m.seq > last {
				return out, nil
			}
			out = append(out, m)
			from = m.seq + 1
		}
	}
	return out, nil
}

func directBatch(nc *nats.Conn, stream string, from uint64, n int) ([]stored, error) {
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	req, _ := json.Marshal(map[string]any{"seq": from, "batch": n})
	if err := nc.PublishRequest("$JS.API.DIRECT.GET."+stream, inbox, req); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []stored
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("after %d messages: %w", len(out), err)
		}
		if status := m.Header.Get("Status"); status != "" {
			if status == "204" || status == "404" { // end of batch, or nothing from here on
				return out, nil
			}
			return nil, fmt.Errorf("status %s %s", status, m.Header.Get("Description"))
		}
		seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("a message without Nats-Sequence: %v", m.Header)
		}
		s := stored{seq: seq, subject: m.Header.Get("Nats-Subject"), digest: sha256.Sum256(m.Data)}
		if e, err := events.Decode(m.Data); err == nil {
			s.id = e.ID
		}
		out = append(out, s)
	}
}
