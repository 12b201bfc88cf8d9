package balancer

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"testing"
)

func TestForwardedFor(t *testing.T) {
	for _, tc := range []struct {
		prior  []string
		remote string
		want   string
	}{
		{nil, "10.1.2.3:5555", "10.1.2.3"},
		{nil, "[2001:db8::1]:5555", "2001:db8::1"},
		{[]string{"203.0.113.9"}, "10.1.2.3:5555", "203.0.113.9, 10.1.2.3"},
		{[]string{"203.0.113.9, 198.51.100.7", "192.0.2.1"}, "10.1.2.3:1", "203.0.113.9, 198.51.100.7, 192.0.2.1, 10.1.2.3"},
		{[]string{" , ,", "a\tb"}, "10.1.2.3:1", "10.1.2.3"},
		{[]string{"203.0.113.9"}, "garbage", "203.0.113.9"},
		{nil, "garbage", ""},
	} {
		if got := forwardedFor(tc.prior, tc.remote); got != tc.want {
			t.Errorf("forwardedFor(%q, %q) = %q, want %q", tc.prior, tc.remote, got, tc.want)
		}
	}
}

func TestSetForwarded(t *testing.T) {
	h := http.Header{}
	setForwarded(h, []string{"203.0.113.9"}, "10.0.0.1:4000", "web.example.com", true)
	if h.Get("X-Forwarded-For") != "203.0.113.9, 10.0.0.1" || h.Get("X-Forwarded-Host") != "web.example.com" || h.Get("X-Forwarded-Proto") != "https" {
		t.Fatalf("headers %v", h)
	}
}

func FuzzForwardedFor(f *testing.F) {
	f.Add("203.0.113.9, 198.51.100.7", "10.1.2.3:5555", "web.example.com")
	f.Add("", "[::1]:1", "")
	f.Add(",,,\x00", "x", "\r\n")
	f.Fuzz(func(t *testing.T, prior, remote, host string) {
		var lines []string
		if prior != "" {
			lines = strings.Split(prior, "\n")
		}
		got := forwardedFor(lines, remote)
		if hasControl(got) {
			t.Fatalf("control character in %q", got)
		}
		if strings.HasPrefix(got, ",") || strings.HasSuffix(got, ",") || strings.Contains(got, ", ,") {
			t.Fatalf("empty element in %q", got)
		}
		if ip := clientIP(remote); ip != "" && !strings.HasSuffix(got, ip) {
			t.Fatalf("%q does not end with the client %q", got, ip)
		}
		h := http.Header{}
		setForwarded(h, lines, remote, host, false)
		if h.Get("X-Forwarded-Proto") != "http" {
			t.Fatalf("proto %q", h.Get("X-Forwarded-Proto"))
		}
		if len(h["X-Forwarded-For"]) > 1 {
			t.Fatal("X-Forwarded-For must be one line")
		}
	})
}

// BenchmarkForwarded is the forwarding-header step alone, against
// httputil.ProxyRequest.SetXForwarded with the prior hops copied in (what
// hoist would need to keep them): the numbers behind the comment on
// setForwarded.
func BenchmarkForwarded(b *testing.B) {
	in := httptest.NewRequest(http.MethodGet, "http://web.example.com/", nil)
	in.RemoteAddr = "10.0.0.1:5555"
	in.Header.Set("X-Forwarded-For", "203.0.113.9")
	in.Header.Set("User-Agent", "bench")
	out := in.Clone(in.Context())
	b.Run("hoist", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			clear(out.Header)
			setForwarded(out.Header, in.Header["X-Forwarded-For"], in.RemoteAddr, in.Host, in.TLS != nil)
		}
	})
	b.Run("SetXForwarded", func(b *testing.B) {
		pr := &httputil.ProxyRequest{In: in, Out: out}
		b.ReportAllocs()
		for b.Loop() {
			clear(out.Header)
			out.Header["X-Forwarded-For"] = in.Header["X-Forwarded-For"]
			pr.SetXForwarded()
		}
	})
}
