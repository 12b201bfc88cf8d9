package events

import (
	"errors"
	"fmt"
	"strings"
)

// Streams and subjects. The subject is a message's identity: permissions are
// granted on subjects, so a reader takes a message's scope, node, kind,
// backend and actor from its subject, and a body that disagrees is invalid.
//
//	HOIST_EVENTS   hoist.scope.<client>.<env>.<solution>.<kind>.<actor>  config events, kept forever
//	               hoist.node.<node>.<kind>.<actor>                      drain/undrain, kept forever
//	HOIST_SCORES   hoist.score.<client>.<env>.<solution>.<backend>       bounded history per backend
//	HOIST_BACKENDS hoist.backends.<client>.<env>.<solution>.<node>       latest backends per node
//	HOIST_REPORTS  hoist.status.<node>.<client>.<env>.<solution>         a node's view of one scope
//	HOIST_STATS    hoist.stats.<client>.<env>.<solution>.<balancer>      a balancer's canary counts (stats.go)
//
// Stores written before the actor joined the subject also hold
// hoist.scope.<c>.<e>.<s>.<kind> and hoist.node.<node>.<kind>: they are
// read (their actor is as the body claims) but no longer written.
const (
	EventsStream   = "HOIST_EVENTS"
	ScoresStream   = "HOIST_SCORES"
	BackendsStream = "HOIST_BACKENDS"
	ReportsStream  = "HOIST_REPORTS"

	// SubjectRoot is the first token of every hoist subject.
	SubjectRoot = "hoist"
)

// ScopeSubject is the subject of a config event of kind k in scope s,
// published by actor.
func ScopeSubject(s Scope, k Kind, actor string) string {
	return SubjectRoot + ".scope." + s.String() + "." + string(k) + "." + actor
}

// ScopeFilter matches every config event of scope s.
func ScopeFilter(s Scope) string { return SubjectRoot + ".scope." + s.String() + ".>" }

// AllScopesFilter matches every config event of every scope.
const AllScopesFilter = SubjectRoot + ".scope.>"

// NodeSubject is the subject of a node event of kind k for node, published
// by actor.
func NodeSubject(node string, k Kind, actor string) string {
	return SubjectRoot + ".node." + node + "." + string(k) + "." + actor
}

// NodeFilter matches every event of one node.
func NodeFilter(node string) string { return SubjectRoot + ".node." + node + ".>" }

// AllNodesFilter matches every node event.
const AllNodesFilter = SubjectRoot + ".node.>"

// ScoreSubject is the subject of a score for backend in scope s.
func ScoreSubject(s Scope, backend string) string {
	return SubjectRoot + ".score." + s.String() + "." + backendToken(backend)
}

// ScoreFilter matches every score of scope s.
func ScoreFilter(s Scope) string { return SubjectRoot + ".score." + s.String() + ".>" }

// AllScoresFilter matches every score.
const AllScoresFilter = SubjectRoot + ".score.>"

// BackendsSubject is the subject of node's backends report for scope s.
func BackendsSubject(s Scope, node string) string {
	return SubjectRoot + ".backends." + s.String() + "." + node
}

// BackendsFilter matches every backends report of scope s.
func BackendsFilter(s Scope) string { return SubjectRoot + ".backends." + s.String() + ".>" }

// AllBackendsFilter matches every backends report.
const AllBackendsFilter = SubjectRoot + ".backends.>"

// StatusSubject is the subject of node's status for scope s.
func StatusSubject(node string, s Scope) string {
	return SubjectRoot + ".status." + node + "." + s.String()
}

// StatusFilter matches every node's status for scope s.
func StatusFilter(s Scope) string { return SubjectRoot + ".status.*." + s.String() }

// AllStatusFilter matches every node's status for every scope.
const AllStatusFilter = SubjectRoot + ".status.>"

// backendToken turns host:port into one subject token. A validated backend
// host has no '_' (IP addresses and DNS names), so mapping '.' to '_' is
// reversible and keeps the subject readable.
func backendToken(backend string) string { return strings.ReplaceAll(backend, ".", "_") }

// backendFromToken reverses backendToken.
func backendFromToken(tok string) string { return strings.ReplaceAll(tok, "_", ".") }

// Family is what kind of message a subject names.
type Family int

const (
	FamilyUnknown Family = iota
	FamilyScope          // a config event of a scope: numbered in the scope's history
	FamilyNode           // a drain or undrain: numbered in the node's history
	FamilyScore
	FamilyBackends
	FamilyStatus
	FamilyStats // a balancer's request statistics of a scope's canary
)

// Address is everything a subject says about its message.
type Address struct {
	Family   Family
	Scope    Scope
	Node     string
	Kind     Kind   // scope and node events
	Actor    string // scope and node events; "" on subjects written before actors joined them
	Backend  string // scores: host:port, or a slot NODE#INDEX
	Balancer string // request statistics
}

// History names the history a scope or node event belongs to: the key its
// revisions are counted under. It is "" for messages that have none.
func (a Address) History() string {
	switch a.Family {
	case FamilyScope:
		return "scope " + a.Scope.String()
	case FamilyNode:
		return "node " + a.Node
	}
	return ""
}

// ParseSubject reads a hoist subject. When the subject names a history (a
// scope's or a node's) the address says which even if the rest of the
// subject is invalid, so that every message a history's filter matches is
// counted in it; err then says what is wrong.
func ParseSubject(subject string) (Address, error) {
	t := strings.Split(subject, ".")
	if len(t) < 3 || t[0] != SubjectRoot {
		return Address{}, fmt.Errorf("subject %q is not a hoist subject", subject)
	}
	bad := func(err error) error { return fmt.Errorf("subject %q: %w", subject, err) }
	scopeAt := func(i int) (Scope, error) {
		if len(t) < i+3 {
			return Scope{}, fmt.Errorf("subject %q has no scope", subject)
		}
		sc, err := ParseScope(t[i] + "." + t[i+1] + "." + t[i+2])
		if err != nil {
			return Scope{}, bad(err)
		}
		return sc, nil
	}
	var a Address
	switch t[1] {
	case "scope":
		sc, err := scopeAt(2)
		if err != nil {
			return Address{}, err
		}
		a.Family, a.Scope = FamilyScope, sc
		return a, a.kindAndActor(t[5:], Kind.IsScopeKind, bad)
	case "node":
		if err := ValidateNodeName(t[2]); err != nil {
			return Address{}, bad(err)
		}
		a.Family, a.Node = FamilyNode, t[2]
		return a, a.kindAndActor(t[3:], Kind.IsNodeKind, bad)
	case "score":
		sc, err := scopeAt(2)
		if err != nil {
			return Address{}, err
		}
		if len(t) != 6 {
			return Address{}, fmt.Errorf("subject %q is not hoist.score.<scope>.<backend>", subject)
		}
		a.Family, a.Scope, a.Kind, a.Backend = FamilyScore, sc, KindBackendScored, backendFromToken(t[5])
		if err := validateScoreTarget(a.Backend); err != nil {
			return Address{}, bad(err)
		}
		return a, nil
	case "backends":
		sc, err := scopeAt(2)
		if err != nil {
			return Address{}, err
		}
		if len(t) != 6 {
			return Address{}, fmt.Errorf("subject %q is not hoist.backends.<scope>.<node>", subject)
		}
		if err := ValidateNodeName(t[5]); err != nil {
			return Address{}, bad(err)
		}
		a.Family, a.Scope, a.Node = FamilyBackends, sc, t[5]
		return a, nil
	case "stats":
		sc, err := scopeAt(2)
		if err != nil {
			return Address{}, err
		}
		if len(t) != 6 {
			return Address{}, fmt.Errorf("subject %q is not hoist.stats.<scope>.<balancer>", subject)
		}
		if err := ValidateBalancerName(t[5]); err != nil {
			return Address{}, bad(err)
		}
		a.Family, a.Scope, a.Balancer = FamilyStats, sc, t[5]
		return a, nil
	case "status":
		if len(t) != 6 {
			return Address{}, fmt.Errorf("subject %q is not hoist.status.<node>.<scope>", subject)
		}
		if err := ValidateNodeName(t[2]); err != nil {
			return Address{}, bad(err)
		}
		sc, err := scopeAt(3)
		if err != nil {
			return Address{}, err
		}
		a.Family, a.Scope, a.Node = FamilyStatus, sc, t[2]
		return a, nil
	}
	return Address{}, fmt.Errorf("subject %q is not a hoist subject", subject)
}

// kindAndActor reads the <kind>[.<actor>] tail of an event subject.
func (a *Address) kindAndActor(tail []string, belongs func(Kind) bool, bad func(error) error) error {
	if len(tail) == 0 || len(tail) > 2 {
		return bad(errors.New("want <kind>.<actor> after the scope or node"))
	}
	if k := Kind(tail[0]); belongs(k) {
		a.Kind = k
	} else {
		return bad(fmt.Errorf("%q is not a kind of event that belongs there", tail[0]))
	}
	if len(tail) == 2 { // without it, written before actors joined the subject
		if err := ValidateActor(tail[1]); err != nil {
			return bad(err)
		}
		a.Actor = tail[1]
	}
	return nil
}

// MaxActorLen bounds an actor name: it is one subject token.
const MaxActorLen = 64

// ValidateActor checks an actor name. It is a subject token, so that a
// permission can pin it to a credential: 1-64 letters, digits, '-', '_',
// '@' and '+'.
func ValidateActor(a string) error {
	if a == "" || len(a) > MaxActorLen {
		return &FieldError{Field: "actor", Problem: fmt.Sprintf("%q must be 1-%d characters", a, MaxActorLen)}
	}
	for i, c := range a {
		ok := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '@' || c == '+'
		if !ok {
			return &FieldError{Field: "actor", Problem: fmt.Sprintf("%q has %q at byte %d (allowed: letters, digits, '-', '_', '@', '+')", a, c, i+1)}
		}
	}
	return nil
}

// ActorName turns any name (user@host.example) into a valid actor by
// replacing what an actor may not hold with '-'.
func ActorName(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '@' || c == '+'
		if !ok {
			b[i] = '-'
		}
	}
	if len(b) > MaxActorLen {
		b = b[:MaxActorLen]
	}
	if len(b) == 0 {
		return "unknown"
	}
	return string(b)
}
