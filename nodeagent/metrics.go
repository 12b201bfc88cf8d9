package nodeagent

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/hoist-dev/hoist/events"
)

// WriteMetrics writes the agent's view of each scope in the Prometheus
// text format (version 0.0.4), from the status it reports: revisions,
// replicas, phase. It reads only Status, so it never blocks the agent.
func (a *Agent) WriteMetrics(out io.Writer) error {
	st := a.Status()
	w := bufio.NewWriter(out)
	family := func(name, kind, help string) {
		w.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " " + kind + "\n")
	}
	sample := func(name string, v int64, labels ...string) {
		w.WriteString(name)
		if len(labels) > 0 {
			w.WriteByte('{')
			for i := 0; i+1 < len(labels); i += 2 {
				if i > 0 {
					w.WriteByte(',')
				}
				w.WriteString(labels[i] + `="` + metricLabel(labels[i+1]) + `"`)
			}
			w.WriteByte('}')
		}
		w.WriteString(" " + strconv.FormatInt(v, 10) + "\n")
	}
	node := st.Node
	perScope := func(name, help string, value func(events.ScopeStatus) int64) {
		family(name, "gauge", help)
		for _, sc := range st.Scopes {
			sample(name, value(sc), "node", node, "scope", sc.Scope.String())
		}
	}
	perScope("hoist_agent_desired_revision", "The scope's revision the agent has read.", func(s events.ScopeStatus) int64 { return int64(s.Desired) })
	perScope("hoist_agent_applied_revision", "The scope's revision the agent runs, converged.", func(s events.ScopeStatus) int64 { return int64(s.Applied) })
	perScope("hoist_agent_replicas", "Replicas the agent runs for the scope.", func(s events.ScopeStatus) int64 { return int64(len(s.Replicas)) })
	perScope("hoist_agent_healthy_replicas", "Healthy replicas the agent runs for the scope.", func(s events.ScopeStatus) int64 {
		n := 0
		for _, r := range s.Replicas {
			if r.Healthy {
				n++
			}
		}
		return int64(n)
	})
	family("hoist_agent_scope_phase", "gauge", "1 for the phase the agent is in for the scope.")
	for _, sc := range st.Scopes {
		for _, ph := range []events.Phase{events.PhaseConverged, events.PhaseProgressing, events.PhaseFailed, events.PhaseRemoved} {
			v := int64(0)
			if sc.Phase == ph {
				v = 1
			}
			sample("hoist_agent_scope_phase", v, "node", node, "scope", sc.Scope.String(), "phase", string(ph))
		}
	}
	family("hoist_agent_drained", "gauge", "1 while the node is drained.")
	drained := int64(0)
	if st.Drained {
		drained = 1
	}
	sample("hoist_agent_drained", drained, "node", node)
	family("hoist_agent_error", "gauge", "1 while the node reports an error that belongs to no scope.")
	failing := int64(0)
	if st.Error != "" {
		failing = 1
	}
	sample("hoist_agent_error", failing, "node", node)
	return w.Flush()
}

// MetricsHandler serves /metrics and /healthz for the agent's metrics
// listener.
func (a *Agent) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_ = a.WriteMetrics(w)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

func metricLabel(v string) string {
	if !strings.ContainsAny(v, "\\\"\n") {
		return v
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}
