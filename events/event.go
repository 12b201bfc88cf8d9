package events

import (
	"fmt"
	"time"
)

// SchemaVersion is the envelope schema this build writes. Readers skip (and
// report) events with a newer schema rather than guess at their meaning.
const SchemaVersion = 1

// Kind names what an event says happened.
type Kind string

// Config kinds change a scope's desired state and carry the scope's revision.
const (
	KindDeployed   Kind = "deployed"
	KindScaled     Kind = "scaled"
	KindEnvChanged Kind = "env_changed"
	KindRolledBack Kind = "rolled_back"
	KindRemoved    Kind = "removed"
)

// Node kinds change a node's standing and carry the node's own revision.
const (
	KindNodeDrained   Kind = "node_drained"
	KindNodeUndrained Kind = "node_undrained"
)

// KindBackendScored is a score for one backend of a scope. Scores are
// frequent and only their latest values matter, so they live in their own
// bounded stream and do not advance the scope's revision.
const KindBackendScored Kind = "backend_scored"

// Event is one entry of a history: the envelope and its typed payload.
type Event struct {
	Schema   int       `json:"schema"`
	ID       string    `json:"id"`
	Kind     Kind      `json:"kind"`
	Scope    Scope     `json:"scope,omitzero"`
	Node     string    `json:"node,omitempty"`
	Revision uint64    `json:"revision"`
	Time     time.Time `json:"time"`
	Actor    string    `json:"actor,omitempty"`
	Data     Payload   `json:"data"`
}

// Payload is the kind-specific body of an event.
type Payload interface {
	Kind() Kind
	Validate() error
}

// Deployed replaces the scope's whole spec.
type Deployed struct {
	Spec Spec `json:"spec"`
}

// Scaled changes only the replica count.
type Scaled struct {
	Replicas int `json:"replicas"`
}

// EnvChanged sets and unsets environment variables.
type EnvChanged struct {
	Set   map[string]string `json:"set,omitempty"`
	Unset []string          `json:"unset,omitempty"`
}

// RolledBack restores the spec as it was at revision To.
// To is resolved at publish time, so a fold never has to guess.
type RolledBack struct {
	To uint64 `json:"to"`
}

// Removed stops every replica of the scope. A later Deployed revives it.
type Removed struct{}

// BackendScored sets the score (0–100) of one backend of a scope: a slot
// (NODE#INDEX, which a rollout's new replica inherits) or a host:port.
// Score 0 means "no new requests".
type BackendScored struct {
	Backend string `json:"backend"`
	Score   int    `json:"score"`
}

// NodeDrained asks balancers and agent checks to send a node no new work.
type NodeDrained struct {
	Reason string `json:"reason,omitempty"`
}

// NodeUndrained returns a drained node to service.
type NodeUndrained struct{}

func (Deployed) Kind() Kind      { return KindDeployed }
func (Scaled) Kind() Kind        { return KindScaled }
func (EnvChanged) Kind() Kind    { return KindEnvChanged }
func (RolledBack) Kind() Kind    { return KindRolledBack }
func (Removed) Kind() Kind       { return KindRemoved }
func (BackendScored) Kind() Kind { return KindBackendScored }
func (NodeDrained) Kind() Kind   { return KindNodeDrained }
func (NodeUndrained) Kind() Kind { return KindNodeUndrained }

// newPayload returns an empty payload for kind, or nil for an unknown kind.
func newPayload(k Kind) Payload {
	switch k {
	case KindDeployed:
		return &Deployed{}
	case KindScaled:
		return &Scaled{}
	case KindEnvChanged:
		return &EnvChanged{}
	case KindRolledBack:
		return &RolledBack{}
	case KindRemoved:
		return &Removed{}
	case KindBackendScored:
		return &BackendScored{}
	case KindNodeDrained:
		return &NodeDrained{}
	case KindNodeUndrained:
		return &NodeUndrained{}
	case KindNodeKey:
		return &NodeKey{}
	case KindSecretSet:
		return &SecretSet{}
	case KindSecretRemoved:
		return &SecretRemoved{}
	case KindSecretRotate:
		return &SecretRotate{}
	case KindSecretGranted:
		return &SecretGranted{}
	case KindSecretRevoked:
		return &SecretRevoked{}
	case KindSecretKey:
		return &SecretKey{}
	case KindCanaryStarted:
		return &CanaryStarted{}
	case KindCanaryShifted:
		return &CanaryShifted{}
	case KindCanaryPromoted:
		return &CanaryPromoted{}
	case KindCanaryAborted:
		return &CanaryAborted{}
	case KindPaused:
		return &Paused{}
	case KindResumed:
		return &Resumed{}
	case KindMaintenanceOn:
		return &MaintenanceOn{}
	case KindMaintenanceOff:
		return &MaintenanceOff{}
	}
	return nil
}

// IsScopeKind reports whether k belongs to a scope's revisioned history.
func (k Kind) IsScopeKind() bool {
	switch k {
	case KindDeployed, KindScaled, KindEnvChanged, KindRolledBack, KindRemoved,
		KindSecretSet, KindSecretRemoved, KindSecretRotate, KindSecretGranted, KindSecretRevoked, KindSecretKey,
		KindCanaryStarted, KindCanaryShifted, KindCanaryPromoted, KindCanaryAborted,
		KindPaused, KindResumed, KindMaintenanceOn, KindMaintenanceOff:
		return true
	}
	return false
}

// IsCanaryKind reports whether k is one of a scope's canary kinds.
func (k Kind) IsCanaryKind() bool {
	switch k {
	case KindCanaryStarted, KindCanaryShifted, KindCanaryPromoted, KindCanaryAborted:
		return true
	}
	return false
}

// IsTrafficKind reports whether k pauses, resumes or puts up maintenance.
func (k Kind) IsTrafficKind() bool {
	switch k {
	case KindPaused, KindResumed, KindMaintenanceOn, KindMaintenanceOff:
		return true
	}
	return false
}

// IsNodeKind reports whether k belongs to a node's history.
func (k Kind) IsNodeKind() bool {
	return k == KindNodeDrained || k == KindNodeUndrained || k == KindNodeKey
}

// IsSecretKind reports whether k is one of a scope's secret kinds.
func (k Kind) IsSecretKind() bool {
	switch k {
	case KindSecretSet, KindSecretRemoved, KindSecretRotate, KindSecretGranted, KindSecretRevoked, KindSecretKey:
		return true
	}
	return false
}

// Validate checks the envelope and its payload, without changing e. It is
// run before every append and after every decode. An empty Kind stands for
// the data's: the encoders and Store.Append write it so.
func (e *Event) Validate() error {
	if e.Data == nil {
		return &FieldError{Field: "data", Problem: "is missing"}
	}
	if e.Kind != "" && e.Kind != e.Data.Kind() {
		return &FieldError{Field: "kind", Problem: fmt.Sprintf("is %q but the data is %q", e.Kind, e.Data.Kind())}
	}
	switch {
	case e.Data.Kind().IsNodeKind():
		if err := ValidateNodeName(e.Node); err != nil {
			return &FieldError{Field: "node", Problem: err.Error()}
		}
	default:
		if e.Scope.IsZero() {
			return &FieldError{Field: "scope", Problem: "is missing"}
		}
		if err := e.Scope.validate(); err != nil {
			return &FieldError{Field: "scope", Problem: err.Error()}
		}
	}
	if len(e.Actor) > 256 {
		return &FieldError{Field: "actor", Problem: "is longer than 256 characters"}
	}
	return e.Data.Validate()
}
