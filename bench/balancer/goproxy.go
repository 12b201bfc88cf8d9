//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// runGoProxy is the "goproxy" target: a bare net/http/httputil
// ReverseProxy doing round robin over -backends with a transport tuned
// like hoist's. It is the floor for any proxy built on Go's net/http, so
// hoist − goproxy is what hoist's own routing, picking, retries and
// metrics cost, and goproxy − nginx is what net/http costs.
func runGoProxy() error {
	fs := flag.NewFlagSet("goproxy", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "HTTP address")
	backends := fs.String("backends", "", "comma-separated host:port")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	addrs := strings.Split(*backends, ",")
	if *backends == "" {
		return errors.New("no -backends")
	}
	var next atomic.Uint64
	bufs := sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = addrs[next.Add(1)%uint64(len(addrs))]
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 512,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			WriteBufferSize:     32 << 10,
			ReadBufferSize:      32 << 10,
		},
		BufferPool: poolAdapter{&bufs},
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 90 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

type poolAdapter struct{ p *sync.Pool }

func (a poolAdapter) Get() []byte  { return *a.p.Get().(*[]byte) }
func (a poolAdapter) Put(b []byte) { a.p.Put(&b) }

// startGoProxy runs this program as the goproxy target.
func (e *env) startGoProxy(ctx context.Context) (*target, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := e.ps.start("goproxy", []string{self, "-listen", listen, "-backends", strings.Join(e.backends, ",")},
		[]string{roleEnv + "=goproxy"}, nil)
	if err != nil {
		return nil, err
	}
	return e.ready(ctx, "goproxy", p, listen)
}
