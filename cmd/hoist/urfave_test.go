package main

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// Each workaround in urfave.go, pinned: if a urfave/cli upgrade changes
// what it works around, these say so.

func TestReorderArgs(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	tests := []struct{ in, want string }{
		{"hoist scale acme.prod.web 2 --expect-revision 1", "hoist scale --expect-revision 1 acme.prod.web 2"},
		{"hoist scale acme.prod.web -1", "hoist scale acme.prod.web -1"},
		{"hoist --nats-url nats://x:1 deploy S --image web:1", "hoist --nats-url nats://x:1 deploy --image web:1 S"},
		{"hoist auth issue admin --dir d", "hoist auth issue --dir d admin"},
		{"hoist env S A=1 -- --unset", "hoist env S A=1 -- --unset"},
		{"hoist remove S -- --generate-bash-completion", "hoist remove S - --generate-bash-completion"},
	}
	for _, tt := range tests {
		if got := strings.Join(reorderArgs(app, strings.Fields(tt.in)), " "); got != tt.want {
			t.Errorf("reorderArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHelpArgs(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	tests := []struct{ in, want, err string }{
		{in: "hoist help", want: "hoist --help"},
		{in: "hoist h deploy", want: "hoist deploy --help"},
		{in: "hoist --nats-url u help auth issue", want: "hoist --nats-url u auth issue --help"},
		{in: "hoist help deploy extra", want: "hoist deploy --help"},
		{in: "hoist deploy S --image x", want: "hoist deploy S --image x"},
		{in: "hoist api token", want: "hoist api token"},
		{in: "hoist bogus", err: `unknown command "bogus" (see 'hoist --help')`},
		{in: "hoist help bogus", err: `unknown command "bogus" (see 'hoist --help')`},
		{in: "hoist auth bogus", err: `unknown command "auth bogus" (see 'hoist auth --help')`},
		{in: "hoist bogus --generate-bash-completion", want: "hoist bogus --generate-bash-completion"},
	}
	for _, tt := range tests {
		got, err := helpArgs(app, strings.Fields(tt.in))
		switch {
		case tt.err != "":
			if err == nil || err.Error() != tt.err || exitCode(err) != exitUsage {
				t.Errorf("helpArgs(%q) = %q, %v; want the usage error %q", tt.in, got, err, tt.err)
			}
		case err != nil || strings.Join(got, " ") != tt.want:
			t.Errorf("helpArgs(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestHelpAndUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		want string // in stdout for 0, in stderr otherwise
	}{
		{[]string{"help", "deploy"}, 0, "hoist deploy - deploy an image"},
		{[]string{"help", "auth", "issue"}, 0, "hoist auth issue"},
		{[]string{"help", "agent"}, 0, "--drain-delay D"},
		{[]string{"bogus-cmd"}, exitUsage, `unknown command "bogus-cmd" (see 'hoist --help')`},
		{[]string{"help", "bogus"}, exitUsage, `unknown command "bogus"`},
		{[]string{"--bogus", "scopes"}, exitUsage, "(see 'hoist --help')"},
		{[]string{"scopes", "--bogus"}, exitUsage, "(see 'hoist scopes --help')"},
		{[]string{"auth", "issue", "--bogus"}, exitUsage, "(see 'hoist auth issue --help')"},
	} {
		r := mustRun(t, tt.code, hoist(tt.args...))
		out := r.stderr
		if tt.code == 0 {
			out = r.stdout
		}
		if !strings.Contains(out, tt.want) {
			t.Errorf("hoist %v: want %q in %s", tt.args, tt.want, r)
		}
	}
}

func TestBindEnvVars(t *testing.T) {
	own := &cli.StringFlag{Name: "own", EnvVars: []string{"MINE"}}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "nats-url"}, &cli.IntFlag{Name: "replicas"}, &cli.BoolFlag{Name: "json"},
		&cli.DurationFlag{Name: "drain-delay"}, &cli.GenericFlag{Name: "env", Value: &listValue{}}, own,
	}
	bindEnvVars(flags)
	want := map[string]string{"nats-url": "HOIST_NATS_URL", "replicas": "HOIST_REPLICAS", "json": "HOIST_JSON", "drain-delay": "HOIST_DRAIN_DELAY", "env": "HOIST_ENV", "own": "MINE"}
	for _, f := range flags {
		got := f.(cli.DocGenerationFlag).GetEnvVars()
		if !slices.Equal(got, []string{want[f.Names()[0]]}) {
			t.Errorf("--%s reads %v, want %s", f.Names()[0], got, want[f.Names()[0]])
		}
	}
}
