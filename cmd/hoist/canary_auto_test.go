package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
	"github.com/hoist-dev/hoist/projector"
)

func TestParseRate(t *testing.T) {
	good := map[string]float64{"1%": 0.01, "0.01": 0.01, " 2.5 % ": 0.025, "0": 0, "100%": 1, "1": 1, "0%": 0}
	for in, want := range good {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "%", "x", "5", "101%", "-1%", "NaN", "1e400"} {
		if got, err := parseRate(in); err == nil {
			t.Errorf("parseRate(%q) = %v, want an error", in, got)
		}
	}
}

func TestParseAnalysis(t *testing.T) {
	ok := analysisOptions{Steps: "10, 25,50%,100", Interval: time.Minute, MaxErrorRate: "1%", MaxP99: 300 * time.Millisecond, MinRequests: 200}
	a, err := parseAnalysis(ok)
	if err != nil || len(a.Steps) != 4 || a.Steps[2] != 50 || a.MaxErrorRate != 0.01 || a.MinRequests != 200 {
		t.Fatalf("parseAnalysis = %+v, %v", a, err)
	}
	bad := []struct {
		mutate func(*analysisOptions)
		want   string
	}{
		{func(o *analysisOptions) { o.Steps = "10,x" }, `--steps "10,x": "x" is not a share`},
		{func(o *analysisOptions) { o.Steps = "50,25" }, "--steps [50 25] must rise"},
		{func(o *analysisOptions) { o.Steps = "10,200" }, "must rise, each a share of 1-100"},
		{func(o *analysisOptions) { o.Interval = time.Millisecond }, "--interval is 1ms (want 1s-24h0m0s)"},
		{func(o *analysisOptions) { o.MaxErrorRate = "5" }, "did you mean 5%?"},
		{func(o *analysisOptions) { o.MaxP99 = 2 * time.Hour }, "--max-p99 is 2h0m0s"},
		{func(o *analysisOptions) { o.MinRequests = -1 }, "--min-requests is -1"},
	}
	for _, c := range bad {
		o := ok
		c.mutate(&o)
		_, err := parseAnalysis(o)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseAnalysis(%+v) = %v, want a usage error with %q", o, err, c.want)
		}
	}
}

func TestCanaryAuto(t *testing.T) {
	url := natstest.Start(t).URL()
	const s = "acme.prod.web"
	mustRun(t, 0, hoistAt(url, "deploy", s, "--image", "web:1", "--port", "8080"))
	mustRun(t, 0, hoistAt(url, "deploy", s, "--image", "web:2", "--canary", "5"))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"canary", s, "50", "--steps", "10,50"}, "--steps needs --auto"},
		{[]string{"canary", s, "50", "--max-p99", "1s"}, "--max-p99 needs --auto"},
		{[]string{"canary", s, "--auto", "--max-error-rate", "2"}, "did you mean 2%?"},
		{[]string{"canary", s, "--auto", "--steps", "50,10"}, "must rise"},
		{[]string{"canary", s, "--auto", "101"}, "want 0-100"},
		{[]string{"canary", s}, "SCOPE SHARE"},
	} {
		if r := mustRun(t, 2, hoistAt(url, c.args...)); !strings.Contains(r.stderr, c.want) {
			t.Errorf("hoist %s: want %q in %q", strings.Join(c.args, " "), c.want, r.stderr)
		}
	}
	r := mustRun(t, 0, hoistAt(url, "canary", s, "--auto", "--steps", "10,25,50,100", "--interval", "1m",
		"--max-error-rate", "1%", "--max-p99", "300ms", "--min-requests", "200", "--json"))
	for _, want := range []string{`"share": 10`, `"steps": [`, `"max_error_rate": 0.01`, `"min_requests": 200`, `"max_p99": "300ms"`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("canary --auto --json lacks %s:\n%s", want, r.stdout)
		}
	}
	r = mustRun(t, 0, hoistAt(url, "canary", s, "25", "--auto", "--max-error-rate", "0.005", "--json"))
	for _, want := range []string{`"share": 25`, `"max_error_rate": 0.005`, `"interval": "1m0s"`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("canary 25 --auto --json lacks %s:\n%s", want, r.stdout)
		}
	}
}

func TestDescribeAnalysisOwner(t *testing.T) {
	owner := projector.NodeView{Node: "node-1", Alive: true, Analysis: &events.AnalysisStatus{Canary: 4, Owner: "node-1", Detail: "analysis waiting: 57 of 200 requests"}}
	other := projector.NodeView{Node: "node-2", Alive: true, Analysis: &events.AnalysisStatus{Canary: 4, Owner: "node-1"}}
	cases := []struct {
		views []projector.NodeView
		want  string
	}{
		{[]projector.NodeView{other, owner}, "run by node-1: analysis waiting: 57 of 200 requests"},
		{[]projector.NodeView{other}, "run by node-1 (as other nodes report; its own report is missing)"},
		{nil, "no node runs it yet"},
		{[]projector.NodeView{{Node: "node-3", Analysis: &events.AnalysisStatus{Canary: 3, Owner: "node-3"}}}, "no node runs it yet"},
	}
	for _, c := range cases {
		if got := describeAnalysisOwner(4, c.views); !strings.HasPrefix(got, c.want) {
			t.Errorf("describeAnalysisOwner = %q, want %q", got, c.want)
		}
	}
}
