package main

import (
	"os"
	"strings"
	"testing"
)

func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			r := mustRun(t, 0, hoist("completion", shell))
			if strings.TrimSpace(r.stdout) == "" {
				t.Fatal("empty script")
			}
			if !strings.Contains(r.stdout, "hoist") {
				t.Fatalf("the script does not mention hoist:\n%s", r.stdout)
			}
		})
	}
	// fish completes from a static list: it must hold the commands and flags.
	fish := hoist("completion", "fish").stdout
	for _, want := range []string{"deploy", "balancer", "expect-revision"} {
		if !strings.Contains(fish, want) {
			t.Errorf("fish script lacks %q", want)
		}
	}
}

func TestCompletionRejectsUnknownShell(t *testing.T) {
	for _, args := range [][]string{{"completion"}, {"completion", "tcsh"}, {"completion", "bash", "zsh"}} {
		r := mustRun(t, exitUsage, hoist(args...))
		if r.stdout != "" {
			t.Errorf("%v printed %q", args, r.stdout)
		}
	}
}

// The bash and zsh scripts ask hoist for candidates with a trailing
// --generate-bash-completion, which must stay last even when flags follow
// positional arguments (reorderArgs moves flags forward). urfave/cli reads
// the word being completed from os.Args, so the test sets it; no test of
// this package that runs in parallel reads it.
func TestCompletionCandidates(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--generate-bash-completion"}, []string{"deploy", "completion", "balancer"}},
		{[]string{"--nats", "--generate-bash-completion"}, []string{"--nats-url", "--nats-creds"}},
		{[]string{"deploy", "--re", "--generate-bash-completion"}, []string{"--replicas", "--restart"}},
		{[]string{"deploy", "acme.prod.web", "--im", "--generate-bash-completion"}, []string{"--image"}},
		{[]string{"scale", "acme.prod.web", "-", "--generate-bash-completion"}, []string{"--expect-revision"}},
		// "--" must not turn completion into running the command (which,
		// should it happen, fails to reach NATS at a port nothing serves).
		{[]string{"--nats-url", "nats://127.0.0.1:1", "remove", "acme.prod.web", "--", "--generate-bash-completion"}, []string{"--expect-revision"}},
		{[]string{"--nats-url", "nats://127.0.0.1:1", "scopes", "--", "x", "--generate-bash-completion"}, nil},
	}
	saved := os.Args
	t.Cleanup(func() { os.Args = saved })
	for _, tt := range tests {
		os.Args = append([]string{"hoist"}, tt.args...)
		r := mustRun(t, 0, hoist(tt.args...))
		for _, w := range tt.want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("%v: want %q among the candidates, got:\n%s", tt.args, w, r.stdout)
			}
		}
		if r.stderr != "" {
			t.Errorf("%v: stderr %q", tt.args, r.stderr)
		}
	}
}
