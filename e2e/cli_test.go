package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// result is what one hoist CLI run left behind.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

func (r result) String() string {
	return "exit " + strconv.Itoa(r.code) + "\nstdout:\n" + r.stdout + "stderr:\n" + r.stderr
}

// runHoist runs the hoist CLI against the NATS server at natsURL, as a user
// would from a shell. It fails the test only when hoist cannot be run.
func runHoist(t *testing.T, natsURL string, args ...string) result {
	t.Helper()
	return runHoistInput(t, natsURL, "", args...)
}

// runHoistInput is runHoist with stdin as the command's standard input.
func runHoistInput(t *testing.T, natsURL, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, hoistBin, args...)
	cmd.Env = append(cleanEnv(), "HOIST_NATS_URL="+natsURL, "HOIST_ACTOR=e2e@test")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errb, strings.NewReader(stdin)
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.Exited():
		r.code = exit.ExitCode()
	default:
		t.Fatalf("run hoist %s: %v\n%s", strings.Join(args, " "), err, r)
	}
	return r
}

// mustHoist runs hoist and fails the test unless it exits with want.
func mustHoist(t *testing.T, natsURL string, want int, args ...string) result {
	t.Helper()
	r := runHoist(t, natsURL, args...)
	if r.code != want {
		t.Fatalf("hoist %s: want exit %d, got %s", strings.Join(args, " "), want, r)
	}
	return r
}

// mustHoistInput is mustHoist with stdin as standard input.
func mustHoistInput(t *testing.T, natsURL, stdin string, want int, args ...string) result {
	t.Helper()
	r := runHoistInput(t, natsURL, stdin, args...)
	if r.code != want {
		t.Fatalf("hoist %s: want exit %d, got %s", strings.Join(args, " "), want, r)
	}
	return r
}

func decodeJSON[T any](s string) (T, error) {
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return v, fmt.Errorf("decode %q: %w", tail(s, 5), err)
	}
	return v, nil
}
