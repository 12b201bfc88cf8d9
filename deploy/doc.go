// Package deploy turns a scope's desired state into running replicas on one
// node. It observes what the node runs through a Runtime (Docker containers,
// package deploy/docker, or local processes, package deploy/process), plans the difference with the pure function Plan,
// and carries the plan out step by step in a Reconciler: start first, gate
// on health, and only then stop what the new replica replaces.
//
// What deploy must never do:
//
//   - Touch anything it did not start. A runtime lists, stops and removes
//     only replicas labelled hoist.managed=true with its own hoist.node, so
//     several agents (or a human's containers) can share one engine.
//   - Act on desired state it could not read. The caller hands over a
//     Desired it has fully read; a Desired without a spec that is not
//     marked Removed is an error and changes nothing. Deploy never infers
//     "stop everything" from missing information.
//   - Trade serving replicas for unproven ones. A replacement must pass its
//     health check before the replica it replaces is stopped; when it does
//     not, the rollout stops, the new replica goes, and the old ones keep
//     serving.
//   - Retry a failed spec in a hot loop. A failure is remembered per scope,
//     revision and spec hash and retried only for a new revision or after a
//     backoff.
//
// deploy imports events for its types only; it knows nothing about NATS,
// folds (package projector) or the CLI, and it does not link the Docker
// SDK: the runtimes are subpackages that the agent picks from (the test in
// internal/layering keeps it so).
//
// Concurrency: a Reconciler may reconcile different scopes at once, but the
// caller must not reconcile the same scope concurrently. Runtimes are safe
// for concurrent use. Runtime.Watch streams hints ("replica 3 died") whose
// only meaning is "reconcile soon"; when the consumer falls behind, hints
// are dropped rather than queued, because one pending hint already triggers
// a full reconcile.
package deploy
