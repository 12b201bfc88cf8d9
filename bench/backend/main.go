// Command backend is the static upstream of the balancer benchmark: every
// request gets the same small body over keep-alive. It prints
// "listening ADDR" on stdout once it accepts connections, so the harness
// can pass -listen 127.0.0.1:0 and learn the port without a race.
//
// It must stay trivial: its cost is the floor every proxy is compared on.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "`ADDR` to serve on")
	body := flag.String("body", "hello from the hoist bench backend", "response body, padded with '.' to -size bytes")
	size := flag.Int("size", 100, "body size in `BYTES`")
	flag.Parse()

	b := []byte(*body)
	if len(b) < *size {
		b = append(b, strings.Repeat(".", *size-len(b)-1)+"\n"...)
	}
	clen := []string{strconv.Itoa(len(b))}
	ctype := []string{"text/plain; charset=utf-8"}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd["Content-Type"] = ctype
		hd["Content-Length"] = clen
		_, _ = w.Write(b)
	})

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	fmt.Printf("listening %s\n", ln.Addr())

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
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
