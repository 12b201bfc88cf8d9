package balancer

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// AdminHandler serves the metrics listener: /metrics (Prometheus text),
// /healthz (200 once the table is built, else 503) and /debug/table (the
// live table as JSON).
func (b *Balancer) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_ = b.WriteMetrics(w)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !b.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("catching up with the event streams\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /debug/table", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(b.TableView())
	})
	return mux
}

// TableView is the JSON form of the live table, with each backend's live
// health and load.
type TableView struct {
	Ready        bool        `json:"ready"`
	Digest       string      `json:"digest"`
	Built        time.Time   `json:"built,omitzero"`
	DefaultScope string      `json:"default_scope,omitempty"`
	Scopes       []ScopeView `json:"scopes"`
	Conflicts    []string    `json:"conflicts,omitempty"`
}

// ScopeView is one pool.
type ScopeView struct {
	Scope      string     `json:"scope"`
	Hosts      []string   `json:"hosts"`
	HealthPath string     `json:"health_path,omitempty"`
	Cache      *CacheView `json:"cache,omitempty"`
	// Canary is the scope's running canary's split, nil when none runs.
	Canary   *events.CanaryTraffic `json:"canary,omitempty"`
	Backends []BackendView         `json:"backends"`
	// Paused (with the requests held now) and Maintenance are set while
	// the scope is paused or in maintenance.
	Paused      *PauseView       `json:"paused,omitempty"`
	Maintenance *MaintenanceView `json:"maintenance,omitempty"`
}

// CacheView is a scope's cache policy and fill.
type CacheView struct {
	TTL      string `json:"ttl"`
	MaxBytes int64  `json:"max_bytes"`
	Entries  int    `json:"entries"`
	Bytes    int64  `json:"bytes"`
}

// BackendView is one backend.
type BackendView struct {
	Addr    string   `json:"addr"`
	Nodes   []string `json:"nodes"`
	Score   int      `json:"score"`
	Scored  bool     `json:"scored"`
	Drained bool     `json:"drained,omitempty"`
	Weight  int      `json:"weight"`
	// Side is stable, canary, or canary-ended (a canary's backend after
	// its canary ended, about to stop: it gets no new request).
	Side      string     `json:"side"`
	Dead      bool       `json:"dead"`
	DeadUntil *time.Time `json:"dead_until,omitempty"`
	InFlight  int64      `json:"in_flight"`
}

// TableView renders the current table.
func (b *Balancer) TableView() TableView {
	v := TableView{Ready: b.Ready(), Scopes: []ScopeView{}}
	t := b.table.Load()
	if t == nil {
		return v
	}
	now := b.cfg.Now().UnixNano()
	v.Digest, v.Built, v.Conflicts = t.digest, time.Unix(0, b.tableSwapAt.Load()).UTC(), t.conflicts
	if t.def != nil {
		v.DefaultScope = t.def.Scope.String()
	}
	for _, p := range t.pools {
		sv := ScopeView{Scope: p.Scope.String(), Hosts: p.Hosts, HealthPath: p.HealthPath, Canary: p.canary(), Backends: []BackendView{}}
		if sv.Hosts == nil {
			sv.Hosts = []string{}
		}
		if p.Cache != nil && p.cache != nil {
			n, size := p.cache.stats()
			sv.Cache = &CacheView{TTL: p.Cache.TTL.String(), MaxBytes: p.cache.maxBytes, Entries: n, Bytes: size}
		}
		p.trafficView(&sv)
		for _, be := range p.Backends {
			bv := BackendView{Addr: be.Addr, Nodes: be.Nodes, Score: be.Score, Scored: be.Scored,
				Drained: be.Drained, Weight: be.Weight, Side: p.sideOf(&be).String(), Dead: be.st.dead(now), InFlight: be.st.inflight.Load()}
			if bv.Dead {
				until := time.Unix(0, be.st.deadUntil.Load()).UTC()
				bv.DeadUntil = &until
			}
			sv.Backends = append(sv.Backends, bv)
		}
		v.Scopes = append(v.Scopes, sv)
	}
	return v
}
