package imagebuild_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"

	"github.com/hoist-dev/hoist/internal/imagebuild"
	"github.com/hoist-dev/hoist/internal/imagetest"
)

// TestScratchImageOfRunningBinary makes a FROM scratch image of the test
// binary as it is (dynamically linked under cgo: with its interpreter and
// libraries) and runs it: it must start and exit 0 in the empty image.
// Making it again keeps the image.
func TestScratchImageOfRunningBinary(t *testing.T) {
	docker := imagetest.RequireDocker(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rootfs, err := imagebuild.ELFRootfs(exe)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tag := "hoist-test/self:" + strings.ToLower(filepath.Base(t.TempDir()))
	img := imagebuild.Image{
		Tag:        tag,
		Files:      rootfs.Files,
		Entrypoint: []string{rootfs.Files[0].Path, "-test.run=^$"},
		Labels:     map[string]string{imagetest.TestLabel: "1"},
	}
	if len(rootfs.LibDirs) > 0 {
		img.Env = []string{"LD_LIBRARY_PATH=" + strings.Join(rootfs.LibDirs, ":")}
	}
	if err := imagebuild.BuildScratch(ctx, docker, img); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		imagetest.RemoveByLabel(t, docker, imagetest.TestLabel+"=self")
		_, _ = docker.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true})
	})
	first, err := docker.ImageInspect(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := imagebuild.BuildScratch(ctx, docker, img); err != nil {
		t.Fatal(err)
	}
	if again, err := docker.ImageInspect(ctx, tag); err != nil || again.ID != first.ID {
		t.Errorf("making the same image again changed it: %s → %s (%v)", first.ID, again.ID, err)
	}

	c, err := docker.ContainerCreate(ctx, &container.Config{Image: tag, Labels: map[string]string{imagetest.TestLabel: "self"}}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := docker.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitC, errC := docker.ContainerWait(ctx, c.ID, container.WaitConditionNotRunning)
	select {
	case w := <-waitC:
		if w.StatusCode != 0 {
			logs, _ := docker.ContainerLogs(ctx, c.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
			var out strings.Builder
			if logs != nil {
				b := make([]byte, 4096)
				n, _ := logs.Read(b)
				out.Write(b[:n])
				logs.Close()
			}
			t.Fatalf("the binary exited %d in its scratch image: %s", w.StatusCode, out.String())
		}
	case err := <-errC:
		t.Fatal(err)
	}
}
