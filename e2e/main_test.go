package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hoistBin is the hoist binary built once for the whole package by
// TestMain; empty under -short, where every test skips.
var hoistBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "hoist-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	bin, err := buildHoist(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	hoistBin = bin
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildHoist compiles ./cmd/hoist of this module into dir.
func buildHoist(dir string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the hoist module (go env GOMOD = %q)", gomod)
	}
	bin := filepath.Join(dir, "hoist")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/hoist")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/hoist: %w\n%s", err, out)
	}
	return bin, nil
}

// needHoist skips slow tests under -short.
func needHoist(t *testing.T) {
	t.Helper()
	if testing.Short() || hoistBin == "" {
		t.Skip("end-to-end test: slow, skipped with -short")
	}
}
