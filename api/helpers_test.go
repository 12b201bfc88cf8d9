package api

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/auth"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// env is a running API against a real embedded NATS server.
type env struct {
	t      testing.TB
	nats   *natstest.Server
	store  *store.Store
	srv    *Server
	http   *httptest.Server
	tokens map[string]string // name → token
}

// roles are the tokens every test server has, one per role of docs/auth.md.
var roles = []auth.Role{
	{Kind: auth.KindAdmin, Name: "ops"},
	{Kind: auth.KindDeployer, Name: "ci-acme", Scopes: []string{"acme.prod.*"}},
	{Kind: auth.KindAgent, Name: "agent-1", Node: "node-1", Scopes: []string{"acme.prod.web"}},
	{Kind: auth.KindBalancer, Name: "lb-1"},
	{Kind: auth.KindReader, Name: "dash", Scopes: []string{"acme.*.*"}},
}

func newEnv(t testing.TB, tune func(*Options)) *env {
	t.Helper()
	ns := natstest.Start(t)
	e := &env{t: t, nats: ns, store: ns.Store(t), tokens: map[string]string{}}
	path := filepath.Join(t.TempDir(), "tokens.toml")
	for _, r := range roles {
		tok, entry, err := NewToken(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := AddToken(path, entry); err != nil {
			t.Fatal(err)
		}
		e.tokens[r.Name] = tok
	}
	tokens, err := OpenTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Store: e.store, Tokens: tokens}
	if tune != nil {
		tune(&opts)
	}
	if e.srv, err = Open(opts); err != nil {
		t.Fatal(err)
	}
	e.http = httptest.NewServer(e.srv.Handler())
	t.Cleanup(func() {
		e.http.CloseClientConnections()
		e.http.Close()
		e.srv.Close()
	})
	select {
	case <-e.srv.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("the API never caught up with the streams")
	}
	return e
}

// reply is one HTTP answer.
type reply struct {
	status int
	header http.Header
	body   string
}

func (r reply) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
}

func (r reply) errorJSON(t *testing.T) httpError {
	t.Helper()
	var he httpError
	r.json(t, &he)
	return he
}

// do sends a request as the token named as ("" for none).
func (e *env) do(as, method, path, body string, header ...string) reply {
	e.t.Helper()
	req, err := http.NewRequest(method, e.http.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if as != "" {
		req.Header.Set("Authorization", "Bearer "+e.tokens[as])
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (e *env) must(want int, r reply) reply {
	e.t.Helper()
	if r.status != want {
		e.t.Fatalf("want %d, got %d: %s", want, r.status, r.body)
	}
	return r
}

// deploy publishes a first deploy straight to the store.
func (e *env) deploy(scope string, spec events.Spec) {
	e.t.Helper()
	sc, err := events.ParseScope(scope)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.store.Append(ctx, &events.Event{Scope: sc, Actor: "setup", Data: &events.Deployed{Spec: spec}}, store.AppendOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// sseMsg is one Server-Sent Event.
type sseMsg struct {
	id, event, data string
}

// sseStream reads an event stream.
type sseStream struct {
	resp *http.Response
	msgs chan sseMsg
}

func (e *env) stream(as, path string, header ...string) *sseStream {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.http.URL+path, nil)
	if as != "" {
		req.Header.Set("Authorization", "Bearer "+e.tokens[as])
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("stream %s: %d %s", path, resp.StatusCode, b)
	}
	s := &sseStream{resp: resp, msgs: make(chan sseMsg, 1024)}
	go func() {
		defer close(s.msgs)
		sc := bufio.NewScanner(resp.Body)
		var m sseMsg
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if m.event != "" || m.data != "" {
					s.msgs <- m
				}
				m = sseMsg{}
			case strings.HasPrefix(line, "id: "):
				m.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				m.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				m.data = line[6:]
			}
		}
	}()
	return s
}

// next waits for the next message of kind (others are skipped).
func (s *sseStream) next(t *testing.T, kind string) sseMsg {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				t.Fatalf("the stream ended waiting for %q", kind)
			}
			if m.event == kind {
				return m
			}
		case <-deadline:
			t.Fatalf("no %q message within 10s", kind)
		}
	}
}

func (s *sseStream) close() { s.resp.Body.Close() }

func spec(image string, replicas int) events.Spec {
	return events.Spec{Image: image, Replicas: replicas, Port: 8080}
}

var roleReaderAll = auth.Role{Kind: auth.KindReader, Name: "anonymous"}

// entry reads a log entry, a published event or an SSE event, with the
// data left raw (events.Payload is an interface).
type entry struct {
	Scope    string          `json:"scope"`
	Revision uint64          `json:"revision"`
	Kind     events.Kind     `json:"kind"`
	Actor    string          `json:"actor"`
	Rejected string          `json:"rejected"`
	Summary  string          `json:"summary"`
	Data     json.RawMessage `json:"data"`
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
