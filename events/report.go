package events

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"
)

// Reports are what agents say about themselves: not changes to desired
// state, but observations. They live in a bounded stream (see Streams) and
// only the latest per subject matters.

// Phase is a node's progress on one scope.
type Phase string

const (
	PhaseConverged   Phase = "converged"
	PhaseProgressing Phase = "progressing"
	PhaseFailed      Phase = "failed"
	PhaseRemoved     Phase = "removed"
)

// BackendsReport is the full set of a node's serving backends for a scope.
// Sending the whole set (not up/down deltas) makes it idempotent: the latest
// report per (scope, node) is the truth.
//
// It also carries what balancers need of the scope's desired state (its
// virtual hosts, and whether it is removed), so that a balancer reads no
// config event, and so no env value, of any scope.
type BackendsReport struct {
	Node     string   `json:"node"`
	Scope    Scope    `json:"scope"`
	Revision uint64   `json:"revision"`
	Backends []string `json:"backends"`
	// Slots gives the replica index of each backend, so that a score of
	// the slot (NODE#INDEX) follows it across rollouts.
	Slots map[string]int `json:"slots,omitempty"`
	// Canary gives, for each backend that runs the canary's spec, its
	// canary replica index (slot NODE#cINDEX). Such a backend is in
	// Backends too, and not in Slots.
	Canary map[string]int `json:"canary,omitempty"`
	Time   time.Time      `json:"time"`
	// Hosts are the scope's virtual hosts at Revision.
	Hosts []string `json:"hosts,omitempty"`
	// Removed says the scope is removed at Revision: its hosts answer 503.
	Removed bool `json:"removed,omitempty"`
	// HealthPath and Cache are the spec's, for the balancer's active
	// checks and static cache.
	HealthPath string       `json:"health_path,omitempty"`
	Cache      *CachePolicy `json:"cache,omitempty"`
	// Traffic is the scope's canary split, pause and maintenance page at
	// Revision.
	Traffic *Traffic `json:"traffic,omitempty"`
}

// NodeStatus is a node's heartbeat and its view of every scope it serves.
type NodeStatus struct {
	Node     string        `json:"node"`
	Time     time.Time     `json:"time"`
	Started  time.Time     `json:"started"`
	Runtime  string        `json:"runtime"`
	Drained  bool          `json:"drained"`
	Interval Duration      `json:"interval"`
	Scopes   []ScopeStatus `json:"scopes"`
	Version  string        `json:"version,omitempty"`
	// Error is the node's last error that belongs to no one scope, e.g.
	// "desired state unreadable" or a skipped node event.
	Error string `json:"error,omitempty"`
}

// ScopeStatus is one node's view of one scope.
type ScopeStatus struct {
	Scope    Scope           `json:"scope"`
	Desired  uint64          `json:"desired"`
	Applied  uint64          `json:"applied"`
	Phase    Phase           `json:"phase"`
	Replicas []ReplicaStatus `json:"replicas"`
	Error    string          `json:"error,omitempty"`
	// Head is the last message of the scope's history the node read: a
	// reader can check that the stream still holds it (Store.Holds), and
	// so that the node's revisions are the stream's.
	Head *Mark `json:"head,omitempty"`
	// Analysis is the scope's canary analysis as this node sees it, when
	// the canary has one.
	Analysis *AnalysisStatus `json:"analysis,omitempty"`
}

// AnalysisStatus says who runs a canary's analysis and what it waits for.
type AnalysisStatus struct {
	Canary uint64 `json:"canary"` // the canary's ID
	// Owner is the node that runs the analysis; "" when none holds it.
	Owner string `json:"owner,omitempty"`
	// Detail says, on the owner, what the analysis waits for:
	// "analysis waiting: 57 of 200 requests", or why it cannot go on.
	Detail string `json:"detail,omitempty"`
	// Next is when the owner decides next, at the earliest.
	Next time.Time `json:"next,omitzero"`
}

// ReplicaStatus is one running (or failing) replica.
type ReplicaStatus struct {
	Index int `json:"index"`
	// Canary marks a replica of the scope's canary; Index is then within
	// the canary's replicas (slot NODE#cINDEX).
	Canary   bool   `json:"canary,omitempty"`
	ID       string `json:"id"`
	Revision uint64 `json:"revision"`
	State    string `json:"state"`
	Healthy  bool   `json:"healthy"`
	Backend  string `json:"backend,omitempty"`
	// Detail says why a replica is not healthy: "exit code 1", "GET /up: 503".
	Detail string `json:"detail,omitempty"`
}

// Alive reports whether the node's last heartbeat is recent: within three
// of its own intervals of now.
func (s *NodeStatus) Alive(now time.Time) bool {
	iv := time.Duration(s.Interval)
	if iv <= 0 {
		iv = 5 * time.Second
	}
	return now.Sub(s.Time) <= 3*iv
}

// Validate checks a backends report.
func (r *BackendsReport) Validate() error {
	if err := ValidateNodeName(r.Node); err != nil {
		return &FieldError{Field: "node", Problem: err.Error()}
	}
	if r.Scope.IsZero() {
		return &FieldError{Field: "scope", Problem: "is missing"}
	}
	for _, b := range r.Backends {
		if err := ValidateBackend(b); err != nil {
			return err
		}
	}
	for b, i := range r.Slots {
		if !slices.Contains(r.Backends, b) || i < 0 || i >= MaxReplicas {
			return &FieldError{Field: "slots", Problem: fmt.Sprintf("%s → %d names no backend of the report, or no replica index", b, i)}
		}
	}
	for b, i := range r.Canary {
		_, stable := r.Slots[b]
		if !slices.Contains(r.Backends, b) || stable || i < 0 || i >= MaxReplicas {
			return &FieldError{Field: "canary", Problem: fmt.Sprintf("%s → %d names no backend of the report, a stable one, or no replica index", b, i)}
		}
	}
	for _, h := range r.Hosts {
		if err := ValidateHost(h); err != nil {
			return &FieldError{Field: "hosts", Problem: err.Error()}
		}
	}
	return r.Traffic.Validate()
}

// Validate checks a node status.
func (s *NodeStatus) Validate() error {
	if err := ValidateNodeName(s.Node); err != nil {
		return &FieldError{Field: "node", Problem: err.Error()}
	}
	for i, sc := range s.Scopes {
		if sc.Scope.IsZero() {
			return &FieldError{Field: fmt.Sprintf("scopes[%d].scope", i), Problem: "is missing"}
		}
		if sc.Head != nil && (sc.Head.Sequence == 0 || len(sc.Head.Digest) > 64) {
			return &FieldError{Field: fmt.Sprintf("scopes[%d].head", i), Problem: "needs a sequence and a digest of at most 64 characters"}
		}
		if a := sc.Analysis; a != nil && (len(a.Detail) > maxCanaryReasonLen || hasControl(a.Detail) || (a.Owner != "" && ValidateNodeName(a.Owner) != nil)) {
			return &FieldError{Field: fmt.Sprintf("scopes[%d].analysis", i), Problem: fmt.Sprintf("needs a node name as owner and a detail of at most %d printable characters", maxCanaryReasonLen)}
		}
	}
	return nil
}

// decodeBackendsReport parses and validates a backends report.
func decodeBackendsReport(b []byte) (*BackendsReport, error) {
	var r BackendsReport
	if err := decodeReport(b, &r, "report"); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, &malformedAs{what: "report", err: err}
	}
	return &r, nil
}

// decodeNodeStatus parses and validates a node status.
func decodeNodeStatus(b []byte) (*NodeStatus, error) {
	var s NodeStatus
	if err := decodeReport(b, &s, "report"); err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, &malformedAs{what: "report", err: err}
	}
	return &s, nil
}

func decodeReport(b []byte, v any, what string) error {
	if len(b) > MaxEventSize {
		return fmt.Errorf("%w: %d bytes (max %d)", ErrEventTooLarge, len(b), MaxEventSize)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return &malformedAs{what: what, err: err}
	}
	return nil
}

// malformedAs is ErrMalformed for a message that is not an event: its
// text names what it is ("malformed report: …").
type malformedAs struct {
	what string
	err  error
}

func (m *malformedAs) Error() string        { return "malformed " + m.what + ": " + m.err.Error() }
func (m *malformedAs) Is(target error) bool { return target == ErrMalformed }
func (m *malformedAs) Unwrap() error        { return m.err }

// MergeStatuses folds per-scope status reports into one status per node,
// sorted by node: the node's fields from its latest report, and the latest
// view of each scope.
func MergeStatuses(reports []Record) []*NodeStatus {
	type key struct {
		node  string
		scope Scope
	}
	latest := make(map[key]Record)
	for _, r := range reports {
		if r.Status == nil || len(r.Status.Scopes) != 1 {
			continue
		}
		k := key{r.Status.Node, r.Status.Scopes[0].Scope}
		if prev, ok := latest[k]; !ok || r.Sequence > prev.Sequence {
			latest[k] = r
		}
	}
	byNode := make(map[string]*NodeStatus)
	for _, r := range latest {
		st := r.Status
		cur := byNode[st.Node]
		if cur == nil || st.Time.After(cur.Time) {
			next := *st
			next.Scopes = nil
			if cur != nil {
				next.Scopes = cur.Scopes
			}
			cur = &next
			byNode[st.Node] = cur
		}
		cur.Scopes = append(cur.Scopes, st.Scopes[0])
	}
	out := make([]*NodeStatus, 0, len(byNode))
	for _, st := range byNode {
		sort.Slice(st.Scopes, func(i, j int) bool { return st.Scopes[i].Scope.String() < st.Scopes[j].Scope.String() })
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}
