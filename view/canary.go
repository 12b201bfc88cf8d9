package view

import (
	"fmt"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
)

// Canary is a scope's running canary as 'hoist state --json' and 'hoist
// status' show it.
type Canary struct {
	ID       uint64   `json:"id"` // the revision that started it
	Image    string   `json:"image,omitempty"`
	Command  []string `json:"command,omitempty"`
	Spec     string   `json:"spec"` // describeSpec of what it runs
	Share    int      `json:"share"`
	Replicas int      `json:"replicas"` // per serving node
	Sticky   bool     `json:"sticky,omitempty"`
	// Auto is the analysis policy, nil when the share moves by hand only;
	// NextStep is when the analysis looks at the canary next.
	Auto          *events.Analysis `json:"auto,omitempty"`
	Since         time.Time        `json:"since"`
	SinceRevision uint64           `json:"since_revision"`
	NextStep      *time.Time       `json:"next_step,omitempty"`
}

// NewCanary is c's view, nil without a canary.
func NewCanary(c *projector.Canary) *Canary {
	if c == nil {
		return nil
	}
	out := &Canary{ID: c.ID, Image: c.Spec.Image, Command: c.Spec.Command, Spec: describeSpec(c.Spec), Share: c.Share,
		Replicas: c.Replicas, Sticky: c.Sticky, Auto: c.Auto, Since: c.Since, SinceRevision: c.SinceRevision}
	if c.Auto != nil {
		next := c.Since.Add(time.Duration(c.Auto.Interval))
		out.NextStep = &next
	}
	return out
}

// DescribeCanary says in one line what a canary runs and gets, e.g.
// "revision 7: 10% of new requests, 1 replica per node, by hand since
// 10:04:05: image=web:2 replicas=3".
func DescribeCanary(c *Canary) string {
	s := fmt.Sprintf("revision %d: %d%% of new requests, %d %s per node", c.ID, c.Share, c.Replicas, plural(c.Replicas, "replica"))
	if c.Sticky {
		s += ", sticky"
	}
	if c.Auto != nil {
		s += fmt.Sprintf(", %s, share set at revision %d (%s), next step at %s", describeAnalysis(c.Auto), c.SinceRevision,
			c.Since.Local().Format(time.TimeOnly), c.NextStep.Local().Format(time.TimeOnly))
	} else {
		s += fmt.Sprintf(", by hand, share set at revision %d (%s)", c.SinceRevision, c.Since.Local().Format(time.TimeOnly))
	}
	return s + ": " + c.Spec
}
