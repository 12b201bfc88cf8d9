package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/hoist-dev/hoist/events"
)

// SpecHash identifies what makes a replica what it is: image, command,
// port, env, sealed secrets, health path, restart policy and resources. It leaves out what
// only says how many replicas run or how traffic and rollouts reach them
// (replicas, hosts, cache, update strategy), so scaling touches only the
// replicas it must while an env or image change rolls them all.
func SpecHash(s *events.Spec) string {
	restart := s.Restart
	if restart == "" {
		restart = "no" // "" and "no" run the same replica
	}
	// A struct, not the Spec, so a field added to Spec later changes no
	// existing hash unless it is added here on purpose. encoding/json
	// writes map keys sorted, which keeps the encoding canonical.
	id := struct {
		V          int               `json:"v"`
		Image      string            `json:"image,omitempty"`
		Command    []string          `json:"command,omitempty"`
		Port       int               `json:"port,omitempty"`
		Env        map[string]string `json:"env,omitempty"`
		HealthPath string            `json:"health_path,omitempty"`
		Restart    string            `json:"restart"`
		MemoryMB   int64             `json:"memory_mb,omitempty"`
		CPUs       float64           `json:"cpus,omitempty"`
		// Sealed: a new value or a new key rolls the replicas, and the
		// hash, a label of every replica, says nothing of the values.
		Secrets map[string]events.Secret `json:"secrets,omitempty"`
	}{1, s.Image, s.Command, s.Port, s.Env, s.HealthPath, restart, s.MemoryMB, s.CPUs, s.Secrets}
	b, err := json.Marshal(id)
	if err != nil {
		// Strings, ints and a float that Validate bounded: cannot fail.
		panic("spec hash: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
