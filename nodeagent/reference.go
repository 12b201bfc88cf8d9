package nodeagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/internal/atomicfile"
)

// referenceVersion is the format of the reference file this build writes.
const referenceVersion = 1

// reference is the agent's local state file: everything it has acked.
//
// Sequence is the last stream sequence folded and written here; the
// consumer resumes after it. High is the highest sequence ever folded (a
// replay to add a scope goes back below it). Scopes hold each scope's applied events (not
// just the folded state: a rollback needs the earlier revisions). Synced
// says the scope's history was read to the end of the stream at least
// once, so it may be acted on without NATS.
type reference struct {
	Version  int                      `json:"version"`
	Node     string                   `json:"node"`
	Sequence uint64                   `json:"sequence"`
	High     uint64                   `json:"high_water"`
	Written  time.Time                `json:"written"`
	Scopes   map[string]*referenceLog `json:"scopes"`
	NodeLog  referenceNode            `json:"node_events"`
	Failures []deploy.Failure         `json:"failures,omitempty"`
}

type referenceLog struct {
	// Complete: the events are the scope's history from its start up to
	// Sequence (false for a scope added since the last full replay).
	Complete bool `json:"complete"`
	// Synced: the history was read to the end of the stream at least once.
	Synced bool              `json:"synced"`
	Events []json.RawMessage `json:"events"`
}

type referenceNode struct {
	Synced   bool   `json:"synced"`
	Revision uint64 `json:"revision"`
	Drained  bool   `json:"drained"`
	Reason   string `json:"reason,omitempty"`
}

// ErrCorruptReference marks a reference file that exists but cannot be
// trusted: the agent rebuilds it from the stream.
var ErrCorruptReference = errors.New("corrupt reference file")

// loadReference reads the reference file at path. A missing file returns
// (nil, nil). A file that does not parse, has another format version or
// belongs to another node returns ErrCorruptReference.
func loadReference(path, node string) (*reference, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read reference file: %w", err)
	}
	var ref reference
	if err := json.Unmarshal(data, &ref); err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrCorruptReference, path, err)
	}
	switch {
	case ref.Version != referenceVersion:
		return nil, fmt.Errorf("%w %s: format version %d, this build reads %d", ErrCorruptReference, path, ref.Version, referenceVersion)
	case ref.Node != node:
		return nil, fmt.Errorf("%w %s: it belongs to node %q, not %q", ErrCorruptReference, path, ref.Node, node)
	}
	if ref.Scopes == nil {
		ref.Scopes = map[string]*referenceLog{}
	}
	for name, l := range ref.Scopes {
		if l == nil {
			return nil, fmt.Errorf("%w %s: scope %s has no entry", ErrCorruptReference, path, name)
		}
	}
	return &ref, nil
}

// writeReference replaces the file at path atomically: a reader (or a
// crash) sees the old file or the new one, never half of one.
func writeReference(path string, ref *reference) error {
	data, err := encodeReference(ref)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o600)
}

// setAsideCorrupt renames a corrupt reference file so it can be inspected,
// and returns the new name.
func setAsideCorrupt(path string, now time.Time) (string, error) {
	aside := fmt.Sprintf("%s.corrupt-%s", path, now.UTC().Format("20060102T150405Z"))
	if err := os.Rename(path, aside); err != nil {
		return "", fmt.Errorf("set aside corrupt reference file: %w", err)
	}
	return aside, nil
}
