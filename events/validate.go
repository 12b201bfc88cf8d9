package events

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// FieldError names the field of an event or spec that is wrong, and why.
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string { return e.Field + " " + e.Problem }

// ErrInvalid is matched by every validation error, for callers that only
// need to map bad input to a usage exit code.
var ErrInvalid = errors.New("invalid input")

// Is makes errors.Is(err, ErrInvalid) true for field errors.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Is makes errors.Is(err, ErrInvalid) true for scope errors.
func (e *ScopeError) Is(target error) bool { return target == ErrInvalid }

// ValidateReplicas checks a replica count.
func ValidateReplicas(n int) error {
	if n < 0 || n > MaxReplicas {
		return &FieldError{Field: "replicas", Problem: fmt.Sprintf("is %d (want 0-%d)", n, MaxReplicas)}
	}
	return nil
}

// ValidateEnv checks one environment variable.
func ValidateEnv(key, value string) error {
	if key == "" {
		return &FieldError{Field: "env", Problem: "has an empty name"}
	}
	for i, c := range key {
		ok := c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return &FieldError{Field: "env " + strconv.Quote(key), Problem: "is not a valid name (letters, digits and '_', not starting with a digit)"}
		}
	}
	if len(key) > 256 {
		return &FieldError{Field: "env " + strconv.Quote(key[:32]+"…"), Problem: "name is longer than 256 characters"}
	}
	if hasNUL(value) {
		return &FieldError{Field: "env " + key, Problem: "value contains a NUL byte"}
	}
	return nil
}

// ValidateScore checks a backend score.
func ValidateScore(score int) error {
	if score < 0 || score > 100 {
		return &FieldError{Field: "score", Problem: fmt.Sprintf("is %d (want 0-100)", score)}
	}
	return nil
}

// ValidateBackend checks a backend address: host:port, where host is an IP
// address or a DNS name.
func ValidateBackend(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return &FieldError{Field: "backend", Problem: fmt.Sprintf("%q is not host:port", addr)}
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return &FieldError{Field: "backend", Problem: fmt.Sprintf("%q has a non-numeric port", addr)}
	}
	if err := validatePort("backend port", p); err != nil {
		return err
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	if err := validateDNSName(host, false); err != nil {
		return &FieldError{Field: "backend", Problem: fmt.Sprintf("%q: host %s", addr, err)}
	}
	return nil
}

// ValidateHost checks a virtual host name: a DNS name, optionally starting
// with a "*." wildcard label. Host names are matched lowercase.
func ValidateHost(h string) error {
	if h != strings.ToLower(h) {
		return fmt.Errorf("%q must be lowercase", h)
	}
	return validateDNSName(h, true)
}

func validateDNSName(h string, allowWildcard bool) error {
	if h == "" {
		return errors.New("is empty")
	}
	if len(h) > 253 {
		return fmt.Errorf("%q is longer than 253 characters", h)
	}
	labels := strings.Split(h, ".")
	for i, l := range labels {
		if l == "*" && i == 0 && allowWildcard && len(labels) > 1 {
			continue
		}
		if l == "" || len(l) > 63 {
			return fmt.Errorf("%q has an empty or over-long label", h)
		}
		for j, c := range l {
			ok := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || (c == '-' && j > 0 && j < len(l)-1)
			if !ok {
				return fmt.Errorf("%q has %q in label %q (allowed: letters, digits, inner '-')", h, c, l)
			}
		}
	}
	return nil
}

func validatePort(field string, p int) error {
	if p < 1 || p > 65535 {
		return &FieldError{Field: field, Problem: fmt.Sprintf("is %d (want 1-65535)", p)}
	}
	return nil
}

func validateImage(ref string) error {
	if len(ref) > 512 {
		return &FieldError{Field: "image", Problem: "is longer than 512 characters"}
	}
	for _, c := range ref {
		if c <= ' ' || c == 0x7f {
			return &FieldError{Field: "image", Problem: fmt.Sprintf("%q contains whitespace or a control character", ref)}
		}
	}
	// The repository (all but the tag and digest) must be lowercase, or
	// Docker refuses it only when an agent pulls or starts it.
	name, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name = name[:i]
	}
	if name != strings.ToLower(name) {
		return &FieldError{Field: "image", Problem: fmt.Sprintf("%q: the repository name must be lowercase (only the tag may have capitals)", ref)}
	}
	return nil
}

func validateHealthPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return &FieldError{Field: "health_path", Problem: fmt.Sprintf("%q must start with '/'", p)}
	}
	for _, c := range p {
		if c <= ' ' || c == 0x7f {
			return &FieldError{Field: "health_path", Problem: fmt.Sprintf("%q contains whitespace or a control character", p)}
		}
	}
	return nil
}

func hasNUL(s string) bool { return strings.IndexByte(s, 0) >= 0 }

// Validate implementations of the payloads.

func (d *Deployed) Validate() error { return d.Spec.Validate() }

func (s *Scaled) Validate() error { return ValidateReplicas(s.Replicas) }

func (e *EnvChanged) Validate() error {
	if len(e.Set) == 0 && len(e.Unset) == 0 {
		return &FieldError{Field: "env", Problem: "change sets and unsets nothing"}
	}
	for k, v := range e.Set {
		if err := ValidateEnv(k, v); err != nil {
			return err
		}
	}
	for _, k := range e.Unset {
		if err := ValidateEnv(k, ""); err != nil {
			return err
		}
		if _, ok := e.Set[k]; ok {
			return &FieldError{Field: "env " + k, Problem: "is both set and unset"}
		}
	}
	return nil
}

func (r *RolledBack) Validate() error {
	if r.To == 0 {
		return &FieldError{Field: "to", Problem: "must be a revision ≥ 1"}
	}
	return nil
}

func (*Removed) Validate() error { return nil }

func (b *BackendScored) Validate() error {
	if err := validateScoreTarget(b.Backend); err != nil {
		return err
	}
	return ValidateScore(b.Score)
}

func (n *NodeDrained) Validate() error {
	if len(n.Reason) > 256 {
		return &FieldError{Field: "reason", Problem: "is longer than 256 characters"}
	}
	return nil
}

func (*NodeUndrained) Validate() error { return nil }
