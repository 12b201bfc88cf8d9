// Package imagebuild makes container images on a machine with no registry:
// it compiles a Go package statically and wraps the binary in a FROM scratch
// image through the Docker Engine API, without pulling anything.
//
// It also holds test helpers (TestImage, RequireDocker) that other packages'
// tests import. They take testing.TB and live in non-test files for that
// reason; production code must not call them.
package imagebuild

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
)

// goBinary finds the go command: the one on PATH, else the one under
// $GOROOT (which the go command sets for what it runs).
func goBinary() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("find go command: not on PATH, and $GOROOT has none")
}

// BuildStatic compiles the Go package pkg (an import path or a directory)
// into outPath with CGO disabled, so the binary runs in an empty image.
func BuildStatic(ctx context.Context, pkg, outPath string) error {
	gobin, err := goBinary()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, gobin, "build", "-trimpath", "-o", outPath, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build %s: %w: %s", pkg, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ScratchImage builds tag as FROM scratch plus the binary at /<basename>,
// with the given entrypoint (default: the binary) and labels. It uses the
// classic builder, which knows "scratch" without a pull. Building the same
// inputs again reuses the build cache, so it is idempotent.
func ScratchImage(ctx context.Context, docker *client.Client, tag, binaryPath string, entrypoint []string, labels map[string]string) error {
	bin, err := os.ReadFile(binaryPath)
	if err != nil {
		return fmt.Errorf("read binary: %w", err)
	}
	name := filepath.Base(binaryPath)
	if len(entrypoint) == 0 {
		entrypoint = []string{"/" + name}
	}
	buildCtx, err := scratchContext(name, bin, entrypoint)
	if err != nil {
		return fmt.Errorf("build context: %w", err)
	}
	resp, err := docker.ImageBuild(ctx, buildCtx, build.ImageBuildOptions{
		Tags:        []string{tag},
		Labels:      labels,
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
	})
	if err != nil {
		return fmt.Errorf("build image %s: %w", tag, err)
	}
	defer resp.Body.Close()
	// Build errors arrive inside the stream, not as the call's error.
	if err := jsonmessage.DisplayJSONMessagesStream(resp.Body, io.Discard, 0, false, nil); err != nil {
		return fmt.Errorf("build image %s: %w", tag, err)
	}
	return nil
}

func scratchContext(name string, bin []byte, entrypoint []string) (io.Reader, error) {
	quoted := make([]string, len(entrypoint))
	for i, a := range entrypoint {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	dockerfile := fmt.Sprintf("FROM scratch\nCOPY %s /%s\nENTRYPOINT [%s]\n", name, name, strings.Join(quoted, ", "))

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// A fixed mtime keeps the context byte-identical, so the cache hits.
	mtime := time.Unix(0, 0)
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"Dockerfile", 0o644, []byte(dockerfile)},
		{name, 0o755, bin},
	}
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: mtime, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &buf, nil
}

// DemoPackage is the import path of the demo backend that test images run.
const DemoPackage = "github.com/hoist-dev/hoist/internal/demoapp/demoapp"
