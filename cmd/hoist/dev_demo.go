package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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
// Docker, a FROM scratch image is made from the running binary, with its
// interpreter and shared libraries when it is dynamically linked (a `go
// run` build with cgo): that takes about a second, where compiling a
// second, static binary took half a minute on a cold build cache. Only a
// binary that cannot run in a Linux image that way falls back to building
// the demo backend's own small package with CGO off.
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
	start := time.Now()
	img, err := demoImageOf(exe)
	if err != nil {
		log.Info("building the demo backend statically for a FROM scratch image", "package", imagebuild.DemoPackage, "because", err)
		if img, err = buildDemoImage(ictx, filepath.Join(dataDir, "bin", "demoapp")); err != nil {
			if imageExists(ictx, docker, demoImage) {
				// Outside the source tree: the image an earlier start made
				// still serves.
				log.Warn("cannot rebuild the demo backend here; using the existing demo image", "image", demoImage, "err", err)
				return demoWorkload{image: demoImage}, nil
			}
			return demoWorkload{}, fmt.Errorf("build the demo backend (run hoist dev from the hoist source tree, or use a static release build): %w", err)
		}
	}
	if err := imagebuild.BuildScratch(ictx, docker, img); err != nil {
		return demoWorkload{}, fmt.Errorf("make the demo image: %w", err)
	}
	log.Info("made the demo image", "image", demoImage, "files", len(img.Files), "took", time.Since(start).Round(time.Millisecond))
	return demoWorkload{image: demoImage}, nil
}

// demoImageOf is the demo image made of the hoist binary at exe, which
// serves the demo as `hoist demo-backend`.
func demoImageOf(exe string) (imagebuild.Image, error) {
	rootfs, err := imagebuild.ELFRootfs(exe)
	if err != nil {
		return imagebuild.Image{}, err
	}
	img := imagebuild.Image{
		Tag:        demoImage,
		Files:      rootfs.Files,
		Entrypoint: []string{rootfs.Files[0].Path, "demo-backend"},
		Labels:     map[string]string{"hoist.demo": "1"},
	}
	if len(rootfs.LibDirs) > 0 {
		img.Env = []string{"LD_LIBRARY_PATH=" + strings.Join(rootfs.LibDirs, ":")}
	}
	return img, nil
}

// buildDemoImage compiles the demo backend statically to bin and makes the
// image of it.
func buildDemoImage(ctx context.Context, bin string) (imagebuild.Image, error) {
	if err := imagebuild.BuildStatic(ctx, imagebuild.DemoPackage, bin); err != nil {
		return imagebuild.Image{}, err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return imagebuild.Image{}, err
	}
	return imagebuild.Image{
		Tag:        demoImage,
		Files:      []imagebuild.File{{Path: "/demoapp", Mode: 0o755, Data: data}},
		Entrypoint: []string{"/demoapp"},
		Labels:     map[string]string{"hoist.demo": "1"},
	}, nil
}

func imageExists(ctx context.Context, docker *client.Client, ref string) bool {
	_, err := docker.ImageInspect(ctx, ref)
	return err == nil
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
