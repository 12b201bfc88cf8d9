package balancer

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// What HTTP lets a shared cache keep (RFC 9111), narrowed to what a static
// cache keyed by Host and URL can serve safely.

// cacheLookup says whether a request may be answered from the cache, and
// whether its response may be stored.
func cacheLookup(r *http.Request) (lookup, store bool) {
	if r.Method != http.MethodGet || r.Header.Get("Authorization") != "" || r.Header.Get("Upgrade") != "" {
		return false, false
	}
	cc := parseCacheControl(r.Header.Values("Cache-Control"))
	if cc.noStore {
		return false, false
	}
	if cc.noCache || r.Header.Get("Pragma") == "no-cache" {
		return false, true // revalidate: go to the backend, refresh the entry
	}
	return true, true
}

// cacheTTL returns how long a response may be kept, at most limit, or
// ok=false when it must not be stored: anything but 200, no-store,
// private, no-cache, Set-Cookie, Vary (the key is only Host and URL), a
// zero max-age, or trailers.
func cacheTTL(res *http.Response, limit time.Duration) (ttl time.Duration, ok bool) {
	if res.StatusCode != http.StatusOK || len(res.Header["Set-Cookie"]) > 0 ||
		len(res.Header["Vary"]) > 0 || len(res.Trailer) > 0 {
		return 0, false
	}
	cc := parseCacheControl(res.Header.Values("Cache-Control"))
	if cc.noStore || cc.private || cc.noCache {
		return 0, false
	}
	ttl = limit
	if cc.maxAge >= 0 && cc.maxAge < ttl {
		ttl = cc.maxAge
	}
	return ttl, ttl > 0
}

type cacheControl struct {
	noStore, noCache, private bool
	maxAge                    time.Duration // -1 when absent
}

// parseCacheControl reads the directives hoist cares about. s-maxage,
// meant for shared caches like this one, wins over max-age.
func parseCacheControl(values []string) cacheControl {
	cc := cacheControl{maxAge: -1}
	sMaxAge := time.Duration(-1)
	for _, v := range values {
		for d := range strings.SplitSeq(v, ",") {
			name, arg, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-store":
				cc.noStore = true
			case "no-cache":
				cc.noCache = true
			case "private":
				cc.private = true
			case "max-age":
				cc.maxAge = parseSeconds(arg)
			case "s-maxage":
				sMaxAge = parseSeconds(arg)
			}
		}
	}
	if sMaxAge >= 0 {
		cc.maxAge = sMaxAge
	}
	return cc
}

// parseSeconds reads a delta-seconds value; anything unreadable counts as
// 0 (do not keep), as RFC 9111 asks.
func parseSeconds(s string) time.Duration {
	n, err := strconv.ParseInt(strings.Trim(s, `"`), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	if n > int64(365*24*time.Hour/time.Second) {
		n = int64(365 * 24 * time.Hour / time.Second)
	}
	return time.Duration(n) * time.Second
}
