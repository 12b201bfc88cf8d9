package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrNoQuorum says JetStream on the server this client reached has no
// leader: the server is cut off from a majority of its cluster, or the
// cluster is electing one. Nothing is stored until a majority is
// reachable again.
var ErrNoQuorum = errors.New("the stream has no quorum")

// jsErrCodeClusterNotAvailable is nats-server's JSClusterNotAvailErr
// ("JetStream system temporarily unavailable"), which a server answers
// once it has known no meta leader for a while. nats.go has no name for it.
const jsErrCodeClusterNotAvailable jetstream.ErrorCode = 10008

// quorumGrace is how long JetStream may answer without a leader before a
// resending publisher gives up: longer than an election (nats-server
// elects within 4-9 s), so a majority that lost a server does not fail
// its clients, while a minority does not keep them until their deadline.
const quorumGrace = 12 * time.Second

// noQuorum wraps err as ErrNoQuorum when the server said it has no
// leader, and returns it unchanged otherwise.
func noQuorum(err error) error {
	var apiErr *jetstream.APIError
	if err == nil || errors.Is(err, ErrNoQuorum) || !errors.As(err, &apiErr) || apiErr.ErrorCode != jsErrCodeClusterNotAvailable {
		return err
	}
	return fmt.Errorf("%w: the NATS server this client reached has no JetStream leader: it is cut off from a majority of its cluster, or the cluster is electing a leader; nothing was stored; retry in a few seconds, or connect to a server on the majority's side (%w)", ErrNoQuorum, err)
}

// unanswered explains a JetStream request that got no answer in time:
// on a cluster, the usual cause is a server on the minority side of a
// partition, which goes on believing in its leaders for about 10 s.
func unanswered(err error) error {
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
		return err
	}
	return fmt.Errorf("%w: JetStream did not answer in time; in a cluster, this server may be cut off from a majority (no quorum) or electing a leader", err)
}
