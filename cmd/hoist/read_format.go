package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
	"github.com/hoist-dev/hoist/secrets"
	"github.com/hoist-dev/hoist/view"
)

// How events and states look to people (one-line summaries, aligned
// columns) and to scripts (stable JSON shapes).

func shortTime(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") }

// summarize says in one line what an event changed, e.g.
// "deployed image=registry.local/web:1 replicas=3 port=8080".
func summarize(e *events.Event) string { return view.Describe(e, false) }

func describe(e *events.Event, show bool) string { return view.Describe(e, show) }

func envList(env map[string]string) string { return view.EnvList(env) }

// The JSON shapes of the read commands, shared with the HTTP API.
type (
	stateJSON   = view.State
	stateSecret = view.Secret
)

func maskPayload(p events.Payload) events.Payload { return view.MaskPayload(p) }

func newStateJSON(st projector.State, show bool) stateJSON { return view.NewState(st, show) }

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
	if c := view.NewCanary(st.Canary); c != nil {
		line("canary", view.DescribeCanary(c))
	}
	if p := st.Paused; p != nil {
		line("paused", fmt.Sprintf("since %s, each request held at most %s  (hoist resume %s ends it)", shortTime(p.Since), p.Max, st.Scope))
	}
	if m := st.Maintenance; m != nil {
		v := "on since " + shortTime(m.Since)
		if m.Message != "" {
			v += ": " + strconv.Quote(m.Message)
		}
		line("maintenance", v+"  (hoist maintenance "+st.Scope.String()+" off ends it)")
	}
	return tw.Flush()
}
