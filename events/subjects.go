package events

import (
	"strings"
)

// Streams and subjects. Subjects carry the scope tokens so that a consumer
// filter or a permission can select one scope: hoist.scope.acme.prod.web.>
//
//	HOIST_EVENTS   hoist.scope.<client>.<env>.<solution>.<kind>   config events, kept forever
//	               hoist.node.<node>.<kind>                        drain/undrain, kept forever
//	HOIST_SCORES   hoist.score.<client>.<env>.<solution>.<backend> bounded history per backend
//	HOIST_BACKENDS hoist.backends.<client>.<env>.<solution>.<node> latest backends per node
//	HOIST_REPORTS  hoist.status.<node>                             heartbeats, with an age limit
const (
	EventsStream   = "HOIST_EVENTS"
	ScoresStream   = "HOIST_SCORES"
	BackendsStream = "HOIST_BACKENDS"
	ReportsStream  = "HOIST_REPORTS"

	subjectRoot = "hoist"
)

// ScopeSubject is the subject of a config event of kind k in scope s.
func ScopeSubject(s Scope, k Kind) string {
	return subjectRoot + ".scope." + s.String() + "." + string(k)
}

// ScopeFilter matches every config event of scope s.
func ScopeFilter(s Scope) string { return subjectRoot + ".scope." + s.String() + ".>" }

// AllScopesFilter matches every config event of every scope.
const AllScopesFilter = subjectRoot + ".scope.>"

// NodeSubject is the subject of a node event of kind k for node.
func NodeSubject(node string, k Kind) string {
	return subjectRoot + ".node." + node + "." + string(k)
}

// NodeFilter matches every event of one node.
func NodeFilter(node string) string { return subjectRoot + ".node." + node + ".>" }

// AllNodesFilter matches every node event.
const AllNodesFilter = subjectRoot + ".node.>"

// ScoreSubject is the subject of a score for backend in scope s.
func ScoreSubject(s Scope, backend string) string {
	return subjectRoot + ".score." + s.String() + "." + BackendToken(backend)
}

// ScoreFilter matches every score of scope s.
func ScoreFilter(s Scope) string { return subjectRoot + ".score." + s.String() + ".>" }

// AllScoresFilter matches every score.
const AllScoresFilter = subjectRoot + ".score.>"

// BackendsSubject is the subject of node's backends report for scope s.
func BackendsSubject(s Scope, node string) string {
	return subjectRoot + ".backends." + s.String() + "." + node
}

// BackendsFilter matches every backends report of scope s.
func BackendsFilter(s Scope) string { return subjectRoot + ".backends." + s.String() + ".*" }

// AllBackendsFilter matches every backends report.
const AllBackendsFilter = subjectRoot + ".backends.>"

// StatusSubject is the subject of node's status heartbeat.
func StatusSubject(node string) string { return subjectRoot + ".status." + node }

// AllStatusFilter matches every node status.
const AllStatusFilter = subjectRoot + ".status.*"

// BackendToken turns host:port into one subject token. A validated backend
// host has no '_' (IP addresses and DNS names), so mapping '.' to '_' is
// reversible and keeps the subject readable.
func BackendToken(backend string) string { return strings.ReplaceAll(backend, ".", "_") }

// ScopeFromSubject extracts the scope from a hoist.scope/score/backends
// subject. ok is false when the subject has no valid scope.
func ScopeFromSubject(subject string) (Scope, bool) {
	parts := strings.Split(subject, ".")
	if len(parts) < 5 || parts[0] != subjectRoot {
		return Scope{}, false
	}
	sc, err := ParseScope(parts[2] + "." + parts[3] + "." + parts[4])
	if err != nil {
		return Scope{}, false
	}
	return sc, true
}
