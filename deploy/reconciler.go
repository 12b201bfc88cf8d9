package deploy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// Config configures a Reconciler. Zero durations take the defaults shown.
type Config struct {
	Runtime Runtime // required
	Node    string  // required: names the node in logs and results
	// Advertise is the host at which others reach this node's replicas:
	// backends are Advertise:HostPort. Default 127.0.0.1.
	Advertise string
	// ProbeHost is the host the reconciler dials for HTTP health checks.
	// Default Advertise.
	ProbeHost string
	Logger    *slog.Logger
	Now       func() time.Time // the clock; default time.Now

	PollInterval    time.Duration // between health polls; 250ms
	ProbeTimeout    time.Duration // one HTTP health probe; 2s
	RunningGrace    time.Duration // how long "running" must last to count as healthy; 1s
	StopTimeout     time.Duration // graceful stop before kill; 10s
	StartTimeout    time.Duration // one runtime Start, which may pull an image; 10m
	CallTimeout     time.Duration // every other runtime call; 1m
	RetryBackoff    time.Duration // first wait before retrying a failed spec; 30s, doubling
	MaxRetryBackoff time.Duration // cap of that wait; 10m
	// DrainDelay is how long to wait between announcing that a replica
	// leaves (OnBackends) and stopping it, so balancers stop sending it
	// new requests first. Default 0.
	DrainDelay time.Duration

	// OnBackends, if set, is told a scope's serving backends (and the
	// replica index of each, its slot) whenever a
	// rollout changes them: after a new replica passes its health check
	// and before a replica is stopped. It must not block for long.
	OnBackends func(scope events.Scope, b Backends)
	// Confirm, if set, is asked before a replica is stopped, right after
	// OnBackends was told the set without it: it returns once that set is
	// acknowledged where balancers read it. While it fails, the rollout
	// pauses with the replica serving (OnPaused says why), so no capacity
	// is taken away that balancers were not told of.
	Confirm func(ctx context.Context, scope events.Scope, backends []string) error
	// OnPaused, if set, is told why a rollout waits for Confirm, and ""
	// when it goes on.
	OnPaused func(scope events.Scope, reason string)
}

// Reconciler converges one node's replicas of a scope to its desired state.
type Reconciler struct {
	cfg      Config
	rt       Runtime
	log      *slog.Logger
	http     *http.Client
	failures failures
}

// NewReconciler returns a Reconciler for cfg.
func NewReconciler(cfg Config) (*Reconciler, error) {
	if cfg.Runtime == nil {
		return nil, errors.New("new reconciler: no runtime")
	}
	if err := events.ValidateNodeName(cfg.Node); err != nil {
		return nil, fmt.Errorf("new reconciler: %w", err)
	}
	if cfg.Advertise == "" {
		cfg.Advertise = "127.0.0.1"
	}
	if cfg.ProbeHost == "" {
		cfg.ProbeHost = cfg.Advertise
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	setDefault(&cfg.PollInterval, 250*time.Millisecond)
	setDefault(&cfg.ProbeTimeout, 2*time.Second)
	setDefault(&cfg.RunningGrace, time.Second)
	setDefault(&cfg.StopTimeout, 10*time.Second)
	setDefault(&cfg.StartTimeout, 10*time.Minute)
	setDefault(&cfg.CallTimeout, time.Minute)
	setDefault(&cfg.RetryBackoff, 30*time.Second)
	setDefault(&cfg.MaxRetryBackoff, 10*time.Minute)
	return &Reconciler{
		cfg:  cfg,
		rt:   cfg.Runtime,
		log:  cfg.Logger.With("node", cfg.Node),
		http: newProbeClient(),
	}, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Result is what a reconcile did and left behind for one scope.
type Result struct {
	Scope    events.Scope
	Revision uint64 // the desired revision reconciled to
	SpecHash string
	Phase    events.Phase
	Reason   string    // why the phase is failed
	RetryAt  time.Time // for a failed rollout: when the same spec may be tried again
	Actions  []Action  // the steps carried out
	// CanaryHash is the canary's spec hash, "" without a canary.
	CanaryHash string
	Replicas   []Replica // the scope's live replicas afterwards: stable by index, then the canary's
	Backends   []string  // Advertise:HostPort of healthy replicas, when the spec has a port
	Slots      map[string]int
	Canary     map[string]int // see Backends
	// Exits are the replicas that had stopped on their own and were
	// removed, with their last lines of output.
	Exits []Exit
}

// Backends are a scope's serving backends on this node: Advertise:HostPort
// of its healthy replicas, of either track, when their spec has a port.
type Backends struct {
	Addrs []string
	Slots map[string]int // the replica index of each stable backend: its slot
	// Canary is the canary replica index of each backend that runs the
	// canary's spec (slot NODE#cINDEX); such a backend is not in Slots.
	Canary map[string]int
}

// ReplicaStatuses converts the replicas for a node status report.
func (res Result) ReplicaStatuses(advertise string) []events.ReplicaStatus {
	out := make([]events.ReplicaStatus, 0, len(res.Replicas))
	for _, r := range res.Replicas {
		st := events.ReplicaStatus{Index: r.Index, Canary: r.Track == TrackCanary, ID: r.ID, Revision: r.Revision, State: string(r.State), Healthy: r.IsHealthy(), Detail: r.Detail}
		if r.HostPort > 0 {
			st.Backend = net.JoinHostPort(advertise, strconv.Itoa(r.HostPort))
		}
		out = append(out, st)
	}
	return out
}

// Reconcile observes the node's replicas of d.Scope, plans the way to d and
// carries it out. It returns an error when it could not observe, when a
// step failed, or when a rollout failed (a *RolloutError); the Result is
// meaningful either way. When d's spec failed before and its backoff has
// not passed, Reconcile changes nothing, returns the failure in the Result
// (Phase failed, RetryAt set) and a nil error.
func (r *Reconciler) Reconcile(ctx context.Context, d Desired) (Result, error) {
	res := Result{Scope: d.Scope, Revision: d.Revision}
	if d.Spec == nil && !d.Removed {
		return r.failed(res, fmt.Errorf("reconcile %s: %w", d.Scope, ErrNoDesiredState))
	}
	if !d.Removed {
		if err := d.Spec.Validate(); err != nil {
			return r.failed(res, fmt.Errorf("reconcile %s: invalid spec: %w", d.Scope, err))
		}
		res.SpecHash = SpecHash(d.Spec)
		if d.Canary != nil {
			if err := d.Canary.Spec.Validate(); err != nil {
				return r.failed(res, fmt.Errorf("reconcile %s: invalid canary spec: %w", d.Scope, err))
			}
			res.CanaryHash = SpecHash(d.Canary.Spec)
		}
	}

	mine, err := r.observe(ctx, d)
	if err != nil {
		return r.failed(res, fmt.Errorf("reconcile %s: %w", d.Scope, err))
	}
	if !d.Removed {
		if fl, ok := r.failures.held(d.Scope, d.Revision, res.failureHash(), r.cfg.Now()); ok {
			r.log.Debug("failed spec held back", "scope", d.Scope, "revision", d.Revision, "retry_at", fl.RetryAt)
			res = r.summarize(res, d, mine)
			res.Phase, res.Reason, res.RetryAt = events.PhaseFailed, fl.Reason, fl.RetryAt
			return res, nil
		}
	}

	ro := newRollout(r, d, mine)
	err = ro.run(ctx, Plan(d, mine))
	res.Actions, res.Exits = ro.done, ro.exits
	res = r.summarize(res, d, ro.replicas())

	var rerr *RolloutError
	switch {
	case err != nil && ctx.Err() != nil:
		// Stopped, most often for a newer revision: not a failure of this
		// one, and nothing to hold back.
		r.log.Debug("rollout stopped before it finished", "scope", d.Scope, "revision", d.Revision, "err", err)
		res.Phase, res.Reason = events.PhaseProgressing, "stopped before it finished"
		return res, ctx.Err()
	case errors.As(err, &rerr):
		fl, news := r.failures.record(Failure{Scope: d.Scope, Revision: d.Revision, SpecHash: res.failureHash(),
			Reason: err.Error(), Time: r.cfg.Now()}, r.backoff)
		level := slog.LevelDebug
		if news {
			level = slog.LevelWarn
		}
		r.log.Log(ctx, level, "rollout failed; replicas it was to replace keep serving", "scope", d.Scope, "revision", d.Revision,
			"err", err, "attempts", fl.Attempts, "retry_at", fl.RetryAt)
		res.Phase, res.Reason, res.RetryAt = events.PhaseFailed, err.Error(), fl.RetryAt
		return res, err
	case err != nil:
		res.Phase, res.Reason = events.PhaseFailed, err.Error()
		return res, fmt.Errorf("reconcile %s: %w", d.Scope, err)
	}
	r.failures.clear(d.Scope)
	return res, nil
}

// failureHash names what a failed rollout tried to run: the stable spec,
// and the canary's beside it.
func (res Result) failureHash() string {
	if res.CanaryHash != "" {
		return res.SpecHash + "+" + res.CanaryHash
	}
	return res.SpecHash
}

func (r *Reconciler) failed(res Result, err error) (Result, error) {
	res.Phase, res.Reason = events.PhaseFailed, err.Error()
	return res, err
}

// observe lists the scope's replicas and, when the spec has a health path,
// probes the live ones so Plan can tell healthy from not.
func (r *Reconciler) observe(ctx context.Context, d Desired) ([]Replica, error) {
	cctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	defer cancel()
	all, err := r.rt.List(cctx)
	if err != nil {
		return nil, fmt.Errorf("list replicas: %w", err)
	}
	var mine []Replica
	for _, rep := range all {
		if rep.Scope == d.Scope {
			mine = append(mine, rep)
		}
	}
	if !d.Removed {
		// Each track is probed at its own spec's health path.
		slices.SortStableFunc(mine, func(a, b Replica) int { return cmp.Compare(a.Track, b.Track) })
		for _, t := range []Track{TrackStable, TrackCanary} {
			spec, _ := d.specOf(t)
			lo, hi := trackRange(mine, t)
			if spec != nil && spec.HealthPath != "" {
				r.probeAll(ctx, mine[lo:hi], spec.HealthPath)
			}
		}
	}
	return mine, nil
}

// trackRange is where the replicas of t are in reps, sorted by track.
func trackRange(reps []Replica, t Track) (lo, hi int) {
	lo = slices.IndexFunc(reps, func(r Replica) bool { return r.Track == t })
	if lo < 0 {
		return 0, 0
	}
	hi = lo
	for hi < len(reps) && reps[hi].Track == t {
		hi++
	}
	return lo, hi
}

// summarize fills a result's replicas, backends and phase from the scope's
// live replicas.
func (r *Reconciler) summarize(res Result, d Desired, reps []Replica) Result {
	live := slices.DeleteFunc(slices.Clone(reps), func(rep Replica) bool {
		return rep.State.Gone() || rep.State == StateRemoving
	})
	slices.SortFunc(live, func(a, b Replica) int {
		return cmp.Or(cmp.Compare(a.Track, b.Track), cmp.Compare(a.Index, b.Index), a.StartedAt.Compare(b.StartedAt))
	})
	res.Replicas = live
	b := r.backends(d, live)
	res.Backends, res.Slots, res.Canary = b.Addrs, b.Slots, b.Canary
	switch {
	case d.Removed && len(live) == 0:
		res.Phase = events.PhaseRemoved
	case d.Removed:
		res.Phase = events.PhaseProgressing
	case converged(d, TrackStable, res.SpecHash, live) && converged(d, TrackCanary, res.CanaryHash, live):
		res.Phase = events.PhaseConverged
	default:
		res.Phase = events.PhaseProgressing
	}
	return res
}

// converged reports whether track t of live runs exactly what d asks of
// it: its count of healthy running replicas of hash, one per index.
func converged(d Desired, t Track, hash string, live []Replica) bool {
	_, want := d.specOf(t)
	n := 0
	seen := make(map[int]bool, len(live))
	for _, rep := range live {
		if rep.Track != t {
			continue
		}
		n++
		if rep.SpecHash != hash || rep.Index >= want || seen[rep.Index] || !rep.IsHealthy() || rep.State != StateRunning {
			return false
		}
		seen[rep.Index] = true
	}
	return n == want
}

// backends are the addresses of the healthy live replicas, old or new: while
// a rollout is held back, the old replicas are the ones serving. A canary's
// replicas are among them, in Canary, until they stop: after an abort the
// balancers send them nothing new, and they drain as any stopped replica.
func (r *Reconciler) backends(d Desired, live []Replica) Backends {
	if d.Removed || d.Spec.Port == 0 && d.Canary == nil && !slices.ContainsFunc(live, func(rep Replica) bool { return rep.Track == TrackCanary }) {
		return Backends{}
	}
	var b Backends
	b.Slots = map[string]int{}
	for _, rep := range live {
		if rep.HostPort > 0 && rep.State == StateRunning && rep.IsHealthy() {
			addr := net.JoinHostPort(r.cfg.Advertise, strconv.Itoa(rep.HostPort))
			if rep.Track == TrackStable && d.Spec.Port == 0 {
				continue
			}
			b.Addrs = append(b.Addrs, addr)
			if rep.Track == TrackCanary {
				if b.Canary == nil {
					b.Canary = map[string]int{}
				}
				b.Canary[addr] = rep.Index
				continue
			}
			b.Slots[addr] = rep.Index
		}
	}
	return b
}
