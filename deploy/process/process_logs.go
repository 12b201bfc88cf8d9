package process

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/hoist-dev/hoist/deploy"
)

// Tail reads the last n lines of a replica's log file. The file is its
// slot's (logs/<scope>-<index>.log, appended to by each replica at the
// index) and stays after Remove; its end is what the replica wrote last,
// as the reconciler reads it before a replacement starts.
func (p *Runtime) Tail(ctx context.Context, id string, n int) ([]string, error) {
	rec, err := p.readRecord(id)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(rec.Log)
	if err != nil {
		return nil, fmt.Errorf("read log of %s: %w", id, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read log of %s: %w", id, err)
	}
	off := max(0, fi.Size()-deploy.TailBytes)
	b := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
		return nil, fmt.Errorf("read log of %s: %w", id, err)
	}
	return deploy.LastLines(b, n, off > 0), nil
}
