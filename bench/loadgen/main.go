// Command loadgen sends HTTP/1.1 GETs at a constant rate (open loop) over a
// fixed set of keep-alive connections and prints latency percentiles as
// one JSON object. wrk measures the most a target can do; loadgen measures
// what a request costs at a load the target can carry.
//
// Requests are scheduled by intended send time, as wrk2 does: connection j
// of C sends its k-th request at start + (j + k*C)/rate. When the previous
// response on that connection came back late, the next request is sent at
// once and its latency counts from its intended time, so a stall is
// charged to every request it delayed (no coordinated omission). When the
// connection was free and only our timer fired late (Go's sleep resolution
// here is ~1 ms), latency counts from the actual send: the timer's delay is
// not the target's.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"
)

// Result is what loadgen prints. Durations are microseconds.
type Result struct {
	Rate       float64 `json:"rate"`         // asked for, requests/s
	Achieved   float64 `json:"achieved"`     // measured requests/s (responses in the window)
	Requests   int     `json:"requests"`     // responses recorded
	Errors     int     `json:"errors"`       // failed requests (connection errors, non-2xx)
	P50        float64 `json:"p50_us"`       //
	P90        float64 `json:"p90_us"`       //
	P99        float64 `json:"p99_us"`       //
	P999       float64 `json:"p999_us"`      //
	Max        float64 `json:"max_us"`       //
	LateSends  int     `json:"late_sends"`   // requests sent late because the connection was busy
	TimerLagUS float64 `json:"timer_lag_us"` // median lateness of our own timer (not counted)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run() error {
	target := flag.String("url", "", "`URL` to GET (http only)")
	host := flag.String("host", "", "Host header (default: the URL's host)")
	rate := flag.Float64("rate", 1000, "requests per second")
	dur := flag.Duration("duration", 10*time.Second, "measured time")
	warmup := flag.Duration("warmup", time.Second, "time sent at the rate before measuring")
	conns := flag.Int("conns", 64, "keep-alive connections")
	timeout := flag.Duration("timeout", 5*time.Second, "per-request I/O timeout")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("-url %q: want http://host:port/path", *target)
	}
	if *rate <= 0 || *conns <= 0 || *dur <= 0 {
		return errors.New("-rate, -conns and -duration must be positive")
	}
	if *host == "" {
		*host = u.Host
	}
	req := []byte(fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: hoist-loadgen\r\n\r\n", u.RequestURI(), *host))

	start := time.Now().Add(50 * time.Millisecond)
	measureFrom, end := start.Add(*warmup), start.Add(*warmup+*dur)
	interval := time.Duration(float64(*conns) / *rate * float64(time.Second))
	workers := make([]*worker, *conns)
	var wg sync.WaitGroup
	for j := range workers {
		w := &worker{addr: u.Host, req: req, timeout: *timeout}
		workers[j] = w
		first := start.Add(time.Duration(float64(j) / *rate * float64(time.Second)))
		wg.Go(func() { w.run(first, interval, measureFrom, end) })
	}
	wg.Wait()

	var lat, lag []time.Duration
	res := Result{Rate: *rate}
	for _, w := range workers {
		lat = append(lat, w.lat...)
		lag = append(lag, w.lag...)
		res.Errors += w.errors
		res.LateSends += w.late
		if w.fatal != nil && res.Errors == 0 {
			return w.fatal
		}
	}
	if len(lat) == 0 {
		return fmt.Errorf("no successful request (%d errors)", res.Errors)
	}
	slices.Sort(lat)
	slices.Sort(lag)
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	q := func(p float64) float64 { return us(lat[min(len(lat)-1, int(p*float64(len(lat))))]) }
	res.Requests = len(lat)
	res.Achieved = float64(len(lat)) / dur.Seconds()
	res.P50, res.P90, res.P99, res.P999, res.Max = q(.50), q(.90), q(.99), q(.999), us(lat[len(lat)-1])
	if len(lag) > 0 {
		res.TimerLagUS = us(lag[len(lag)/2])
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// worker owns one connection and its schedule.
type worker struct {
	addr    string
	req     []byte
	timeout time.Duration

	conn net.Conn
	br   *bufio.Reader

	lat, lag []time.Duration
	errors   int
	late     int
	fatal    error
}

func (w *worker) run(next time.Time, interval time.Duration, measureFrom, end time.Time) {
	defer func() {
		if w.conn != nil {
			w.conn.Close()
		}
	}()
	for ; next.Before(end); next = next.Add(interval) {
		from := next // the time latency counts from
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
			sent := time.Now()
			from = sent // the connection was free: our timer's lateness is not the target's
			if next.After(measureFrom) {
				w.lag = append(w.lag, sent.Sub(next))
			}
		} else if next.After(measureFrom) {
			w.late++
		}
		err := w.do()
		done := time.Now()
		if !next.After(measureFrom) {
			continue
		}
		if err != nil {
			w.errors++
			if w.fatal == nil {
				w.fatal = err
			}
			continue
		}
		w.lat = append(w.lat, done.Sub(from))
	}
}

// do sends one request and reads the whole response, reconnecting once
// when a kept-alive connection turns out to be closed.
func (w *worker) do() error {
	for attempt := 0; ; attempt++ {
		fresh := false
		if w.conn == nil {
			c, err := net.DialTimeout("tcp", w.addr, w.timeout)
			if err != nil {
				return fmt.Errorf("dial %s: %w", w.addr, err)
			}
			w.conn, w.br, fresh = c, bufio.NewReaderSize(c, 16<<10), true
		}
		status, err := w.roundTrip()
		if err == nil {
			if status/100 != 2 {
				return fmt.Errorf("status %d", status)
			}
			return nil
		}
		w.conn.Close()
		w.conn = nil
		if fresh || attempt > 0 {
			return err
		}
	}
}

// roundTrip returns the response's status; an error means the connection
// is unusable.
func (w *worker) roundTrip() (int, error) {
	_ = w.conn.SetDeadline(time.Now().Add(w.timeout))
	if _, err := w.conn.Write(w.req); err != nil {
		return 0, fmt.Errorf("write: %w", err)
	}
	res, err := http.ReadResponse(w.br, nil)
	if err != nil {
		return 0, fmt.Errorf("read response: %w", err)
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err != nil {
		return 0, fmt.Errorf("read body: %w", err)
	}
	if res.Close {
		w.conn.Close()
		w.conn = nil
	}
	return res.StatusCode, nil
}
