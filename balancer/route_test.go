package balancer

import (
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
)

func routeTable(t testing.TB, defaultScope events.Scope) *Table {
	f := newFolded()
	for _, e := range []*events.Event{
		deployed(web, 1, "web.example.com", "*.web.example.com", "www.example.com"),
		deployed(api, 1, "api.example.com", "*.example.com", "*.a.b.c.d.e.example.org"),
		deployed(events.MustParseScope("acme.prod.deep"), 1, "*.example.org"),
	} {
		if err := f.applyEvent(e); err != nil {
			t.Fatal(err)
		}
	}
	return buildTable(f, buildOptions{defaultScore: 100, defaultScope: defaultScope}, time.Now(), newRegistry())
}

func TestRoute(t *testing.T) {
	tb := routeTable(t, events.Scope{})
	withDefault := routeTable(t, web)
	deep := events.MustParseScope("acme.prod.deep")
	for _, tc := range []struct {
		host string
		want events.Scope // zero: 404
		def  events.Scope // with --default-scope acme.prod.web
	}{
		{"web.example.com", web, web},
		{"WEB.Example.COM", web, web},
		{"web.example.com:8080", web, web},
		{"web.example.com.", web, web},
		{"Web.Example.Com.:443", web, web},
		{"www.example.com", web, web}, // exact wins over *.example.com
		{"api.example.com", api, api},
		{"x.web.example.com", web, web},                      // nearest wildcard wins
		{"x.y.web.example.com", web, web},                    // two levels up
		{"other.example.com", api, api},                      // *.example.com
		{"a.b.c.d.other.example.com", api, api},              // five levels up still matches
		{"a.b.c.d.e.other.example.com", events.Scope{}, web}, // six: beyond Hipache's depth
		{"example.com", events.Scope{}, web},                 // a wildcard does not match its own parent
		{"x.a.b.c.d.e.example.org", api, api},                // deep wildcard, one level up
		{"z.example.org", deep, deep},
		{"nope.localhost", events.Scope{}, web},
		{"", events.Scope{}, web},
		{"[::1]:8080", events.Scope{}, web},
		{"127.0.0.1:8080", events.Scope{}, web},
		{"web.example.com:notaport", events.Scope{}, web},
	} {
		check := func(tb *Table, want events.Scope, label string) {
			p := tb.Route(tc.host)
			switch {
			case want.IsZero() && p != nil:
				t.Errorf("%s %q: routed to %s, want 404", label, tc.host, p.Scope)
			case !want.IsZero() && (p == nil || p.Scope != want):
				t.Errorf("%s %q: routed to %v, want %s", label, tc.host, p, want)
			}
		}
		check(tb, tc.want, "no default")
		check(withDefault, tc.def, "default")
	}
}

func TestNormalizeHost(t *testing.T) {
	for in, want := range map[string]string{
		"Example.COM":        "example.com",
		"example.com:80":     "example.com",
		"example.com.":       "example.com",
		"[::1]:443":          "::1",
		"[::1]":              "::1",
		"::1":                "::1", // bare v6: no port to strip
		"host:":              "host",
		"a.b:1:2":            "a.b:1:2",
		"":                   "",
		"web.localhost:8080": "web.localhost",
	} {
		if got := normalizeHost(in); got != want {
			t.Errorf("normalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRouteAllocatesNothing(t *testing.T) {
	tb := routeTable(t, events.Scope{})
	if n := testing.AllocsPerRun(1000, func() {
		tb.Route("x.y.web.example.com:8080")
		tb.Route("nope.localhost")
	}); n != 0 {
		t.Fatalf("Route allocates %.1f times per call", n)
	}
}

func FuzzRouteHost(f *testing.F) {
	for _, s := range []string{"web.example.com", "WEB.example.com:80", "[::1]:80", "a.b.c.d.e.f.example.com", "*.example.com", ".", ":", "[", "x..example.com", "\x00"} {
		f.Add(s)
	}
	tb := routeTable(f, events.Scope{})
	f.Fuzz(func(t *testing.T, host string) {
		n := normalizeHost(host)
		for i := 0; i < len(n); i++ {
			if c := n[i]; c >= 'A' && c <= 'Z' {
				t.Fatalf("normalizeHost(%q) = %q keeps uppercase", host, n)
			}
		}
		if tb.Route(host) != tb.Route(asciiUpper(host)) {
			t.Fatalf("routing %q depends on case", host)
		}
		if events.ValidateHost(n) == nil && !strings.HasPrefix(n, "*") {
			// A clean name is its own normal form and routes the same.
			if normalizeHost(n) != n || tb.Route(n) != tb.Route(host) {
				t.Fatalf("%q normalizes to %q, which does not route the same", host, n)
			}
		}
		p := tb.Route(host)
		if p == nil {
			return
		}
		// Whatever matched must be justified by the pool's hosts.
		ok := false
		for _, h := range p.Hosts {
			if h == n {
				ok = true
			}
			if rest, wild := strings.CutPrefix(h, "*."); wild && strings.HasSuffix(n, "."+rest) {
				if depth := strings.Count(strings.TrimSuffix(n, "."+rest), ".") + 1; depth <= maxWildcardDepth {
					ok = true
				}
			}
		}
		if !ok {
			t.Fatalf("%q (normalized %q) routed to %s with hosts %v", host, n, p.Scope, p.Hosts)
		}
	})
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
