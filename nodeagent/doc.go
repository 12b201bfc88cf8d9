// Package nodeagent is hoist's node agent: the daemon that runs on every
// node, folds its scopes' events into desired state and reconciles the
// node's replicas toward it.
//
// How it works:
//
//   - The feed reads each scope's history and the node's own with one
//     ephemeral push consumer each (store.Store.Follow), starting right
//     after the last message the reference file holds, and only where the
//     stream still holds that message: a server restored from an older
//     copy makes the agent set the file aside and rebuild from the stream.
//     Each message is numbered and judged by an events.Reader, folded
//     (package projector), and written to the reference file before any
//     worker acts on it.
//   - One worker goroutine per scope calls the deploy.Reconciler whenever
//     the scope's desired state changes, when the runtime reports drift,
//     and on a periodic resync. A new revision cancels a reconcile in
//     flight (the rollout takes back its unproven replicas). A replica is
//     stopped only once the backend set without it is acknowledged.
//   - A reporter publishes the node's status as a heartbeat and on every
//     change, and each scope's backends.
//   - The keeper does the node's part for sealed secrets (secrets.go): it
//     announces the node's key, makes a granted scope's first key, hands
//     it to newly granted nodes and rotates it.
//   - An HAProxy agent-check listener answers from the same state.
//
// What it must never do:
//
//   - Act on desired state it could not read. A scope is reconciled only
//     once its history was read to the end of the stream at least once, or
//     came from a valid reference file. When neither is possible (NATS down
//     and no reference file), running replicas are left alone and the
//     error is reported.
//   - Apply a message twice or miss one across restarts: the reference
//     file's heads say where each history resumes.
//   - Stop on a bad message: one that is rejected or cannot be folded
//     holds its revision, is reported (log and status), and is never
//     applied.
//   - Touch replicas that do not carry its labels (package deploy enforces
//     this), or replicas of a scope dropped from node.toml: those are left
//     running and logged.
//
// Ownership and shutdown: Open starts every goroutine the agent needs, each
// owned by a lifecycle.Group (the agent's, each worker's, each reading
// session's), and Close stops them and waits for them all, at most a
// minute per owner: one that does not end is named in Close's error.
// Replicas keep running.
package nodeagent
