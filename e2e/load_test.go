package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// answer is the demo backend's GET / body, as the load generator saw it.
type answer struct {
	Node     string `json:"node"`
	Replica  string `json:"replica"` // scope#index
	Revision string `json:"revision"`
	Hostname string `json:"hostname"`
	PID      int    `json:"pid"`
	Message  string `json:"message"`
	sentAt   time.Time
}

// who names the replica that answered: node/index.
func (a answer) who() string {
	_, idx, _ := strings.Cut(a.Replica, "#")
	return a.Node + "/" + idx
}

// stepLoad counts the requests sent during one step.
type stepLoad struct {
	name                string
	sent, ok, failed    atomic.Int64
	inflight            sync.WaitGroup // requests of this step not yet done
	mu                  sync.Mutex
	codes               map[string]int // "200", "503", "error"
	by                  map[string]int // answers per replica: node/index@revision
	failures            []string       // the first few, for the failure message
	firstFail, lastFail time.Time
}

func (s *stepLoad) record(sentAt time.Time, code string, failure string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code]++
	if failure != "" {
		if s.firstFail.IsZero() {
			s.firstFail = sentAt
		}
		s.lastFail = sentAt
		if len(s.failures) < 5 {
			s.failures = append(s.failures, sentAt.Format("15:04:05.000")+" "+failure)
		}
	}
}

func (s *stepLoad) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	codes := make([]string, 0, len(s.codes))
	for c, n := range s.codes {
		codes = append(codes, fmt.Sprintf("%s×%d", c, n))
	}
	sort.Strings(codes)
	by := make([]string, 0, len(s.by))
	for w, n := range s.by {
		by = append(by, fmt.Sprintf("%s×%d", w, n))
	}
	sort.Strings(by)
	failed := ""
	if len(s.failures) > 0 {
		failed = fmt.Sprintf("; failures sent from %s to %s, first: %s", s.firstFail.Format("15:04:05.000"),
			s.lastFail.Format("15:04:05.000"), strings.Join(s.failures, "; "))
	}
	return fmt.Sprintf("%s: sent %d, ok %d, failed %d (%s); answered by %s%s", s.name, s.sent.Load(), s.ok.Load(), s.failed.Load(),
		strings.Join(codes, " "), strings.Join(by, " "), failed)
}

// window gathers the answers to requests sent after it opened.
type window struct {
	start   time.Time
	want    int
	answers []answer
	full    chan struct{}
}

// loadGen sends GETs with the scope's Host through the balancer at a fixed
// rate from a few keep-alive workers, and counts them per step.
type loadGen struct {
	url, host string
	client    *http.Client
	dropped   atomic.Int64 // ticks with every worker busy

	// stepMu orders joining a step (read lock) before its end (write
	// lock), so once setStep returns nothing joins the old step and its
	// inflight can be waited for.
	stepMu sync.RWMutex
	step   *stepLoad

	mu  sync.Mutex
	win *window

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

const (
	loadRate    = 200 // requests per second
	loadWorkers = 8
)

// startLoad starts the generator; it is stopped when the test ends.
func startLoad(t *testing.T, url, host, firstStep string) *loadGen {
	ctx, cancel := context.WithCancel(context.Background())
	lg := &loadGen{url: url + "/", host: host, cancel: cancel, client: &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: loadWorkers, MaxConnsPerHost: loadWorkers,
			DisableCompression: true, IdleConnTimeout: time.Minute},
	}}
	lg.setStep(firstStep)
	jobs := make(chan struct{})
	for range loadWorkers {
		lg.wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-jobs:
					lg.one(ctx)
				}
			}
		})
	}
	lg.wg.Go(func() {
		tick := time.NewTicker(time.Second / loadRate)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				select {
				case jobs <- struct{}{}:
				default:
					lg.dropped.Add(1)
				}
			}
		}
	})
	t.Cleanup(lg.stop)
	return lg
}

func (lg *loadGen) stop() {
	lg.cancel()
	lg.wg.Wait()
	lg.client.CloseIdleConnections()
}

// setStep starts counting a new step and returns the one that ended,
// once every request sent during it is done.
func (lg *loadGen) setStep(name string) *stepLoad {
	lg.stepMu.Lock()
	old := lg.step
	lg.step = &stepLoad{name: name, codes: map[string]int{}, by: map[string]int{}}
	lg.stepMu.Unlock()
	if old != nil {
		old.inflight.Wait() // bounded by the client's timeout
	}
	return old
}

func (lg *loadGen) current() *stepLoad {
	lg.stepMu.RLock()
	defer lg.stepMu.RUnlock()
	return lg.step
}

func (lg *loadGen) one(ctx context.Context) {
	lg.stepMu.RLock()
	st := lg.step
	st.inflight.Add(1)
	lg.stepMu.RUnlock()
	defer st.inflight.Done()
	sentAt := time.Now()
	st.sent.Add(1)
	code, a, err := lg.get(ctx)
	if ctx.Err() != nil {
		st.sent.Add(-1) // cut short by the end of the test, not by hoist
		return
	}
	if err != nil {
		st.failed.Add(1)
		st.record(sentAt, code, err.Error())
		return
	}
	st.ok.Add(1)
	st.record(sentAt, code, "")
	st.mu.Lock()
	st.by[a.who()+"@"+a.Revision]++
	st.mu.Unlock()
	a.sentAt = sentAt
	lg.offer(a)
}

func (lg *loadGen) get(ctx context.Context) (string, answer, error) {
	var a answer
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, lg.url, nil)
	req.Host = lg.host
	res, err := lg.client.Do(req)
	if err != nil {
		return "error", a, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	code := strconv.Itoa(res.StatusCode)
	if err != nil {
		return "error", a, fmt.Errorf("read body: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return code, a, fmt.Errorf("status %d: %.100s", res.StatusCode, body)
	}
	if err := json.Unmarshal(body, &a); err != nil || a.Replica == "" {
		return code, a, fmt.Errorf("not a demo answer: %.100s", body)
	}
	return code, a, nil
}

// retryAfter sends one request and returns its Retry-After header.
func (lg *loadGen) retryAfter(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, lg.url, nil)
	req.Host = lg.host
	res, err := lg.client.Do(req)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	defer res.Body.Close()
	io.Copy(io.Discard, res.Body)
	return res.Header.Get("Retry-After")
}

func (lg *loadGen) offer(a answer) {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	w := lg.win
	if w == nil || a.sentAt.Before(w.start) || len(w.answers) >= w.want {
		return
	}
	w.answers = append(w.answers, a)
	if len(w.answers) == w.want {
		close(w.full)
	}
}

// collect returns the next n answers to requests sent from now on.
func (lg *loadGen) collect(t *testing.T, n int, timeout time.Duration) []answer {
	t.Helper()
	w := &window{start: time.Now(), want: n, full: make(chan struct{})}
	lg.mu.Lock()
	lg.win = w
	lg.mu.Unlock()
	defer func() {
		lg.mu.Lock()
		lg.win = nil
		lg.mu.Unlock()
	}()
	select {
	case <-w.full:
		return w.answers
	case <-time.After(timeout):
		lg.mu.Lock()
		got := len(w.answers)
		lg.mu.Unlock()
		t.Fatalf("only %d of %d answers within %s (%s)", got, n, timeout, lg.current())
		return nil
	}
}

// count tallies answers by key.
func count(as []answer, key func(answer) string) map[string]int {
	m := map[string]int{}
	for _, a := range as {
		m[key(a)]++
	}
	return m
}
