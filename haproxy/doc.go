// Package haproxy keeps a running HAProxy's servers on the replicas hoist
// runs, through HAProxy's Runtime API (its stats socket), so a rollout's new
// host ports reach HAProxy without a reload.
//
// Each synced HAProxy backend is one scope, configured with a
// server-template: a fixed number of servers that start in maintenance.
// The Syncer gives each live replica of the scope one server (set server
// addr, weight, state ready), drains a server whose replica left the
// backends set, and puts it back in maintenance once its sessions are
// done, so it can take the next replica.
//
// # What it reads
//
// The weights are the hoist balancer's (balancer.FollowTable: the same
// readers and fold of HOIST_BACKENDS, HOIST_SCORES and node drains): a
// backend's weight is its score, 0 on a drained node. Nothing is changed
// before every stream has caught up, so a restart never drains the servers
// of a scope whose reports it has not read yet.
//
// # Never trust a cache
//
// Every sync starts from what HAProxy says now (show servers state, show
// stat): a reloaded or restarted HAProxy, or an operator's change by hand,
// is repaired on the next sync (every Config.Interval, and at once after
// each table change). The only memory kept between syncs is which server
// last carried a slot, used to prefer it; it never decides anything.
//
// # Order
//
// A new replica's server is given its address and weight before it is set
// ready, and new servers are set ready before leaving ones are drained, so
// capacity never dips. The agent withdraws a replica from its backends
// report and waits its drain delay (agent --drain-delay) before it stops
// it: a sync applies within one table change, well inside that delay.
//
// The package never writes HAProxy's configuration file and never adds or
// deletes servers: it only moves the servers of the template it is given.
package haproxy
