package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
	"github.com/hoist-dev/hoist/projector"
	"github.com/hoist-dev/hoist/view"
)

var web = events.Scope{Client: "acme", Environment: "prod", Solution: "web"}

func TestReadsAgainstRealNATS(t *testing.T) {
	e := newEnv(t, nil)
	e.deploy("acme.prod.web", events.Spec{Image: "web:1", Replicas: 2, Port: 8080, Env: map[string]string{"MODE": "a", "DB_PASSWORD": "hunter2"}})
	e.must(200, e.do("ops", "POST", "/v1/scopes/acme.prod.web/scale", `{"replicas":3}`))
	// A stray message on the scope's subject: every reader rejects it,
	// and it holds revision 3.
	js, _ := jetstream.New(e.nats.Connect(t))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, "hoist.scope.acme.prod.web.scaled.x", []byte("not an event")); err != nil {
		t.Fatal(err)
	}

	var list []scopeJSON
	e.must(200, e.do("ops", "GET", "/v1/scopes", "")).json(t, &list)
	if len(list) != 1 || list[0].Scope != "acme.prod.web" || list[0].Revision != 3 || list[0].Health != "no-nodes" {
		t.Fatalf("scopes: %+v", list)
	}

	r := e.must(200, e.do("ops", "GET", "/v1/scopes/acme.prod.web", ""))
	var st view.State
	r.json(t, &st)
	if st.Image != "web:1" || st.Replicas != 3 || st.Revision != 3 || r.header.Get("ETag") != `"3"` {
		t.Fatalf("state: %+v etag %s", st, r.header.Get("ETag"))
	}
	if st.Env["DB_PASSWORD"] == "hunter2" || st.Env["MODE"] != "a" {
		t.Fatalf("a plain value that looks secret is shown: %v", st.Env)
	}
	e.must(200, e.do("ops", "GET", "/v1/scopes/acme.prod.web?at=1", "")).json(t, &st)
	if st.Replicas != 2 || st.Revision != 1 || st.Actor != "setup" {
		t.Fatalf("state at 1: %+v", st)
	}
	if he := e.must(400, e.do("ops", "GET", "/v1/scopes/acme.prod.web?at=9", "")).errorJSON(t); he.Field != "at" || !strings.Contains(he.Msg, "revisions 1-3") {
		t.Fatalf("at=9: %+v", he)
	}
	e.must(404, e.do("ops", "GET", "/v1/scopes/acme.prod.none", ""))
	if he := e.must(400, e.do("ops", "GET", "/v1/scopes/Acme.prod.web", "")).errorJSON(t); he.Field != "scope" {
		t.Fatalf("bad scope: %+v", he)
	}

	var log []entry
	e.must(200, e.do("ops", "GET", "/v1/scopes/acme.prod.web/log", "")).json(t, &log)
	if len(log) != 3 || log[1].Actor != "ops" || log[2].Rejected == "" || log[2].Revision != 3 {
		t.Fatalf("log: %+v", log)
	}

	// A node reports the scope, and announces backends; one is scored.
	now := time.Now().UTC()
	if err := e.store.PublishStatus(ctx, &events.NodeStatus{Node: "node-1", Time: now, Started: now, Runtime: "process", Interval: events.Duration(time.Second),
		Scopes: []events.ScopeStatus{{Scope: web, Desired: 3, Applied: 3, Phase: events.PhaseConverged, Replicas: []events.ReplicaStatus{{Index: 0, ID: "a", Revision: 3, State: "running", Healthy: true}}}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.PublishBackends(ctx, &events.BackendsReport{Node: "node-1", Scope: web, Revision: 3, Backends: []string{"10.0.0.1:31001", "10.0.0.1:31002"}, Time: now, Hosts: []string{"web.example.com"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Append(ctx, &events.Event{Scope: web, Actor: "ops", Data: &events.BackendScored{Backend: "10.0.0.1:31002", Score: 25}}, store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	var views []projector.NodeView
	e.must(200, e.do("ops", "GET", "/v1/scopes/acme.prod.web/status", "")).json(t, &views)
	if len(views) != 1 || views[0].Node != "node-1" || views[0].Applied != 3 || views[0].Healthy != 1 {
		t.Fatalf("status: %+v", views)
	}
	natstest.Eventually(t, 10*time.Second, func() error {
		var b backendsJSON
		e.must(200, e.do("dash", "GET", "/v1/scopes/acme.prod.web/backends", "")).json(t, &b)
		if len(b.Backends) != 2 || b.Backends[1].Weight != 25 || b.Backends[0].Weight != 100 || fmt.Sprintf("%.2f", b.Backends[1].Share) != "0.20" {
			return fmt.Errorf("backends: %+v", b)
		}
		return nil
	})
	natstest.Eventually(t, 10*time.Second, func() error {
		e.must(200, e.do("ops", "GET", "/v1/scopes", "")).json(t, &list)
		if list[0].Health != "healthy" {
			return fmt.Errorf("health: %+v", list[0])
		}
		return nil
	})

	var d diffJSON
	e.must(200, e.do("ops", "GET", "/v1/scopes/acme.prod.web/diff?from=1&to=2", "")).json(t, &d)
	if len(d.Changes) != 1 || d.Changes[0] != (fieldDelta{Field: "replicas", From: "2", To: "3"}) {
		t.Fatalf("diff: %+v", d)
	}
	e.must(400, e.do("ops", "GET", "/v1/scopes/acme.prod.web/diff", ""))
	e.must(200, e.do("", "GET", "/healthz", ""))
	e.must(200, e.do("", "GET", "/v1/openapi.json", ""))
	var who whoJSON
	e.must(200, e.do("ci-acme", "GET", "/v1/whoami", "")).json(t, &who)
	if who.Name != "ci-acme" || who.Role != "deployer" {
		t.Fatalf("whoami: %+v", who)
	}
}

func TestWritesShareTheCLIsChecks(t *testing.T) {
	e := newEnv(t, nil)
	scope := "/v1/scopes/acme.prod.web"
	if he := e.must(400, e.do("ops", "POST", scope+"/scale", `{"replicas":2}`)).errorJSON(t); !strings.Contains(he.Msg, "has never been deployed") {
		t.Fatalf("scale before deploy: %+v", he)
	}
	for _, c := range []struct{ path, body, field string }{
		{"/deploy", `{"replicas":2}`, "image"},
		{"/deploy", `{"image":"Web:1"}`, "image"},
		{"/deploy", `{"image":"web:1","port":70000}`, "port"},
		{"/deploy", `{"image":"web:1","env":{"1X":"a"}}`, "env"},
		{"/deploy", `{"image":"web:1","cache_max_bytes":5}`, "cache_max_bytes"},
		{"/deploy", `{"image":"web:1","replicas":"two"}`, "replicas"},
		{"/deploy", `{"image":"web:1","colour":"red"}`, "colour"},
		{"/deploy", `{"image":`, ""},
	} {
		he := e.must(400, e.do("ops", "POST", scope+c.path, c.body)).errorJSON(t)
		if he.Field != c.field || he.Msg == "" {
			t.Errorf("%s %s: want field %q, got %+v", c.path, c.body, c.field, he)
		}
	}

	var pub entry
	r := e.must(200, e.do("ops", "POST", scope+"/deploy", `{"image":"web:1","replicas":2,"port":8080,"hosts":["web.example.com"]}`))
	r.json(t, &pub)
	if pub.Revision != 1 || pub.Actor != "ops" || pub.Kind != events.KindDeployed || r.header.Get("ETag") != `"1"` {
		t.Fatalf("deploy: %+v", pub)
	}
	// A deploy keeps what it does not name, as 'hoist deploy' does.
	e.must(200, e.do("ops", "POST", scope+"/deploy", `{"image":"web:2"}`, "If-Match", "1"))
	var st view.State
	e.must(200, e.do("ops", "GET", scope, "")).json(t, &st)
	if st.Image != "web:2" || st.Replicas != 2 || len(st.Hosts) != 1 {
		t.Fatalf("after a second deploy: %+v", st)
	}

	for _, c := range []struct{ path, body, field, want string }{
		{"/scale", `{}`, "replicas", "replicas is missing"},
		{"/scale", `{"replicas":1001}`, "replicas", "replicas is 1001 (want 0-1000)"},
		{"/env", `{}`, "env", "sets and unsets nothing"},
		{"/env", `{"set":{"A-B":"x"}}`, "env", "is not a valid name"},
		{"/rollback", `{"to":9}`, "to", "acme.prod.web has revisions 1-2: there is no revision 9 to roll back to; nothing was published"},
		{"/rollback", `{"to":2}`, "to", "revision 2 is the head already"},
	} {
		he := e.must(400, e.do("ops", "POST", scope+c.path, c.body)).errorJSON(t)
		if he.Field != c.field || !strings.Contains(he.Msg, c.want) {
			t.Errorf("%s %s: want field %q and %q, got %+v", c.path, c.body, c.field, c.want, he)
		}
	}

	e.must(200, e.do("ops", "POST", scope+"/scale", `{"replicas":5}`)).json(t, &pub)
	if pub.Revision != 3 || pub.Summary != "scaled to 5" {
		t.Fatalf("scale: %+v", pub)
	}
	// A stale If-Match: 412, both revisions, nothing published.
	r = e.must(412, e.do("ops", "POST", scope+"/scale", `{"replicas":4}`, "If-Match", `"2"`))
	if he := r.errorJSON(t); he.Expected == nil || *he.Expected != 2 || he.Actual == nil || *he.Actual != 3 || !strings.Contains(he.Msg, "expected revision 2, but the head is revision 3") {
		t.Fatalf("conflict: %s", r.body)
	}
	if he := e.must(400, e.do("ops", "POST", scope+"/scale", `{"replicas":4}`, "If-Match", "three")).errorJSON(t); he.Field != "If-Match" {
		t.Fatalf("bad If-Match: %+v", he)
	}
	e.must(200, e.do("ops", "POST", scope+"/env", `{"set":{"MODE":"fast"}}`, "If-Match", "3"))
	e.must(200, e.do("ops", "POST", scope+"/rollback", ``)).json(t, &pub)
	if pub.Summary != "rolled back to revision 3" {
		t.Fatalf("plain rollback: %+v", pub)
	}
	e.must(200, e.do("ops", "POST", scope+"/rollback", `{"to":1}`))
	e.must(200, e.do("ops", "POST", scope+"/remove", ``)).json(t, &pub)
	e.must(200, e.do("ops", "GET", scope, "")).json(t, &st)
	if !st.Removed || st.Image != "web:1" || st.Revision != 7 {
		t.Fatalf("after remove: %+v", st)
	}
	var log []entry
	e.must(200, e.do("ops", "GET", scope+"/log", "")).json(t, &log)
	if len(log) != 7 {
		t.Fatalf("%d revisions, want 7: %+v", len(log), log)
	}
	for _, l := range log {
		if l.Actor != "ops" {
			t.Errorf("revision %d recorded as %q, not the token's name", l.Revision, l.Actor)
		}
	}
}

func TestDenialsPerRole(t *testing.T) {
	e := newEnv(t, nil)
	for _, s := range []string{"acme.prod.web", "acme.prod.api", "acme.staging.web", "other.dev.web"} {
		e.deploy(s, spec("web:1", 1))
	}
	type check struct {
		as, method, path, body string
		want                   int
		msg                    string
	}
	checks := []check{
		{"", "GET", "/v1/scopes", "", 401, "needs a token"},
		{"", "POST", "/v1/scopes/acme.prod.web/scale", `{"replicas":2}`, 401, "needs a token"},
		{"ops", "POST", "/v1/scopes/other.dev.web/scale", `{"replicas":2}`, 200, ""},

		{"ci-acme", "POST", "/v1/scopes/acme.prod.web/scale", `{"replicas":2}`, 200, ""},
		{"ci-acme", "POST", "/v1/scopes/acme.staging.web/scale", `{"replicas":2}`, 403, "permission denied: publish on hoist.scope.acme.staging.web.scaled.ci-acme"},
		{"ci-acme", "GET", "/v1/scopes/acme.staging.web", "", 403, "permission denied: read on hoist.scope.acme.staging.web.>"},
		{"ci-acme", "GET", "/v1/scopes/acme.prod.api/log", "", 200, ""},

		{"agent-1", "GET", "/v1/scopes/acme.prod.web", "", 200, ""},
		{"agent-1", "GET", "/v1/scopes/acme.prod.api", "", 403, "permission denied"},
		{"agent-1", "POST", "/v1/scopes/acme.prod.web/scale", `{"replicas":2}`, 403, "publish on hoist.scope.acme.prod.web.scaled.agent-1"},
		{"agent-1", "GET", "/v1/scopes/acme.prod.web/status", "", 403, "permission denied: read on hoist.status.*.acme.prod.web"},

		{"lb-1", "GET", "/v1/scopes/acme.prod.web", "", 403, "permission denied"},
		{"lb-1", "GET", "/v1/scopes/acme.prod.web/backends", "", 200, ""},
		{"lb-1", "POST", "/v1/scopes/acme.prod.web/remove", ``, 403, "permission denied"},

		{"dash", "GET", "/v1/scopes/acme.staging.web/status", "", 200, ""},
		{"dash", "GET", "/v1/scopes/other.dev.web", "", 403, "permission denied"},
		{"dash", "POST", "/v1/scopes/acme.prod.web/rollback", ``, 403, "permission denied: publish on hoist.scope.acme.prod.web.rolled_back.dash"},
	}
	for _, c := range checks {
		r := e.do(c.as, c.method, c.path, c.body)
		if r.status != c.want || !strings.Contains(r.body, c.msg) {
			t.Errorf("%s %s %s: want %d %q, got %d %s", c.as, c.method, c.path, c.want, c.msg, r.status, r.body)
		}
	}
	req, _ := http.NewRequest("GET", e.http.URL+"/v1/scopes", nil)
	req.Header.Set("Authorization", "Bearer hoist_nottoken")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("unknown token: %v %v", resp, err)
	}
	// A listing keeps what the token may read.
	var list []scopeJSON
	e.must(200, e.do("dash", "GET", "/v1/scopes", "")).json(t, &list)
	if len(list) != 3 {
		t.Fatalf("a reader of acme.*.* lists %+v", list)
	}
	// A browser on another site cannot write (CSRF).
	r := e.do("ops", "POST", "/v1/scopes/acme.prod.web/scale", `{"replicas":3}`, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
	if r.status != 403 {
		t.Fatalf("a cross-site write: %d %s", r.status, r.body)
	}
}

func TestPublicReadAllowsOnlyReads(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Anonymous = &roleReaderAll })
	e.deploy("acme.prod.web", spec("web:1", 1))
	e.must(200, e.do("", "GET", "/v1/scopes/acme.prod.web", ""))
	r := e.must(401, e.do("", "POST", "/v1/scopes/acme.prod.web/scale", `{"replicas":2}`))
	if !strings.Contains(r.body, "needs a token") {
		t.Fatal(r.body)
	}
	e.must(200, e.do("ci-acme", "POST", "/v1/scopes/acme.prod.web/scale", `{"replicas":2}`))
}

func TestEventsResumeAfterADroppedConnection(t *testing.T) {
	e := newEnv(t, nil)
	e.deploy("acme.prod.web", spec("web:1", 1))
	e.deploy("acme.staging.web", spec("web:1", 1))

	all := e.stream("ops", "/v1/events?since=0")
	first := all.next(t, "event")
	var ev entry
	if err := json.Unmarshal([]byte(first.data), &ev); err != nil || ev.Scope != "acme.prod.web" || ev.Revision != 1 || first.id == "" {
		t.Fatalf("first event: %+v %v", first, err)
	}
	second := all.next(t, "event")
	all.close() // the connection drops

	e.must(200, e.do("ops", "POST", "/v1/scopes/acme.prod.web/scale", `{"replicas":2}`))
	e.must(200, e.do("ops", "POST", "/v1/scopes/acme.prod.web/scale", `{"replicas":3}`))

	// The browser comes back with the last id it got: exactly what it missed, in order.
	again := e.stream("ops", "/v1/events", "Last-Event-ID", second.id)
	var got []string
	for range 2 {
		m := again.next(t, "event")
		if err := json.Unmarshal([]byte(m.data), &ev); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s r%d %s", ev.Scope, ev.Revision, ev.Kind))
	}
	if strings.Join(got, ", ") != "acme.prod.web r2 scaled, acme.prod.web r3 scaled" {
		t.Fatalf("resumed with %v", got)
	}
	// And live events follow; a scope filter keeps one scope.
	one := e.stream("ci-acme", "/v1/events?scope=acme.prod.web")
	e.must(200, e.do("ops", "POST", "/v1/scopes/acme.staging.web/scale", `{"replicas":2}`))
	e.must(200, e.do("ops", "POST", "/v1/scopes/acme.prod.web/scale", `{"replicas":4}`))
	m := one.next(t, "event")
	if err := json.Unmarshal([]byte(m.data), &ev); err != nil || ev.Scope != "acme.prod.web" || ev.Revision != 4 {
		t.Fatalf("filtered live event: %+v", m)
	}
	m = again.next(t, "event")
	if err := json.Unmarshal([]byte(m.data), &ev); err != nil || ev.Scope != "acme.staging.web" {
		t.Fatalf("live event: %+v", m)
	}
	// A deployer may not stream a scope it cannot read.
	if r := e.do("ci-acme", "GET", "/v1/events?scope=acme.staging.web", ""); r.status != 403 {
		t.Fatalf("stream of another scope: %d %s", r.status, r.body)
	}
	// Status reports come as they are published.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := time.Now().UTC()
	if err := e.store.PublishStatus(ctx, &events.NodeStatus{Node: "node-1", Time: now, Started: now, Interval: events.Duration(time.Second),
		Scopes: []events.ScopeStatus{{Scope: web, Desired: 4, Applied: 4, Phase: events.PhaseConverged}}}); err != nil {
		t.Fatal(err)
	}
	if m := one.next(t, "status"); !strings.Contains(m.data, `"applied":4`) || m.id != "" {
		t.Fatalf("status: %+v", m)
	}
}

func TestEventsSayResetWhenTheyCannotResume(t *testing.T) {
	e := newEnv(t, nil)
	e.srv.hub.mu.Lock()
	e.srv.hub.evicted = 100 // as if the ring had dropped sequences up to 100
	e.srv.hub.mu.Unlock()
	s := e.stream("ops", "/v1/events", "Last-Event-ID", "7")
	s.next(t, "reset")
}
