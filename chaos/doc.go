// Package chaos is hoist's fault-injection suite: the experiments of
// docs/reliability.md as tests. It has no code outside its tests.
//
// Each test injects one kind of fault while it drives load, then checks
// the invariants that must hold whatever the timing: every acknowledged
// event is stored exactly once, a conflict loser is told so and publishes
// nothing, an agent killed at any point converges with no orphan or
// duplicate replica, an agent without a usable desired state leaves its
// replicas alone, and a cluster that lost a server or was partitioned
// heals to the same stream on every server.
//
// The faults:
//   - a real three-server cluster: three `hoist server` containers of the
//     repository's FROM scratch image (built locally from a static binary,
//     never pulled) on a private Docker network the test creates; docker
//     kill (SIGKILL) of a follower and then of the stream leader, and
//     docker network disconnect of one server;
//   - an embedded NATS server restarted under publish load;
//   - agents SIGKILLed at seeded random points of their rollouts;
//   - publishers racing for the same revision;
//   - reference files corrupted while NATS is down.
//
// `go test ./...` runs a short version of each (about a minute in all).
// HOIST_CHAOS_LONG=1 (task chaos) runs the long version whose figures are
// in docs/reliability.md. Random choices come from one seed, logged by
// every test that uses it; HOIST_CHAOS_SEED=N (or -seed N) replays it.
// -short skips the suite. The Docker tests skip loudly without an engine,
// and fail with HOIST_REQUIRE_DOCKER=1.
//
// What it must never do: send load anywhere but 127.0.0.1 and its own
// containers on its own network; touch processes, containers or networks
// it did not start. Processes are stopped by PID, and containers and
// networks are found by a label unique to the run (hoist.test.chaos=ID)
// and removed when the test ends.
package chaos
