package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
)

// unreadableReports gathers the status reports a command's reads rejected
// (junk published on hoist.status.NODE.SCOPE by hand or by a broken
// client), so that the command warns about them once, in one line, however
// often it reads: such a report stays in the reports stream until it ages
// out, and `hoist wait` reads every report of its scope each time one
// arrives. They are never counted as a node's status.
type unreadableReports struct {
	seqs     map[uint64]bool   // the messages, counted once each
	subjects map[string]string // the last reason on each subject
}

// maxNamed bounds the subjects the warning names; the count is of all.
const maxNamed = 3

// note is a skipped callback of Store.NodeStatuses, and what wait calls for
// each report it cannot read.
func (u *unreadableReports) note(r events.Record) {
	if r.Err == nil {
		return
	}
	if u.seqs == nil {
		u.seqs, u.subjects = map[uint64]bool{}, map[string]string{}
	}
	u.seqs[r.Sequence] = true
	reason := r.Err.Error()
	var rej *events.Rejection
	if errors.As(r.Err, &rej) && rej.Reason != nil {
		reason = rej.Reason.Error() // the subject is named beside it
	}
	u.subjects[r.Subject] = reason
}

// warn writes the one line, when there is anything to say.
func (u *unreadableReports) warn(w io.Writer) {
	n := len(u.seqs)
	if n == 0 {
		return
	}
	subjects := make([]string, 0, len(u.subjects))
	for s := range u.subjects {
		subjects = append(subjects, s)
	}
	slices.Sort(subjects)
	var named []string
	for _, s := range subjects[:min(len(subjects), maxNamed)] {
		named = append(named, s+": "+u.subjects[s])
	}
	if more := len(subjects) - len(named); more > 0 {
		named = append(named, fmt.Sprintf("and %d more subjects", more))
	}
	what, it, subject := "report", "it ages", subjects[0]
	if n > 1 {
		what, it = "reports", "they age"
	}
	if len(subjects) > 1 {
		subject = "SUBJECT" // one purge per subject
	}
	fmt.Fprintf(w, "hoist: %d unreadable status %s ignored (%s); %s out of %s within %s, or an admin purges now: nats stream purge %s --subject %s -f\n",
		n, what, strings.Join(named, "; "), it, events.ReportsStream, formatAge(store.DefaultReportsMaxAge), events.ReportsStream, subject)
}

// formatAge writes a whole number of hours as "24h", not "24h0m0s".
func formatAge(d time.Duration) string {
	return strings.TrimSuffix(d.String(), "0m0s")
}
