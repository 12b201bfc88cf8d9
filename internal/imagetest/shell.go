package imagetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/internal/imagebuild"
)

// ShellImage returns the tag of a FROM scratch image of this machine's
// /bin/sh (with its interpreter and libraries) as the entrypoint "sh -c":
// a spec's Command is then one shell script, for replicas that print and
// exit as a test needs. BuildScratch keeps an image made from the same
// files, so it is built once per content.
func ShellImage(t testing.TB) string {
	t.Helper()
	docker := RequireDocker(t)
	rootfs, err := imagebuild.ELFRootfs("/bin/sh")
	if err != nil {
		t.Skipf("no shell to make an image of: %v", err)
	}
	const tag = "hoist-test/sh:1"
	img := imagebuild.Image{
		Tag:        tag,
		Files:      rootfs.Files,
		Entrypoint: []string{rootfs.Files[0].Path, "-c"},
		Labels:     map[string]string{TestLabel: "1"},
	}
	if len(rootfs.LibDirs) > 0 {
		img.Env = []string{"LD_LIBRARY_PATH=" + strings.Join(rootfs.LibDirs, ":")}
	}
	dir, err := cacheDir()
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := imagebuild.BuildScratch(ctx, docker, img); err != nil {
		t.Fatal(fmt.Errorf("shell image: %w", err))
	}
	return tag
}
