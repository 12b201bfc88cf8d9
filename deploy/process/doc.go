// Package process is the deploy.Runtime that runs replicas as local
// processes (a spec's Command, without an image), for hoist dev and hosts
// without Docker.
//
// Each replica's record (pid, start time, labels) is written atomically
// under the runtime's data directory, so an agent that restarts finds the
// processes it started and never signals one it did not: a pid is trusted
// only while its start time matches the record.
package process
