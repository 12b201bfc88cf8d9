package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/view"
)

// The canary and traffic writes go through the CLI's builders: a canary
// starts with a deploy, shifts by hand or by its analysis (what the body
// leaves out has the CLI's defaults), and ends promoted or aborted; a
// pause and a maintenance page go up and down. What the scope's state
// makes meaningless is a 400 naming why, and nothing is published.
func TestCanaryAndTrafficWrites(t *testing.T) {
	e := newEnv(t, nil)
	e.deploy("acme.prod.web", spec("web:1", 2))
	scope := "/v1/scopes/acme.prod.web"
	post := func(path, body string) entry {
		t.Helper()
		var pub entry
		e.must(200, e.do("ops", "POST", scope+path, body)).json(t, &pub)
		return pub
	}
	refused := func(path, body, field, want string) {
		t.Helper()
		he := e.must(400, e.do("ops", "POST", scope+path, body)).errorJSON(t)
		if he.Field != field || !strings.Contains(he.Msg, want) {
			t.Errorf("%s %s: want field %q and %q, got %+v", path, body, field, want, he)
		}
	}
	// page is the dashboard's live part of the scope, which shows the
	// standing canary, pause and maintenance page.
	page := func() string {
		t.Helper()
		return e.must(200, e.do("ops", "GET", "/scopes/acme.prod.web/part/live", "")).body
	}
	state := func() view.State {
		t.Helper()
		var st view.State
		e.must(200, e.do("ops", "GET", scope, "")).json(t, &st)
		return st
	}

	refused("/promote", ``, "", "no canary")
	refused("/canary", `{"share":50}`, "", "no canary")
	refused("/deploy", `{"image":"web:2","canary":{}}`, "canary.share", "canary.share is missing")
	refused("/deploy", `{"image":"web:2","canary":{"share":10,"colour":1}}`, "canary.colour", "unknown field")
	refused("/deploy", `{"image":"web:2","canary":{"share":101}}`, "canary.share", "is 101 (want 0-100")
	refused("/deploy", `{"image":"web:2","canary":{"share":10,"replicas":0}}`, "canary.replicas", "canary.replicas is 0")
	refused("/deploy", `{"image":"web:2","canary":{"share":10,"auto":{"steps":[50,10]}}}`, "canary.auto.steps", "must rise")
	refused("/deploy", `[1]`, "", "must be a JSON object")

	if pub := post("/deploy", `{"image":"web:2","canary":{"share":10,"sticky":true}}`); pub.Kind != events.KindCanaryStarted {
		t.Fatalf("deploy with a canary published %s", pub.Kind)
	}
	if c := state().Canary; c == nil || c.Share != 10 || c.Replicas != 1 || !c.Sticky || !strings.Contains(c.Spec, "web:2") {
		t.Fatalf("canary in the state: %+v", c)
	}
	if p := page(); !strings.Contains(p, `data-testid="canary"`) || !strings.Contains(p, "gets <strong>10%</strong> of new requests") {
		t.Fatalf("the dashboard does not show the canary:\n%s", p)
	}
	refused("/deploy", `{"image":"web:3","canary":{"share":10}}`, "", "a canary is running")
	refused("/canary", `{}`, "share", "share is missing")
	refused("/canary", `{"share":150}`, "share", "is 150")
	refused("/canary", `{"auto":{"interval":"1ms"}}`, "auto.interval", "")
	refused("/canary", `{"auto":{"interval":"soon"}}`, "auto.interval", `want a duration like "30s", got a JSON string "soon"`)
	refused("/canary", `{"auto":{"bogus":1}}`, "auto.bogus", "unknown field")

	// The analysis, from its first step; what is left out is the CLI's.
	pub := post("/canary", `{"auto":{"steps":[25,100],"max_p99":"300ms"}}`)
	var shift events.CanaryShifted
	if err := json.Unmarshal(pub.Data, &shift); err != nil {
		t.Fatal(err)
	}
	want := events.CanaryShifted{Share: 25, Auto: &events.Analysis{Steps: []int{25, 100}, Interval: events.Duration(time.Minute),
		MaxErrorRate: 0.01, MaxP99: events.Duration(300 * time.Millisecond), MinRequests: 100}}
	if diff := cmp.Diff(want, shift); diff != "" {
		t.Fatalf("shift to the analysis (-want +got):\n%s", diff)
	}
	if pub := post("/abort", `{"reason":"p99 doubled"}`); pub.Kind != events.KindCanaryAborted || !strings.Contains(pub.Summary, "p99 doubled") {
		t.Fatalf("abort: %+v", pub)
	}
	refused("/abort", ``, "", "no canary")

	// A canary of env alone runs the stable image; promote makes it the spec.
	post("/deploy", `{"env":{"MODE":"fast"},"canary":{"share":5}}`)
	pub = post("/promote", ``)
	if pub.Kind != events.KindCanaryPromoted {
		t.Fatalf("promote: %+v", pub)
	}
	promoted := pub.Revision
	if st := state(); st.Canary != nil || st.Image != "web:1" || st.Env["MODE"] != "fast" {
		t.Fatalf("after promote: %+v", st)
	}

	refused("/resume", ``, "", "is not paused")
	refused("/pause", `{"max":"2h"}`, "max", "max is 2h0m0s (want 100ms-1h0m0s)")
	refused("/pause", `{"max":"soon"}`, "max", `max: want a duration like "30s"`)
	post("/pause", `{"reason":"db migration"}`)
	if p := state().Paused; p == nil || time.Duration(p.Max) != events.DefaultPauseMax {
		t.Fatalf("paused in the state: %+v", p)
	}
	if p := page(); !strings.Contains(p, `data-testid="paused"`) || strings.Contains(p, `data-testid="canary"`) {
		t.Fatalf("the dashboard does not show the pause alone:\n%s", p)
	}
	post("/resume", ``)
	if p := state().Paused; p != nil {
		t.Fatalf("still paused after resume: %+v", p)
	}

	refused("/maintenance", `{}`, "on", "on is missing")
	refused("/maintenance", `{"on":false}`, "", "no maintenance page up")
	refused("/maintenance", `{"on":false,"message":"x"}`, "message", "needs none")
	post("/maintenance", `{"on":true,"message":"back at 10:00 <b>"}`)
	if m := state().Maintenance; m == nil || m.Message != "back at 10:00 <b>" {
		t.Fatalf("maintenance in the state: %+v", m)
	}
	if p := page(); !strings.Contains(p, "back at 10:00 &lt;b&gt;") || strings.Contains(p, `data-testid="paused"`) {
		t.Fatalf("the dashboard does not show the page's message, escaped:\n%s", p)
	}
	if pub := post("/maintenance", `{"on":false}`); pub.Kind != events.KindMaintenanceOff {
		t.Fatalf("maintenance off: %+v", pub)
	}
	// The timeline offers to roll back only to a revision with another
	// spec: the promote's is the head's, and so is every traffic change's
	// since; revision 1's, web:1 without MODE, is not.
	full := e.must(200, e.do("ops", "GET", "/scopes/acme.prod.web", "")).body
	head := state().Revision
	for rev := uint64(1); rev < head; rev++ {
		offered := strings.Contains(full, fmt.Sprintf(`data-rollback-to="%d"`, rev))
		if want := rev < promoted; offered != want {
			t.Errorf("roll back to r%d offered: %v, want %v", rev, offered, want)
		}
	}

	// Each is held to the token's permissions on the kind it publishes.
	for _, c := range []struct{ as, path, body string }{
		{"dash", "/pause", ``},
		{"agent-1", "/pause", ``},
		{"agent-1", "/deploy", `{"image":"web:2","canary":{"share":10}}`},
		{"lb-1", "/maintenance", `{"on":true}`},
	} {
		if r := e.do(c.as, "POST", scope+c.path, c.body); r.status != 403 || !strings.Contains(r.body, "permission denied: publish on hoist.scope.acme.prod.web.") {
			t.Errorf("%s POST %s: want 403, got %d %s", c.as, c.path, r.status, r.body)
		}
	}
	e.must(200, e.do("ci-acme", "POST", scope+"/pause", ``))
}

// Whatever the body of a write, the answer is a decision, never a 5xx:
// published (200), refused naming why (400, JSON with an error), or a
// conflict (412).
func FuzzWriteBodies(f *testing.F) {
	e := newEnv(f, nil)
	e.deploy("acme.prod.web", spec("web:1", 2))
	paths := []string{"deploy", "scale", "env", "rollback", "remove", "canary", "promote", "abort", "pause", "resume", "maintenance"}
	for i, body := range []string{
		``, `{}`, `null`, `[1]`, `{"image":"web:2","canary":{"share":10,"auto":{}}}`, `{"replicas":3}`,
		`{"set":{"A":"1"}}`, `{"to":1}`, `{"share":50,"auto":{"steps":[10,100],"interval":"5s"}}`,
		`{"reason":"x"}`, `{"max":"1s"}`, `{"on":true,"message":"<b>"}`, `{"canary":null,"image":"a"}`,
		`{"canary":{"share":1e400}}`, `{"max":-1}`, `{"auto":{"max_error_rate":"NaN"}}`,
	} {
		f.Add(uint8(i), body)
	}
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		path := "/v1/scopes/acme.prod.web/" + paths[int(which)%len(paths)]
		req, err := http.NewRequest("POST", e.http.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+e.tokens["ops"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var answer map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
			t.Fatalf("POST %s %q: %d, not JSON: %v", path, body, resp.StatusCode, err)
		}
		switch resp.StatusCode {
		case 200, 412:
		case 400:
			if msg, _ := answer["error"].(string); msg == "" {
				t.Fatalf("POST %s %q: 400 without an error: %v", path, body, answer)
			}
		default:
			t.Fatalf("POST %s %q: %d %v", path, body, resp.StatusCode, answer)
		}
	})
}
