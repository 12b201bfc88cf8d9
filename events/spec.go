package events

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"time"
)

// Spec is everything a deploy says about how a scope should run.
// A Spec inside a folded state is shared and must be treated as immutable:
// use Clone before changing one.
type Spec struct {
	Image    string            `json:"image,omitempty"`
	Command  []string          `json:"command,omitempty"`
	Replicas int               `json:"replicas"`
	Port     int               `json:"port,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
	// Secrets are sealed: see Secret. Only an agent granted the scope's
	// key opens them, when it starts a replica.
	Secrets    map[string]Secret `json:"secrets,omitempty"`
	Hosts      []string          `json:"hosts,omitempty"`
	HealthPath string            `json:"health_path,omitempty"`
	Update     UpdateStrategy    `json:"update,omitzero"`
	Restart    string            `json:"restart,omitempty"`
	MemoryMB   int64             `json:"memory_mb,omitempty"`
	CPUs       float64           `json:"cpus,omitempty"`
	Cache      *CachePolicy      `json:"cache,omitempty"`
}

// UpdateStrategy bounds a rolling update.
type UpdateStrategy struct {
	// Surge is how many new replicas may run beyond Replicas during a
	// rollout. 0 means the default, 1.
	Surge int `json:"surge,omitempty"`
	// HealthTimeout is how long a new replica has to become healthy before
	// the rollout fails. 0 means the default, DefaultHealthTimeout.
	HealthTimeout Duration `json:"health_timeout,omitempty"`
}

// CachePolicy opts a scope into the balancer's static cache.
type CachePolicy struct {
	TTL      Duration `json:"ttl"`
	MaxBytes int64    `json:"max_bytes,omitempty"`
}

// Defaults and limits of a Spec.
const (
	DefaultSurge         = 1
	DefaultHealthTimeout = 60 * time.Second
	MaxReplicas          = 1000
)

// restartPolicies are the accepted values of Spec.Restart ("" lets the
// agent alone repair replicas).
var restartPolicies = []string{"", "no", "always", "on-failure", "unless-stopped"}

// EffectiveSurge is Update.Surge with its default applied.
func (s *Spec) EffectiveSurge() int {
	if s.Update.Surge <= 0 {
		return DefaultSurge
	}
	return s.Update.Surge
}

// EffectiveHealthTimeout is Update.HealthTimeout with its default applied.
func (s *Spec) EffectiveHealthTimeout() time.Duration {
	if s.Update.HealthTimeout <= 0 {
		return DefaultHealthTimeout
	}
	return time.Duration(s.Update.HealthTimeout)
}

// Clone returns a deep copy of s.
func (s *Spec) Clone() *Spec {
	if s == nil {
		return nil
	}
	c := *s
	c.Command = slices.Clone(s.Command)
	c.Env = maps.Clone(s.Env)
	c.Secrets = maps.Clone(s.Secrets)
	c.Hosts = slices.Clone(s.Hosts)
	if s.Cache != nil {
		cp := *s.Cache
		c.Cache = &cp
	}
	return &c
}

// Validate checks every field of the spec.
func (s *Spec) Validate() error {
	switch {
	case s.Image == "" && len(s.Command) == 0:
		return &FieldError{Field: "image", Problem: "or command is required"}
	case s.Image != "" && len(s.Command) > 0 && s.Command[0] == "":
		return &FieldError{Field: "command", Problem: "has an empty program name"}
	}
	if s.Image != "" {
		if err := validateImage(s.Image); err != nil {
			return err
		}
	}
	if len(s.Command) > 0 {
		if s.Command[0] == "" {
			return &FieldError{Field: "command", Problem: "has an empty program name"}
		}
		for i, arg := range s.Command {
			if hasNUL(arg) {
				return &FieldError{Field: fmt.Sprintf("command[%d]", i), Problem: "contains a NUL byte"}
			}
		}
	}
	if err := ValidateReplicas(s.Replicas); err != nil {
		return err
	}
	if s.Port != 0 {
		if err := validatePort("port", s.Port); err != nil {
			return err
		}
	}
	for k, v := range s.Env {
		if err := ValidateEnv(k, v); err != nil {
			return err
		}
	}
	if err := validateSecrets(s.Secrets); err != nil {
		return err
	}
	for i, h := range s.Hosts {
		if err := ValidateHost(h); err != nil {
			return &FieldError{Field: fmt.Sprintf("hosts[%d]", i), Problem: err.Error()}
		}
	}
	if s.HealthPath != "" {
		if err := validateHealthPath(s.HealthPath); err != nil {
			return err
		}
		if s.Port == 0 {
			return &FieldError{Field: "health_path", Problem: "needs a port to probe (set port)"}
		}
	}
	if s.Update.Surge < 0 || s.Update.Surge > MaxReplicas {
		return &FieldError{Field: "update.surge", Problem: fmt.Sprintf("is %d (want 0-%d)", s.Update.Surge, MaxReplicas)}
	}
	if s.Update.HealthTimeout < 0 {
		return &FieldError{Field: "update.health_timeout", Problem: "is negative"}
	}
	if !slices.Contains(restartPolicies, s.Restart) {
		return &FieldError{Field: "restart", Problem: fmt.Sprintf("is %q (want one of no, always, on-failure, unless-stopped)", s.Restart)}
	}
	if s.MemoryMB < 0 {
		return &FieldError{Field: "memory_mb", Problem: "is negative"}
	}
	if s.CPUs < 0 || s.CPUs > 1024 {
		return &FieldError{Field: "cpus", Problem: fmt.Sprintf("is %g (want 0-1024)", s.CPUs)}
	}
	if s.Cache != nil && s.Cache.TTL <= 0 {
		return &FieldError{Field: "cache.ttl", Problem: "must be positive"}
	}
	if s.Cache != nil && s.Cache.MaxBytes < 0 {
		return &FieldError{Field: "cache.max_bytes", Problem: "is negative"}
	}
	return nil
}

// Duration is a time.Duration that reads and writes JSON as "1m30s".
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string, or a number of nanoseconds.
// What is neither is a *json.UnmarshalTypeError, to which the decoder
// adds the field that held it.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err := json.Unmarshal(b, &n); err != nil {
			return &json.UnmarshalTypeError{Value: "value " + string(b), Type: reflect.TypeFor[Duration]()}
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &json.UnmarshalTypeError{Value: "string " + strconv.Quote(s), Type: reflect.TypeFor[Duration]()}
	}
	*d = Duration(v)
	return nil
}
