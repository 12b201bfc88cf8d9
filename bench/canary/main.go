//go:build linux

// Command canary measures hoist's canary split on this machine, beside
// HAProxy's weighted round-robin in the same run:
//
//	go run ./bench/canary            # needs haproxy: scripts/install-haproxy.sh
//
// It builds hoist and starts, as child processes (stopped by process group
// on exit), `hoist dev --runtime process` on free ports (NATS, an agent, a
// balancer, the demo scope's 3 replicas) and two more `hoist balancer`s
// with their /debug/table. Then:
//
//  1. Share accuracy: a canary of the demo spec (1 replica, its
//     DEMO_MESSAGE says "canary"), shifted to 1%, 10% and 50%; -requests
//     requests (default 100,000) through a balancer, counted by the side
//     that answered. The same backends behind HAProxy (balance roundrobin,
//     weights in the same ratio) get the same requests.
//  2. Shift latency: -shifts times, `hoist canary` to a new share, and the
//     time from the event's creation to the share in use in every
//     balancer's table; beside it, `hoist score` of a slot and the time to
//     the new weight in every table (the direct path: balancers read
//     scores themselves, while a shift goes through the agents' reports).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

const scope = "demo.dev.web"

var (
	requests = flag.Int("requests", 100_000, "requests per share and proxy")
	shifts   = flag.Int("shifts", 40, "shifts (and scores) timed")
	workers  = flag.Int("c", 8, "concurrent clients")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type world struct {
	dir      string
	hoist    string
	nats     string
	lb       string   // dev's balancer
	tables   []string // every balancer's /debug/table
	children []*exec.Cmd
}

func run() (err error) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		return errors.New("haproxy is not installed: run scripts/install-haproxy.sh")
	}
	dir, err := os.MkdirTemp("", "hoist-bench-canary-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	w := &world{dir: dir, hoist: filepath.Join(dir, "hoist")}
	defer w.stop()
	defer func() {
		if err != nil { // what the children said, to see why
			logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				fmt.Fprintf(os.Stderr, "== %s (last 2000 bytes)\n%s\n", filepath.Base(l), b[max(0, len(b)-2000):])
			}
		}
	}()
	if out, err := exec.Command("go", "build", "-o", w.hoist, "./cmd/hoist").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	if err := w.start(); err != nil {
		return err
	}
	if _, err := w.cli("deploy", scope, "--canary", "10", "--env", "DEMO_MESSAGE=canary"); err != nil {
		return err
	}
	if _, err := w.cli("wait", scope, "--timeout", "60s"); err != nil {
		return err
	}
	stable, canary, err := w.backends()
	if err != nil {
		return err
	}
	fmt.Printf("machine: %d cores; %s\n", numCPU(), cpuModel())
	fmt.Printf("backends: stable %v, canary %v; %d requests each, %d clients\n\n", stable, canary, *requests, *workers)
	fmt.Println("| share | hoist: canary requests | error | HAProxy roundrobin: canary requests | error |")
	fmt.Println("|---|---|---|---|---|")
	for _, share := range []int{1, 10, 50} {
		if err := w.shift(share); err != nil {
			return err
		}
		got, err := count("http://"+w.lb+"/", "web.localhost", *requests)
		if err != nil {
			return err
		}
		ha, err := haproxyCount(dir, stable, canary, share, *requests)
		if err != nil {
			return err
		}
		want := *requests * share / 100
		fmt.Printf("| %d%% | %d of %d | %+d | %d of %d | %+d |\n", share, got, *requests, got-want, ha, *requests, ha-want)
	}

	var shiftLat, scoreLat []time.Duration
	for i := range *shifts {
		share := 20 + i%2*10
		d, err := w.timeShift(share)
		if err != nil {
			return err
		}
		shiftLat = append(shiftLat, d)
		d, err = w.timeScore(50 + i%2*10)
		if err != nil {
			return err
		}
		scoreLat = append(scoreLat, d)
	}
	fmt.Printf("\n%d balancers; event created → in use in every balancer's table, over %d changes:\n\n", len(w.tables), *shifts)
	fmt.Println("| change | p50 | p99 | max |")
	fmt.Println("|---|---|---|---|")
	for _, r := range []struct {
		name string
		d    []time.Duration
	}{{"canary shift (through the agent's report)", shiftLat}, {"slot score (read by balancers directly)", scoreLat}} {
		slices.Sort(r.d)
		fmt.Printf("| %s | %s | %s | %s |\n", r.name, quantile(r.d, 0.5), quantile(r.d, 0.99), r.d[len(r.d)-1].Round(100*time.Microsecond))
	}
	return nil
}

func (w *world) start() error {
	ports, err := freePorts(6)
	if err != nil {
		return err
	}
	w.nats = "127.0.0.1:" + ports[0]
	w.lb = "127.0.0.1:" + ports[1]
	if err := w.spawn("dev.log", "dev", "--data", filepath.Join(w.dir, "data"), "--runtime", "process", "--listen", w.lb,
		"--nats-listen", w.nats, "--api-listen", "", "--agent-check", ""); err != nil {
		return err
	}
	if err := poll(90*time.Second, func() error { _, err := count("http://"+w.lb+"/", "web.localhost", 1); return err }); err != nil {
		return err
	}
	for i := range 2 { // once NATS is up: a balancer exits when it cannot reach it
		metrics := "127.0.0.1:" + ports[3+2*i]
		if err := w.spawn(fmt.Sprintf("balancer%d.log", i), "balancer", "--listen", "127.0.0.1:"+ports[2+2*i], "--metrics", metrics); err != nil {
			return err
		}
		w.tables = append(w.tables, "http://"+metrics+"/debug/table")
	}
	return poll(30*time.Second, func() error {
		for _, t := range w.tables {
			if _, err := table(t); err != nil {
				return err
			}
		}
		return nil
	})
}

func (w *world) spawn(logName string, args ...string) error {
	f, err := os.Create(filepath.Join(w.dir, logName))
	if err != nil {
		return err
	}
	cmd := exec.Command(w.hoist, args...)
	cmd.Env = append(os.Environ(), "HOIST_NATS_URL=nats://"+w.nats)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	w.children = append(w.children, cmd)
	return nil
}

// stop ends every child's process group: dev's replicas are its children.
func (w *world) stop() {
	for _, c := range slices.Backward(w.children) {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
}

func (w *world) cli(args ...string) ([]byte, error) {
	cmd := exec.Command(w.hoist, args...)
	cmd.Env = append(os.Environ(), "HOIST_NATS_URL=nats://"+w.nats)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("hoist %s: %v: %s", strings.Join(args, " "), err, ee.Stderr)
		}
		return nil, err
	}
	return out, nil
}

// backends reads the stable and canary backends from hoist status --json.
func (w *world) backends() (stable, canary []string, err error) {
	out, err := w.cli("status", scope, "--json")
	if err != nil {
		return nil, nil, err
	}
	var nodes []struct {
		Replicas []struct {
			Backend string `json:"backend"`
			Canary  bool   `json:"canary"`
			Healthy bool   `json:"healthy"`
		} `json:"replicas"`
	}
	if err := json.Unmarshal(out, &nodes); err != nil {
		return nil, nil, err
	}
	for _, n := range nodes {
		for _, r := range n.Replicas {
			switch {
			case !r.Healthy || r.Backend == "":
			case r.Canary:
				canary = append(canary, r.Backend)
			default:
				stable = append(stable, r.Backend)
			}
		}
	}
	if len(stable) != 3 || len(canary) != 1 {
		return nil, nil, fmt.Errorf("want 3 stable and 1 canary backend, have %v and %v", stable, canary)
	}
	return stable, canary, nil
}

func (w *world) shift(share int) error {
	if _, err := w.cli("canary", scope, fmt.Sprint(share)); err != nil {
		return err
	}
	return poll(30*time.Second, func() error { return w.allAt(share) })
}

func (w *world) allAt(share int) error {
	for _, t := range w.tables {
		tv, err := table(t)
		if err != nil {
			return err
		}
		if s := shareOf(tv); s != share {
			return fmt.Errorf("%s: share %d, want %d", t, s, share)
		}
	}
	return nil
}

// timeShift shifts to share and returns the time from the event's
// creation until every balancer uses it.
func (w *world) timeShift(share int) (time.Duration, error) {
	created, err := w.publish("canary", scope, fmt.Sprint(share), "--json")
	if err != nil {
		return 0, err
	}
	return sinceAll(created, func() error { return w.allAt(share) })
}

func (w *world) timeScore(score int) (time.Duration, error) {
	created, err := w.publish("score", scope, "dev#0", fmt.Sprint(score), "--json")
	if err != nil {
		return 0, err
	}
	return sinceAll(created, func() error {
		for _, t := range w.tables {
			tv, err := table(t)
			if err != nil {
				return err
			}
			if !hasScore(tv, score) {
				return fmt.Errorf("%s: no backend at score %d yet", t, score)
			}
		}
		return nil
	})
}

// publish runs a publishing command with --json and returns its event's time.
func (w *world) publish(args ...string) (time.Time, error) {
	out, err := w.cli(args...)
	if err != nil {
		return time.Time{}, err
	}
	var ev struct {
		Time time.Time `json:"time"`
	}
	return ev.Time, json.Unmarshal(out, &ev)
}

func sinceAll(created time.Time, done func() error) (time.Duration, error) {
	if err := pollFast(30*time.Second, done); err != nil {
		return 0, err
	}
	return time.Since(created), nil
}

type tableView struct {
	Scopes []struct {
		Scope  string `json:"scope"`
		Canary *struct {
			Share int `json:"share"`
		} `json:"canary"`
		Backends []struct {
			Score  int  `json:"score"`
			Scored bool `json:"scored"`
		} `json:"backends"`
	} `json:"scopes"`
}

var tableClient = &http.Client{Timeout: 5 * time.Second}

func table(url string) (*tableView, error) {
	res, err := tableClient.Get(url)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var tv tableView
	return &tv, json.NewDecoder(res.Body).Decode(&tv)
}

func shareOf(tv *tableView) int {
	for _, s := range tv.Scopes {
		if s.Scope == scope && s.Canary != nil {
			return s.Canary.Share
		}
	}
	return -1
}

func hasScore(tv *tableView, score int) bool {
	for _, s := range tv.Scopes {
		for _, b := range s.Backends {
			if s.Scope == scope && b.Scored && b.Score == score {
				return true
			}
		}
	}
	return false
}
