package change

import (
	"maps"
	"slices"

	"github.com/hoist-dev/hoist/events"
)

// SpecChange is what a deploy says: the fields given replace the current
// spec's, the others keep their values. So does Image: a deploy of a new
// command to a scope with an image overrides the image's command and keeps
// the image. Command, left out, is kept as the image's override, except
// when a scope that ran a process (no image) gets an image: its argv was
// no override. Env adds to the current variables;
// Hosts, when not nil, replaces the host list. It reads the JSON body of
// the API's deploy; the CLI fills it from its flags.
type SpecChange struct {
	Image         string            `json:"image,omitempty"`
	Command       []string          `json:"command,omitempty"`
	Replicas      *int              `json:"replicas,omitempty"`
	Port          *int              `json:"port,omitempty"`
	Env           map[string]string `json:"env,omitempty"`
	Hosts         []string          `json:"hosts,omitempty"`
	HealthPath    *string           `json:"health_path,omitempty"`
	Surge         *int              `json:"surge,omitempty"`
	HealthTimeout *events.Duration  `json:"health_timeout,omitempty"`
	Restart       *string           `json:"restart,omitempty"`
	MemoryMB      *int64            `json:"memory_mb,omitempty"`
	CPUs          *float64          `json:"cpus,omitempty"`
	// CacheTTL, when given, sets the balancer's cache (0 turns it off).
	CacheTTL      *events.Duration `json:"cache_ttl,omitempty"`
	CacheMaxBytes *int64           `json:"cache_max_bytes,omitempty"`
}

// Check refuses a change that names nothing to run, or options that need
// others, before the spec is validated. Fields are named as in JSON.
func (c *SpecChange) Check() error {
	if c.Image == "" && len(c.Command) == 0 {
		return refusef("image", "deploy needs image or command (an argv array)")
	}
	return c.CheckCanary()
}

// CheckCanary is Check for a canary's change, which may name nothing to
// run: it starts from the stable spec, so it may change env alone.
func (c *SpecChange) CheckCanary() error {
	if c.CacheMaxBytes != nil && c.CacheTTL == nil {
		return refusef("cache_max_bytes", "cache_max_bytes needs cache_ttl")
	}
	for k, v := range c.Env {
		if err := events.ValidateEnv(k, v); err != nil {
			return err
		}
	}
	return nil
}

// Apply changes s as the deploy says.
func (c *SpecChange) Apply(s *events.Spec) {
	if c.Image != "" {
		if s.Image == "" {
			s.Command = nil
		}
		s.Image = c.Image
	}
	if len(c.Command) > 0 {
		s.Command = slices.Clone(c.Command)
	}
	if c.Replicas != nil {
		s.Replicas = *c.Replicas
	}
	if c.Port != nil {
		s.Port = *c.Port
	}
	if len(c.Env) > 0 {
		s.Env = maps.Clone(s.Env)
		if s.Env == nil {
			s.Env = map[string]string{}
		}
		maps.Copy(s.Env, c.Env)
	}
	if c.Hosts != nil {
		s.Hosts = slices.Clone(c.Hosts)
	}
	if c.HealthPath != nil {
		s.HealthPath = *c.HealthPath
	}
	if c.Surge != nil {
		s.Update.Surge = *c.Surge
	}
	if c.HealthTimeout != nil {
		s.Update.HealthTimeout = *c.HealthTimeout
	}
	if c.Restart != nil {
		s.Restart = *c.Restart
	}
	if c.MemoryMB != nil {
		s.MemoryMB = *c.MemoryMB
	}
	if c.CPUs != nil {
		s.CPUs = *c.CPUs
	}
	if c.CacheTTL != nil {
		s.Cache = nil // a ttl of 0 turns the cache off
		if *c.CacheTTL != 0 {
			s.Cache = &events.CachePolicy{TTL: *c.CacheTTL}
			if c.CacheMaxBytes != nil {
				s.Cache.MaxBytes = *c.CacheMaxBytes
			}
		}
	}
}
