// Package balancer is hoist's HTTP and WebSocket reverse proxy. It folds
// the event streams into a weight table and routes each request by its Host
// header to a backend of the matching scope, weighted by score.
//
// # Inputs
//
// Three ordered consumers read the streams from the start, then follow them
// live:
//
//   - HOIST_EVENTS: each scope's config events folded with projector.History
//     (hosts, cache policy, health path, removal), and node drain events.
//   - HOIST_REPORTS: backend announcements (hoist.backends.<scope>.<node>).
//     The latest valid report per (scope, node) is the truth.
//   - HOIST_SCORES: backend scores; the newest valid score per backend wins.
//
// Every consumer uses DeliverAll, including the score and report streams
// where DeliverLastPerSubject would read less. Those streams keep a short
// bounded history per subject, so reading all of it is cheap, and it is the
// only choice under which a freshly started balancer builds the same table
// as one that ran throughout: if the last message on a subject is garbage,
// a running balancer keeps the previous valid value, and so does a reader of
// the whole history, while a last-per-subject reader would see only the
// garbage and lose the value. An event that cannot be decoded or folded is
// logged, counted and skipped; it is never applied and never stops the feed.
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
// # What it must never do
//
// It never writes to the streams, never applies an event it could not
// decode or fold, and never drops an established WebSocket because a weight
// or membership changed. Every goroutine it starts (feed, builder, cache
// sweeper, active checker, listeners) is owned by the Balancer and stopped
// and waited for by Close.
package balancer
