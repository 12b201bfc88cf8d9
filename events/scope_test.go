package events

import (
	"errors"
	"strings"
	"testing"
)

func TestParseScope(t *testing.T) {
	tests := []struct {
		in       string
		ok       bool
		wantPart string // the part named in the error
	}{
		{"acme.prod.web", true, ""},
		{"a.b.c", true, ""},
		{"a-1.prod-eu.web-2", true, ""},
		{strings.Repeat("a", 63) + ".b.c", true, ""},
		{strings.Repeat("a", 64) + ".b.c", false, "client"},
		{"Acme..web", false, "client"},
		{"acme..web", false, "environment"},
		{"acme.prod.Web", false, "solution"},
		{"acme.prod", false, ""},
		{"acme.prod.web.extra", false, ""},
		{"-acme.prod.web", false, "client"},
		{"acme.prod-.web", false, "environment"},
		{"acme.pr_od.web", false, "environment"},
		{"acme.prod.wéb", false, "solution"},
		{"acme.prod.*", false, "solution"},
		{"acme.prod.>", false, "solution"},
		{"", false, ""},
	}
	for _, tt := range tests {
		sc, err := ParseScope(tt.in)
		if tt.ok {
			if err != nil || sc.String() != tt.in {
				t.Errorf("ParseScope(%q) = %v, %v", tt.in, sc, err)
			}
			continue
		}
		var se *ScopeError
		if !errors.As(err, &se) {
			t.Errorf("ParseScope(%q): want a ScopeError, got %v", tt.in, err)
			continue
		}
		if se.Part != tt.wantPart {
			t.Errorf("ParseScope(%q) names part %q, want %q (%v)", tt.in, se.Part, tt.wantPart, err)
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseScope(%q) error is not ErrInvalid", tt.in)
		}
	}
}

func TestScopeErrorNamesTheBadToken(t *testing.T) {
	_, err := ParseScope("Acme..web")
	if err == nil || !strings.Contains(err.Error(), `client "Acme"`) || !strings.Contains(err.Error(), "lowercase") {
		t.Fatalf("error %q does not name the token and rule", err)
	}
}

// FuzzParseScope checks that parsing never panics, that anything accepted
// round-trips and is safe as NATS subject tokens.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"acme.prod.web", "Acme..web", "a.b.c", "-a.b.c", "a.b.c.d", "a.b.*", "a b.c.d", "\x00.a.b", "ä.b.c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseScope(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if sc.String() != s {
			t.Fatalf("round trip: %q -> %q", s, sc.String())
		}
		if strings.ContainsAny(s, "*> \t\r\n") {
			t.Fatalf("accepted a subject-unsafe scope %q", s)
		}
		sub := ScopeSubject(sc, KindDeployed, "ci")
		if a, err := ParseSubject(sub); err != nil || a.Scope != sc || a.Actor != "ci" || a.Kind != KindDeployed {
			t.Fatalf("ParseSubject(%q) = %+v, %v", sub, a, err)
		}
	})
}
