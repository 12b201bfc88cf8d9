package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/projector"
	"github.com/hoist-dev/hoist/view"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Category:  "read",
		Usage:     "show what each node runs: desired vs applied revision, phase, replicas, last error",
		ArgsUsage: "[SCOPE]",
		Description: `Each node's latest report. A node that stopped reporting (no heartbeat for
three of its intervals) is shown as stale, with when it was last seen.

With a SCOPE it also lists the scope's replicas and their backends (the
host:port to give 'hoist score'), and says first whether the scope is paused
(hoist pause) or shows a maintenance page (hoist maintenance): since when, by
whom.

Example:
   hoist status
   hoist status acme.prod.web --json`,
		Flags:  []cli.Flag{jsonFlag()},
		Action: showStatus,
	}
}

func showStatus(c *cli.Context) error {
	a, err := args(c, 0, 1, "[SCOPE]")
	if err != nil {
		return err
	}
	var scope events.Scope
	if len(a) == 1 {
		if scope, err = parseScope(a[0]); err != nil {
			return err
		}
	}
	st, closeStore, err := openStore(c)
	if err != nil {
		return err
	}
	defer closeStore()
	ctx, cancel := context.WithTimeout(c.Context, readTimeout)
	defer cancel()
	var unreadable unreadableReports
	statuses, err := st.NodeStatuses(ctx, scope, unreadable.note)
	defer unreadable.warn(c.App.ErrWriter)
	switch {
	case errors.Is(err, store.ErrPermission) && scope.IsZero():
		return fmt.Errorf("read node statuses: %w\n  This credential reads the status of some scopes only: name one (hoist status SCOPE; 'hoist scopes' lists them)", err)
	case err != nil:
		return fmt.Errorf("read node statuses: %w", err)
	}
	views := projector.StatusView(statuses, scope, time.Now())
	if len(views) == 0 && !scope.IsZero() {
		// A scope no node reports may still exist; one without events
		// is a typo, as for log, state and wait.
		if head, err := st.ScopeHead(ctx, scope); err == nil && head.Revision == 0 {
			return errNoScope(scope)
		}
	}
	if !scope.IsZero() && !c.Bool("json") {
		if ts, err := readTrafficStanding(ctx, st, scope); err != nil {
			fmt.Fprintf(c.App.ErrWriter, "hoist: warning: cannot tell whether %s is paused or in maintenance: %v\n", scope, err)
		} else {
			ts.print(c.App.Writer, scope, time.Now())
		}
	}
	if c.Bool("json") {
		if views == nil {
			views = []projector.NodeView{}
		}
		return writeJSON(c.App.Writer, views)
	}
	if len(views) == 0 {
		if scope.IsZero() {
			fmt.Fprintln(c.App.Writer, "no node has reported yet (is 'hoist agent' running?)")
		} else {
			fmt.Fprintf(c.App.Writer, "no node reports %s (is it in a node.toml of a running agent?)\n", scope)
		}
		return nil
	}
	if err := printStatus(c.App.Writer, views, time.Now()); err != nil || scope.IsZero() {
		return err
	}
	fmt.Fprintln(c.App.Writer)
	if err := printReplicas(c.App.Writer, views); err != nil {
		return err
	}
	return printCanary(ctx, c, st, scope, views)
}

// printCanary adds the scope's running canary, if any, to its status: what
// it runs, its share and how it moves. The node statuses say only which
// replicas are the canary's; its policy is in the scope's history.
func printCanary(ctx context.Context, c *cli.Context, st *store.Store, scope events.Scope, views []projector.NodeView) error {
	hist, err := st.ScopeHistory(ctx, scope, 0)
	switch {
	case errors.Is(err, store.ErrPermission):
		return nil // a credential that reads statuses only: no canary to show
	case err != nil:
		return fmt.Errorf("read history of %s: %w", scope, err)
	}
	h, _ := projector.Fold(scope, hist.Records)
	if cn := view.NewCanary(h.State().Canary); cn != nil {
		_, err = fmt.Fprintf(c.App.Writer, "\ncanary  %s\n", view.DescribeCanary(cn))
		if err == nil && cn.Auto != nil {
			_, err = fmt.Fprintf(c.App.Writer, "analysis  %s\n", describeAnalysisOwner(cn.ID, views))
		}
	}
	return err
}

// printReplicas lists one scope's replicas: where to send `hoist score`.
func printReplicas(w io.Writer, views []projector.NodeView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tREPLICA\tREVISION\tSTATE\tHEALTHY\tBACKEND\tDETAIL")
	for _, v := range views {
		for _, r := range v.Replicas {
			healthy := "no"
			if r.Healthy {
				healthy = "yes"
			}
			index := fmt.Sprint(r.Index)
			if r.Canary {
				index = fmt.Sprintf("c%d (canary)", r.Index)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", v.Node, index, r.Revision, r.State, healthy, orDash(r.Backend), r.Detail)
		}
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printStatus(w io.Writer, views []projector.NodeView, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSCOPE\tDESIRED\tAPPLIED\tPHASE\tHEALTHY\tLAST ERROR")
	for _, v := range views {
		scope, phase := v.Scope.String(), string(v.Phase)
		if scope == "" {
			scope, phase = "-", "idle"
		}
		if v.Drained {
			phase += ", drained"
		}
		if !v.Alive {
			phase = fmt.Sprintf("stale (last seen %s ago)", now.Sub(v.LastSeen).Round(time.Second))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d/%d\t%s\n", v.Node, scope, v.Desired, v.Applied, phase, v.Healthy, v.Total, v.Error)
	}
	return tw.Flush()
}

func waitCommand() *cli.Command {
	return &cli.Command{
		Name:      "wait",
		Category:  "read",
		Usage:     "wait until every live node of a scope runs a revision, converged and healthy",
		ArgsUsage: "SCOPE [--revision N] [--timeout D]",
		Description: `Exits 0 once every live node that serves SCOPE has applied the revision (default:
the scope's head) and all its replicas are healthy. Exits 4 when a node reports
that the rollout failed (with its reason), or on timeout (with what is still
pending). Without any live node serving the scope it keeps waiting, and says so.
With --json it prints {"scope","revision","result","reason","nodes"} on stdout
whichever way it ends: result is converged, failed or timeout (the exit code
says the same).

Example:
   hoist deploy acme.prod.web --image web:2 && hoist wait acme.prod.web`,
		Flags: []cli.Flag{
			&cli.Uint64Flag{Name: "revision", EnvVars: []string{"HOIST_WAIT_REVISION"}, DefaultText: "the scope's head", Usage: "wait for `REVISION`"},
			&cli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, EnvVars: []string{"HOIST_WAIT_TIMEOUT"}, Usage: "give up after `DURATION` (exit 4)"},
			jsonFlag(),
		},
		Action: waitRollout,
	}
}

func waitRollout(c *cli.Context) error {
	a, err := args(c, 1, 1, "SCOPE")
	if err != nil {
		return err
	}
	scope, err := parseScope(a[0])
	if err != nil {
		return err
	}
	timeout := c.Duration("timeout")
	if timeout <= 0 {
		return usagef("--timeout %s: want a positive duration like 2m", timeout)
	}
	if c.IsSet("revision") {
		if err := parsePositiveRevision("--revision", c.Uint64("revision")); err != nil {
			return err
		}
	}
	st, closeStore, err := openStore(c)
	if err != nil {
		return err
	}
	defer closeStore()

	ctx, cancel := context.WithTimeout(c.Context, readTimeout)
	head, err := st.ScopeHead(ctx, scope)
	cancel()
	if err != nil {
		return fmt.Errorf("read head of %s: %w", scope, err)
	}
	if head.Revision == 0 {
		return errNoScope(scope)
	}
	rev := head.Revision
	if c.IsSet("revision") {
		rev = c.Uint64("revision")
		if rev > head.Revision {
			return usagef("--revision %d: %s is at revision %d", rev, scope, head.Revision)
		}
	}
	w := &waiter{store: st, scope: scope, rev: rev, timeout: timeout, progress: c.App.ErrWriter}
	r, err := w.run(c.Context)
	w.unreadable.warn(c.App.ErrWriter)
	if c.Bool("json") {
		if jerr := writeWaitJSON(c, scope, rev, r, err); jerr != nil {
			return jerr
		}
	}
	if err != nil || c.Bool("json") {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%s revision %d is converged and healthy on %s\n", scope, rev, strings.Join(r.Nodes, ", "))
	return nil
}

// waitJSON is what wait --json prints.
type waitJSON struct {
	Scope    string   `json:"scope"`
	Revision uint64   `json:"revision"`
	Result   string   `json:"result"` // converged, failed, timeout
	Reason   string   `json:"reason,omitempty"`
	Nodes    []string `json:"nodes"`
}

// writeWaitJSON prints how a wait ended; an error that is not the rollout's
// failure or a timeout (a lost connection, Ctrl-C) prints nothing.
func writeWaitJSON(c *cli.Context, scope events.Scope, rev uint64, r projector.Rollout, err error) error {
	out := waitJSON{Scope: scope.String(), Revision: rev, Result: "converged", Reason: r.Reason, Nodes: r.Nodes}
	if out.Nodes == nil {
		out.Nodes = []string{}
	}
	var ee *exitErr
	switch {
	case err == nil:
		out.Reason = ""
	case !errors.As(err, &ee) || ee.code != exitWait:
		return nil
	case r.Failed:
		out.Result = "failed"
	default:
		out.Result, out.Reason = "timeout", ee.Error()
	}
	return writeJSON(c.App.Writer, out)
}

// waiter watches node statuses until RolloutState says done or failed.
type waiter struct {
	store    *store.Store
	scope    events.Scope
	rev      uint64
	timeout  time.Duration
	progress io.Writer
	held     map[events.Mark]bool // what Holds said of each node's head
	// unreadable are the reports skipped, warned about once at the end.
	unreadable unreadableReports
}

// unheld checks that the stream still holds the last message of the
// scope's history each of nodes read: a node that read a history the
// stream does not hold (the server was restored from an older backup) has
// converged on revisions that are not the stream's. It returns why not,
// or "".
func (w *waiter) unheld(ctx context.Context, statuses []*events.NodeStatus, nodes []string) string {
	if w.held == nil {
		w.held = map[events.Mark]bool{}
	}
	var out []string
	for _, st := range statuses {
		if !slices.Contains(nodes, st.Node) {
			continue
		}
		for _, sc := range st.Scopes {
			if sc.Scope != w.scope || sc.Head == nil {
				continue
			}
			held, known := w.held[*sc.Head]
			if !known {
				var err error
				if held, err = w.store.Holds(ctx, events.EventsStream, events.ScopeFilter(w.scope), *sc.Head); err != nil {
					return fmt.Sprintf("cannot check the history %s read: %v", st.Node, err)
				}
				w.held[*sc.Head] = held
			}
			if !held {
				out = append(out, fmt.Sprintf("%s read a history of %s the stream does not hold (up to sequence %d: was the server restored from an older backup?); it rebuilds from the stream", st.Node, w.scope, sc.Head.Sequence))
			}
		}
	}
	return strings.Join(out, "; ")
}

func (w *waiter) run(ctx context.Context) (projector.Rollout, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	// One reader follows the kept reports of every node for the scope (a
	// few each), then every new one: nothing falls between a read and a
	// watch, and a rejected report never hides the valid one before it.
	updates := make(chan events.Message, 64)
	caught := make(chan struct{})
	watchErr := make(chan error, 1)
	fctx, fcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer fcancel()
	wg.Go(func() {
		err := w.store.Follow(fctx, store.Follow{Stream: events.ReportsStream, Filter: events.StatusFilter(w.scope)},
			func(m events.Message) {
				select {
				case updates <- m:
				case <-fctx.Done():
				}
			}, func() { close(caught) })
		if err != nil && fctx.Err() == nil {
			watchErr <- err
		}
	})
	reports := map[string]events.Record{} // by node
	take := func(m events.Message) {
		r := events.Interpret(m)
		if r.Err != nil {
			w.unreadable.note(r) // never counted
			return
		}
		reports[r.Node] = r
	}
	for ready := false; !ready; {
		select {
		case m := <-updates:
			take(m)
		case <-caught:
			ready = true
		case err := <-watchErr:
			return projector.Rollout{}, fmt.Errorf("watch node statuses: %w", err)
		case <-ctx.Done():
			return projector.Rollout{}, &exitErr{code: exitWait, err: fmt.Errorf("timed out after %s reading node statuses of %s", w.timeout, w.scope)}
		}
	}
	for len(updates) > 0 {
		take(<-updates)
	}
	tick := time.NewTicker(time.Second) // nodes go stale without a message
	defer tick.Stop()
	last := ""
	for {
		recs := make([]events.Record, 0, len(reports))
		for _, r := range reports {
			recs = append(recs, r)
		}
		statuses := events.MergeStatuses(recs)
		r := projector.RolloutState(statuses, w.scope, w.rev, time.Now())
		if r.Done {
			if reason := w.unheld(ctx, statuses, r.Nodes); reason != "" {
				r.Done, r.Reason = false, reason
			}
		}
		switch {
		case r.Done:
			return r, nil
		case r.Failed:
			return r, &exitErr{code: exitWait, err: errors.New(r.Reason)}
		case r.Reason != last:
			fmt.Fprintf(w.progress, "waiting for %s revision %d: %s\n", w.scope, w.rev, r.Reason)
			last = r.Reason
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return r, &exitErr{code: exitWait, err: fmt.Errorf("timed out after %s waiting for %s revision %d: %s", w.timeout, w.scope, w.rev, r.Reason)}
			}
			return r, ctx.Err()
		case m := <-updates:
			take(m)
		case err := <-watchErr:
			return r, fmt.Errorf("watch node statuses: %w", err)
		case <-tick.C:
		}
	}
}
