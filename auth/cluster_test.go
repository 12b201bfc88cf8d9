package auth

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/hoist-dev/hoist/internal/natstest"
)

// Three servers with the same operator, each with its own resolver, form
// one cluster: a deployer issued after they started connects to any of
// them, and a revocation pushed to one reaches all.
func TestClusterSameOperator(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-server cluster takes seconds to elect a leader")
	}
	dir := initDir(t)
	ports := natstest.FreePorts(t, 3)
	servers := make([]*server.Server, 3)
	for i := range servers {
		var routes []int
		for j, p := range ports {
			if j != i {
				routes = append(routes, p)
			}
		}
		servers[i] = startServer(t, dir, serverOpts{name: fmt.Sprintf("n%d", i+1), clusterPort: ports[i], routePorts: routes})
	}
	waitJetStream(t, servers...)
	createStreams(t, servers[0].ClientURL(), dir, 3)

	creds := issue(t, dir, Role{Kind: KindDeployer, Name: "alice", Scopes: []string{"acme.prod.*"}})
	clients := make([]*client, 3)
	for i, s := range servers {
		clients[i] = connect(t, s.ClientURL(), creds)
		clients[i].run(t, pub("hoist.scope.acme.prod.web.scaled.alice", true))
		clients[i].run(t, create("HOIST_EVENTS", "hoist.scope.acme.prod.web.>", true))
		clients[i].run(t, pub("hoist.scope.acme.staging.web.scaled.alice", false))
	}

	tok, err := Revoke(dir, "alice")
	if err != nil {
		t.Fatal(err)
	}
	pushWithSys(t, servers[0].ClientURL(), dir, tok)
	for i, s := range servers {
		t.Run(s.Name(), func(t *testing.T) { revokedOut(t, clients[i], s.ClientURL(), creds) })
	}
}
