package docker

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/hoist-dev/hoist/deploy"
)

// Tail reads a container's last n lines of stdout and stderr from the
// engine, before the reconciler removes the container and them with it.
// The agent never gives a container a TTY, so the stream is multiplexed.
func (d *Runtime) Tail(ctx context.Context, id string, n int) ([]string, error) {
	if _, err := d.owned(ctx, id); err != nil {
		return nil, err
	}
	cctx, cancel := d.call(ctx)
	defer cancel()
	rc, err := d.c.ContainerLogs(cctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n)})
	if err != nil {
		return nil, fmt.Errorf("read logs of container %s: %w", deploy.ShortID(id), err)
	}
	defer rc.Close()
	var tail deploy.TailBuffer
	if _, err := stdcopy.StdCopy(&tail, &tail, io.LimitReader(rc, 4*deploy.TailBytes)); err != nil {
		return nil, fmt.Errorf("read logs of container %s: %w", deploy.ShortID(id), err)
	}
	return tail.Lines(n), nil
}
