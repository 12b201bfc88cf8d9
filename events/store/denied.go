package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
)

// ErrPermission is matched by every PermissionError.
var ErrPermission = errors.New("permission denied")

// PermissionError says the server refused an operation on a subject. The
// server tells a client so only asynchronously, and a refused publish or
// API request would otherwise wait out its whole timeout.
type PermissionError struct {
	Op      string // "publish" or "subscribe"
	Subject string
}

func (e *PermissionError) Error() string {
	what := "this credential may not " + e.Op + " there"
	if strings.HasPrefix(e.Subject, "$JS.API.") {
		what = "this credential may not make that JetStream request"
	}
	return fmt.Sprintf("permission denied: %s on %s (%s)", e.Op, e.Subject, what)
}

// Is makes errors.Is(err, ErrPermission) true.
func (e *PermissionError) Is(target error) bool { return target == ErrPermission }

var violationRe = regexp.MustCompile(`(Publish|Subscription) to "(\S+)"`)

// denials turns the connection's asynchronous permission violations into
// errors of the operations that caused them: an operation guards the
// subjects it uses, and a violation on one of them ends its context.
type denials struct {
	mu      sync.Mutex
	waiters map[string]map[*denialWait]struct{}
}

type denialWait struct {
	cancel context.CancelCauseFunc
}

// watchDenials installs a handler on nc's asynchronous errors, keeping the
// handler that was there.
func watchDenials(nc *nats.Conn) *denials {
	d := &denials{waiters: make(map[string]map[*denialWait]struct{})}
	prev := nc.ErrorHandler()
	nc.SetErrorHandler(func(c *nats.Conn, sub *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			if m := violationRe.FindStringSubmatch(err.Error()); m != nil {
				op := "publish"
				if m[1] == "Subscription" {
					op = "subscribe"
				}
				if d.deny(&PermissionError{Op: op, Subject: m[2]}) {
					return // the operation that caused it reports it
				}
			}
		}
		if prev != nil {
			prev(c, sub, err)
		}
	})
	return d
}

// deny ends the operations waiting on pe's subject, and says whether
// there were any.
func (d *denials) deny(pe *PermissionError) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for w := range d.waiters[pe.Subject] {
		w.cancel(pe)
	}
	return len(d.waiters[pe.Subject]) > 0
}

// guard returns a context that ends with a *PermissionError as its cause
// when the server refuses one of subjects, and a release to call when the
// operation is over.
func (d *denials) guard(ctx context.Context, subjects ...string) (context.Context, func()) {
	if d == nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	w := &denialWait{cancel: cancel}
	d.mu.Lock()
	for _, s := range subjects {
		if d.waiters[s] == nil {
			d.waiters[s] = make(map[*denialWait]struct{})
		}
		d.waiters[s][w] = struct{}{}
	}
	d.mu.Unlock()
	return ctx, func() {
		d.mu.Lock()
		for _, s := range subjects {
			delete(d.waiters[s], w)
			if len(d.waiters[s]) == 0 {
				delete(d.waiters, s)
			}
		}
		d.mu.Unlock()
		cancel(nil)
	}
}

// denied returns the permission error that ended ctx, or err.
func denied(ctx context.Context, err error) error {
	var pe *PermissionError
	if errors.As(context.Cause(ctx), &pe) {
		return pe
	}
	return err
}
