// Package e2e holds hoist's end-to-end tests: the real binaries (hoist
// server, two hoist agents, hoist balancer, hoist dev) run as child
// processes, driven by the hoist CLI while HTTP load goes through the
// balancer. It has no code of its own outside its tests.
//
// The tests are slow (about a minute and a half per runtime) and skip with
// -short. They run the Docker runtime when an engine answers (required with
// HOIST_REQUIRE_DOCKER=1) and the process runtime always.
//
// What they must never do: touch processes or containers they did not
// start. Child processes are stopped by PID; containers are removed by the
// node labels of this run's agents, whose names are unique per run.
package e2e
