package deploy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// Desired is what one scope should run, as the caller folded it from the
// scope's events.
type Desired struct {
	Scope    events.Scope
	Revision uint64
	Spec     *events.Spec // nil only when Removed
	Removed  bool
	// Canary is the scope's running canary, nil when there is none: its
	// replicas run beside the stable ones, on a track of their own.
	Canary *CanaryDesired
	// Traffic is what balancers do with the scope's requests at Revision.
	// It changes nothing that runs: the agent hands it on in its reports.
	Traffic *events.Traffic
	// Secrets opens the spec's sealed secrets, and the canary's, when a
	// replica starts; nil when this node holds no key of the scope.
	Secrets Opener
}

// CanaryDesired is what a scope's canary runs on each serving node.
type CanaryDesired struct {
	ID       uint64       // the revision that started it
	Spec     *events.Spec // its Replicas is not the canary's: Replicas is
	Replicas int
}

// Track is which spec a replica runs: the scope's stable spec, or its
// canary's. Each track has its own replica indexes 0..n-1.
type Track string

const (
	TrackStable Track = ""
	TrackCanary Track = "canary"
)

// specOf is the spec the replicas of track run, and how many of them; nil
// when the track should run nothing.
func (d *Desired) specOf(t Track) (*events.Spec, int) {
	switch {
	case d.Removed:
		return nil, 0
	case t == TrackStable:
		return d.Spec, d.Spec.Replicas
	case d.Canary != nil:
		return d.Canary.Spec, d.Canary.Replicas
	}
	return nil, 0
}

// Opener opens the sealed secrets of a spec, for one replica start.
type Opener interface {
	Open(spec *events.Spec) ([]Secret, error)
}

// Secret is one opened secret: the value a replica sees as the variable
// Name, or as the file File when that is set. Values are never logged.
type Secret struct {
	Name  string
	Value []byte
	File  string
}

// ErrSecrets marks a replica that could not start because its secrets
// could not be opened: no grant, a key not handed over yet, or a value
// sealed to another key.
var ErrSecrets = errors.New("cannot open the scope's secrets")

// ReplicaState is a replica's lifecycle state, named as Docker names them.
type ReplicaState string

const (
	StateCreated    ReplicaState = "created"
	StateRunning    ReplicaState = "running"
	StateRestarting ReplicaState = "restarting"
	StatePaused     ReplicaState = "paused"
	StateRemoving   ReplicaState = "removing"
	StateExited     ReplicaState = "exited"
	StateDead       ReplicaState = "dead"
)

// Alive reports whether a replica in state s still holds its index: it runs,
// or its runtime is about to run it again.
func (s ReplicaState) Alive() bool {
	return s == StateRunning || s == StateRestarting || s == StatePaused
}

// Gone reports whether a replica in state s is finished and only needs
// removing. A created-but-never-started replica counts: the agent creates
// and starts in one step, so one left created is debris from a crash.
func (s ReplicaState) Gone() bool {
	return s == StateCreated || s == StateExited || s == StateDead
}

// Replica is one replica as a runtime observes it.
type Replica struct {
	ID        string // container ID, or the process runtime's replica name
	Name      string
	Scope     events.Scope
	Track     Track
	Index     int    // within its track
	Revision  uint64 // the revision it was started for
	SpecHash  string
	Node      string
	State     ReplicaState
	Healthy   *bool // nil: no verdict (no health check known)
	HostPort  int   // 0 when nothing is published
	StartedAt time.Time
	Detail    string // why it is not running or not healthy, when known
}

// IsHealthy reads Healthy with "no verdict" counting as healthy, the rule
// for replicas that have no health check: running counts.
func (r Replica) IsHealthy() bool { return r.Healthy == nil || *r.Healthy }

func (r Replica) String() string {
	return fmt.Sprintf("%s#%s (%s, %s)", r.Scope, r.Track.Index(r.Index), ShortID(r.ID), r.State)
}

// Index writes a replica index of track t: 2 for the stable track, c2 for
// the canary's, as in its slot NODE#c2.
func (t Track) Index(i int) string {
	if t == TrackCanary {
		return "c" + strconv.Itoa(i)
	}
	return strconv.Itoa(i)
}

// ReplicaSpec is everything a runtime needs to start one replica.
type ReplicaSpec struct {
	Scope    events.Scope
	Track    Track
	Index    int
	Revision uint64
	SpecHash string
	Spec     *events.Spec
	Secrets  []Secret // opened: never log a ReplicaSpec whole
}

// Errors a runtime reports, checked with errors.Is.
var (
	// ErrNotFound: the replica is already gone.
	ErrNotFound = errors.New("replica not found")
	// ErrUnsupported: the spec cannot run on this runtime (an image-only
	// spec on the process runtime, a command-only spec on Docker).
	ErrUnsupported = errors.New("spec not supported by runtime")
	// ErrImageNotFound: the image is not present locally and could not be
	// pulled.
	ErrImageNotFound = errors.New("image not found")
	// ErrForeign: a name the agent wants is held by something it does not
	// manage, which it must not touch.
	ErrForeign = errors.New("name taken by an unmanaged replica")
)

// ShortID shortens a Docker container ID the way docker ps does; other
// IDs (the process runtime's names) are short enough and stay whole.
func ShortID(id string) string {
	if len(id) == 64 && strings.Trim(id, "0123456789abcdef") == "" {
		return id[:12]
	}
	return id
}

func boolPtr(b bool) *bool { return &b }
