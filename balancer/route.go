package balancer

import "strings"

// maxWildcardDepth is how many parent domains a wildcard lookup tries, as in
// Hipache: a.b.c.d.e.f tries *.b.c.d.e.f, *.c.d.e.f … five in all.
const maxWildcardDepth = 5

// normalizeHost turns a Host header into the name routes are keyed by: the
// port stripped, a trailing dot dropped, ASCII lowercased. It allocates only
// when the name has uppercase letters.
func normalizeHost(h string) string {
	if h == "" {
		return ""
	}
	if h[0] == '[' { // [v6]:port
		if end := strings.IndexByte(h, ']'); end > 0 {
			h = h[1:end]
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h[:i], ':') < 0 && allDigits(h[i+1:]) {
		h = h[:i]
	}
	h = strings.TrimRight(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Route returns the pool serving host (a raw Host header): an exact match,
// else the nearest wildcard up to five levels up, else the default scope.
// It returns nil for an unknown host, and allocates nothing for lowercase
// names.
func (t *Table) Route(host string) *Pool {
	h := normalizeHost(host)
	if p := t.exact[h]; p != nil {
		return p
	}
	if len(t.wild) > 0 {
		rest := h
		for range maxWildcardDepth {
			dot := strings.IndexByte(rest, '.')
			if dot < 0 {
				break
			}
			rest = rest[dot+1:]
			if p := t.wild[rest]; p != nil {
				return p
			}
		}
	}
	return t.def
}
