// Package events is hoist's domain core: the event kinds and their envelope,
// scopes and subject names, the versioned JSON codec, validation, and the
// event store on NATS JetStream.
//
// Every change to what should run is an Event appended to a scope's history.
// Nothing is updated in place: desired state is the fold of a scope's events
// (see package projector). This package must never import another hoist
// package, and it never interprets a history beyond what an append needs
// (the head revision).
//
// Validation lives here so that every edge (CLI, wire, HTTP) rejects the same
// bad input with the same message before anything is published.
package events
