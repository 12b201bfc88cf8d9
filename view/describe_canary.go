package view

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// describeCanary says what a canary event did, e.g. "the analysis shifted
// the canary to 25%: step 25%: canary 5xx 0.2% over 612 requests, p99 12ms
// (over 1m0s from 2 balancers)". ok is false for any other event.
func describeCanary(e *events.Event) (string, bool) {
	switch d := e.Data.(type) {
	case *events.CanaryStarted:
		s := fmt.Sprintf("started a canary at %d%% (%d %s per node", d.Share, d.Replicas, plural(d.Replicas, "replica"))
		if d.Sticky {
			s += ", sticky"
		}
		s += ")"
		if d.Auto != nil {
			s += ", " + describeAnalysis(d.Auto)
		}
		return s + ": " + describeSpec(&d.Spec), true
	case *events.CanaryShifted:
		who := "shifted"
		if d.Automatic {
			who = "the analysis shifted"
		}
		s := fmt.Sprintf("%s the canary to %d%%", who, d.Share)
		if d.Auto != nil {
			s += ", " + describeAnalysis(d.Auto)
		}
		return s + verdict(d.Reason, d.Figures), true
	case *events.CanaryPromoted:
		who := "promoted the canary"
		if d.Automatic {
			who = "the analysis promoted the canary"
		}
		return who + verdict(d.Reason, d.Figures), true
	case *events.CanaryAborted:
		who := "aborted the canary"
		if d.Automatic {
			who = "the analysis aborted the canary"
		}
		return who + verdict(d.Reason, d.Figures), true
	}
	return "", false
}

// describeAnalysis writes a canary's analysis policy, e.g. "automatic:
// 10,25,50,100% every 1m0s while 5xx ≤ 1.0% and p99 ≤ 300ms over ≥ 200
// requests".
func describeAnalysis(a *events.Analysis) string {
	steps := make([]string, len(a.Steps))
	for i, s := range a.Steps {
		steps[i] = strconv.Itoa(s)
	}
	s := fmt.Sprintf("automatic: %s%% every %s while 5xx ≤ %.1f%%", strings.Join(steps, ","), time.Duration(a.Interval), 100*a.MaxErrorRate)
	if a.MaxP99 > 0 {
		s += " and p99 ≤ " + time.Duration(a.MaxP99).String()
	}
	return s + fmt.Sprintf(" over ≥ %d requests", a.MinRequests)
}

func verdict(reason string, f *events.Figures) string {
	switch {
	case reason != "" && f != nil: // the reason names the figures
		return ": " + reason + " (" + f.Span() + ")"
	case reason != "":
		return ": " + reason
	case f != nil:
		return " (" + f.String() + ")"
	}
	return ""
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
