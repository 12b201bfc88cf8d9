package balancer

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"
)

// activeChecks probes the health path of every backend of every scope that
// has one, each interval: a 2xx or 3xx revives the backend, anything else
// marks it dead for DeadTTL.
func (b *Balancer) activeChecks(ctx context.Context) {
	tick := time.NewTicker(b.cfg.ActiveCheckInterval)
	defer tick.Stop()
	client := &http.Client{
		Transport:     b.transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t := b.table.Load()
		if t == nil {
			continue
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for _, p := range t.pools {
			if p.HealthPath == "" {
				continue
			}
			for i := range p.Backends {
				be := &p.Backends[i]
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					b.probe(ctx, client, p, be)
				})
			}
		}
		wg.Wait()
	}
}

func (b *Balancer) probe(parent context.Context, client *http.Client, p *Pool, be *Backend) {
	ctx, cancel := context.WithTimeout(parent, min(b.cfg.ActiveCheckInterval, 5*time.Second))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+be.Addr+p.HealthPath, nil)
	if err != nil {
		return
	}
	for _, h := range p.Hosts {
		if h[0] != '*' {
			req.Host = h
			break
		}
	}
	res, err := client.Do(req)
	if parent.Err() != nil {
		return // shutting down: no verdict
	}
	healthy := err == nil && res.StatusCode < 400
	if res != nil {
		_, _ = io.CopyN(io.Discard, res.Body, 4<<10)
		res.Body.Close()
	}
	now := b.cfg.Now()
	wasDead := be.st.dead(now.UnixNano())
	if healthy {
		be.st.revive()
		if wasDead {
			b.log.Info("backend passed its health check", "scope", p.live.name, "backend", be.Addr)
		}
		return
	}
	be.st.markDead(now.Add(b.cfg.DeadTTL))
	if !wasDead {
		b.log.Warn("backend failed its health check", "scope", p.live.name, "backend", be.Addr, "path", p.HealthPath, "err", errOrStatus(err, res))
	}
}

// sweepCaches drops expired cache entries in the background.
func (b *Balancer) sweepCaches(ctx context.Context) {
	tick := time.NewTicker(b.cfg.CacheSweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if t := b.table.Load(); t != nil {
			now := b.cfg.Now()
			for _, p := range t.pools {
				if c := p.cache; c != nil {
					c.sweep(now)
				}
			}
		}
	}
}
