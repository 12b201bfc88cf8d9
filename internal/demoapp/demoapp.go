// Package demoapp is a tiny HTTP backend for demos and tests. It answers with
// the identity the agent gave its replica (HOIST_NODE, HOIST_REPLICA,
// HOIST_SCOPE, HOIST_REVISION), can be told to fail its health check, and
// serves slow requests so tests can watch in-flight requests survive a
// rollout.
//
// It must stay dependency-free and quick to build: tests compile it
// statically and copy it into a FROM scratch image.
package demoapp

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Config is what one demo replica serves.
type Config struct {
	Addr       string // listen address, ":8080" by default
	Node       string // the node whose agent started it
	Replica    string // e.g. acme.prod.web#2
	Scope      string
	Revision   string
	Message    string
	Hostname   string
	FailHealth bool // answer 503 on /up
	// ErrorRate is the percentage (0-100) of GET / answered 500, spread
	// evenly: at 5, every twentieth request fails.
	ErrorRate float64

	// ShutdownTimeout bounds how long in-flight requests may take to finish
	// after ctx is cancelled. 0 means 10s.
	ShutdownTimeout time.Duration
	// Logger is the caller's; nil means slog.Default, for the standalone
	// demoapp binary, which stays free of hoist's logging setup. hoist
	// demo-backend passes the one hoist's flags build.
	Logger *slog.Logger

	// slowStarted, when set, is told that a /slow request is in flight.
	slowStarted func()
}

// ConfigFromEnv reads PORT, HOIST_NODE, HOIST_REPLICA, HOIST_SCOPE,
// HOIST_REVISION, DEMO_MESSAGE (or DEMO_MESSAGE_FILE, a file that holds
// it), DEMO_FAIL_HEALTH and DEMO_ERROR_RATE ("5" or "5%"; one that does
// not parse fails every request, so a typo is seen at once).
func ConfigFromEnv() Config {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	host, _ := os.Hostname()
	return Config{
		Addr:       ":" + port,
		Node:       os.Getenv("HOIST_NODE"),
		Replica:    os.Getenv("HOIST_REPLICA"),
		Scope:      os.Getenv("HOIST_SCOPE"),
		Revision:   os.Getenv("HOIST_REVISION"),
		Message:    messageFromEnv(),
		Hostname:   host,
		FailHealth: os.Getenv("DEMO_FAIL_HEALTH") == "1",
		ErrorRate:  errorRateFromEnv(),
	}
}

func errorRateFromEnv() float64 {
	v := strings.TrimSuffix(strings.TrimSpace(os.Getenv("DEMO_ERROR_RATE")), "%")
	if v == "" {
		return 0
	}
	r, err := strconv.ParseFloat(v, 64)
	if err != nil || !(r >= 0 && r <= 100) {
		return 100
	}
	return r
}

func messageFromEnv() string {
	if path := os.Getenv("DEMO_MESSAGE_FILE"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "cannot read DEMO_MESSAGE_FILE: " + err.Error()
		}
		return string(b)
	}
	return os.Getenv("DEMO_MESSAGE")
}

// Run listens on cfg.Addr and serves until ctx is cancelled, then shuts
// down gracefully.
func Run(ctx context.Context, cfg Config) error {
	addr := cfg.Addr
	if addr == "" {
		addr = ":8080"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	return Serve(ctx, ln, cfg)
}

// Serve serves on ln until ctx is cancelled. It closes ln.
func Serve(ctx context.Context, ln net.Listener, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	timeout := cfg.ShutdownTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	srv := &http.Server{Handler: Handler(cfg), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("demo backend listening", "addr", ln.Addr().String(), "replica", cfg.Replica)

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("demo backend stopped", "replica", cfg.Replica)
	return nil
}

// Identity is the body of GET /.
type Identity struct {
	Node     string `json:"node,omitempty"`
	Replica  string `json:"replica"`
	Scope    string `json:"scope"`
	Revision string `json:"revision"`
	Hostname string `json:"hostname"`
	PID      int    `json:"pid"`
	Message  string `json:"message,omitempty"`
}

// failsAt reports whether the nth request (from 1) fails at rate percent:
// when the count of failures due by n passes the count due by n-1.
func failsAt(n uint64, rate float64) bool {
	if rate <= 0 {
		return false
	}
	due := func(n uint64) uint64 { return uint64(float64(n) * rate / 100) }
	return due(n) > due(n-1)
}

// maxSlow caps /slow so a typo cannot hold a connection for hours.
const maxSlow = 5 * time.Minute

// Handler serves /, /up and /slow.
func Handler(cfg Config) http.Handler {
	id := Identity{
		Node:     cfg.Node,
		Replica:  cfg.Replica,
		Scope:    cfg.Scope,
		Revision: cfg.Revision,
		Hostname: cfg.Hostname,
		PID:      os.Getpid(),
		Message:  cfg.Message,
	}
	mux := http.NewServeMux()
	var served atomic.Uint64
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if n := served.Add(1); failsAt(n, cfg.ErrorRate) {
			http.Error(w, fmt.Sprintf("failing on purpose (DEMO_ERROR_RATE=%g%%)", cfg.ErrorRate), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(id)
	})
	mux.HandleFunc("GET /up", func(w http.ResponseWriter, r *http.Request) {
		if cfg.FailHealth {
			http.Error(w, "unhealthy (DEMO_FAIL_HEALTH=1)", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "up")
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
		if err != nil || ms < 0 {
			http.Error(w, "want ?ms=N with N ≥ 0", http.StatusBadRequest)
			return
		}
		d := min(time.Duration(ms)*time.Millisecond, maxSlow)
		if cfg.slowStarted != nil {
			cfg.slowStarted()
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Identity
			SleptMS int64 `json:"slept_ms"`
		}{id, d.Milliseconds()})
	})
	return mux
}
