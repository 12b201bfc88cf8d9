package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/hoist-dev/hoist/auth"
	"github.com/hoist-dev/hoist/events"
)

// principal is who a request acts as: a token's role, or the anonymous
// role a server allows (admin in 'hoist dev' on loopback, a reader with
// --public-read). Its rights are exactly the NATS permissions of its role
// (auth.Permissions): a read is allowed when the role may create a
// consumer with that filter, a write when it may publish on the event's
// subject. So a token and a NATS credential of the same role are denied
// the same things.
type principal struct {
	role      auth.Role
	anonymous bool
	// actor is who its writes are recorded as: the token's name, or for
	// the anonymous role the server's AnonymousActor.
	actor string
	pub   []string // the role's publish allow list
}

func newPrincipal(r auth.Role, anonymous bool) (*principal, error) {
	perms, err := auth.Permissions(r)
	if err != nil {
		return nil, err
	}
	return &principal{role: r, anonymous: anonymous, actor: r.Name, pub: perms.Pub.Allow}, nil
}

func (p *principal) allows(subject string) bool {
	for _, pat := range p.pub {
		if subjectMatch(pat, subject) {
			return true
		}
	}
	return false
}

// denial is a refused request: 403 with a message like the CLI's
// "permission denied: …", or 401 when an anonymous request needs a token.
type denial struct {
	status int
	msg    string
}

func (d *denial) Error() string { return d.msg }

// mayRead checks a read of stream through filter.
func (p *principal) mayRead(stream, filter string) error {
	if p.allows("$JS.API.CONSUMER.CREATE." + stream + ".api." + filter) {
		return nil
	}
	return p.deny("read", filter)
}

// mayPublish checks a write of an event on subject.
func (p *principal) mayPublish(subject string) error {
	if p.allows(subject) {
		return nil
	}
	return p.deny("publish", subject)
}

func (p *principal) deny(op, subject string) error {
	if p.anonymous {
		return &denial{status: http.StatusUnauthorized, msg: fmt.Sprintf("permission denied: %s on %s needs a token (Authorization: Bearer TOKEN; see docs/api.md)", op, subject)}
	}
	return &denial{status: http.StatusForbidden, msg: fmt.Sprintf("permission denied: %s on %s (token %s, %s, may not %s there)", op, subject, p.role.Name, p.role, op)}
}

// mayReadScope checks a read of a scope's config events.
func (p *principal) mayReadScope(sc events.Scope) error {
	return p.mayRead(events.EventsStream, events.ScopeFilter(sc))
}

// canSee says whether a live message may be shown to p: the reads of its
// stream that a consumer of its scope (or node) would need.
func (p *principal) canSee(m events.Message, a events.Address) bool {
	switch a.Family {
	case events.FamilyScope:
		return p.mayRead(events.EventsStream, events.ScopeFilter(a.Scope)) == nil
	case events.FamilyNode:
		return p.mayRead(events.EventsStream, events.NodeFilter(a.Node)) == nil
	case events.FamilyScore:
		return p.mayRead(events.ScoresStream, events.ScoreFilter(a.Scope)) == nil
	case events.FamilyBackends:
		return p.mayRead(events.BackendsStream, events.BackendsFilter(a.Scope)) == nil ||
			p.mayRead(events.BackendsStream, m.Subject) == nil
	case events.FamilyStatus:
		return p.mayRead(events.ReportsStream, events.StatusFilter(a.Scope)) == nil ||
			p.mayRead(events.ReportsStream, m.Subject) == nil
	}
	return false
}

// subjectMatch reports whether NATS subject pattern pat matches subject,
// token by token: '*' matches one token and a final '>' one or more. A
// subject that holds wildcards itself (a consumer's filter) matches only
// where pat's wildcards cover them, as the server's permission check does.
func subjectMatch(pat, subject string) bool {
	pt, st := strings.Split(pat, "."), strings.Split(subject, ".")
	for i, t := range pt {
		if t == ">" {
			return len(st) > i
		}
		if i >= len(st) {
			return false
		}
		switch {
		case t == "*":
			if st[i] == ">" {
				return false
			}
		case t != st[i]:
			return false
		}
	}
	return len(pt) == len(st)
}
