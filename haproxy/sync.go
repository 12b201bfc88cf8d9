package haproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/hoist-dev/hoist/balancer"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
)

// Mapping ties one HAProxy backend to the scope whose replicas it serves.
type Mapping struct {
	Backend string
	Scope   events.Scope
}

// Config configures a Syncer. Zero durations take the defaults shown.
type Config struct {
	Runtime  *Runtime
	Mappings []Mapping
	// Interval is how often every backend is synced even when nothing
	// changed: it repairs a reloaded HAProxy and moves drained servers
	// into maintenance once their sessions end. 1s.
	Interval time.Duration
	// DefaultScore weighs replicas that have no score (balancer's default).
	DefaultScore int
	// ScoreMaxAge: older scores fall back to DefaultScore (0: never).
	ScoreMaxAge time.Duration
	// Resolve turns a backend's host into an address when it is a name
	// (agents advertise addresses, usually): net.DefaultResolver.
	Resolve func(ctx context.Context, host string) (netip.Addr, error)
	Logger  *slog.Logger
}

// Syncer keeps HAProxy backends on the replicas of their scopes.
type Syncer struct {
	cfg Config
	rt  *Runtime
	log *slog.Logger

	// Owned by Run's goroutine.
	prefer  map[string]map[string]string // backend → slot → server last given it
	carried map[string]map[string]string // backend → server → slot it carries or last carried, for logs
	health  map[string]string            // backend → its last sync error ("" when fine)
}

// New checks cfg and returns a Syncer.
func New(cfg Config) (*Syncer, error) {
	if cfg.Runtime == nil {
		return nil, errors.New("haproxy: no Runtime API socket")
	}
	if len(cfg.Mappings) == 0 {
		return nil, errors.New("haproxy: no backend to sync")
	}
	seen := map[string]bool{}
	for _, m := range cfg.Mappings {
		if m.Backend == "" || m.Scope.IsZero() {
			return nil, fmt.Errorf("haproxy: mapping %q=%q needs a backend name and a scope", m.Backend, m.Scope)
		}
		if seen[m.Backend] {
			return nil, fmt.Errorf("haproxy: backend %s is mapped twice: one HAProxy backend serves one scope", m.Backend)
		}
		seen[m.Backend] = true
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.DefaultScore == 0 {
		cfg.DefaultScore = balancer.DefaultDefaultScore
	}
	if cfg.Resolve == nil {
		cfg.Resolve = resolve
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Syncer{cfg: cfg, rt: cfg.Runtime, log: cfg.Logger, prefer: map[string]map[string]string{}, carried: map[string]map[string]string{}, health: map[string]string{}}, nil
}

// Check asks HAProxy for every mapped backend once: a missing socket, a
// socket without level admin, or an unknown backend ends a start at once,
// with what to fix. (Later, the same errors are logged and retried: an
// HAProxy restarting must not stop the Syncer.)
func (s *Syncer) Check(ctx context.Context) error {
	for _, m := range s.cfg.Mappings {
		servers, err := s.rt.Servers(ctx, m.Backend)
		if err != nil {
			return err
		}
		if len(servers) == 0 {
			return fmt.Errorf("%w: backend %s has no server: give it a server-template (server-template hoist 10 127.0.0.1:1 disabled weight 100)", ErrUnknownBackend, m.Backend)
		}
	}
	return nil
}

// Run follows the streams and syncs until ctx ends. It returns nil then,
// or why the streams cannot be followed.
func (s *Syncer) Run(ctx context.Context, store *store.Store) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tables := make(chan *balancer.Table, 1) // only the newest counts
	var (
		wg     sync.WaitGroup
		follow error
	)
	wg.Go(func() {
		defer cancel()
		follow = balancer.FollowTable(ctx, store, s.log, s.cfg.DefaultScore, s.cfg.ScoreMaxAge, func(t *balancer.Table) {
			select {
			case <-tables:
			default:
			}
			tables <- t
		})
	})
	defer wg.Wait()

	tick := time.NewTicker(s.cfg.Interval)
	defer tick.Stop()
	var table *balancer.Table
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			if follow != nil && !errors.Is(follow, context.Canceled) {
				return follow
			}
			return nil
		case t := <-tables:
			if table == nil {
				s.log.Info("caught up with the streams: syncing HAProxy", "socket", s.rt.String(), "backends", len(s.cfg.Mappings))
			}
			table = t
		case <-tick.C:
			if table == nil {
				continue // nothing is known yet: change nothing
			}
		}
		for _, m := range s.cfg.Mappings {
			s.syncBackend(ctx, m, table)
		}
	}
}

// syncBackend brings one backend to the table, and logs its health when
// it changes (not on every failing round).
func (s *Syncer) syncBackend(ctx context.Context, m Mapping, t *balancer.Table) {
	err := s.SyncOnce(ctx, m, t)
	if ctx.Err() != nil {
		return
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg == s.health[m.Backend] {
		return
	}
	s.health[m.Backend] = msg
	switch {
	case err == nil:
		s.log.Info("HAProxy backend in sync again", "backend", m.Backend, "scope", m.Scope)
	default:
		s.log.Error("cannot sync HAProxy backend; retrying", "backend", m.Backend, "scope", m.Scope, "every", s.cfg.Interval, "err", err)
	}
}

// SyncOnce reads what HAProxy has for one backend and changes what differs
// from the table, in the plan's order. It stops at the first command that
// fails (the next sync starts over from what HAProxy says then).
func (s *Syncer) SyncOnce(ctx context.Context, m Mapping, t *balancer.Table) error {
	want, err := s.targets(ctx, m.Scope, t)
	if err != nil {
		return err
	}
	servers, err := s.rt.Servers(ctx, m.Backend)
	if err != nil {
		return err
	}
	prefer := s.prefer[m.Backend]
	changes, taken, planErr := Plan(m.Backend, servers, want, prefer)
	for _, c := range changes {
		if err := s.rt.Apply(ctx, m.Backend, c); err != nil {
			return err
		}
		slot := c.Target.Slot
		if slot == "" { // a server being freed: the slot it last carried
			slot = s.carried[m.Backend][c.Server]
		}
		s.log.Info("HAProxy server changed", "backend", m.Backend, "server", c.Server, "scope", m.Scope, "slot", slot,
			"addr", c.Target.Backend, "change", c.What, "from", c.From, "to", c.To)
	}
	if prefer == nil {
		prefer = map[string]string{}
		s.prefer[m.Backend] = prefer
	}
	carried := map[string]string{}
	for server, tg := range taken {
		if tg.Slot != "" {
			prefer[tg.Slot] = server
			carried[server] = tg.Slot
		}
	}
	for server, slot := range s.carried[m.Backend] {
		if _, now := carried[server]; !now {
			carried[server] = slot // leaving: named in the logs until reused
		}
	}
	s.carried[m.Backend] = carried
	return planErr
}

// targets are the scope's live replicas in t, resolved.
func (s *Syncer) targets(ctx context.Context, sc events.Scope, t *balancer.Table) ([]Target, error) {
	p := t.Pool(sc)
	if p == nil || p.Removed {
		return nil, nil
	}
	out := make([]Target, 0, len(p.Backends))
	weights := shareWeights(p, p.Backends)
	for i, b := range p.Backends {
		host, port, err := net.SplitHostPort(b.Addr)
		if err != nil {
			return nil, fmt.Errorf("backend %q of %s: %w", b.Addr, sc, err)
		}
		pn, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("backend %q of %s: port %q", b.Addr, sc, port)
		}
		addr, err := netip.ParseAddr(host)
		if err != nil {
			if addr, err = s.cfg.Resolve(ctx, host); err != nil {
				return nil, fmt.Errorf("backend %q of %s: resolve %s: %w", b.Addr, sc, host, err)
			}
		}
		tg := Target{Backend: b.Addr, Addr: addr.Unmap(), Port: pn, Weight: weights[i]}
		if len(b.Slots) > 0 {
			tg.Slot = b.Slots[0]
		}
		out = append(out, tg)
	}
	return out, nil
}

func resolve(ctx context.Context, host string) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(ips) == 0 {
		return netip.Addr{}, fmt.Errorf("%s has no address", host)
	}
	return ips[0].Unmap(), nil
}
