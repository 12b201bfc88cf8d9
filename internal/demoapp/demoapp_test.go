package demoapp

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestServe(t *testing.T) {
	cases := []struct {
		name       string
		failHealth bool
		wantUp     int
	}{
		{"healthy", false, http.StatusOK},
		{"failing health", true, http.StatusServiceUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			inFlight := make(chan struct{}, 1)
			cfg := Config{Node: "node-a", Replica: "acme.prod.web#2", Scope: "acme.prod.web", Revision: "5", Message: "hi", FailHealth: tc.failHealth,
				slowStarted: func() { inFlight <- struct{}{} }}
			go func() { done <- Serve(ctx, ln, cfg) }()
			base := "http://" + ln.Addr().String()

			var id Identity
			getJSON(t, base+"/", &id)
			if id.Node != "node-a" || id.Replica != "acme.prod.web#2" || id.Scope != "acme.prod.web" || id.Revision != "5" || id.Message != "hi" {
				t.Errorf("identity = %+v", id)
			}
			if code := status(t, base+"/up"); code != tc.wantUp {
				t.Errorf("GET /up = %d, want %d", code, tc.wantUp)
			}
			if code := status(t, base+"/slow?ms=x"); code != http.StatusBadRequest {
				t.Errorf("GET /slow?ms=x = %d, want 400", code)
			}

			// A slow request in flight when shutdown begins still completes.
			slow := make(chan int, 1)
			go func() { slow <- status(t, base+"/slow?ms=300") }()
			select {
			case <-inFlight:
			case <-time.After(5 * time.Second):
				t.Fatal("the /slow request never reached the server")
			}
			cancel()
			if code := <-slow; code != http.StatusOK {
				t.Errorf("in-flight /slow = %d, want 200", code)
			}
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
}

func status(t *testing.T, url string) int {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decode %s: %v", url, err)
	}
}

func TestErrorRate(t *testing.T) {
	h := Handler(Config{ErrorRate: 5})
	failed := 0
	for range 1000 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code == http.StatusInternalServerError {
			failed++
		}
	}
	if failed != 50 {
		t.Fatalf("%d of 1000 failed at 5%%, want 50", failed)
	}
	t.Setenv("DEMO_ERROR_RATE", "2.5%")
	if r := errorRateFromEnv(); r != 2.5 {
		t.Fatalf("DEMO_ERROR_RATE=2.5%% read as %v", r)
	}
	t.Setenv("DEMO_ERROR_RATE", "lots")
	if r := errorRateFromEnv(); r != 100 {
		t.Fatalf("a rate that does not parse read as %v, want 100 (fail loudly)", r)
	}
}
