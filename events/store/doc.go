// Package store keeps hoist's events on NATS JetStream: it sets up the
// streams, appends events conditionally and idempotently, reads histories
// and reports back, and follows the log for its readers.
//
// It is the only reader of the log: everything else asks it for
// events.Records, and never builds consumers or parses subjects itself.
// What the events mean is package events; this package only knows how they
// are kept. It hands out no raw connection or JetStream context: a caller
// that needs one has the *nats.Conn it opened the store with.
package store
