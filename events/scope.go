package events

import (
	"fmt"
	"strings"
)

// Scope names one deployable unit: client.environment.solution.
type Scope struct {
	Client      string
	Environment string
	Solution    string
}

// MaxTokenLen is the longest a scope token (or node name) may be.
const MaxTokenLen = 63

var scopeParts = [3]string{"client", "environment", "solution"}

// ScopeError explains why a scope was rejected, naming the offending token.
type ScopeError struct {
	Input string
	Part  string // "client", "environment", "solution", or "" for the shape
	Token string
	Rule  string
}

func (e *ScopeError) Error() string {
	if e.Part == "" {
		return fmt.Sprintf("invalid scope %q: %s", e.Input, e.Rule)
	}
	return fmt.Sprintf("invalid scope %q: %s %q %s", e.Input, e.Part, e.Token, e.Rule)
}

// ParseScope parses "client.environment.solution". Each token is 1–63
// characters of lowercase letters, digits and '-', starting and ending with a
// letter or digit.
func ParseScope(s string) (Scope, error) {
	tokens := strings.Split(s, ".")
	if len(tokens) != 3 {
		return Scope{}, &ScopeError{Input: s, Rule: fmt.Sprintf("want client.environment.solution (3 dot-separated tokens), got %d", len(tokens))}
	}
	for i, tok := range tokens {
		if rule := tokenRule(tok); rule != "" {
			return Scope{}, &ScopeError{Input: s, Part: scopeParts[i], Token: tok, Rule: rule}
		}
	}
	return Scope{Client: tokens[0], Environment: tokens[1], Solution: tokens[2]}, nil
}

// MustParseScope is ParseScope for constants in tests and examples.
func MustParseScope(s string) Scope {
	sc, err := ParseScope(s)
	if err != nil {
		panic(err)
	}
	return sc
}

func (s Scope) String() string {
	if s.IsZero() {
		return ""
	}
	return s.Client + "." + s.Environment + "." + s.Solution
}

// IsZero reports whether s is the empty scope.
func (s Scope) IsZero() bool { return s == Scope{} }

// MarshalText encodes the scope as "client.environment.solution".
func (s Scope) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses and validates a scope.
func (s *Scope) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*s = Scope{}
		return nil
	}
	sc, err := ParseScope(string(b))
	if err != nil {
		return err
	}
	*s = sc
	return nil
}

// validate checks a Scope built field by field (a parsed one is valid).
func (s Scope) validate() error {
	for i, tok := range [3]string{s.Client, s.Environment, s.Solution} {
		if rule := tokenRule(tok); rule != "" {
			return &ScopeError{Input: s.String(), Part: scopeParts[i], Token: tok, Rule: rule}
		}
	}
	return nil
}

// ValidateNodeName checks a node name with the same rule as a scope token,
// because node names become subject tokens and consumer names.
func ValidateNodeName(name string) error {
	if rule := tokenRule(name); rule != "" {
		return fmt.Errorf("invalid node name %q: %s", name, rule)
	}
	return nil
}

// tokenRule returns the rule tok breaks, or "" when it is valid.
func tokenRule(tok string) string {
	switch {
	case tok == "":
		return "is empty (want 1-63 characters)"
	case len(tok) > MaxTokenLen:
		return fmt.Sprintf("is %d characters long (want at most %d)", len(tok), MaxTokenLen)
	}
	for i, c := range tok {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-':
			if i == 0 || i == len(tok)-1 {
				return "must start and end with a lowercase letter or digit"
			}
		case c >= 'A' && c <= 'Z':
			return "must be lowercase (letters a-z, digits and '-')"
		default:
			return fmt.Sprintf("has %q at byte %d (allowed: a-z, 0-9 and '-')", c, i+1)
		}
	}
	return ""
}
