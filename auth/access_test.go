package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// A probe is one thing a credential tries against a real server.
type probe struct {
	op      string // pub, create, get, api, sub
	subject string // the subject published, the filter, or the API subject
	stream  string // create and get
	allowed bool
}

func pub(subject string, allowed bool) probe {
	return probe{op: "pub", subject: subject, allowed: allowed}
}
func create(stream, filter string, allowed bool) probe {
	return probe{op: "create", stream: stream, subject: filter, allowed: allowed}
}
func get(stream, subject string, allowed bool) probe {
	return probe{op: "get", stream: stream, subject: subject, allowed: allowed}
}
func api(subject string) probe { return probe{op: "api", subject: subject} }
func sub(subject string) probe { return probe{op: "sub", subject: subject} }

func (p probe) String() string {
	verdict := "denied"
	if p.allowed {
		verdict = "allowed"
	}
	switch p.op {
	case "create":
		return fmt.Sprintf("consumer on %s filtered %s %s", p.stream, p.subject, verdict)
	case "get":
		return fmt.Sprintf("direct get %s %s %s", p.stream, p.subject, verdict)
	}
	return fmt.Sprintf("%s %s %s", p.op, p.subject, verdict)
}

// consumerRequest is what nats.go sends to create an ephemeral push
// consumer with one filter: the filter is in the subject and the body.
func consumerRequest(stream, filter, deliver string) (string, []byte) {
	body, _ := json.Marshal(map[string]any{
		"stream_name": stream,
		"action":      "create",
		"config": map[string]any{
			"name":            nuid.Next(),
			"deliver_subject": deliver,
			"filter_subject":  filter,
			"ack_policy":      "none",
			"flow_control":    true,
			"idle_heartbeat":  int64(5 * time.Second),
			"deliver_policy":  "all",
		},
	})
	var cfg struct {
		Config struct{ Name string } `json:"config"`
	}
	_ = json.Unmarshal(body, &cfg)
	return fmt.Sprintf("$JS.API.CONSUMER.CREATE.%s.%s.%s", stream, cfg.Config.Name, filter), body
}

func (c *client) run(t *testing.T, p probe) {
	t.Helper()
	var (
		m   *nats.Msg
		err error
	)
	switch p.op {
	case "sub":
		if err := c.subscribeDenied(p.subject); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		return
	case "pub":
		m, err = c.request(p.subject, []byte(`{}`))
	case "create":
		subj, body := consumerRequest(p.stream, p.subject, c.nc.NewInbox())
		m, err = c.request(subj, body)
	case "get":
		m, err = c.request("$JS.API.DIRECT.GET."+p.stream+"."+p.subject, nil)
	case "api":
		m, err = c.request(p.subject, []byte(`{}`))
	}
	switch {
	case !p.allowed && errors.Is(err, errDenied):
	case !p.allowed && err == nil:
		t.Errorf("%s: went through: %s %q", p, m.Header, m.Data)
	case p.allowed && errors.Is(err, errDenied):
		t.Errorf("%s: permission violation", p)
	case err != nil:
		t.Errorf("%s: %v", p, err)
	case p.op == "get":
		if m.Header.Get("Nats-Subject") != p.subject {
			t.Errorf("%s: reply %s %q", p, m.Header, m.Data)
		}
	case apiError(m) != nil:
		t.Errorf("%s: %v", p, apiError(m))
	}
}

// Everything but admin is denied the JetStream API that does not name a
// subject a permission can check, any subscription outside its inbox, and
// the default inbox.
func escapes(name string) []probe {
	return []probe{
		api("$JS.API.CONSUMER.MSG.NEXT.HOIST_EVENTS.anything"),
		api("$JS.API.CONSUMER.DELETE.HOIST_EVENTS.anything"),
		api("$JS.API.CONSUMER.INFO.HOIST_EVENTS.anything"),
		api("$JS.API.CONSUMER.LIST.HOIST_EVENTS"),
		api("$JS.API.CONSUMER.NAMES.HOIST_EVENTS"),
		api("$JS.API.CONSUMER.CREATE.HOIST_EVENTS"),           // legacy ephemeral: the filter is only in the body
		api("$JS.API.CONSUMER.CREATE.HOIST_EVENTS.x"),         // new form without a filter
		api("$JS.API.CONSUMER.DURABLE.CREATE.HOIST_EVENTS.x"), // legacy durable
		api("$JS.API.STREAM.INFO.HOIST_EVENTS"),               // its body can list any subject
		api("$JS.API.STREAM.NAMES"),
		api("$JS.API.STREAM.LIST"),
		api("$JS.API.STREAM.MSG.GET.HOIST_EVENTS"), // any sequence
		api("$JS.API.DIRECT.GET.HOIST_EVENTS"),     // body form: any sequence or subject
		api("$JS.API.STREAM.PURGE.HOIST_EVENTS"),
		api("$JS.API.STREAM.DELETE.HOIST_EVENTS"),
		api("$JS.API.STREAM.MSG.DELETE.HOIST_EVENTS"),
		api("$SYS.REQ.CLAIMS.UPDATE"),
		sub("hoist.>"),
		sub(">"),
		sub("_INBOX.>"),
		sub("_INBOX_someone-else.>"),
		sub("$JS.FC.>"),
	}
}

func TestRolesAgainstServer(t *testing.T) {
	dir := initDir(t)
	srv := startServer(t, dir, serverOpts{})
	waitJetStream(t, srv)
	url := srv.ClientURL()
	createStreams(t, url, dir, 1)

	// Seed one message per subject the direct gets read.
	admin := connect(t, url, filepath.Join(dir, adminCreds))
	for _, s := range []string{
		"hoist.scope.acme.prod.web.deployed.bob", "hoist.scope.acme.staging.web.deployed.bob",
		"hoist.node.node-1.node_drained.agent-1", "hoist.node.node-2.node_drained.agent-2",
		"hoist.score.acme.prod.web.10_0_0_1:8080", "hoist.score.acme.staging.web.10_0_0_1:8080",
		"hoist.backends.acme.prod.web.node-1", "hoist.backends.acme.prod.web.node-2", "hoist.backends.acme.staging.web.node-1",
		"hoist.status.node-1.acme.prod.web", "hoist.status.node-1.acme.staging.web",
	} {
		admin.run(t, pub(s, true))
	}

	cases := []struct {
		role   Role
		probes []probe
	}{
		{
			role: Role{Kind: KindDeployer, Name: "alice", Scopes: []string{"acme.prod.*"}},
			probes: []probe{
				api("$JS.API.INFO"),
				pub("hoist.scope.acme.prod.web.deployed.alice", true),
				pub("hoist.scope.acme.prod.api.removed.alice", true),
				pub("hoist.score.acme.prod.web.10_0_0_1:8080", true),
				pub("hoist.backends.acme.prod.web.static", true),
				create("HOIST_EVENTS", "hoist.scope.acme.prod.web.>", true),
				create("HOIST_EVENTS", "hoist.scope.acme.prod.*.>", true),
				create("HOIST_EVENTS", "hoist.node.>", true),
				create("HOIST_SCORES", "hoist.score.acme.prod.web.>", true),
				create("HOIST_BACKENDS", "hoist.backends.acme.prod.web.>", true),
				create("HOIST_REPORTS", "hoist.status.*.acme.prod.web", true),
				create("HOIST_REPORTS", "hoist.status.*.acme.prod.*", true),
				get("HOIST_EVENTS", "hoist.scope.acme.prod.web.deployed.bob", true),
				get("HOIST_EVENTS", "hoist.node.node-1.node_drained.agent-1", true),
				get("HOIST_REPORTS", "hoist.status.node-1.acme.prod.web", true),

				pub("hoist.scope.acme.staging.web.removed.alice", false), // another scope
				pub("hoist.scope.acme.prod.web.removed.bob", false),      // another actor
				pub("hoist.scope.acme.prod.web.removed", false),          // no actor
				pub("hoist.node.node-1.node_drained.alice", false),
				pub("hoist.status.node-1.acme.prod.web", false),
				pub("hoist.score.acme.staging.web.10_0_0_1:8080", false),
				pub("hoist.backends.acme.staging.web.static", false),
				create("HOIST_EVENTS", "hoist.scope.acme.staging.web.>", false),
				create("HOIST_EVENTS", "hoist.scope.>", false),
				create("HOIST_EVENTS", "hoist.scope.acme.prod.>", false), // wider than acme.prod.* reads as written
				create("HOIST_EVENTS", ">", false),
				create("HOIST_SCORES", "hoist.score.>", false),
				create("HOIST_REPORTS", "hoist.status.>", false),
				get("HOIST_EVENTS", "hoist.scope.acme.staging.web.deployed.bob", false),
				get("HOIST_REPORTS", "hoist.status.node-1.acme.staging.web", false),
			},
		},
		{
			role: Role{Kind: KindAgent, Name: "agent-1", Node: "node-1", Scopes: []string{"acme.prod.web", "acme.prod.api"}},
			probes: []probe{
				api("$JS.API.INFO"),
				pub("hoist.node.node-1.node_drained.agent-1", true),
				pub("hoist.node.node-1.node_undrained.agent-1", true),
				pub("hoist.backends.acme.prod.web.node-1", true),
				pub("hoist.backends.acme.prod.api.node-1", true),
				pub("hoist.status.node-1.acme.prod.web", true),
				create("HOIST_EVENTS", "hoist.scope.acme.prod.web.>", true),
				create("HOIST_EVENTS", "hoist.scope.acme.prod.api.>", true),
				create("HOIST_EVENTS", "hoist.node.node-1.>", true),
				create("HOIST_SCORES", "hoist.score.acme.prod.web.>", true),
				create("HOIST_BACKENDS", "hoist.backends.acme.prod.web.node-1", true),
				get("HOIST_EVENTS", "hoist.scope.acme.prod.web.deployed.bob", true),
				get("HOIST_BACKENDS", "hoist.backends.acme.prod.web.node-1", true),

				pub("hoist.node.node-2.node_drained.x", false),
				pub("hoist.node.node-2.node_drained.agent-1", false),
				pub("hoist.node.node-1.node_drained.x", false), // another actor
				pub("hoist.backends.acme.staging.web.node-1", false),
				pub("hoist.backends.acme.prod.web.node-2", false),
				pub("hoist.status.node-2.acme.prod.web", false),
				pub("hoist.status.node-1.acme.staging.web", false),
				pub("hoist.scope.acme.prod.web.deployed.agent-1", false),
				pub("hoist.score.acme.prod.web.10_0_0_1:8080", false),
				create("HOIST_EVENTS", "hoist.scope.acme.staging.web.>", false),
				create("HOIST_EVENTS", "hoist.scope.acme.prod.*.>", false),
				create("HOIST_EVENTS", "hoist.node.>", false),
				create("HOIST_EVENTS", "hoist.node.node-2.>", false),
				create("HOIST_BACKENDS", "hoist.backends.acme.prod.web.>", false), // other nodes' backends
				create("HOIST_REPORTS", "hoist.status.node-1.acme.prod.web", false),
				get("HOIST_BACKENDS", "hoist.backends.acme.prod.web.node-2", false),
				get("HOIST_EVENTS", "hoist.node.node-2.node_drained.agent-2", false),
			},
		},
		{
			role: Role{Kind: KindBalancer, Name: "lb-1"},
			probes: []probe{
				api("$JS.API.INFO"),
				create("HOIST_BACKENDS", "hoist.backends.>", true),
				create("HOIST_SCORES", "hoist.score.>", true),
				create("HOIST_EVENTS", "hoist.node.>", true),
				get("HOIST_BACKENDS", "hoist.backends.acme.prod.web.node-2", true),

				pub("hoist.backends.acme.prod.web.node-1", false),
				pub("hoist.score.acme.prod.web.10_0_0_1:8080", false),
				pub("hoist.scope.acme.prod.web.deployed.lb-1", false),
				pub("hoist.node.node-1.node_drained.lb-1", false),
				pub("hoist.status.node-1.acme.prod.web", false),
				create("HOIST_EVENTS", "hoist.scope.>", false),
				create("HOIST_EVENTS", "hoist.scope.acme.prod.web.>", false),
				create("HOIST_REPORTS", "hoist.status.>", false),
				get("HOIST_EVENTS", "hoist.scope.acme.prod.web.deployed.bob", false),
			},
		},
		{
			role: Role{Kind: KindReader, Name: "dash"},
			probes: []probe{
				api("$JS.API.INFO"),
				create("HOIST_EVENTS", "hoist.scope.*.*.*.>", true),
				create("HOIST_EVENTS", "hoist.scope.acme.staging.web.>", true),
				create("HOIST_EVENTS", "hoist.node.>", true),
				create("HOIST_REPORTS", "hoist.status.*.*.*.*", true),
				create("HOIST_BACKENDS", "hoist.backends.*.*.*.>", true),
				create("HOIST_SCORES", "hoist.score.*.*.*.>", true),
				get("HOIST_EVENTS", "hoist.scope.acme.staging.web.deployed.bob", true),

				pub("hoist.scope.acme.prod.web.deployed.dash", false),
				pub("hoist.node.node-1.node_drained.dash", false),
				pub("hoist.score.acme.prod.web.10_0_0_1:8080", false),
				pub("hoist.backends.acme.prod.web.node-1", false),
				pub("hoist.status.node-1.acme.prod.web", false),
			},
		},
		{
			role: Role{Kind: KindReader, Name: "acme-prod", Scopes: []string{"acme.prod.*"}},
			probes: []probe{
				create("HOIST_EVENTS", "hoist.scope.acme.prod.web.>", true),
				create("HOIST_EVENTS", "hoist.scope.acme.staging.web.>", false),
				create("HOIST_EVENTS", "hoist.scope.*.*.*.>", false),
				create("HOIST_REPORTS", "hoist.status.*.acme.staging.web", false),
				get("HOIST_SCORES", "hoist.score.acme.staging.web.10_0_0_1:8080", false),
			},
		},
	}
	for _, c := range cases {
		t.Run(c.role.String(), func(t *testing.T) {
			cl := connect(t, url, issue(t, dir, c.role))
			for _, p := range c.probes {
				if p.op == "api" && p.subject == "$JS.API.INFO" {
					p.allowed = true
				}
				cl.run(t, p)
			}
			for _, p := range escapes(c.role.Name) {
				cl.run(t, p)
			}
		})
	}

	// Admin may do all of it.
	t.Run("admin", func(t *testing.T) {
		for _, p := range []probe{
			{op: "api", subject: "$JS.API.STREAM.INFO.HOIST_EVENTS", allowed: true},
			{op: "api", subject: "$JS.API.STREAM.NAMES", allowed: true},
			create("HOIST_EVENTS", "hoist.scope.>", true),
			pub("hoist.node.node-9.node_drained.admin", true),
		} {
			admin.run(t, p)
		}
	})
}

// The filter that a permission checks is the subject's; the server holds
// the body to it, so a body cannot widen a permitted create.
func TestConsumerBodyMustMatchSubject(t *testing.T) {
	dir := initDir(t)
	srv := startServer(t, dir, serverOpts{})
	waitJetStream(t, srv)
	createStreams(t, srv.ClientURL(), dir, 1)
	cl := connect(t, srv.ClientURL(), issue(t, dir, Role{Kind: KindDeployer, Name: "alice", Scopes: []string{"acme.prod.*"}}))

	allowed := "hoist.scope.acme.prod.web.>"
	for name, config := range map[string]map[string]any{
		"wider filter":     {"filter_subject": "hoist.scope.>"},
		"several filters":  {"filter_subjects": []string{allowed, "hoist.scope.acme.staging.web.>"}},
		"no filter at all": {},
	} {
		config["name"] = nuid.Next()
		config["deliver_subject"] = cl.nc.NewInbox()
		config["ack_policy"] = "none"
		body, _ := json.Marshal(map[string]any{"stream_name": "HOIST_EVENTS", "config": config})
		m, err := cl.request(fmt.Sprintf("$JS.API.CONSUMER.CREATE.HOIST_EVENTS.%s.%s", config["name"], allowed), body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if apiError(m) == nil {
			t.Errorf("%s: the server created the consumer: %s", name, m.Data)
		}
	}
}
