package api

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hoist-dev/hoist/balancer"
	"github.com/hoist-dev/hoist/events"
)

// TestOpenAPIMatchesRoutes holds /v1/openapi.json to the handlers: every
// documented operation is served, every API route is documented, and
// every path parameter is declared.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]struct {
			Parameters []struct {
				Name string `json:"name"`
				In   string `json:"in"`
			} `json:"parameters"`
			Responses map[string]any `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q, want 3.x", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
			if len(op.Responses) == 0 {
				t.Errorf("%s %s documents no response", method, path)
			}
			for _, seg := range strings.Split(path, "/") {
				if name, ok := strings.CutPrefix(seg, "{"); ok {
					name = strings.TrimSuffix(name, "}")
					if !slices.ContainsFunc(op.Parameters, func(p struct {
						Name string `json:"name"`
						In   string `json:"in"`
					}) bool {
						return p.Name == name && p.In == "path"
					}) {
						t.Errorf("%s %s does not declare its path parameter %s", method, path, name)
					}
				}
			}
		}
	}
	s := &Server{ui: &ui{}}
	served := map[string]bool{}
	for _, rt := range s.routes() {
		if rt.api {
			served[rt.method+" "+rt.pattern] = true
		}
	}
	for k := range documented {
		if !served[k] {
			t.Errorf("documented but not served: %s", k)
		}
	}
	for k := range served {
		if !documented[k] {
			t.Errorf("served but not documented: %s", k)
		}
	}
	if len(served) < 16 {
		t.Fatalf("only %d API routes: %v", len(served), slices.Sorted(maps.Keys(served)))
	}
}

// TestEveryDocumentedOperationAnswers sends each documented operation to a
// running server: none is a 404 or 405 of the mux.
func TestEveryDocumentedOperationAnswers(t *testing.T) {
	e := newEnv(t, nil)
	e.deploy("acme.prod.web", spec("web:1", 1))
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	_ = json.Unmarshal(openAPIDoc, &doc)
	for path, ops := range doc.Paths {
		for method := range ops {
			p := strings.ReplaceAll(path, "{scope}", "acme.prod.web")
			if p == "/v1/events" {
				continue // a stream; TestEventsResumeAfterADroppedConnection reads it
			}
			if strings.HasSuffix(p, "/diff") {
				p += "?from=1"
			}
			r := e.do("ops", strings.ToUpper(method), p, "")
			if r.status == 404 && !strings.Contains(r.body, `"error"`) || r.status == 405 {
				t.Errorf("%s %s: %d %s", method, p, r.status, r.body)
			}
		}
	}
}

// TestMetricsParse proves the hand-written expositions with Prometheus'
// own parser: the API's, and the balancer's it reads request counts from.
func TestMetricsParse(t *testing.T) {
	e := newEnv(t, nil)
	e.deploy("acme.prod.web", spec("web:1", 1))
	e.must(200, e.do("ops", "GET", "/v1/scopes", ""))
	body := e.must(200, e.do("ops", "GET", "/metrics", "")).body
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	for _, name := range []string{"hoist_api_requests_total", "hoist_api_sse_clients", "hoist_api_ready", "hoist_api_stream_messages_total", "hoist_api_writes_total"} {
		if fams[name] == nil {
			t.Errorf("no %s in\n%s", name, body)
		}
	}
	e.must(401, e.do("", "GET", "/metrics", ""))

	bal, err := balancer.New(balancer.DefaultConfig(), e.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := bal.WriteMetrics(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := p.TextToMetricFamilies(&buf); err != nil {
		t.Fatalf("balancer metrics: %v", err)
	}
}

func TestRequestCountsFromAnExposition(t *testing.T) {
	text := `# HELP hoist_balancer_requests_total x
# TYPE hoist_balancer_requests_total counter
hoist_balancer_requests_total{scope="",backend="",code="404"} 3
hoist_balancer_requests_total{scope="acme.prod.web",backend="10.0.0.1:1",code="200"} 7
hoist_balancer_requests_total{scope="acme.prod.web",backend="10.0.0.1:1",code="502"} 1
hoist_balancer_requests_total{scope="acme.prod.web",backend="10.0.0.1:2",code="200"} 2
`
	total := map[events.Scope]map[string]uint64{}
	if err := addRequestCounts(total, strings.NewReader(text)); err != nil {
		t.Fatal(err)
	}
	if got := total[web]; got["10.0.0.1:1"] != 8 || got["10.0.0.1:2"] != 2 || len(total) != 1 {
		t.Fatalf("counts: %v", total)
	}
	s := newSampler(nil, nil)
	t0 := mustTime(t, "2026-01-01T00:00:00Z")
	s.take(total, t0)
	next := map[events.Scope]map[string]uint64{web: {"10.0.0.1:1": 18, "10.0.0.1:2": 2}}
	s.take(next, t0.Add(2e9))
	if r := s.of(web); len(r["10.0.0.1:1"]) != 1 || r["10.0.0.1:1"][0] != 5 || r["10.0.0.1:2"][0] != 0 {
		t.Fatalf("rates: %v", r)
	}
}

func TestSubjectMatch(t *testing.T) {
	for _, c := range []struct {
		pat, subj string
		want      bool
	}{
		{">", "a.b", true},
		{"a.>", "a", false},
		{"a.>", "a.b.c", true},
		{"a.*.c", "a.b.c", true},
		{"a.*.c", "a.b.d", false},
		{"a.*", "a.b.c", false},
		{"hoist.scope.acme.prod.*.>", "hoist.scope.acme.prod.web.>", true},
		{"hoist.scope.acme.prod.*.>", "hoist.scope.acme.staging.web.>", false},
		{"hoist.status.*.acme.*.*", "hoist.status.*.acme.prod.web", true},
		{"hoist.scope.acme.prod.web.>", "hoist.scope.acme.prod.>", false},
		{"hoist.scope.acme.*.*.>", "hoist.scope.acme.>", false},
		{"a.*.c", "a.>", false},
	} {
		if got := subjectMatch(c.pat, c.subj); got != c.want {
			t.Errorf("subjectMatch(%q, %q) = %v", c.pat, c.subj, got)
		}
	}
}
