package balancer

import (
	"fmt"
	"net"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// Config tunes a Balancer. Start from DefaultConfig: zero durations and
// sizes fall back to their defaults in New, but DefaultScore 0 is taken
// literally (unscored backends get no traffic).
type Config struct {
	// Listen is the plain HTTP address ("" disables it).
	Listen string
	// TLSListen is the HTTPS address, used when TLSCerts is not empty.
	TLSListen string
	// TLSCerts are the certificate/key pairs served by SNI; the first is
	// the fallback for names no certificate covers.
	TLSCerts []CertFiles
	// MetricsListen serves /metrics, /healthz and /debug/table ("" disables).
	MetricsListen string
	// Listeners are sockets already bound, by name (ListenerHTTP,
	// ListenerHTTPS or ListenerMetrics): passed by systemd
	// (ActivatedListeners) or taken over from a running balancer
	// (TakeOver). They are used instead of binding the address of that
	// name, and accepted on only once the first table is in use; Close
	// closes them.
	Listeners map[string]net.Listener
	// ReusePort binds with SO_REUSEPORT (Linux only) and only once the
	// first table is in use, so that a new balancer can bind the port of a
	// running one and take over while the old one drains. Any balancer of
	// the same user on that port then shares its connections: only turn it
	// on for handovers.
	ReusePort bool
	// HandoffSocket is a Unix socket path on which the balancer lends its
	// listening sockets to the next balancer (see handoff.go and
	// TakeOver), "" for none.
	HandoffSocket string

	// DefaultScore (0–100) weights a backend that has no score yet.
	DefaultScore int
	// ScoreMaxAge makes scores older than this fall back to DefaultScore
	// (0 = scores never go stale).
	ScoreMaxAge time.Duration
	// DefaultScope serves hosts that no scope claims (zero = 404).
	DefaultScope events.Scope
	// ErrorPagesDir holds 404.html, 502.html, 503.html… that replace the
	// plain built-in error pages.
	ErrorPagesDir string

	// DeadTTL is how long a backend that failed a connection stays out of
	// rotation.
	DeadTTL time.Duration
	// DeadOn5xx also marks a backend dead when it answers 5xx.
	DeadOn5xx bool
	// ActiveCheckInterval probes each scope's health path this often
	// (0 = off).
	ActiveCheckInterval time.Duration
	// RetryAfter is the Retry-After sent with 503 when no backend is up.
	RetryAfter time.Duration

	DialTimeout           time.Duration
	ResponseHeaderTimeout time.Duration // 0 = DefaultConfig's; negative = none
	IdleTimeout           time.Duration // idle client and upstream connections
	ReadHeaderTimeout     time.Duration
	MaxIdleConnsPerHost   int
	// MaxBody limits request bodies in bytes (0 = no limit); larger ones
	// get 413.
	MaxBody int64
	// ShutdownTimeout bounds how long Close waits for in-flight requests
	// and WebSockets before cutting them (the drain timeout).
	ShutdownTimeout time.Duration
	// KeepAliveGrace is how long, within ShutdownTimeout, a drain leaves
	// idle keep-alive connections open so that their clients read a
	// "Connection: close" answer and close them first (see drain.go).
	KeepAliveGrace time.Duration
	// PauseQueue bounds how many requests of one paused scope are held at
	// once; past it they get 503 at once.
	PauseQueue int
	// CacheSweepInterval is how often expired cache entries are dropped.
	CacheSweepInterval time.Duration
	// AccessLog logs every request at info level.
	AccessLog bool

	// Name names the balancer in the canary statistics it publishes (its
	// credential's name under auth); "" picks one at random per start.
	Name string
	// StatsInterval is how often the balancer publishes the request
	// statistics of scopes that run a canary (0: defaultStatsInterval;
	// negative: never, and no canary analysis sees this balancer).
	StatsInterval time.Duration

	// Now is the clock (time.Now when nil); tests inject one.
	Now func() time.Time
}

// CertFiles is one certificate and its key, PEM files.
type CertFiles struct {
	Cert, Key string
}

// Defaults.
const (
	DefaultListen        = "127.0.0.1:8080"
	DefaultTLSListen     = "127.0.0.1:8443"
	DefaultDefaultScore  = 100
	DefaultDeadTTL       = 30 * time.Second
	DefaultCacheMaxBytes = 64 << 20
	DefaultPauseQueue    = 10000
)

// DefaultConfig returns the defaults of `hoist balancer`.
func DefaultConfig() Config {
	return Config{
		Listen:                DefaultListen,
		TLSListen:             DefaultTLSListen,
		DefaultScore:          DefaultDefaultScore,
		DeadTTL:               DefaultDeadTTL,
		RetryAfter:            5 * time.Second,
		DialTimeout:           5 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		IdleTimeout:           90 * time.Second,
		ReadHeaderTimeout:     10 * time.Second,
		MaxIdleConnsPerHost:   512,
		ShutdownTimeout:       30 * time.Second,
		KeepAliveGrace:        time.Second,
		CacheSweepInterval:    time.Second,
		PauseQueue:            DefaultPauseQueue,
	}
}

// normalize applies defaults to zero fields and checks the rest.
func (c *Config) normalize() error {
	d := DefaultConfig()
	setDur := func(p *time.Duration, def time.Duration) {
		if *p == 0 {
			*p = def
		}
	}
	setDur(&c.DeadTTL, d.DeadTTL)
	setDur(&c.RetryAfter, d.RetryAfter)
	setDur(&c.DialTimeout, d.DialTimeout)
	setDur(&c.ResponseHeaderTimeout, d.ResponseHeaderTimeout)
	setDur(&c.IdleTimeout, d.IdleTimeout)
	setDur(&c.ReadHeaderTimeout, d.ReadHeaderTimeout)
	setDur(&c.ShutdownTimeout, d.ShutdownTimeout)
	setDur(&c.KeepAliveGrace, d.KeepAliveGrace)
	setDur(&c.CacheSweepInterval, d.CacheSweepInterval)
	setDur(&c.StatsInterval, defaultStatsInterval)
	if c.Name != "" {
		if err := events.ValidateBalancerName(c.Name); err != nil {
			return fmt.Errorf("balancer name: %w", err)
		}
	}
	if c.ResponseHeaderTimeout < 0 {
		c.ResponseHeaderTimeout = 0
	}
	if c.PauseQueue == 0 {
		c.PauseQueue = d.PauseQueue
	}
	if c.MaxIdleConnsPerHost <= 0 {
		c.MaxIdleConnsPerHost = d.MaxIdleConnsPerHost
	}
	if len(c.TLSCerts) > 0 && c.TLSListen == "" {
		c.TLSListen = DefaultTLSListen
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	switch {
	case c.DefaultScore < 0 || c.DefaultScore > 100:
		return fmt.Errorf("default score is %d (want 0-100)", c.DefaultScore)
	case c.ScoreMaxAge < 0:
		return fmt.Errorf("score max age is negative")
	case c.DeadTTL < 0:
		return fmt.Errorf("dead TTL is negative")
	case c.ActiveCheckInterval < 0:
		return fmt.Errorf("active check interval is negative")
	case c.MaxBody < 0:
		return fmt.Errorf("max body is negative")
	case c.PauseQueue < 0:
		return fmt.Errorf("pause queue is %d (want a number of requests; 0 takes the default %d)", c.PauseQueue, DefaultPauseQueue)
	case c.ReusePort && !reusePortSupported:
		return errReusePortUnsupported
	case c.HandoffSocket != "" && !handoffSupported:
		return fmt.Errorf("handoff socket %s: not supported on this system", c.HandoffSocket)
	}
	for name := range c.Listeners {
		if name != ListenerHTTP && name != ListenerHTTPS && name != ListenerMetrics {
			return fmt.Errorf("listener %q: want http, https or metrics", name)
		}
	}
	if c.Listeners[ListenerHTTPS] != nil && len(c.TLSCerts) == 0 {
		return fmt.Errorf("an https socket was passed, but no TLS certificate")
	}
	for i, cf := range c.TLSCerts {
		if cf.Cert == "" || cf.Key == "" {
			return fmt.Errorf("TLS pair %d needs both a certificate and a key file", i+1)
		}
	}
	return nil
}
