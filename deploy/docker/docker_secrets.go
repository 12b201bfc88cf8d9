package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/container"

	"github.com/hoist-dev/hoist/deploy"
)

// A replica's secrets reach its container two ways: as env values, in the
// container's config, and as files, copied in between create and start so
// that they are there before the process runs.

func (d *Runtime) copySecretFiles(ctx context.Context, id string, secrets []deploy.Secret) error {
	files := slices.DeleteFunc(slices.Clone(secrets), func(s deploy.Secret) bool { return s.File == "" })
	if len(files) == 0 {
		return nil
	}
	tarball, err := secretTar(files)
	if err != nil {
		return err
	}
	if err := d.c.CopyToContainer(ctx, id, "/", bytes.NewReader(tarball), container.CopyToContainerOptions{}); err != nil {
		return fmt.Errorf("write secret files into the container: %w", err)
	}
	return nil
}

// secretTar packs secret files, and the directories above them, for
// CopyToContainer at "/". Files are 0444: the image may run as any user,
// and the container is the boundary.
func secretTar(files []deploy.Secret) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, s := range files {
		rel := strings.TrimPrefix(s.File, "/")
		var parents []string
		for dir := path.Dir(rel); dir != "." && !dirs[dir]; dir = path.Dir(dir) {
			parents = append(parents, dir)
			dirs[dir] = true
		}
		slices.Reverse(parents)
		for _, dir := range parents {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755}); err != nil {
				return nil, err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: 0o444, Size: int64(len(s.Value))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(s.Value); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
