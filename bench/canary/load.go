//go:build linux

// The load and the HAProxy baseline of the benchmark, and its small helpers.

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// count sends n GET / with host through url from -c clients and returns
// how many the canary answered; any other failure is an error.
func count(url, host string, n int) (int, error) {
	var (
		next, canary atomic.Int64
		wg           sync.WaitGroup
		mu           sync.Mutex
		firstErr     error
	)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *workers}}
	for range *workers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				req, _ := http.NewRequest("GET", url, nil)
				req.Host = host
				res, err := client.Do(req)
				if err == nil {
					var body []byte
					body, err = io.ReadAll(res.Body)
					res.Body.Close()
					if err == nil && res.StatusCode != 200 {
						err = fmt.Errorf("status %d: %s", res.StatusCode, body)
					}
					if strings.Contains(string(body), `"message":"canary"`) {
						canary.Add(1)
					}
				}
				if err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return int(canary.Load()), firstErr
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// haproxyCount puts the backends behind HAProxy with weights in the ratio
// of share (canary 3·share, each of the 3 stable 100-share) and counts.
func haproxyCount(dir string, stable, canary []string, share, n int) (int, error) {
	ports, err := freePorts(1)
	if err != nil {
		return 0, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "global\n  maxconn 1000\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n")
	fmt.Fprintf(&b, "frontend fe\n  bind 127.0.0.1:%s\n  default_backend be\nbackend be\n  balance roundrobin\n", ports[0])
	for i, s := range stable {
		fmt.Fprintf(&b, "  server s%d %s weight %d\n", i, s, 100-share)
	}
	fmt.Fprintf(&b, "  server c0 %s weight %d\n", canary[0], 3*share)
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		return 0, err
	}
	cmd := exec.Command("haproxy", "-db", "-f", cfg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); _ = cmd.Wait() }()
	url := "http://127.0.0.1:" + ports[0] + "/"
	if err := poll(10*time.Second, func() error { _, err := count(url, "web.localhost", 1); return err }); err != nil {
		return 0, err
	}
	return count(url, "web.localhost", n)
}

func freePorts(n int) ([]string, error) {
	var out []string
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		_, p, _ := net.SplitHostPort(l.Addr().String())
		out = append(out, p)
	}
	return out, nil
}

func poll(limit time.Duration, f func() error) error { return pollEvery(limit, 50*time.Millisecond, f) }

func pollFast(limit time.Duration, f func() error) error {
	return pollEvery(limit, time.Millisecond, f)
}

func pollEvery(limit, every time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", limit, err)
		case <-time.After(every):
		}
	}
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q * float64(len(sorted)-1))
	return sorted[i].Round(100 * time.Microsecond)
}

func numCPU() int {
	out, _ := exec.Command("nproc").Output()
	var n int
	fmt.Sscan(string(out), &n)
	return n
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
