package balancer

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
)

func TestStaticCache(t *testing.T) {
	var clk clock
	fx := newFixture(t, func(c *Config) { c.Now, c.CacheSweepInterval = clk.now, 5*time.Millisecond })
	var mu sync.Mutex
	hits := map[string]int{}
	be := newBackend(t, "static", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.Host+r.URL.Path]++
		n := hits[r.Host+r.URL.Path]
		mu.Unlock()
		switch r.URL.Path {
		case "/app.js":
		case "/short.css":
			w.Header().Set("Cache-Control", "public, max-age=2")
		case "/private":
			w.Header().Set("Cache-Control", "no-store")
		case "/cookie":
			w.Header().Set("Set-Cookie", "session=1")
		case "/missing":
			w.WriteHeader(http.StatusNotFound)
		}
		fmt.Fprintf(w, "%s #%d", r.URL.Path, n)
	})
	fx.deploy(t, web, events.Spec{Hosts: []string{"web.localhost", "www.localhost"},
		Cache: &events.CachePolicy{TTL: events.Duration(10 * time.Second), MaxBytes: 1 << 20}})
	fx.announce(web, "n1", be.addr())

	fetch := func(host, path string) (string, string) {
		res, body := get(t, fx.proxy.Client(), fx.proxy.URL, host, path)
		return body, res.Header.Get("X-Hoist-Cache")
	}
	if body, c := fetch("web.localhost", "/app.js"); body != "/app.js #1" || c != "miss" {
		t.Fatalf("first: %q %q", body, c)
	}
	if body, c := fetch("web.localhost", "/app.js"); body != "/app.js #1" || c != "hit" {
		t.Fatalf("second: %q %q", body, c)
	}
	// The key is Host + URL: another host and another query miss.
	if body, _ := fetch("www.localhost", "/app.js"); body != "/app.js #1" {
		t.Fatalf("other host served from cache: %q", body)
	}
	if body, _ := fetch("web.localhost", "/app.js?v=2"); body != "/app.js #2" {
		t.Fatalf("other query served from cache: %q", body)
	}
	for _, path := range []string{"/private", "/cookie", "/missing"} {
		fetch("web.localhost", path)
		if body, c := fetch("web.localhost", path); c == "hit" || body != path+" #2" {
			t.Fatalf("%s was cached: %q %q", path, body, c)
		}
	}
	// A POST is never answered from the cache (it is the backend's hit #3).
	req, _ := http.NewRequest(http.MethodPost, fx.proxy.URL+"/app.js", nil)
	req.Host = "web.localhost"
	res, err := fx.proxy.Client().Do(req)
	if err != nil || res.Header.Get("X-Hoist-Cache") == "hit" {
		t.Fatalf("POST: %v %v", err, res.Header)
	}
	res.Body.Close()

	// max-age below the scope's TTL wins.
	fetch("web.localhost", "/short.css")
	if _, c := fetch("web.localhost", "/short.css"); c != "hit" {
		t.Fatal("short.css not cached")
	}
	clk.advance(3 * time.Second)
	if body, _ := fetch("web.localhost", "/short.css"); body != "/short.css #2" {
		t.Fatalf("short.css outlived its max-age: %q", body)
	}
	if _, c := fetch("web.localhost", "/app.js"); c != "hit" {
		t.Fatal("app.js expired before the TTL")
	}
	// Past the TTL the sweeper empties the cache on its own.
	clk.advance(11 * time.Second)
	natstest.Eventually(t, 5*time.Second, func() error {
		if n, _ := fx.b.Table().Pool(web).cache.stats(); n != 0 {
			return fmt.Errorf("%d entries left", n)
		}
		return nil
	})
	if body, c := fetch("web.localhost", "/app.js"); body != "/app.js #4" || c != "miss" {
		t.Fatalf("after expiry: %q %q", body, c)
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := newCache(time.Minute, 3*(256+100+2))
	now := time.Now()
	put := func(k string) {
		c.put(&cacheEntry{key: k, body: make([]byte, 100), stored: now, expires: now.Add(time.Minute)})
	}
	put("/a")
	put("/b")
	put("/c")
	c.get("/a", now) // /b is now the least recently used
	put("/d")
	if c.get("/b", now) != nil || c.get("/a", now) == nil || c.get("/d", now) == nil {
		t.Fatal("wrong entry evicted")
	}
	if n, size := c.stats(); n != 3 || size > c.maxBytes {
		t.Fatalf("%d entries, %d bytes (max %d)", n, size, c.maxBytes)
	}
}

func TestCacheTTLRules(t *testing.T) {
	for _, tc := range []struct {
		status int
		header http.Header
		want   time.Duration
	}{
		{200, http.Header{}, time.Minute},
		{200, http.Header{"Cache-Control": {"max-age=5"}}, 5 * time.Second},
		{200, http.Header{"Cache-Control": {"max-age=5, s-maxage=20"}}, 20 * time.Second},
		{200, http.Header{"Cache-Control": {"max-age=600"}}, time.Minute},
		{200, http.Header{"Cache-Control": {"max-age=0"}}, 0},
		{200, http.Header{"Cache-Control": {"max-age=oops"}}, 0},
		{200, http.Header{"Cache-Control": {"Private"}}, 0},
		{200, http.Header{"Cache-Control": {"no-cache"}}, 0},
		{200, http.Header{"Set-Cookie": {"a=b"}}, 0},
		{200, http.Header{"Vary": {"Accept-Encoding"}}, 0},
		{206, http.Header{}, 0},
		{404, http.Header{}, 0},
	} {
		ttl, ok := cacheTTL(&http.Response{StatusCode: tc.status, Header: tc.header}, time.Minute)
		if ttl != tc.want || ok != (tc.want > 0) {
			t.Errorf("%d %v: ttl %v ok %v, want %v", tc.status, tc.header, ttl, ok, tc.want)
		}
	}
}
