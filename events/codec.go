package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Decoding errors. Readers skip such events and report them; they never
// apply them and never stop on them.
var (
	ErrMalformed     = errors.New("malformed event")
	ErrUnknownKind   = errors.New("unknown event kind")
	ErrSchemaTooNew  = errors.New("event schema is newer than this build")
	ErrEventTooLarge = errors.New("event is too large")
)

// MaxEventSize bounds an encoded event, well under NATS's default 1 MB
// max payload.
const MaxEventSize = 512 << 10

// envelope is the wire form of an Event.
type envelope struct {
	Schema   int             `json:"schema"`
	ID       string          `json:"id"`
	Kind     Kind            `json:"kind"`
	Scope    string          `json:"scope,omitempty"`
	Node     string          `json:"node,omitempty"`
	Revision uint64          `json:"revision"`
	Time     time.Time       `json:"time"`
	Actor    string          `json:"actor,omitempty"`
	Data     json.RawMessage `json:"data"`
}

// Encode validates e and returns its wire form.
func Encode(e *Event) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return EncodeValidated(e)
}

// EncodeValidated is Encode for an event its caller has just validated
// (the store validates once, before it reads the head, not on every retry).
// An empty Kind is written as the data's; e itself is not changed.
func EncodeValidated(e *Event) ([]byte, error) {
	if e.Kind == "" {
		withKind := *e
		withKind.Kind = e.Data.Kind()
		e = &withKind
	}
	data, err := json.Marshal(e.Data)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", e.Kind, err)
	}
	schema := e.Schema
	if schema == 0 {
		schema = SchemaVersion
	}
	b, ok := appendEnvelope(make([]byte, 0, len(data)+192), e, schema, data)
	if !ok {
		if b, err = encodeGeneral(e, schema, data); err != nil {
			return nil, err
		}
	}
	if len(b) > MaxEventSize {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrEventTooLarge, len(b), MaxEventSize)
	}
	return b, nil
}

// encodeGeneral writes the envelope with encoding/json: the reference for
// appendEnvelope, and its fallback.
func encodeGeneral(e *Event, schema int, data []byte) ([]byte, error) {
	b, err := json.Marshal(envelope{
		Schema:   schema,
		ID:       e.ID,
		Kind:     e.Kind,
		Scope:    e.Scope.String(),
		Node:     e.Node,
		Revision: e.Revision,
		Time:     e.Time.UTC(),
		Actor:    e.Actor,
		Data:     data,
	})
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", e.Kind, err)
	}
	return b, nil
}

// Decode parses and validates an event. On ErrUnknownKind and ErrSchemaTooNew
// the returned event still carries the envelope (kind, scope, revision), so
// the caller can say what it skipped.
func Decode(b []byte) (*Event, error) {
	if len(b) > MaxEventSize {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrEventTooLarge, len(b), MaxEventSize)
	}
	if e, ok := decodeCanonical(b); ok {
		return e, nil
	}
	return decodeGeneral(b)
}

// decodeGeneral is Decode for any input: it reads every JSON layout and
// returns the precise error.
func decodeGeneral(b []byte) (*Event, error) {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	e := &Event{
		Schema:   env.Schema,
		ID:       env.ID,
		Kind:     env.Kind,
		Node:     env.Node,
		Revision: env.Revision,
		Time:     env.Time,
		Actor:    env.Actor,
	}
	if env.Scope != "" {
		sc, err := ParseScope(env.Scope)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		e.Scope = sc
	}
	switch {
	case env.Schema < 1:
		return e, fmt.Errorf("%w: schema %d", ErrMalformed, env.Schema)
	case env.Schema > SchemaVersion:
		return e, fmt.Errorf("%w: schema %d, this build reads up to %d", ErrSchemaTooNew, env.Schema, SchemaVersion)
	}
	p := newPayload(env.Kind)
	if p == nil {
		return e, fmt.Errorf("%w: %q", ErrUnknownKind, env.Kind)
	}
	if len(env.Data) == 0 || bytes.Equal(env.Data, []byte("null")) {
		return e, fmt.Errorf("%w: %s event has no data", ErrMalformed, env.Kind)
	}
	dec := json.NewDecoder(bytes.NewReader(env.Data))
	if err := dec.Decode(p); err != nil {
		return e, fmt.Errorf("%w: %s data: %v", ErrMalformed, env.Kind, err)
	}
	e.Data = p
	if env.ID == "" {
		return e, fmt.Errorf("%w: id is missing", ErrMalformed)
	}
	if err := e.Validate(); err != nil {
		return e, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return e, nil
}
