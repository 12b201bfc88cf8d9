// Package nodeagent is hoist's node agent: the daemon that runs on every
// node, folds its scopes' events into desired state and reconciles the
// node's replicas toward it.
//
// How it works:
//
//   - The agent holds one durable JetStream pull consumer, agent-<node>, on
//     the config events of its scopes and its own node events. The server
//     keeps the consumer's state in memory only: the reference file, not
//     the consumer, says where to resume. Each event is folded (package
//     projector) and written to the reference file before it is acked, so
//     the reference file always holds everything acked.
//     The reference file also records the last stream sequence: a restart
//     resumes right after it, and it wins over the consumer's ack floor.
//   - One worker goroutine per scope calls the deploy.Reconciler whenever
//     the scope's desired state changes, when the runtime reports drift,
//     and on a periodic resync. A new revision cancels a reconcile in
//     flight (the rollout takes back its unproven replicas).
//   - A reporter publishes the node's status as a heartbeat and on every
//     change, and the full set of healthy backends per scope.
//   - An HAProxy agent-check listener answers from the same state.
//
// What it must never do:
//
//   - Act on desired state it could not read. A scope is reconciled only
//     once its history was read to the end of the stream at least once, or
//     came from a valid reference file. When neither is possible (NATS down
//     and no reference file), running replicas are left alone and the
//     error is reported.
//   - Apply an event twice or miss one across restarts: events are
//     deduplicated by stream sequence and by revision.
//   - Stop on a bad event: an event that cannot be decoded or folded is
//     skipped, reported (log and status), acked and never applied.
//   - Touch replicas that do not carry its labels (package deploy enforces
//     this), or replicas of a scope dropped from node.toml: those are left
//     running and logged.
//
// Ownership and shutdown: Run owns every goroutine it starts and returns
// only after they all stopped. Close-by-context: cancel Run's context.
package nodeagent
