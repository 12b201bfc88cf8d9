package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/backoff"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Every read of a stream goes through an ephemeral push consumer with one
// filter subject, delivered to the client's own inbox. That is what lets a
// permission confine a reader: the filter is part of the consumer-create
// API subject, and no reader needs to pull from (or even name) another
// client's consumer.

const (
	readHeartbeat = 2 * time.Second
	// consumerIdle is how long the server keeps a consumer nobody listens
	// to: readers are not allowed to delete consumers.
	consumerIdle = 10 * time.Second
)

// errBroken ends a consumer that lost messages, heartbeats or itself: the
// caller goes on from the last message it handled.
var errBroken = errors.New("stream consumer broke off")

// readSpec says what to read.
type readSpec struct {
	stream string
	filter string
	// from is the first stream sequence wanted; 0 reads from the start.
	from uint64
	// lastPerSubject reads only the latest message of each subject (until
	// caught up; after a break, everything from where it stopped).
	lastPerSubject bool
	// headersOnly delivers no bodies: enough to count and number.
	headersOnly bool
}

// consume runs one push consumer for spec and hands its messages to fn in
// order. caughtUp, when not nil, is called once the messages present at the
// start have been handed over (at once for none). It returns the sequence
// of the last message handed over (0 for none) and why it stopped: nil when
// fn returned false, ctx's error, or an error wrapping errBroken.
func (s *Store) consume(ctx context.Context, spec readSpec, fn func(events.Message) bool, caughtUp func()) (uint64, error) {
	name := nuid.Next()
	cfg := jetstream.ConsumerConfig{
		Name:              name,
		DeliverSubject:    s.nc.NewInbox(),
		FilterSubject:     spec.filter,
		AckPolicy:         jetstream.AckNonePolicy,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		FlowControl:       true,
		IdleHeartbeat:     readHeartbeat,
		HeadersOnly:       spec.headersOnly,
		MemoryStorage:     true,
		InactiveThreshold: consumerIdle,
		Replicas:          1,
	}
	switch {
	case spec.lastPerSubject:
		cfg.DeliverPolicy = jetstream.DeliverLastPerSubjectPolicy
	case spec.from > 1:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, spec.from
	}
	api := "$JS.API.CONSUMER.CREATE." + spec.stream + "." + name + "." + spec.filter
	cctx, release := s.denials.guard(ctx, api, cfg.DeliverSubject)
	defer release()
	tctx, cancel := context.WithTimeout(cctx, requestTimeout)
	pc, err := s.js.CreatePushConsumer(tctx, spec.stream, cfg)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", spec.filter, unanswered(noQuorum(denied(cctx, err))))
	}
	pending := pc.CachedInfo().NumPending

	// The consumer's messages are read from a subscription of our own,
	// not nats.go's push Consume: that one takes any message with a Status
	// header for a control message and drops it, and a publisher can set
	// such a header. What the server delivers from the stream carries a
	// $JS.ACK reply subject; control messages (heartbeats, flow control)
	// come without one.
	// The handler only queues: what waits in the subscription is bounded
	// by flow control, not a client limit (dropping a message would only
	// make the read start over).
	msgs := make(chan *nats.Msg, 1024)
	sub, err := s.nc.Subscribe(cfg.DeliverSubject, func(m *nats.Msg) {
		select {
		case msgs <- m:
		case <-cctx.Done():
		}
	})
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", spec.filter, denied(cctx, err))
	}
	defer sub.Unsubscribe()
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return 0, fmt.Errorf("read %s: %w", spec.filter, err)
	}

	// Only HOIST_EVENTS keeps every message: there the count taken when
	// the consumer was made says when the read is done (see readPast).
	appendOnly := spec.stream == events.EventsStream && !spec.lastPerSubject
	var (
		last      uint64
		delivered uint64
		heard     = time.Now()
		watch     = time.NewTicker(readHeartbeat)
	)
	defer watch.Stop()
	if pending == 0 && caughtUp != nil {
		caughtUp()
		caughtUp = nil
	}
	for {
		var m *nats.Msg
		select {
		case <-cctx.Done():
			if err := denied(cctx, nil); err != nil {
				return last, fmt.Errorf("read %s: %w", spec.filter, err)
			}
			return last, ctx.Err()
		case <-watch.C:
			// Heartbeats come every readHeartbeat when nothing else does.
			if time.Since(heard) > 3*readHeartbeat {
				return last, fmt.Errorf("read %s: %w: no heartbeat for %s", spec.filter, errBroken, time.Since(heard).Round(time.Second))
			}
			// Messages that aged out before they were delivered leave the
			// count short for good: an idle read asks where the end is.
			if caughtUp != nil && !appendOnly && len(msgs) == 0 && s.readPast(cctx, spec, last) {
				caughtUp()
				caughtUp = nil
			}
			continue
		case m = <-msgs:
			heard = time.Now()
		}
		if !strings.HasPrefix(m.Reply, "$JS.ACK.") {
			if err := control(m); err != nil {
				return last, fmt.Errorf("read %s: %w: %w", spec.filter, errBroken, err)
			}
			continue
		}
		meta, err := m.Metadata()
		if err != nil {
			return last, fmt.Errorf("read %s: %w: %w", spec.filter, errBroken, err)
		}
		if meta.Sequence.Consumer != delivered+1 { // a message was lost on the way
			return last, fmt.Errorf("read %s: %w: delivery %d after %d", spec.filter, errBroken, meta.Sequence.Consumer, delivered)
		}
		delivered++
		msg := events.Message{Stream: spec.stream, Subject: m.Subject, Sequence: meta.Sequence.Stream, Time: meta.Timestamp, Data: m.Data,
			Copy: isCopy(m.Header)}
		if spec.headersOnly {
			msg.Data = nil
		}
		last = msg.Sequence
		if !fn(msg) {
			return last, nil
		}
		if caughtUp != nil && delivered >= pending && (appendOnly || len(msgs) == 0 && s.readPast(cctx, spec, last)) {
			caughtUp()
			caughtUp = nil
		}
	}
}

// readPast reports whether a read of a stream that removes messages, which
// handed over the messages up to sequence last, has seen every subject
// that was there when it started.
//
// In the streams other than HOIST_EVENTS a newer message of a subject
// removes an older one: a read skips a message superseded while it ran
// and meets the newer one only after the count taken at the start, and a
// last-per-subject read does the same. The read is done once the filter's
// last message, asked for now, is one it has handed over: every message
// stored up to it was either handed over or removed for a newer one no
// later than it. (The pending count in each delivery's metadata cannot
// tell: it can read 0 while messages are still to come.)
func (s *Store) readPast(ctx context.Context, spec readSpec, last uint64) bool {
	m, ok, err := s.directLast(ctx, spec.stream, spec.filter)
	if err != nil {
		s.log.Debug("cannot read the end of the stream; reading on", "filter", spec.filter, "err", err)
		return false
	}
	return !ok || m.Sequence <= last
}

// control handles a control message of a push consumer: it answers flow
// control, and says when the consumer is gone.
func control(m *nats.Msg) error {
	switch m.Header.Get("Status") {
	case "100":
		if m.Reply != "" { // flow control asks for an answer; heartbeats do not
			return m.Respond(nil)
		}
		return nil
	case "409":
		return fmt.Errorf("%s", m.Header.Get("Description"))
	}
	return nil
}

// isCopy reports whether a stored message is a copy of another one: a
// direct-get reply carries the original's stream and sequence, and a
// client may name any subject as the reply to its request, so the server
// itself can be made to store such a copy on a subject the client may not
// publish to.
func isCopy(h nats.Header) bool {
	return h.Get(jetstream.StreamHeader) != "" || h.Get(jetstream.SequenceHeader) != ""
}

// read hands fn the messages of spec present when it starts, in order,
// resuming after a consumer breaks off (up to 5 times, after a short pause:
// a consumer breaks when its server restarts, and an immediate retry would
// only meet the same server again). It returns the sequence of the last
// message handed over.
func (s *Store) read(ctx context.Context, spec readSpec, fn func(events.Message) bool) (uint64, error) {
	var last uint64
	pause := backoff.New(50*time.Millisecond, time.Second)
	for attempt := 0; ; attempt++ {
		done := false
		rctx, cancel := context.WithCancel(ctx)
		got, err := s.consume(rctx, spec, fn, func() { done = true; cancel() })
		cancel()
		last = max(last, got)
		switch {
		case done:
			return last, nil
		case err == nil: // fn stopped it
			return last, nil
		case !errors.Is(err, errBroken) || attempt >= 5:
			return last, err
		}
		s.log.Debug("stream read broke off; resuming", "filter", spec.filter, "after", last, "err", err)
		if last > 0 {
			spec.from, spec.lastPerSubject = last+1, false
		}
		if !pause.Wait(ctx) {
			return last, ctx.Err()
		}
	}
}

// follow hands fn every message of stream matching filter from sequence
// from on (0: from the start; lastPerSubject: the latest of each subject,
// then everything new), or right after the message after names, in order,
// until ctx ends. A consumer that breaks off (a server restart, a lost
// message) is recreated at the last message handed over. In HOIST_EVENTS,
// which never removes a message, that message must still be there: a
// stream restored from an older copy meanwhile ends the read with a
// *DivergedError rather than going on from a sequence that now means
// something else. caughtUp, when not nil, is called once, when the
// messages present at the start have been handed over.
func (s *Store) follow(ctx context.Context, spec readSpec, after events.Mark, fn func(events.Message), caughtUp func()) error {
	pause := backoff.New(250*time.Millisecond, 5*time.Second)
	var lastData []byte // the body of the message at after, once handed over here
	for {
		// Only HOIST_EVENTS keeps every message; in the others the message
		// at after may be gone for a newer one of its subject.
		verify, at := after.Sequence > 0 && spec.stream == events.EventsStream, after.Sequence
		switch {
		case verify:
			spec.from, spec.lastPerSubject = after.Sequence, false
		case after.Sequence > 0:
			spec.from, spec.lastPerSubject = after.Sequence+1, false
		}
		var diverged *DivergedError
		cctx, cancel := context.WithCancel(ctx)
		_, err := s.consume(cctx, spec, func(m events.Message) bool {
			if verify {
				verify = false
				same := m.Sequence == after.Sequence
				switch {
				case same && lastData != nil:
					same = bytes.Equal(m.Data, lastData)
				case same && after.Digest != "":
					same = events.Digest(m.Data) == after.Digest
				}
				if !same {
					got := events.Mark{Sequence: m.Sequence, Digest: events.Digest(m.Data)}
					diverged = &DivergedError{Stream: spec.stream, Filter: spec.filter, Want: after, Got: got}
					return false
				}
				return true // handed over before
			}
			fn(m)
			after, lastData = events.Mark{Sequence: m.Sequence}, m.Data
			return true
		}, func() {
			if verify { // the stream ends before the message it must hold
				diverged = &DivergedError{Stream: spec.stream, Filter: spec.filter, Want: after}
				cancel()
				return
			}
			if caughtUp != nil {
				caughtUp()
				caughtUp = nil
			}
		})
		cancel()
		switch {
		case diverged != nil:
			return diverged
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrPermission):
			return err
		}
		if after.Sequence > at {
			pause.Reset() // it got somewhere: no reason to wait long
		}
		s.log.Debug("stream consumer broke off; recreating it", "filter", spec.filter, "at", after.Sequence, "err", err)
		if !pause.Wait(ctx) {
			return ctx.Err()
		}
	}
}

// directLast reads the last message of stream matching filter through the
// direct-get API, whose subject carries the filter (so a permission can pin
// it). ok is false when there is none.
func (s *Store) directLast(ctx context.Context, stream, filter string) (events.Message, bool, error) {
	subj := "$JS.API.DIRECT.GET." + stream + "." + filter
	gctx, release := s.denials.guard(ctx, subj)
	defer release()
	tctx, cancel := context.WithTimeout(gctx, requestTimeout)
	defer cancel()
	resp, err := s.nc.RequestWithContext(tctx, subj, nil)
	if err != nil {
		return events.Message{}, false, fmt.Errorf("read last of %s: %w", filter, denied(gctx, err))
	}
	// The reply holds the stored message's own headers first and the
	// server's after them: a publisher may have set any of those names, so
	// only the last value of each is the server's. A found message always
	// has the server's sequence; a stored Status header must not pass for
	// the server's "not found".
	server := func(key string) string {
		v := resp.Header.Values(key)
		if len(v) == 0 {
			return ""
		}
		return v[len(v)-1]
	}
	seq, err := strconv.ParseUint(server(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		if status := server("Status"); status == "404" {
			return events.Message{}, false, nil
		} else if status != "" {
			return events.Message{}, false, fmt.Errorf("read last of %s: %s %s", filter, status, server("Description"))
		}
		return events.Message{}, false, fmt.Errorf("read last of %s: no sequence in the reply", filter)
	}
	t, _ := time.Parse(time.RFC3339Nano, server(jetstream.TimeStampHeaer))
	return events.Message{Stream: stream, Subject: server(jetstream.SubjectHeader), Sequence: seq, Time: t, Data: resp.Data}, true, nil
}

// count returns how many messages of stream match filter, from the
// consumer-create reply (the filter is in its API subject, as for reads).
func (s *Store) count(ctx context.Context, stream, filter string) (uint64, error) {
	name := nuid.Next()
	api := "$JS.API.CONSUMER.CREATE." + stream + "." + name + "." + filter
	gctx, release := s.denials.guard(ctx, api)
	defer release()
	tctx, cancel := context.WithTimeout(gctx, requestTimeout)
	defer cancel()
	c, err := s.js.CreateConsumer(tctx, stream, jetstream.ConsumerConfig{
		Name: name, FilterSubject: filter, AckPolicy: jetstream.AckNonePolicy,
		MemoryStorage: true, InactiveThreshold: time.Second, Replicas: 1,
	})
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", filter, denied(gctx, err))
	}
	return c.CachedInfo().NumPending, nil
}
