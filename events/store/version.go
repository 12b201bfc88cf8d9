package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hoist-dev/hoist/events"
)

// MinServerVersion is the oldest nats-server hoist supports: conditional
// appends guard a whole scope with a wildcard subject expectation
// (Nats-Expected-Last-Subject-Sequence-Subject), which arrived in 2.11.
const MinServerVersion = "2.11.0"

// ErrServerTooOld is returned when the connected server predates
// MinServerVersion.
var ErrServerTooOld = errors.New("nats-server is too old")

// checkServerVersion fails with ErrServerTooOld for a server older than
// MinServerVersion.
func checkServerVersion(v string) error {
	got, ok := parseVersion(v)
	want, _ := parseVersion(MinServerVersion)
	if !ok {
		return fmt.Errorf("%w: cannot read its version %q (hoist needs ≥ %s)", ErrServerTooOld, v, MinServerVersion)
	}
	for i := range got {
		if got[i] != want[i] {
			if got[i] < want[i] {
				return fmt.Errorf("%w: it is %s, hoist needs ≥ %s (wildcard subject expectations for conditional appends)", ErrServerTooOld, v, MinServerVersion)
			}
			return nil
		}
	}
	return nil
}

func parseVersion(v string) ([3]int, bool) {
	var out [3]int
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return out, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return out, false
		}
		out[i] = n
	}
	return out, true
}

func jsonMarshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	if len(b) > events.MaxEventSize {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", events.ErrEventTooLarge, len(b), events.MaxEventSize)
	}
	return b, nil
}
