package api

import (
	"github.com/hoist-dev/hoist/events"
)

// backendsJSON is GET /v1/scopes/{scope}/backends: the live weights the
// balancers use, from the same fold (balancer.Fold), and request rates
// when the API knows the balancers' counters.
type backendsJSON struct {
	Scope   string   `json:"scope"`
	Hosts   []string `json:"hosts"`
	Removed bool     `json:"removed"`
	// Rate is the scope's requests per second over the last second, and
	// Rates the last minute of it, oldest first; absent when unknown.
	Rate     *float64      `json:"rate,omitempty"`
	Rates    []float64     `json:"rates,omitempty"`
	Backends []backendJSON `json:"backends"`
}

type backendJSON struct {
	Addr    string   `json:"addr"`
	Nodes   []string `json:"nodes"`
	Score   int      `json:"score"`
	Scored  bool     `json:"scored"`
	Drained bool     `json:"drained"`
	Weight  int      `json:"weight"`
	// Share is the backend's part of new requests: by the canary's share
	// between the sides when one runs, then by weight within its side.
	Share float64 `json:"share"`
	// Canary marks a backend that runs the scope's canary.
	Canary bool     `json:"canary,omitempty"`
	Rate   *float64 `json:"rate,omitempty"`
}

func (s *Server) backends(sc events.Scope) backendsJSON {
	out := backendsJSON{Scope: sc.String(), Hosts: []string{}, Backends: []backendJSON{}}
	pool := s.hub.table(s.now()).Pool(sc)
	rates := s.traffic.of(sc)
	if pool == nil {
		return out
	}
	out.Removed = pool.Removed
	out.Hosts = append(out.Hosts, pool.Hosts...)
	shares := pool.Shares()
	var sum []float64
	for _, b := range pool.Backends {
		bj := backendJSON{Addr: b.Addr, Nodes: b.Nodes, Score: b.Score, Scored: b.Scored, Drained: b.Drained, Weight: b.Weight,
			Share: shares[b.Addr], Canary: b.Canary}
		if h := rates[b.Addr]; len(h) > 0 {
			r := h[len(h)-1]
			bj.Rate = &r
		} else if s.opts.Traffic != nil {
			bj.Rate = new(float64) // no request counted for it yet
		}
		out.Backends = append(out.Backends, bj)
	}
	for _, h := range rates {
		if len(h) > len(sum) {
			sum = append(make([]float64, len(h)-len(sum)), sum...)
		}
		off := len(sum) - len(h)
		for i, v := range h {
			sum[off+i] += v
		}
	}
	if len(sum) > 0 {
		out.Rates = sum
		r := sum[len(sum)-1]
		out.Rate = &r
	} else if s.opts.Traffic != nil {
		out.Rate = new(float64)
	}
	return out
}
