package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
	"github.com/hoist-dev/hoist/secrets"
)

// How events and states look to people (one-line summaries, aligned
// columns) and to scripts (stable JSON shapes).

func shortTime(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") }

// summarize says in one line what an event changed, e.g.
// "deployed image=registry.local/web:1 replicas=3 port=8080".
func summarize(e *events.Event) string { return describe(e, false) }

// describe is summarize, with plain env values that look secret shown
// when show is set.
func describe(e *events.Event, show bool) string {
	switch d := e.Data.(type) {
	case *events.Deployed:
		return "deployed " + describeSpec(&d.Spec)
	case *events.Scaled:
		return fmt.Sprintf("scaled to %d", d.Replicas)
	case *events.EnvChanged:
		var parts []string
		if len(d.Set) > 0 {
			set := d.Set
			if !show {
				set, _ = secrets.MaskEnv(set)
			}
			parts = append(parts, "set "+envList(set))
		}
		if len(d.Unset) > 0 {
			parts = append(parts, "unset "+strings.Join(d.Unset, " "))
		}
		return "env " + strings.Join(parts, "; ")
	case *events.RolledBack:
		return fmt.Sprintf("rolled back to revision %d", d.To)
	case *events.Removed:
		return "removed"
	case *events.BackendScored:
		return fmt.Sprintf("scored %s %d", d.Backend, d.Score)
	case *events.NodeDrained:
		if d.Reason != "" {
			return "drained: " + d.Reason
		}
		return "drained"
	case *events.NodeUndrained:
		return "undrained"
	case *events.NodeKey:
		return "announced node key " + d.Public[:12] + "…"
	case *events.SecretSet:
		as := ""
		if d.File != "" {
			as = " as file " + d.File
		}
		return fmt.Sprintf("secret %s set%s (sealed to key v%d)", d.Name, as, d.Key)
	case *events.SecretRemoved:
		return "secret " + d.Name + " removed"
	case *events.SecretRotate:
		return "asked for a new secret key"
	case *events.SecretGranted:
		return fmt.Sprintf("granted node %s (node key %s…, as %s)", d.Node, d.NodeKey[:12], d.Actor)
	case *events.SecretRevoked:
		return "revoked node " + d.Node
	case *events.SecretKey:
		nodes := strings.Join(slices.Sorted(maps.Keys(d.Seeds)), ",")
		switch {
		case len(d.Resealed) > 0:
			return fmt.Sprintf("node %s made key v%d for %s and resealed %d secrets to it", d.Node, d.Version, nodes, len(d.Resealed))
		case d.Seeds[d.Node] != "":
			// Only the maker of a key seals it to itself: a holder hands
			// it on only to nodes that lack it.
			return fmt.Sprintf("node %s made key v%d for %s", d.Node, d.Version, nodes)
		}
		return fmt.Sprintf("node %s handed key v%d to %s", d.Node, d.Version, nodes)
	}
	return string(e.Kind)
}

// describeSpec lists a spec's set fields as key=value words.
func describeSpec(s *events.Spec) string {
	var w []string
	add := func(k, v string) { w = append(w, k+"="+v) }
	if s.Image != "" {
		add("image", s.Image)
	}
	if len(s.Command) > 0 {
		add("command", quoteArg(joinArgs(s.Command)))
	}
	add("replicas", fmt.Sprint(s.Replicas))
	if s.Port != 0 {
		add("port", fmt.Sprint(s.Port))
	}
	if len(s.Env) > 0 {
		add("env", strings.Join(slices.Sorted(maps.Keys(s.Env)), ","))
	}
	if len(s.Hosts) > 0 {
		add("hosts", strings.Join(s.Hosts, ","))
	}
	if s.HealthPath != "" {
		add("health", s.HealthPath)
	}
	if s.Update.Surge != 0 {
		add("surge", fmt.Sprint(s.Update.Surge))
	}
	if s.Update.HealthTimeout != 0 {
		add("health-timeout", s.Update.HealthTimeout.String())
	}
	if s.Restart != "" {
		add("restart", s.Restart)
	}
	if s.MemoryMB != 0 {
		add("memory", fmt.Sprintf("%dMB", s.MemoryMB))
	}
	if s.CPUs != 0 {
		add("cpus", fmt.Sprint(s.CPUs))
	}
	if s.Cache != nil {
		add("cache-ttl", s.Cache.TTL.String())
	}
	return strings.Join(w, " ")
}

// envList is "A=1 B=2", sorted by name, values quoted when needed.
func envList(env map[string]string) string {
	keys := slices.Sorted(maps.Keys(env))
	for i, k := range keys {
		keys[i] = k + "=" + quoteArg(env[k])
	}
	return strings.Join(keys, " ")
}

// stateJSON is 'hoist state --json'. Every field is always present, with
// defaults applied, so scripts need no special cases.
type stateJSON struct {
	Scope         string                 `json:"scope"`
	Revision      uint64                 `json:"revision"`
	Image         string                 `json:"image"`
	Command       []string               `json:"command"`
	Replicas      int                    `json:"replicas"`
	Port          int                    `json:"port"`
	Env           map[string]string      `json:"env"`
	Secrets       map[string]stateSecret `json:"secrets"`
	Hosts         []string               `json:"hosts"`
	HealthPath    string                 `json:"health_path"`
	Surge         int                    `json:"surge"`
	HealthTimeout events.Duration        `json:"health_timeout"`
	Restart       string                 `json:"restart"`
	MemoryMB      int64                  `json:"memory_mb"`
	CPUs          float64                `json:"cpus"`
	Cache         *events.CachePolicy    `json:"cache"`
	Removed       bool                   `json:"removed"`
	Time          time.Time              `json:"time"`
	Actor         string                 `json:"actor"`
}

// stateSecret is a secret as 'hoist state --json' shows it: never its
// value, sealed or not.
type stateSecret struct {
	Key  int    `json:"key"`
	File string `json:"file,omitempty"`
}

// maskPayload returns p with the plain env values that look secret masked,
// for printing. p itself is not changed.
func maskPayload(p events.Payload) events.Payload {
	switch d := p.(type) {
	case *events.EnvChanged:
		if masked, ok := secrets.MaskEnv(d.Set); ok {
			return &events.EnvChanged{Set: masked, Unset: d.Unset}
		}
	case *events.Deployed:
		if masked, ok := secrets.MaskEnv(d.Spec.Env); ok {
			spec := d.Spec.Clone()
			spec.Env = masked
			return &events.Deployed{Spec: *spec}
		}
	}
	return p
}

func newStateJSON(st projector.State, show bool) stateJSON {
	out := stateJSON{
		Scope: st.Scope.String(), Revision: st.Revision, Removed: st.Removed,
		Time: st.Time, Actor: st.Actor,
		Command: []string{}, Env: map[string]string{}, Hosts: []string{},
		Secrets: map[string]stateSecret{},
	}
	s := st.Spec
	if s == nil {
		return out
	}
	out.Image, out.Replicas, out.Port, out.HealthPath = s.Image, s.Replicas, s.Port, s.HealthPath
	out.Command = append(out.Command, s.Command...)
	out.Hosts = append(out.Hosts, s.Hosts...)
	env := s.Env
	if !show {
		env, _ = secrets.MaskEnv(env)
	}
	maps.Copy(out.Env, env)
	for name, sec := range s.Secrets {
		out.Secrets[name] = stateSecret{Key: sec.Key, File: sec.File}
	}
	out.Surge = s.EffectiveSurge()
	out.HealthTimeout = events.Duration(s.EffectiveHealthTimeout())
	out.Restart, out.MemoryMB, out.CPUs, out.Cache = s.Restart, s.MemoryMB, s.CPUs, s.Cache
	return out
}

// printState writes a state as aligned "field  value" lines.
func printState(w io.Writer, st projector.State, show bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	line("scope", st.Scope.String())
	line("revision", fmt.Sprintf("%d  (%s by %s)", st.Revision, shortTime(st.Time), st.Actor))
	s := st.Spec
	switch {
	case s == nil:
		line("status", "never deployed")
		return tw.Flush()
	case st.Removed:
		line("status", "removed (a deploy or rollback revives it)")
	default:
		line("status", "deployed")
	}
	if s.Image != "" {
		line("image", s.Image)
	}
	if len(s.Command) > 0 {
		line("command", joinArgs(s.Command))
	}
	line("replicas", fmt.Sprint(s.Replicas))
	if s.Port != 0 {
		line("port", fmt.Sprint(s.Port))
	}
	if len(s.Env) > 0 {
		env, masked := s.Env, false
		if !show {
			env, masked = secrets.MaskEnv(env)
		}
		v := envList(env)
		if masked {
			v += "  (--show-secrets shows them; better: hoist secret set)"
		}
		line("env", v)
	}
	if len(s.Secrets) > 0 {
		var names []string
		for _, name := range slices.Sorted(maps.Keys(s.Secrets)) {
			sec := s.Secrets[name]
			as := ""
			if sec.File != "" {
				as = " as " + sec.File
			}
			names = append(names, fmt.Sprintf("%s%s (key v%d)", name, as, sec.Key))
		}
		line("secrets", strings.Join(names, ", ")+"  (sealed)")
	}
	if len(s.Hosts) > 0 {
		line("hosts", strings.Join(s.Hosts, " "))
	}
	if s.HealthPath != "" {
		line("health path", s.HealthPath)
	}
	line("rollout", fmt.Sprintf("surge %d, health timeout %s", s.EffectiveSurge(), s.EffectiveHealthTimeout()))
	if s.Restart != "" {
		line("restart", s.Restart)
	}
	if s.MemoryMB != 0 {
		line("memory", fmt.Sprintf("%d MB", s.MemoryMB))
	}
	if s.CPUs != 0 {
		line("cpus", fmt.Sprint(s.CPUs))
	}
	if s.Cache != nil {
		line("cache", fmt.Sprintf("ttl %s, max %d bytes", s.Cache.TTL, s.Cache.MaxBytes))
	}
	return tw.Flush()
}
