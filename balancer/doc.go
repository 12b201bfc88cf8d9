// Package balancer is hoist's HTTP and WebSocket reverse proxy. It folds
// the event streams into a weight table and routes each request by its Host
// header to a backend of the matching scope, weighted by score.
//
// # Inputs
//
// Three stream readers (store.Store.Follow, one goroutine each, owned by
// the feed) read from the start, then follow live. The balancer reads no
// config event: those carry env values, and its credential may read only
// hoist.backends.>, hoist.score.> and hoist.node.>.
//
//   - HOIST_BACKENDS: backends reports (hoist.backends.<scope>.<node>). The
//     latest accepted report per (scope, node) is that node's truth.
//   - HOIST_SCORES: backend scores (hoist.score.<scope>.<backend>). The
//     latest accepted score per backend wins, by stream sequence, and its
//     age is the time the server stored it, never the date in its body.
//   - HOIST_EVENTS, node events only (hoist.node.>): drains and undrains,
//     numbered by one events.Reader as every other reader numbers them. The
//     latest accepted one per node wins.
//
// What a message means is decided by events.Interpret (and the Reader for
// node histories), never here. A message it rejects (garbage, a body that
// disagrees with its subject, a date past events.MaxClockSkew after it was
// stored) is counted, logged with its subject, sequence and reason, and
// changes nothing; it never stops the feed.
//
// The score and backends readers read every kept message, not only the
// latest of each subject: those streams keep a short bounded history per
// subject, so reading all of it is cheap, and it is the only choice under
// which a freshly started balancer builds the same table as one that ran
// throughout. If the last message on a subject is rejected, a running
// balancer keeps the previous accepted value, and so does a reader of the
// whole history, while a last-per-subject reader would see only the
// rejected message and lose the value.
//
// # Hosts and removal
//
// A scope's hosts, health path, cache policy and removal come with the
// backends reports: each agent reports what the revision it applied says.
// The reports at the highest Revision among the scope's nodes decide, so a
// node still catching up cannot roll a route back; their hosts are
// unioned, and the scope is removed when every one of them says so. Static
// backends (hoist announce) report revision 0: their hosts count only
// while no agent reports the scope. Backends are the union over every
// node's latest report, whatever its revision. A removed scope keeps its
// hosts with no backends, so its clients get 503 and Retry-After, not 404.
// A report with no backends, no hosts and no removal withdraws its node
// from the scope.
//
// # The table
//
// One goroutine (the builder) owns the folded state. After catch-up, and
// after each batch of live messages, it builds a new immutable *Table and
// swaps it in with an atomic pointer, so a change applies to the next
// request and the hot path takes no lock to read it. A Table's content is a
// pure function of the folded state (and, with a score max age, the time),
// rendered canonically by String and hashed by Digest, so balancers fed the
// same events hold tables with equal digests.
//
// # Weighting: smooth weighted round-robin
//
// Weight is the backend's score (0–100); unscored backends get the default
// score, stale scores (older than ScoreMaxAge) fall back to it, and backends
// of drained nodes get 0. Picks use smooth weighted round-robin (nginx's
// algorithm): every pick adds each eligible backend's weight to its
// "current" value, takes the backend with the highest current, and
// subtracts the total weight from it. We chose it over EDF and weighted P2C
// because:
//
//   - it is exact: in every run of W picks (W = total weight) each backend
//     gets exactly its weight, so 100k picks match the score shares to within
//     a few picks, not within a random error as with P2C;
//   - it is smooth: a 3:1 split interleaves (a a b a a a b a …) instead of
//     sending bursts to one backend;
//   - its whole state is one integer per backend, which lives outside the
//     immutable table (keyed by scope and address), so a weight change or a
//     new backend leaves every other backend's state untouched;
//   - weight 0 is simply never eligible, so score 0 stops new requests while
//     in-flight ones (and open WebSockets) finish on their own.
//
// Its cost is O(n) per pick under a per-scope mutex, n being the scope's
// backends (replicas, usually a handful). EDF is O(log n) but needs a heap
// rebuilt on each weight change; P2C with in-flight counts adapts to slow
// backends but is only proportional on average.
//
// # Health
//
// A connection error or timeout marks a backend dead for DeadTTL (passive
// health); it is skipped by picks until the mark expires. Optionally 5xx
// responses do the same, and active checks probe each scope's health path.
// An idempotent request (GET, HEAD, OPTIONS, or any bodiless request except
// POST and PATCH) that fails to reach its backend is retried once on
// another; POST and PATCH are never replayed.
//
// # Shutdown and restarts
//
// Close drains (drain.go): it stops accepting, asks keep-alive clients to
// close with "Connection: close", lets in-flight requests finish within
// ShutdownTimeout and then cuts the rest. A restart loses no connection
// when the listening socket outlives the process: passed by systemd
// (ActivatedListeners) or lent by the running balancer to the next one
// (HandoffSocket, TakeOver; handoff.go). With ReusePort two processes bind
// the port, which Linux serves from two queues; a closing one resets its
// queue unless net.ipv4.tcp_migrate_req=1. A balancer whose socket is
// shared or passed accepts only once its first table is in use.
//
// # What it must never do
//
// It never writes to the streams, never reads a config event, never
// decodes a body or parses a subject itself, never applies a message that
// was rejected, and never drops an established WebSocket because a weight
// or membership changed. Every goroutine it starts (feed, builder, cache
// sweeper, active checker, listeners, handoff socket) is owned by the Balancer and stopped
// and waited for by Close.
package balancer
