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
const referenceVersion = 2

// reference is the agent's local state file: everything it has read and
// written to disk before acting on it.
//
// Each scope keeps its head (the revision and stream sequence of the last
// message read; the agent resumes after it) and its applied events (not
// just the folded state: a rollback needs the earlier revisions); the
// revisions between them are messages that changed nothing. Synced says the
// scope's history was read to the end of the stream at least once, so it
// may be acted on without NATS.
type reference struct {
	Version  int                      `json:"version"`
	Node     string                   `json:"node"`
	Written  time.Time                `json:"written"`
	Scopes   map[string]*referenceLog `json:"scopes"`
	NodeLog  referenceNode            `json:"node_events"`
	Failures []deploy.Failure         `json:"failures,omitempty"`
}

type referenceLog struct {
	Revision uint64            `json:"revision"`
	Sequence uint64            `json:"sequence"`
	Digest   string            `json:"digest,omitempty"` // of the message at Sequence
	Synced   bool              `json:"synced"`
	Events   []json.RawMessage `json:"events"`
}

type referenceNode struct {
	Synced   bool   `json:"synced"`
	Revision uint64 `json:"revision"`
	Sequence uint64 `json:"sequence"`
	Digest   string `json:"digest,omitempty"`
	Drained  bool   `json:"drained"`
	Reason   string `json:"reason,omitempty"`
	Key      string `json:"key,omitempty"` // the node key its history shows
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
	return setAside(path, "corrupt", now)
}

// setAside renames the reference file out of the way, to path.WHY-TIME.
func setAside(path, why string, now time.Time) (string, error) {
	aside := fmt.Sprintf("%s.%s-%s", path, why, now.UTC().Format("20060102T150405Z"))
	if err := os.Rename(path, aside); err != nil {
		return "", fmt.Errorf("set aside %s reference file: %w", why, err)
	}
	return aside, nil
}
