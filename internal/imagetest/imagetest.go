// Package imagetest gives tests a Docker engine (or a loud skip, or a failure
// under HOIST_REQUIRE_DOCKER=1), a static build of the demo backend and a
// local FROM scratch image of it. It imports testing, so only tests may
// import it; the product uses package imagebuild.
package imagetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/hoist-dev/hoist/internal/imagebuild"
)

// TestLabel marks every image and container a test creates, so a human can
// clean up with: docker rm -f $(docker ps -aq -f label=hoist.test=1)
const TestLabel = "hoist.test"

// errNoDocker marks a Docker engine that could not be reached.
var errNoDocker = errors.New("no Docker engine reachable")

// RequireDocker returns a client of the local Docker engine, or skips the
// test loudly when none answers. With HOIST_REQUIRE_DOCKER=1 a missing
// engine fails the test instead, for CI machines that must run them.
func RequireDocker(t testing.TB) *client.Client {
	t.Helper()
	docker, err := connect()
	if err != nil {
		msg := fmt.Sprintf("SKIPPING: %v; set HOIST_REQUIRE_DOCKER=1 to make this fatal", err)
		if os.Getenv("HOIST_REQUIRE_DOCKER") == "1" {
			t.Fatal(msg)
		} else {
			t.Skip(msg)
		}
		return nil // only reached with a testing.TB whose Skip returns
	}
	t.Cleanup(func() { docker.Close() })
	return docker
}

func connect() (*client.Client, error) {
	docker, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoDocker, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := docker.Ping(ctx); err != nil {
		docker.Close()
		return nil, fmt.Errorf("%w: %v", errNoDocker, err)
	}
	return docker, nil
}

// built memoizes the demo binary and image for the test process. This is
// the one piece of package state in hoist, and it exists only so that every
// test in a process shares one build; the file lock shares it across the
// test processes that go test runs in parallel.
var built struct {
	binOnce sync.Once
	bin     string
	hash    string
	binErr  error

	imageOnce sync.Once
	tag       string
	imageErr  error
}

// DemoBinary returns the path of a static build of the demo backend, built
// once per test process into a shared cache directory named by content.
func DemoBinary(t testing.TB) string {
	t.Helper()
	built.binOnce.Do(func() { built.bin, built.hash, built.binErr = buildDemo() })
	if built.binErr != nil {
		t.Fatalf("build demo backend: %v", built.binErr)
	}
	return built.bin
}

// TestImage returns the tag of a FROM scratch image running the demo
// backend: hoist-test/demoapp:<content hash>, labelled hoist.test=1. It is
// built at most once per content; the image stays after the tests so the
// next run reuses it (remove with docker rmi hoist-test/demoapp:<hash>).
func TestImage(t testing.TB) string {
	t.Helper()
	docker := RequireDocker(t)
	bin := DemoBinary(t)
	built.imageOnce.Do(func() { built.tag, built.imageErr = demoImage(docker, bin, built.hash) })
	if built.imageErr != nil {
		t.Fatalf("build demo image: %v", built.imageErr)
	}
	return built.tag
}

func cacheDir() (string, error) {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("hoist-test-%d", os.Getuid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cache dir: %w", err)
	}
	return dir, nil
}

// lockDir holds an exclusive flock on dir/lock until unlock is called.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

func buildDemo() (path, hash string, err error) {
	dir, err := cacheDir()
	if err != nil {
		return "", "", err
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return "", "", err
	}
	defer unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tmp := filepath.Join(dir, fmt.Sprintf("demoapp.%d.tmp", os.Getpid()))
	defer os.Remove(tmp)
	if err := imagebuild.BuildStatic(ctx, imagebuild.DemoPackage, tmp); err != nil {
		return "", "", err
	}
	hash, err = fileHash(tmp)
	if err != nil {
		return "", "", err
	}
	// The image's COPY names the file, so each build gets a directory and
	// the binary inside keeps the name "demoapp".
	final := filepath.Join(dir, hash, "demoapp")
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return "", "", fmt.Errorf("cache dir: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", "", fmt.Errorf("cache demo binary: %w", err)
	}
	return final, hash, nil
}

func fileHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash binary: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash binary: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

func demoImage(docker *client.Client, bin, hash string) (string, error) {
	tag := "hoist-test/demoapp:" + hash
	dir, err := cacheDir()
	if err != nil {
		return "", err
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return "", err
	}
	defer unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := docker.ImageInspect(ctx, tag); err == nil {
		return tag, nil
	}
	if err := imagebuild.ScratchImage(ctx, docker, tag, bin, nil, map[string]string{TestLabel: "1"}); err != nil {
		return "", err
	}
	return tag, nil
}
