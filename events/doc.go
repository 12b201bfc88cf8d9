// Package events is hoist's domain core: the event kinds and their envelope,
// scopes and subject names, the versioned JSON codec, validation, and the
// records and reports a reader gets back from the log.
//
// Every change to what should run is an Event appended to a scope's history.
// Nothing is updated in place: desired state is the fold of a scope's events
// (see package projector). This package names what happened; how it is kept
// is package events/store (JetStream), and the embedded server is package
// events/natsd. It must never import either, nor any NATS package: the folds
// and the planners that build on it stay pure (internal/layering tests it).
//
// Validation lives here so that every edge (CLI, wire, HTTP) rejects the same
// bad input with the same message before anything is published.
package events
