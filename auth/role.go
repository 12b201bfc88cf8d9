package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Kind is what a credential may do.
type Kind string

const (
	KindAdmin    Kind = "admin"    // everything
	KindDeployer Kind = "deployer" // publishes config events for scope patterns
	KindAgent    Kind = "agent"    // one node, the scopes it serves
	KindBalancer Kind = "balancer" // reads backends, scores and drain state
	KindReader   Kind = "reader"   // reads scope patterns, publishes nothing
)

// kinds lists every role kind, for help texts and errors.
var kinds = []Kind{KindAdmin, KindDeployer, KindAgent, KindBalancer, KindReader}

// ParseKind reads a role kind.
func ParseKind(s string) (Kind, error) {
	k := Kind(strings.ToLower(s))
	if slices.Contains(kinds, k) {
		return k, nil
	}
	return "", invalidf("unknown role %q (want admin, deployer, agent, balancer or reader)", s)
}

// Role is one credential's identity and what it may do. Name becomes the
// actor token of its events and its inbox prefix (_INBOX_<name>).
type Role struct {
	Kind Kind
	Name string
	// Scopes are scope patterns (client.env.solution, each token a literal
	// or '*') for deployers and readers, and the literal scopes an agent
	// serves.
	Scopes []string
	Node   string // agents only
}

// defaultReaderScopes is what a reader without --scopes may read.
var defaultReaderScopes = []string{"*.*.*"}

// ErrInvalid is matched by every validation error of this package.
var ErrInvalid = errors.New("invalid")

// invalidError is bad input; errors.Is(err, ErrInvalid) holds.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// maxNameLen is the longest a credential or node name may be.
const maxNameLen = 63

// validateName checks a credential or node name: 1-63 characters of a-z
// and 0-9, with '-' and '_' inside. Names become one subject token, so
// '.', '*', '>' and spaces can never be part of one.
func validateName(what, name string) error {
	if rule := nameRule(name, true); rule != "" {
		return invalidf("%s %q %s", what, name, rule)
	}
	return nil
}

// nameRule returns the rule s breaks, or "". Scope tokens follow the same
// rule without '_' (as events.ParseScope does).
func nameRule(s string, underscore bool) string {
	allowed := "a-z, 0-9 and inner '-'"
	if underscore {
		allowed = "a-z, 0-9 and inner '-' or '_'"
	}
	switch {
	case s == "":
		return fmt.Sprintf("is empty (want 1-%d characters of %s)", maxNameLen, allowed)
	case len(s) > maxNameLen:
		return fmt.Sprintf("is %d characters long (want at most %d)", len(s), maxNameLen)
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' || (underscore && c == '_'):
			if i == 0 || i == len(s)-1 {
				return "must start and end with a lowercase letter or digit"
			}
		default:
			return fmt.Sprintf("has %q at byte %d (allowed: %s)", c, i+1, allowed)
		}
	}
	return ""
}

// validateScopePattern checks a scope pattern: three dot-separated tokens,
// each a literal scope token or '*'. literal refuses '*' (an agent's
// scopes).
func validateScopePattern(p string, literal bool) error {
	toks := strings.Split(p, ".")
	if len(toks) != 3 {
		return invalidf("scope pattern %q: want client.env.solution (3 dot-separated tokens, each a name or '*'), got %d", p, len(toks))
	}
	for i, t := range toks {
		part := [3]string{"client", "environment", "solution"}[i]
		if t == "*" {
			if literal {
				return invalidf("scope %q: an agent serves literal scopes, and the %s is '*'", p, part)
			}
			continue
		}
		if rule := nameRule(t, false); rule != "" {
			return invalidf("scope pattern %q: %s %q %s", p, part, t, rule)
		}
	}
	return nil
}

// Validate checks that the role is complete and that every name and scope
// is a valid subject token, and fills the reader's default scopes.
func (r Role) Validate() (Role, error) {
	if _, err := ParseKind(string(r.Kind)); err != nil {
		return r, err
	}
	if err := validateName("name", r.Name); err != nil {
		return r, err
	}
	switch r.Kind {
	case KindAgent:
		if err := validateName("node", r.Node); err != nil {
			return r, fmt.Errorf("agent %s: %w", r.Name, err)
		}
		if len(r.Scopes) == 0 {
			return r, invalidf("agent %s serves no scopes (give the literal scopes it serves, e.g. acme.prod.web)", r.Name)
		}
	case KindDeployer:
		if len(r.Scopes) == 0 {
			return r, invalidf("deployer %s has no scope patterns (e.g. acme.prod.* or *.*.*)", r.Name)
		}
	case KindReader:
		if len(r.Scopes) == 0 {
			r.Scopes = defaultReaderScopes
		}
	case KindAdmin, KindBalancer:
		if len(r.Scopes) > 0 {
			return r, invalidf("%s %s takes no scopes: it covers all of them", r.Kind, r.Name)
		}
	}
	if r.Kind != KindAgent && r.Node != "" {
		return r, invalidf("only an agent has a node, not %s %s", r.Kind, r.Name)
	}
	for _, s := range r.Scopes {
		if err := validateScopePattern(s, r.Kind == KindAgent); err != nil {
			return r, err
		}
	}
	return r, nil
}

func (r Role) String() string {
	s := string(r.Kind) + " " + r.Name
	if r.Node != "" {
		s += " on node " + r.Node
	}
	if len(r.Scopes) > 0 {
		s += " for " + strings.Join(r.Scopes, ",")
	}
	return s
}
