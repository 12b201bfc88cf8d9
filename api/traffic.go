package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hoist-dev/hoist/events"
)

// Traffic says how many requests the balancers have answered so far, per
// scope and backend ("" for answers of the balancer itself): counters,
// which the API turns into rates by sampling them every second.
type Traffic func(ctx context.Context) (map[events.Scope]map[string]uint64, error)

// MetricsTraffic reads the request counters from balancers' /metrics (the
// hoist_balancer_requests_total family), summed over all of them.
func MetricsTraffic(urls []string) Traffic {
	client := &http.Client{Timeout: 2 * time.Second}
	return func(ctx context.Context) (map[events.Scope]map[string]uint64, error) {
		total := map[events.Scope]map[string]uint64{}
		for _, u := range urls {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return nil, err
			}
			resp, err := client.Do(req)
			if err != nil {
				return nil, err
			}
			err = addRequestCounts(total, resp.Body)
			resp.Body.Close()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", u, err)
			}
		}
		return total, nil
	}
}

// WriterTraffic reads the request counters from a Prometheus text writer
// in this process ('hoist dev”s balancer).
func WriterTraffic(write func(io.Writer) error) Traffic {
	return func(context.Context) (map[events.Scope]map[string]uint64, error) {
		pr, pw := io.Pipe()
		written := make(chan struct{})
		go func() { // joined below: it ends once pr is closed, if not before
			defer close(written)
			pw.CloseWithError(write(pw))
		}()
		total := map[events.Scope]map[string]uint64{}
		err := addRequestCounts(total, pr)
		pr.Close()
		<-written
		return total, err
	}
}

// addRequestCounts adds the request counters of one exposition to total.
func addRequestCounts(total map[events.Scope]map[string]uint64, r io.Reader) error {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return err
	}
	fam := fams["hoist_balancer_requests_total"]
	if fam == nil {
		return nil
	}
	for _, m := range fam.GetMetric() {
		var scope, backend string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "scope":
				scope = l.GetValue()
			case "backend":
				backend = l.GetValue()
			}
		}
		sc, err := events.ParseScope(scope)
		if err != nil {
			continue // answered before routing: no scope
		}
		if total[sc] == nil {
			total[sc] = map[string]uint64{}
		}
		total[sc][backend] += uint64(m.GetCounter().GetValue())
	}
	return nil
}

// rateSamples is how many per-second rates are kept per backend: the
// dashboard's chart.
const rateSamples = 60

// sampler samples the counters every second and keeps recent rates.
type sampler struct {
	source Traffic
	now    func() time.Time

	mu    sync.Mutex
	last  map[events.Scope]map[string]uint64
	at    time.Time
	rates map[events.Scope]map[string][]float64 // newest last
}

func newSampler(src Traffic, now func() time.Time) *sampler {
	return &sampler{source: src, now: now, rates: map[events.Scope]map[string][]float64{}}
}

func (s *sampler) run(ctx context.Context, log *slog.Logger) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	failing := false
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		counts, err := s.source(cctx)
		cancel()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			log.Warn("cannot read the balancers' request counts; request rates are unknown", "err", err)
			failing = true
		case err == nil:
			if failing {
				log.Info("reading the balancers' request counts again")
				failing = false
			}
			s.take(counts, s.now())
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *sampler) take(counts map[events.Scope]map[string]uint64, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last != nil {
		dt := now.Sub(s.at).Seconds()
		next := map[events.Scope]map[string][]float64{}
		for sc, byBackend := range counts {
			next[sc] = map[string][]float64{}
			for be, n := range byBackend {
				rate := 0.0
				if prev, ok := s.last[sc][be]; ok && n >= prev && dt > 0 {
					rate = float64(n-prev) / dt
				}
				hist := append(s.rates[sc][be], rate)
				if len(hist) > rateSamples {
					hist = hist[len(hist)-rateSamples:]
				}
				next[sc][be] = hist
			}
		}
		s.rates = next
	}
	s.last, s.at = counts, now
}

// of returns the recent rates of a scope's backends (copies).
func (s *sampler) of(sc events.Scope) map[string][]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]float64{}
	for be, h := range s.rates[sc] {
		out[be] = append([]float64(nil), h...)
	}
	return out
}
