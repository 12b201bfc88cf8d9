package imagetest

import (
	"github.com/hoist-dev/hoist/internal/imagebuild"

	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTestImage(t *testing.T) {
	tag := TestImage(t)
	docker := RequireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	img, err := docker.ImageInspect(ctx, tag)
	if err != nil {
		t.Fatalf("inspect %s: %v", tag, err)
	}
	if img.Config == nil || img.Config.Labels[TestLabel] != "1" {
		t.Errorf("image labels = %v, want %s=1", img.Config, TestLabel)
	}
	if got := img.Config.Entrypoint; len(got) != 1 || got[0] != "/demoapp" {
		t.Errorf("entrypoint = %q, want [/demoapp]", got)
	}
	// Building again is idempotent and keeps the same image.
	if err := imagebuild.ScratchImage(ctx, docker, tag, DemoBinary(t), nil, map[string]string{TestLabel: "1"}); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	again, err := docker.ImageInspect(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != img.ID {
		t.Errorf("rebuild changed the image: %s → %s", img.ID, again.ID)
	}
}

// skipRecorder is a testing.TB whose Skip and Fatal record the message
// and return, so RequireDocker's verdict can be checked without ending the
// test that checks it.
type skipRecorder struct {
	testing.TB
	skipped, fatal string
}

func (s *skipRecorder) Helper()           {}
func (s *skipRecorder) Skip(args ...any)  { s.skipped = fmt.Sprint(args...) }
func (s *skipRecorder) Fatal(args ...any) { s.fatal = fmt.Sprint(args...) }
func (s *skipRecorder) Cleanup(f func())  { s.TB.Cleanup(f) }

func TestRequireDockerWithoutEngine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no-docker.sock"))

	t.Setenv("HOIST_REQUIRE_DOCKER", "")
	rec := &skipRecorder{TB: t}
	if c := RequireDocker(rec); c != nil || !strings.HasPrefix(rec.skipped, "SKIPPING: no Docker engine reachable") ||
		!strings.Contains(rec.skipped, "HOIST_REQUIRE_DOCKER=1") {
		t.Errorf("without an engine: skipped %q, client %v", rec.skipped, c)
	}

	t.Setenv("HOIST_REQUIRE_DOCKER", "1")
	rec = &skipRecorder{TB: t}
	RequireDocker(rec)
	if rec.fatal == "" || rec.skipped != "" {
		t.Errorf("with HOIST_REQUIRE_DOCKER=1: fatal %q, skipped %q", rec.fatal, rec.skipped)
	}
}
