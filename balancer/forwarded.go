package balancer

import (
	"net"
	"net/http"
	"strings"
)

// setForwarded sets X-Forwarded-For (prior hops, then the client),
// X-Forwarded-Host (the Host the client asked for) and X-Forwarded-Proto on
// the outbound header. The inbound forwarding headers were removed from out
// by ReverseProxy; prior is the inbound X-Forwarded-For.
//
// It is not httputil.ProxyRequest.SetXForwarded, on purpose. That one drops
// the earlier hops unless they are copied in first, and with them copied it
// passes them on as the client wrote them: blank elements and tabs included,
// and all of them dropped when RemoteAddr does not parse, where hoist keeps
// the earlier hops (TestForwardedFor). Nor is it cheaper: measured 2026-12 on
// the shared 2-core machine, medians of 8 interleaved runs, hoist then
// SetXForwarded: BenchmarkHandlerOverhead 3.52 µs vs 3.83 µs (±30%, no
// significant difference, 25 vs 27 allocs/op), BenchmarkHandler 37.9 µs vs
// 41.8 µs (±14%, 84 vs 86 allocs/op), and the step alone
// (BenchmarkForwarded) 250 ns vs 307 ns, 3 vs 4 allocs/op.
func setForwarded(out http.Header, prior []string, remoteAddr, host string, tls bool) {
	vals := new([3]string) // one allocation for the three header values
	vals[0] = forwardedFor(prior, remoteAddr)
	vals[1] = host
	vals[2] = "http"
	if tls {
		vals[2] = "https"
	}
	if vals[0] != "" {
		out["X-Forwarded-For"] = vals[0:1:1]
	}
	if vals[1] != "" {
		out["X-Forwarded-Host"] = vals[1:2:2]
	}
	out["X-Forwarded-Proto"] = vals[2:3:3]
}

// forwardedFor appends the client's IP (from RemoteAddr, "ip:port") to the
// prior X-Forwarded-For values, folding several header lines into one
// comma-separated list as RFC 7239's predecessors expect. Blank elements and
// control characters from the client are dropped, so the result is always a
// clean list. It returns "" when there is neither a prior value nor a
// readable client address.
func forwardedFor(prior []string, remoteAddr string) string {
	client := clientIP(remoteAddr)
	if len(prior) == 0 {
		return client
	}
	var sb strings.Builder
	for _, line := range prior {
		for part := range strings.SplitSeq(line, ",") {
			part = strings.TrimSpace(part)
			if part == "" || hasControl(part) {
				continue
			}
			if sb.Len() > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(part)
		}
	}
	if client != "" {
		if sb.Len() > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(client)
	}
	return sb.String()
}

func clientIP(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil || host == "" || hasControl(host) {
		return ""
	}
	return host
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return true
		}
	}
	return false
}
