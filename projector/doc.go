// Package projector holds hoist's pure folds: a scope's events into its
// desired state, scores into a backend→score table, node reports into a
// status view.
//
// Folds are deterministic and do no I/O: the same events in the same order
// give the same result in every agent and balancer. An event a fold cannot
// use (unknown kind, newer schema, a revision out of order, a rollback to a
// revision that does not exist) is skipped and returned as a Skip for the
// caller to report. A fold never panics on input and never applies half an
// event.
package projector
