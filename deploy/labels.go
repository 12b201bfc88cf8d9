package deploy

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/hoist-dev/hoist/events"
)

// Labels on every replica the agent starts. The agent acts only on replicas
// that carry LabelManaged=true and its own LabelNode.
const (
	LabelManaged  = "hoist.managed"
	LabelNode     = "hoist.node"
	LabelScope    = "hoist.scope"
	LabelRevision = "hoist.revision"
	LabelReplica  = "hoist.replica" // the replica's index
	LabelSpecHash = "hoist.spec-hash"
	// LabelTrack is "canary" on a canary's replicas; stable replicas carry
	// none, as they did before canaries.
	LabelTrack = "hoist.track"
)

// Labels returns the labels of a replica started by node.
func Labels(node string, rs ReplicaSpec) map[string]string {
	l := map[string]string{
		LabelManaged:  "true",
		LabelNode:     node,
		LabelScope:    rs.Scope.String(),
		LabelRevision: strconv.FormatUint(rs.Revision, 10),
		LabelReplica:  strconv.Itoa(rs.Index),
		LabelSpecHash: rs.SpecHash,
	}
	if rs.Track != TrackStable {
		l[LabelTrack] = string(rs.Track)
	}
	return l
}

// OwnedBy reports whether labels mark a replica that node manages.
func OwnedBy(labels map[string]string, node string) bool {
	return labels[LabelManaged] == "true" && labels[LabelNode] == node
}

// ReplicaFromLabels fills a Replica's identity from its labels. ok is false
// when the labels are not node's or do not parse; such a replica is not the
// agent's to touch.
func ReplicaFromLabels(labels map[string]string, node string) (r Replica, ok bool) {
	if !OwnedBy(labels, node) {
		return Replica{}, false
	}
	scope, err := events.ParseScope(labels[LabelScope])
	if err != nil {
		return Replica{}, false
	}
	index, err := strconv.Atoi(labels[LabelReplica])
	if err != nil || index < 0 {
		return Replica{}, false
	}
	rev, err := strconv.ParseUint(labels[LabelRevision], 10, 64)
	if err != nil {
		return Replica{}, false
	}
	track := Track(labels[LabelTrack])
	if track != TrackStable && track != TrackCanary {
		return Replica{}, false // a track this agent does not know: not its to touch
	}
	return Replica{
		Scope:    scope,
		Track:    track,
		Index:    index,
		Revision: rev,
		SpecHash: labels[LabelSpecHash],
		Node:     node,
	}, true
}

// ReplicaName is the unique name of a replica on node:
// hoist-<node>-<scope>-<index>-<hash8>, with c before a canary replica's
// index. Start-first rollouts put the old and new replica of one index
// side by side; the hash keeps their names apart.
func ReplicaName(node string, rs ReplicaSpec) string {
	h := rs.SpecHash
	if len(h) > 8 {
		h = h[:8]
	}
	return fmt.Sprintf("hoist-%s-%s-%s-%s", node, rs.Scope, rs.Track.Index(rs.Index), h)
}

// ReplicaEnv is the environment of a replica started by node: the spec's
// variables, its secrets that are not files, then the identity the agent gives every replica (HOIST_NODE,
// HOIST_REPLICA, HOIST_SCOPE, HOIST_REVISION, and HOIST_TRACK=canary on a
// canary's replicas) and PORT when port > 0. The
// agent's own values win over the spec's, so a replica cannot be talked
// into a false identity. HOIST_REPLICA names the index within its node, so
// replicas of one scope on two nodes share it; HOIST_NODE tells them apart.
func ReplicaEnv(node string, rs ReplicaSpec, port int) []string {
	env := maps.Clone(rs.Spec.Env)
	if env == nil {
		env = map[string]string{}
	}
	for _, s := range rs.Secrets {
		if s.File == "" {
			env[s.Name] = string(s.Value) // a secret wins over a plain variable of its name
		}
	}
	env["HOIST_NODE"] = node
	env["HOIST_REPLICA"] = fmt.Sprintf("%s#%s", rs.Scope, rs.Track.Index(rs.Index))
	if rs.Track == TrackCanary {
		env["HOIST_TRACK"] = "canary"
	}
	env["HOIST_SCOPE"] = rs.Scope.String()
	env["HOIST_REVISION"] = strconv.FormatUint(rs.Revision, 10)
	if port > 0 {
		env["PORT"] = strconv.Itoa(port)
	}
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}
