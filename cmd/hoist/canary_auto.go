package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
)

// 'hoist canary SCOPE --auto' hands the canary to its analysis: the agents
// that serve the scope step its share on through --steps, one step per
// --interval while the canary stays within --max-error-rate and --max-p99
// over at least --min-requests, promote it after the last step, and abort
// it over a limit. The figures come from the balancers; see docs/canary.md.

// Defaults of the analysis flags: events.DefaultAnalysis, as the HTTP API
// has them too.
var (
	defaultAnalysis     = events.DefaultAnalysis()
	defaultSteps        = joinInts(defaultAnalysis.Steps)
	defaultInterval     = time.Duration(defaultAnalysis.Interval)
	defaultMaxErrorRate = strconv.FormatFloat(defaultAnalysis.MaxErrorRate*100, 'f', -1, 64) + "%"
	defaultMinRequests  = defaultAnalysis.MinRequests
)

// joinInts writes 10,25,50,100.
func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// analysisFlagNames are the flags that make sense only with --auto.
var analysisFlagNames = []string{"steps", "interval", "max-error-rate", "max-p99", "min-requests"}

func canaryAutoFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "auto", Usage: "let the canary's analysis step the share on, promote or abort it (from the first of --steps unless SHARE is given)"},
		&cli.StringFlag{Name: "steps", Value: defaultSteps, Usage: "the `SHARES` the analysis steps through, rising, comma-separated; promoted after the last"},
		&cli.DurationFlag{Name: "interval", Value: defaultInterval, Usage: "time `D` at each step before the analysis decides (1s-24h)"},
		&cli.StringFlag{Name: "max-error-rate", Value: defaultMaxErrorRate, Usage: "highest share of 5xx answers allowed, as `RATE` 1% or 0.01"},
		&cli.DurationFlag{Name: "max-p99", Usage: "highest p99 latency `D` allowed (0: not checked)"},
		&cli.IntFlag{Name: "min-requests", Value: defaultMinRequests, Usage: "the analysis decides only once the canary served `N` requests at its step"},
	}
}

// analysisOptions are the analysis flags as given.
type analysisOptions struct {
	Steps        string
	Interval     time.Duration
	MaxErrorRate string
	MaxP99       time.Duration
	MinRequests  int
}

// parseAnalysis turns the flags into a policy, or a usage error that names
// the flag and what it wants.
func parseAnalysis(o analysisOptions) (*events.Analysis, error) {
	var steps []int
	for _, tok := range strings.Split(o.Steps, ",") {
		tok = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(tok), "%"))
		n, err := strconv.Atoi(tok)
		if err != nil {
			return nil, usagef("--steps %q: %q is not a share (want rising whole percentages like 10,25,50,100)", o.Steps, tok)
		}
		steps = append(steps, n)
	}
	rate, err := parseRate(o.MaxErrorRate)
	if err != nil {
		return nil, usagef("--max-error-rate %q: %v", o.MaxErrorRate, err)
	}
	a := &events.Analysis{Steps: steps, Interval: events.Duration(o.Interval), MaxErrorRate: rate,
		MaxP99: events.Duration(o.MaxP99), MinRequests: o.MinRequests}
	var fe *events.FieldError
	if err := a.Validate(); errors.As(err, &fe) {
		return nil, usagef("--%s %s", strings.ReplaceAll(fe.Field, "_", "-"), fe.Problem)
	} else if err != nil {
		return nil, usagef("%v", err)
	}
	return a, nil
}

// parseRate reads "1%", "0.5%" or a fraction "0.01".
func parseRate(s string) (float64, error) {
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(t, "%")), 64)
	switch {
	case err != nil || v != v: // NaN
		return 0, fmt.Errorf("not a rate (want a percentage like 1%% or a fraction like 0.01)")
	case pct:
		v /= 100
	case v > 1:
		return 0, fmt.Errorf("a fraction over 1 (did you mean %s%%?)", t)
	}
	if v < 0 || v > 1 {
		return 0, fmt.Errorf("want 0%%-100%%")
	}
	return v, nil
}

// canaryMinArgs is how many arguments 'hoist canary' needs: with --auto
// the share may be left out (the analysis starts at its first step).
func canaryMinArgs(c *cli.Context) int {
	if c.Bool("auto") {
		return 1
	}
	return 2
}

// canaryAutoShift is the shift 'hoist canary' publishes: with --auto, the
// analysis's policy, from share (-1: its first step); without, a hand's
// shift to share. Analysis flags without --auto are a usage error.
func canaryAutoShift(c *cli.Context, share int) (*events.CanaryShifted, error) {
	if !c.Bool("auto") {
		for _, f := range analysisFlagNames {
			if c.IsSet(f) {
				return nil, usagef("--%s needs --auto (without it, the share moves only by hand)", f)
			}
		}
		return &events.CanaryShifted{Share: share}, nil
	}
	a, err := parseAnalysis(analysisOptions{Steps: c.String("steps"), Interval: c.Duration("interval"),
		MaxErrorRate: c.String("max-error-rate"), MaxP99: c.Duration("max-p99"), MinRequests: c.Int("min-requests")})
	if err != nil {
		return nil, err
	}
	if share < 0 {
		share = a.Steps[0]
	}
	return &events.CanaryShifted{Share: share, Auto: a}, nil
}

// describeAnalysisOwner says, from the nodes' reports, which node runs the
// analysis of canary id and what it waits for.
func describeAnalysisOwner(id uint64, views []projector.NodeView) string {
	named := ""
	for _, v := range views {
		a := v.Analysis
		if a == nil || a.Canary != id || a.Owner == "" {
			continue
		}
		if a.Owner == v.Node {
			s := "run by " + v.Node
			if !v.Alive {
				s += " (stale report: another node takes over when its lease expires)"
			}
			if a.Detail != "" {
				s += ": " + a.Detail
			}
			return s
		}
		named = a.Owner
	}
	if named != "" {
		return "run by " + named + " (as other nodes report; its own report is missing)"
	}
	return "no node runs it yet (agents take it up within seconds of reading the canary)"
}
