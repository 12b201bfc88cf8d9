package docker

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/hoist-dev/hoist/deploy"
)

// ImageError says an image is not present locally and could not be pulled.
// errors.Is(err, ErrImageNotFound) matches it.
type ImageError struct {
	Image string
	Err   error
}

func (e *ImageError) Error() string {
	return fmt.Sprintf("image %q not found locally and pull failed: %v", e.Image, e.Err)
}

func (e *ImageError) Unwrap() error        { return e.Err }
func (e *ImageError) Is(target error) bool { return target == deploy.ErrImageNotFound }

type pullAttempt struct {
	revision uint64
	at       time.Time
	err      error
}

// pull fetches ref. A pull that failed for this revision is not tried again
// within PullRetry: the same error comes back at once, so a missing image
// cannot turn the reconcile loop into a pull loop.
func (d *Runtime) pull(ctx context.Context, ref string, revision uint64) error {
	d.mu.Lock()
	last, tried := d.pulls[ref]
	d.mu.Unlock()
	if tried && last.revision == revision && time.Since(last.at) < d.pullRetry {
		return last.err
	}

	d.log.Info("pulling image", "image", ref, "revision", revision)
	err := d.pullOnce(ctx, ref)
	if err != nil {
		err = &ImageError{Image: ref, Err: err}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		delete(d.pulls, ref)
		return nil
	}
	d.pulls[ref] = pullAttempt{revision: revision, at: time.Now(), err: err}
	return err
}

func (d *Runtime) pullOnce(ctx context.Context, ref string) error {
	ctx, cancel := context.WithTimeout(ctx, d.pullTimeout)
	defer cancel()
	rc, err := d.c.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	// A pull reports failures inside its progress stream.
	return jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil)
}
