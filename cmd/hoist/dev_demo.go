package main

import (
	"context"
	"debug/elf"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/docker/docker/client"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/atomicfile"
	"github.com/hoist-dev/hoist/internal/imagebuild"
)

// The demo scope hoist dev deploys on an empty store.
var demoScope = events.MustParseScope("demo.dev.web")

const (
	demoHost     = "web.localhost"
	demoImage    = "hoist-demo:dev"
	demoReplicas = 3
	demoPort     = 8080
)

// demoWorkload is what the demo replicas run on this runtime.
type demoWorkload struct {
	image   string   // docker
	command []string // process
}

// spec is the demo's first deploy.
func (w demoWorkload) spec() events.Spec {
	return events.Spec{
		Image:      w.image,
		Command:    w.command,
		Replicas:   demoReplicas,
		Port:       demoPort,
		Hosts:      []string{demoHost},
		HealthPath: "/up",
		Update:     events.UpdateStrategy{HealthTimeout: events.Duration(20 * time.Second)},
	}
}

// fits reports whether a stored spec can run on the runtime: a store first
// used with Docker holds an image, with processes a command.
func (w demoWorkload) fits(spec *events.Spec) bool {
	if w.image != "" {
		return spec.Image != ""
	}
	return len(spec.Command) > 0
}

// prepareDemo makes the demo workload available without a registry. For
// processes, the hoist binary is copied into the data dir (a `go run`
// binary lives in a temp dir that goes away) and runs `demo-backend`. For
// Docker, a FROM scratch image is made from a static build of hoist: the
// running binary when it is static (release builds), else the demo
// backend's own small package, built with CGO off.
func prepareDemo(ctx context.Context, runtime, dataDir string, log *slog.Logger) (demoWorkload, error) {
	exe, err := os.Executable()
	if err != nil {
		return demoWorkload{}, fmt.Errorf("find the hoist binary: %w", err)
	}
	if runtime == "process" {
		bin := filepath.Join(dataDir, "bin", "hoist")
		if err := copyExecutable(exe, bin); err != nil {
			return demoWorkload{}, fmt.Errorf("copy the demo binary: %w", err)
		}
		return demoWorkload{command: []string{bin, "demo-backend"}}, nil
	}

	docker, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return demoWorkload{}, err
	}
	defer docker.Close()
	ictx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	bin, entry := exe, []string{"/" + filepath.Base(exe), "demo-backend"}
	if !isStaticELF(exe) {
		bin, entry = filepath.Join(dataDir, "bin", "demoapp"), []string{"/demoapp"}
		log.Info("building the demo backend statically for a FROM scratch image", "package", imagebuild.DemoPackage)
		if err := imagebuild.BuildStatic(ictx, imagebuild.DemoPackage, bin); err != nil {
			if imageExists(ictx, docker, demoImage) {
				// Outside the source tree: the image an earlier start made
				// still serves.
				log.Warn("cannot rebuild the demo backend here; using the existing demo image", "image", demoImage, "err", err)
				return demoWorkload{image: demoImage}, nil
			}
			return demoWorkload{}, fmt.Errorf("build the demo backend (run hoist dev from the hoist source tree, or use a static release build): %w", err)
		}
	}
	if err := imagebuild.ScratchImage(ictx, docker, demoImage, bin, entry, map[string]string{"hoist.demo": "1"}); err != nil {
		return demoWorkload{}, fmt.Errorf("make the demo image: %w", err)
	}
	return demoWorkload{image: demoImage}, nil
}

func imageExists(ctx context.Context, docker *client.Client, ref string) bool {
	_, err := docker.ImageInspect(ctx, ref)
	return err == nil
}

// isStaticELF reports whether path is an ELF binary without an interpreter,
// which is what runs in an empty image.
func isStaticELF(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// copyExecutable copies src to dst atomically, so a running copy is
// replaced, never overwritten in place.
func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return atomicfile.Write(dst, in, 0o755)
}
