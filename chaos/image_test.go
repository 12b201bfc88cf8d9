package chaos

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/hoist-dev/hoist/internal/imagetest"
)

// hoistImage builds the repository's Dockerfile (FROM scratch, the static
// binary at dist/hoist-linux-amd64) with hoistBin, and returns its tag,
// hoist-test/hoist:<binary hash>. Nothing is pulled: the context is a tar
// made here, and the classic builder knows scratch. The image is kept, so
// the next run with the same binary reuses it.
func hoistImage(t *testing.T, docker *client.Client) string {
	t.Helper()
	bin, err := os.ReadFile(hoistBin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bin)
	tag := "hoist-test/hoist:" + hex.EncodeToString(sum[:])[:12]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := docker.ImageInspect(ctx, tag); err == nil {
		return tag
	}
	dockerfile, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join("..", "packaging", "docker", "data", "README"))
	if err != nil {
		t.Fatal(err)
	}
	buildCtx, err := tarOf([]tarFile{
		{name: "Dockerfile", mode: 0o644, data: dockerfile},
		{name: "dist/hoist-linux-amd64", mode: 0o755, data: bin},
		{name: "packaging/docker/data/README", mode: 0o644, data: readme},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := docker.ImageBuild(ctx, buildCtx, build.ImageBuildOptions{
		Tags: []string{tag}, Labels: map[string]string{imagetest.TestLabel: "1"},
		Remove: true, ForceRemove: true, Version: build.BuilderV1,
	})
	if err != nil {
		t.Fatalf("build %s: %v", tag, err)
	}
	defer resp.Body.Close()
	// Build errors arrive inside the stream, not as the call's error.
	if err := jsonmessage.DisplayJSONMessagesStream(resp.Body, io.Discard, 0, false, nil); err != nil {
		t.Fatalf("build %s: %v", tag, err)
	}
	t.Logf("built %s from ../Dockerfile", tag)
	return tag
}

type tarFile struct {
	name     string
	mode     int64
	uid, gid int
	data     []byte
}

func tarOf(files []tarFile) (io.Reader, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.gid, Size: int64(len(f.data)),
			ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("tar %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("tar %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &buf, nil
}
