// Package change decides the events that change a scope, from the scope's
// folded history, and appends them on the head they were decided on. The
// CLI (deploy, scale, env, rollback, remove, secret) and the HTTP API both
// publish through it, so both refuse the same input with the same words.
//
// A Builder looks at the fold and returns the payload to publish, or a
// *Refusal (bad input: nothing is published; errors.Is(err,
// events.ErrInvalid) holds). Publish reads the history, runs the builder,
// validates the event and checks it against the fold, and appends it
// conditionally on the head it read. With an expected revision, a head
// that moved is a *store.ConflictError naming both revisions; without
// one, an append that lost a race is decided again on the new head, a
// bounded number of times.
//
// It must never print, parse flags or know which front end called it.
package change
