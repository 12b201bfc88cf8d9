package view

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/secrets"
)

// Describe says in one line what an event changed, e.g.
// "deployed image=registry.local/web:1 replicas=3 port=8080", with plain
// env values that look secret masked unless show is set.
func Describe(e *events.Event, show bool) string {
	if s, ok := describeTraffic(e); ok {
		return s
	}
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
			parts = append(parts, "set "+EnvList(set))
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
	if s, ok := describeCanary(e); ok {
		return s
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
		add("command", quoteArg(JoinArgs(s.Command)))
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

// EnvList is "A=1 B=2", sorted by name, values quoted when needed.
func EnvList(env map[string]string) string {
	keys := slices.Sorted(maps.Keys(env))
	for i, k := range keys {
		keys[i] = k + "=" + quoteArg(env[k])
	}
	return strings.Join(keys, " ")
}

// JoinArgs quotes words so that a POSIX shell splits them back, for display.
func JoinArgs(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = quoteArg(w)
	}
	return strings.Join(quoted, " ")
}

func quoteArg(w string) string {
	if w == "" {
		return "''"
	}
	if !strings.ContainsAny(w, " \t\n'\"\\$`") {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}
