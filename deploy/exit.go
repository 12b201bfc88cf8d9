package deploy

import (
	"bytes"
	"context"
	"strings"
	"time"
)

// Bounds of what is kept of a replica's last output.
const (
	// logLines is how many last lines the agent's log gets.
	logLines = 20
	// statusLines and statusBytes bound what a status report carries: a
	// report is published every few seconds, per scope.
	statusLines = 5
	statusBytes = 1024
	// TailBytes bounds how much of a log a runtime reads for its tail.
	TailBytes = 64 << 10
)

// Exit is a replica that stopped running on its own and was removed, with
// its last lines of output: what is left of it once its logs are gone.
type Exit struct {
	Track    Track
	Index    int
	ID       string
	Revision uint64
	Detail   string   // "exit code 3", as the runtime said
	Output   []string // its last lines, bounded for a status report
	Time     time.Time
}

// Summary says it in one line, for a status: "exited (exit code 3); last
// output: a | b".
func (e Exit) Summary() string {
	s := "exited"
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	if len(e.Output) > 0 {
		s += "; last output: " + strings.Join(e.Output, " | ")
	}
	return s
}

// lastWords reads the last lines of a replica that no longer runs, before
// it is removed, and logs them at warning level. A runtime that keeps no
// output, or a failed read, leaves only the replica's detail.
func (r *Reconciler) lastWords(ctx context.Context, rep Replica, detail string) Exit {
	e := Exit{Track: rep.Track, Index: rep.Index, ID: rep.ID, Revision: rep.Revision, Detail: detail, Time: r.cfg.Now()}
	log := r.log.With("scope", rep.Scope, "index", rep.Track.Index(rep.Index), "id", ShortID(rep.ID), "revision", rep.Revision, "detail", detail)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.CallTimeout)
	defer cancel()
	lines, err := r.rt.Tail(cctx, rep.ID, logLines)
	switch {
	case err != nil:
		log.Warn("replica exited; its output could not be read", "err", err)
		return e
	case len(lines) == 0:
		log.Warn("replica exited without output")
		return e
	}
	log.Warn("replica exited; its last lines follow", "output", strings.Join(lines, "\n"))
	e.Output = boundLines(lines, statusLines, statusBytes)
	return e
}

// boundLines keeps at most the last n lines of lines, and of them at most
// maxBytes bytes, the last ones: what a replica printed last says most.
func boundLines(lines []string, n, maxBytes int) []string {
	lines = lines[len(lines)-min(n, len(lines)):]
	var out []string
	size := 0
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		if size+len(l) > maxBytes {
			if size == 0 { // one long line: its end
				out = append(out, "…"+strings.ToValidUTF8(l[len(l)-maxBytes:], ""))
			}
			break
		}
		size += len(l)
		out = append(out, l)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// LastLines splits the end of a log into its last n non-empty lines.
// When partial, b starts inside a line, which is dropped.
func LastLines(b []byte, n int, partial bool) []string {
	if partial {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		} else {
			b = nil
		}
	}
	var out []string
	for l := range strings.SplitSeq(strings.TrimRight(string(b), "\n"), "\n") {
		if l = strings.TrimRight(l, "\r"); strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out[len(out)-min(n, len(out)):]
}

// TailBuffer is an io.Writer that keeps only the last TailBytes written.
type TailBuffer struct {
	b       []byte
	Partial bool // something before the kept bytes was dropped
}

func (t *TailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - TailBytes; over > 0 {
		t.b, t.Partial = append(t.b[:0], t.b[over:]...), true
	}
	return len(p), nil
}

// Lines returns the last n lines written.
func (t *TailBuffer) Lines(n int) []string { return LastLines(t.b, n, t.Partial) }
