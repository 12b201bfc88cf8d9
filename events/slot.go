package events

import (
	"fmt"
	"strconv"
	"strings"
)

// A slot is where a replica runs, whatever its address: one index of a
// scope on one node, written NODE#INDEX (node-1#0). A rollout replaces the
// replica of a slot with one at a new host port; a score given to the slot
// (hoist score SCOPE node-1#0 N) stays with it, where a score given to the
// old host:port would be left behind.

//
// A canary's replicas are a track of their own, with their own indexes:
// their slots are written NODE#cINDEX (node-1#c0), so that a score of the
// stable replica 0 never weighs the canary's replica 0.

// Slot writes the slot of a scope's replica index on node.
func Slot(node string, index int) string { return node + "#" + strconv.Itoa(index) }

// CanarySlot writes the slot of a scope's canary replica index on node.
func CanarySlot(node string, index int) string { return node + "#c" + strconv.Itoa(index) }

// ParseSlot reads NODE#INDEX or NODE#cINDEX; canary is true for the
// latter. ok is false for anything else, a host:port among them.
func ParseSlot(s string) (node string, index int, canary, ok bool) {
	node, idx, found := strings.Cut(s, "#")
	if !found || ValidateNodeName(node) != nil {
		return "", 0, false, false
	}
	idx, canary = strings.CutPrefix(idx, "c")
	i, err := strconv.Atoi(idx)
	if err != nil || i < 0 || i >= MaxReplicas || strconv.Itoa(i) != idx {
		return "", 0, false, false
	}
	return node, i, canary, true
}

// isSlot reports whether a score's target is a slot rather than a host:port.
func isSlot(target string) bool { return strings.Contains(target, "#") }

// validateScoreTarget checks what a score is for: a slot, or a backend's
// host:port.
func validateScoreTarget(target string) error {
	if isSlot(target) {
		if _, _, _, ok := ParseSlot(target); !ok {
			return &FieldError{Field: "backend", Problem: fmt.Sprintf("%q is not a slot NODE#INDEX or NODE#cINDEX (a node name, then a replica index 0-%d, c before a canary's)", target, MaxReplicas-1)}
		}
		return nil
	}
	return ValidateBackend(target)
}
