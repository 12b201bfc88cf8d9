package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/backoff"
	"github.com/hoist-dev/hoist/internal/lifecycle"
	"github.com/hoist-dev/hoist/projector"
	"github.com/hoist-dev/hoist/secrets"
)

// Options configure an Agent. Node, ReferenceFile, Runtime and Connect are
// required.
type Options struct {
	Node          Node
	ReferenceFile string
	// KeyFile keeps the node's key pair, which scope keys are sealed to
	// (see package secrets). It is made at the first start, mode 0600.
	// Default: node.key next to ReferenceFile.
	KeyFile     string
	Runtime     deploy.Runtime
	RuntimeName string // "docker" or "process", shown in the status
	// Connect dials NATS. It is called until it succeeds; the connection
	// it returns should reconnect forever (store.ConnectOptions.Daemon).
	Connect func(ctx context.Context) (*nats.Conn, error)
	// AgentCheck is the HAProxy agent-check listen address; "" disables it.
	AgentCheck string
	Heartbeat  time.Duration // status heartbeat; default 5s
	Resync     time.Duration // periodic reconcile; default 30s
	// Deploy tunes the reconciler. Runtime, Node, Advertise, Logger and
	// OnBackends are set by the agent.
	Deploy deploy.Config
	Store  store.Options
	// Actor names the agent in the node events it publishes (drain,
	// undrain): with auth on, its credential's name. Default
	// "hoist-agent@NODE".
	Actor   string
	Version string
	Logger  *slog.Logger
	Now     func() time.Time
	// OnFolded and OnApplied are for benchmarks and tests that time the
	// event path; they run on the feed's goroutine and must return
	// quickly. OnFolded is called as soon as an event that changes a
	// scope's desired state is folded into the agent's book, before it is
	// written to the reference file and acked. OnApplied is called when
	// the feed hands a scope's new desired state to the scope's worker:
	// the events up to revision are folded, on disk and acked, and the
	// worker acts on them.
	OnFolded  func(scope events.Scope, revision uint64)
	OnApplied func(scope events.Scope, revision uint64)
}

// Defaults of Options.
const (
	DefaultHeartbeat = 5 * time.Second
	DefaultResync    = 30 * time.Second
)

// Agent is a running node agent. Open starts it; Close stops it.
type Agent struct {
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	st     *statusBook
	rec    *deploy.Reconciler
	ln     net.Listener
	feed   *feed
	vault  *vault
	keeper *keeper
	// analyst runs the canary analyses this node owns (analysis.go).
	analyst *analyst

	// life owns the agent's goroutines: the feed, the keeper, the NATS
	// dialler, the drift watch, the agent-check server and the reporter.
	// Each worker owns its own (worker.go).
	life   *lifecycle.Group
	stores chan *store.Store

	mu      sync.Mutex
	workers map[events.Scope]*worker
	store   *store.Store
	nc      *nats.Conn

	closeOnce sync.Once
	closeErr  error
}

// Open loads the reference file, binds the agent-check listener and starts
// the agent: workers act at once on the scopes the reference file holds,
// and the rest waits for NATS, which is dialled in the background.
func Open(opts Options) (*Agent, error) {
	if err := events.ValidateNodeName(opts.Node.Name); err != nil {
		return nil, fmt.Errorf("open agent: %w", err)
	}
	switch {
	case len(opts.Node.Scopes) == 0:
		return nil, errors.New("open agent: the node serves no scope")
	case opts.ReferenceFile == "":
		return nil, errors.New("open agent: no reference file path")
	case opts.Runtime == nil:
		return nil, errors.New("open agent: no runtime")
	case opts.Connect == nil:
		return nil, errors.New("open agent: no way to connect to NATS")
	}
	if opts.Node.Advertise == "" {
		opts.Node.Advertise = DefaultAdvertise
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.Resync <= 0 {
		opts.Resync = DefaultResync
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Actor == "" {
		opts.Actor = "hoist-agent@" + opts.Node.Name
	}
	if opts.KeyFile == "" {
		opts.KeyFile = filepath.Join(filepath.Dir(opts.ReferenceFile), "node.key")
	}
	log := opts.Logger.With("node", opts.Node.Name)
	a := &Agent{opts: opts, log: log, now: opts.Now, stores: make(chan *store.Store, 1), workers: map[events.Scope]*worker{}}
	key, created, err := secrets.LoadOrCreate(opts.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("open agent: %w", err)
	}
	if created {
		log.Info("made the node's key pair; grants seal scope keys to it", "path", opts.KeyFile, "key", key.Public().Fingerprint())
	}
	a.vault = newVault(opts.Node.Name, key)
	a.keeper = newKeeper(a.vault, opts.Actor, log, a.currentStore)
	a.st = newStatusBook(opts.Node.Name, opts.Node.Advertise, opts.RuntimeName, opts.Version, opts.Heartbeat, opts.Now())
	a.analyst = newAnalyst(opts.Node.Name, opts.Actor, log, opts.Now, a.st.setAnalysis)

	dc := opts.Deploy
	dc.Runtime, dc.Node, dc.Advertise, dc.Logger = opts.Runtime, opts.Node.Name, opts.Node.Advertise, opts.Logger
	dc.OnBackends, dc.Confirm, dc.OnPaused = a.st.setBackends, a.confirmBackends, a.st.setPaused
	rec, err := deploy.NewReconciler(dc)
	if err != nil {
		return nil, fmt.Errorf("open agent: %w", err)
	}
	a.rec = rec

	b := a.loadBook()
	a.feed = &feed{book: b, path: opts.ReferenceFile, log: log, status: a.st, reload: make(chan reloadReq),
		persist: make(chan struct{}, 1), notify: map[events.Scope]bool{}, hooks: feedHooks{
			now: a.now, failures: a.rec.Failures, deliver: a.deliver, setScopes: a.setScopes,
			offerKey: a.keeper.offer, nodeKey: a.keeper.nodeKeyIs, offerAnalysis: a.analyst.offer,
			onFolded: opts.OnFolded, onApplied: opts.OnApplied,
		}}

	if opts.AgentCheck != "" {
		if a.ln, err = listenCheck(opts.AgentCheck); err != nil {
			return nil, err
		}
	}

	a.life = lifecycle.New(context.Background(), log, stopBound)
	a.setScopes(b.scopeList())
	for _, sc := range b.scopeList() {
		if d, ok := b.desired(sc); ok {
			a.st.setHead(sc, b.after(sc))
			a.deliver(d, b.keyring(sc))
		}
	}
	if b.nodeSt.Synced {
		a.st.setDrained(b.nodeSt.Drained, b.nodeSt.Reason)
	}
	if a.ln != nil {
		cs := &checkServer{ln: a.ln, view: a.st.checkView, log: log}
		a.life.Go("agent check", cs.serve)
	}
	a.life.Go("feed", func(ctx context.Context) { a.feed.run(ctx, a.stores) })
	a.life.Go("keeper", a.keeper.run)
	a.life.Go("connect", a.connect)
	a.life.Go("drift watch", a.watch)
	return a, nil
}

// stopBound is how long Close waits for each owner's goroutines (the
// agent's, then each worker's, whose rollout in flight takes back its
// unproven replicas) before it names the ones still running and returns.
const stopBound = time.Minute

// loadBook reads the reference file. A missing one starts an empty book; a
// corrupt one is set aside and reported, and the book is rebuilt from the
// stream. Either way nothing is acted on until the stream was read.
func (a *Agent) loadBook() *desiredBook {
	path, name, scopes := a.opts.ReferenceFile, a.opts.Node.Name, a.opts.Node.Scopes
	ref, err := loadReference(path, name)
	var b *desiredBook
	if err == nil && ref != nil {
		b, err = bookFromReference(ref, scopes)
	}
	switch {
	case err != nil:
		msg := fmt.Sprintf("reference file unusable (%v); rebuilding it from the stream", err)
		if errors.Is(err, ErrCorruptReference) {
			if aside, aerr := setAsideCorrupt(path, a.now()); aerr == nil {
				msg += "; the old file is kept as " + aside
			}
		}
		a.log.Error(msg)
		a.st.setNodeError(errReference, msg)
		return newDesiredBook(name, scopes)
	case ref == nil:
		a.log.Info("no reference file yet; desired state will be read from the stream", "path", path)
		return newDesiredBook(name, scopes)
	}
	a.rec.RestoreFailures(ref.Failures)
	a.log.Info("loaded reference file", "path", path, "scopes", len(ref.Scopes))
	return b
}

// Close stops the agent and waits for every goroutine it started, at most
// stopBound for each owner: one still running then is named in the error
// (and the log). Replicas keep running. It is safe to call twice.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		errs := []error{a.life.Stop()}
		a.mu.Lock()
		workers := slices.Collect(maps.Values(a.workers))
		a.workers = map[events.Scope]*worker{}
		nc := a.nc
		a.mu.Unlock()
		for _, w := range workers {
			errs = append(errs, w.stopAndWait())
		}
		if nc != nil {
			nc.Close()
		}
		if err := errors.Join(errs...); err != nil {
			a.closeErr = fmt.Errorf("close agent: %w", err)
		}
	})
	return a.closeErr
}

// connect dials NATS until it succeeds and opens the store, then hands the
// store to the feed and starts the reporter. Until then, scopes the
// reference file did not hold are only observed, never acted on.
func (a *Agent) connect(ctx context.Context) {
	pause := backoff.New(250*time.Millisecond, 5*time.Second)
	lastErr := ""
	for {
		st, err := a.dial(ctx)
		if err == nil {
			if lastErr != "" {
				a.log.Info("connected to NATS")
			}
			a.st.setNodeError(errNATS, "")
			a.stores <- st
			a.keeper.poke()
			r := &reporter{st: a.st, pub: st, interval: a.opts.Heartbeat, now: a.now, log: a.log}
			a.life.Go("reporter", r.run)
			a.life.Go("analyst", func(ctx context.Context) { a.analyst.run(ctx, st) })
			return
		}
		if ctx.Err() != nil {
			return
		}
		msg := fmt.Sprintf("desired state unreadable from the stream: %v", err)
		if unknown := a.st.unknownScopes(); len(unknown) > 0 {
			msg += fmt.Sprintf("; running replicas of %v are left untouched until it can be read", unknown)
		}
		if msg != lastErr {
			a.log.Error("cannot reach NATS; retrying", "err", err, "untouched_scopes", a.st.unknownScopes())
			lastErr = msg
		}
		a.st.setNodeError(errNATS, msg)
		if !pause.Wait(ctx) {
			return
		}
	}
}

func (a *Agent) dial(ctx context.Context) (*store.Store, error) {
	nc, err := a.opts.Connect(ctx)
	if err != nil {
		return nil, err
	}
	octx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	opts := a.opts.Store
	if opts.Logger == nil {
		opts.Logger = a.log
	}
	st, err := store.Open(octx, nc, opts)
	if err != nil {
		nc.Close()
		return nil, err
	}
	a.mu.Lock()
	a.store, a.nc = st, nc
	a.mu.Unlock()
	return st, nil
}

// confirmTimeout bounds one attempt to have a backend set acknowledged.
const confirmTimeout = 3 * time.Second

// confirmBackends publishes sc's backend report, which OnBackends just
// set to backends, and returns once the stream acknowledged it: before
// that, balancers may still send requests to a replica about to stop.
func (a *Agent) confirmBackends(ctx context.Context, sc events.Scope, _ []string) error {
	st := a.currentStore()
	if st == nil {
		return errors.New("not connected to NATS yet")
	}
	rep := a.st.backendsReport(sc, a.now())
	if rep == nil {
		return fmt.Errorf("no backends of %s known", sc)
	}
	ctx, cancel := context.WithTimeout(ctx, confirmTimeout)
	defer cancel()
	return st.PublishBackends(ctx, rep)
}

func (a *Agent) currentStore() *store.Store {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.store
}

// nodeKey is the public key the node's grants are made for.
func (a *Agent) nodeKey() string { return a.vault.key.Public().String() }

// watch turns the runtime's drift hints into reconciles of their scope.
func (a *Agent) watch(ctx context.Context) {
	for ctx.Err() == nil {
		for ch := range a.opts.Runtime.Watch(ctx) {
			a.mu.Lock()
			w := a.workers[ch.Scope]
			a.mu.Unlock()
			if w != nil {
				a.log.Debug("drift", "scope", ch.Scope, "replica", ch.Index, "action", ch.Action)
				w.drift()
			}
		}
		select { // the watch ended early (engine restarted?): watch again
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// setScopes starts a worker for each new scope and stops those of dropped
// scopes (their replicas keep running).
func (a *Agent) setScopes(scopes []events.Scope) {
	a.st.setScopes(scopes)
	a.analyst.keep(scopes)
	a.mu.Lock()
	var stop []*worker
	for sc, w := range a.workers {
		if !slices.Contains(scopes, sc) {
			stop = append(stop, w)
			delete(a.workers, sc)
		}
	}
	for _, sc := range scopes {
		if a.workers[sc] == nil {
			a.workers[sc] = startWorker(a.life.Context(), &worker{scope: sc, rec: a.rec, rt: a.opts.Runtime, st: a.st, log: a.log,
				resync: a.opts.Resync, persist: a.feed.requestPersist})
		}
	}
	a.mu.Unlock()
	for _, w := range stop {
		_ = w.stopAndWait() // one still running is logged
	}
}

// deliver hands a scope's new desired state to its worker. A ring lets
// d's rollouts open its secrets with it, a keyring no one else changes.
func (a *Agent) deliver(d deploy.Desired, ring *projector.Keyring) {
	if ring != nil {
		d.Secrets = opener{v: a.vault, ring: ring}
	}
	a.mu.Lock()
	w := a.workers[d.Scope]
	a.mu.Unlock()
	if w != nil {
		w.setDesired(d)
	}
}

// Reload makes the agent serve n's scopes. The node's name and advertise
// address cannot change while it runs.
func (a *Agent) Reload(n Node) error {
	if n.Name != a.opts.Node.Name {
		return fmt.Errorf("reload: the node name changed from %s to %s; restart the agent to rename a node", a.opts.Node.Name, n.Name)
	}
	if n.Advertise != a.opts.Node.Advertise {
		return fmt.Errorf("reload: advertise changed from %s to %s; restart the agent to change it", a.opts.Node.Advertise, n.Advertise)
	}
	req := reloadReq{scopes: slices.Clone(n.Scopes), done: make(chan struct{})}
	select {
	case a.feed.reload <- req:
	case <-a.life.Context().Done():
		return errors.New("reload: the agent is stopped")
	}
	select {
	case <-req.done:
		return nil
	case <-a.life.Context().Done():
		return errors.New("reload: the agent is stopped")
	}
}

// Drain publishes a NodeDrained event for this node: agent checks answer
// "drain" and balancers send it no new requests once it is folded.
func (a *Agent) Drain(ctx context.Context, reason string) error {
	return a.appendNode(ctx, &events.NodeDrained{Reason: reason})
}

// Undrain publishes a NodeUndrained event for this node.
func (a *Agent) Undrain(ctx context.Context) error {
	return a.appendNode(ctx, &events.NodeUndrained{})
}

func (a *Agent) appendNode(ctx context.Context, p events.Payload) error {
	a.mu.Lock()
	st := a.store
	a.mu.Unlock()
	if st == nil {
		return fmt.Errorf("publish %s: not connected to NATS yet", p.Kind())
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := st.Append(ctx, &events.Event{Node: a.opts.Node.Name, Actor: a.opts.Actor, Data: p}, store.AppendOptions{})
	return err
}

// Status is the node status the agent would publish now.
func (a *Agent) Status() *events.NodeStatus { return a.st.nodeStatus(a.now()) }

// AgentCheckAddr is the address the agent-check listener is bound to, or
// nil when it is disabled.
func (a *Agent) AgentCheckAddr() net.Addr {
	if a.ln == nil {
		return nil
	}
	return a.ln.Addr()
}
