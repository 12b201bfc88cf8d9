package process

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/internal/atomicfile"
)

// processRecord is what the process runtime keeps on disk for one replica,
// so that an agent that crashed and restarted finds its processes again.
type processRecord struct {
	ID         string            `json:"id"`
	PID        int               `json:"pid"`
	StartTicks uint64            `json:"start_ticks"` // /proc/<pid>/stat starttime: tells a reused pid apart
	Labels     map[string]string `json:"labels"`
	Port       int               `json:"port,omitempty"`
	Command    []string          `json:"command"`
	Log        string            `json:"log"`
	StartedAt  time.Time         `json:"started_at"`
}

func (p *Runtime) recordPath(id string) string {
	return filepath.Join(p.dir, "replicas", id+".json")
}

func (p *Runtime) readRecord(id string) (processRecord, error) {
	var rec processRecord
	b, err := os.ReadFile(p.recordPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return rec, fmt.Errorf("replica %s: %w", id, deploy.ErrNotFound)
	}
	if err != nil {
		return rec, fmt.Errorf("read replica record: %w", err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("read replica record %s: %w", id, err)
	}
	return rec, nil
}

func (p *Runtime) records() ([]processRecord, error) {
	paths, err := filepath.Glob(filepath.Join(p.dir, "replicas", "*.json"))
	if err != nil {
		return nil, fmt.Errorf("list replica records: %w", err)
	}
	out := make([]processRecord, 0, len(paths))
	for _, path := range paths {
		rec, err := p.readRecord(strings.TrimSuffix(filepath.Base(path), ".json"))
		if errors.Is(err, deploy.ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			// An unreadable record is not ours to act on; say so and go on.
			p.log.Warn("skipping unreadable replica record", "path", path, "err", err)
			continue
		}
		out = append(out, rec)
	}
	return out, nil
}

// writeRecord stores rec atomically: temp file, fsync, rename, fsync dir.
func (p *Runtime) writeRecord(rec processRecord) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fmt.Errorf("encode replica record: %w", err)
	}
	return atomicfile.WriteFile(p.recordPath(rec.ID), b, 0o600)
}

// alive reports whether rec's process still runs: its pid exists and
// started when the record says, so a reused pid is not mistaken for it.
func (rec processRecord) alive() bool {
	ticks, ok := procStartTicks(rec.PID)
	return ok && ticks == rec.StartTicks
}
