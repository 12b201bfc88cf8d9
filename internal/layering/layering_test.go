// Package layering holds one test: the pure packages stay pure. The domain
// (events), the folds (projector) and the planner (deploy) must not link
// NATS or the Docker SDK, so that they stay testable with table tests and
// a change to a backend cannot change what an event means.
package layering

import (
	"os/exec"
	"strings"
	"testing"
)

func TestPurePackagesLinkNoBackend(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH: cannot list dependencies")
	}
	cases := []struct {
		pkg       string
		forbidden []string
	}{
		{"github.com/hoist-dev/hoist/events", []string{"github.com/nats-io/", "github.com/docker/"}},
		{"github.com/hoist-dev/hoist/projector", []string{"github.com/nats-io/", "github.com/docker/"}},
		{"github.com/hoist-dev/hoist/deploy", []string{"github.com/nats-io/", "github.com/docker/"}},
	}
	for _, c := range cases {
		t.Run(c.pkg, func(t *testing.T) {
			out, err := exec.Command(goTool, "list", "-deps", c.pkg).Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v", c.pkg, err)
			}
			for _, dep := range strings.Fields(string(out)) {
				for _, prefix := range c.forbidden {
					if strings.HasPrefix(dep, prefix) {
						t.Errorf("%s links %s: it must not depend on %s* (move the code that needs it into a backend package)", c.pkg, dep, prefix)
					}
				}
			}
		})
	}
}
