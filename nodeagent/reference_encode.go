package nodeagent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
)

// encodeReference is json.Marshal(ref) without re-encoding the stored
// events. json.Marshal compacts (re-scans and copies) every
// json.RawMessage, which made each write of the reference file cost a pass
// over every event of every history: the largest item of the agent's CPU
// profile, and quadratic during a catch-up. The events are written as they
// were stored; each is valid JSON, since it decoded before the book kept
// it. The layout is the reference struct's, so loadReference reads it.
func encodeReference(ref *reference) ([]byte, error) {
	size := 512
	for _, l := range ref.Scopes {
		for _, e := range l.Events {
			size += len(e) + 1
		}
	}
	var b bytes.Buffer
	b.Grow(size)
	b.WriteString(`{"version":`)
	b.WriteString(strconv.Itoa(ref.Version))
	b.WriteString(`,"node":`)
	if err := writeJSON(&b, ref.Node); err != nil {
		return nil, err
	}
	b.WriteString(`,"written":`)
	if err := writeJSON(&b, ref.Written); err != nil {
		return nil, err
	}
	b.WriteString(`,"scopes":{`)
	names := make([]string, 0, len(ref.Scopes))
	for name := range ref.Scopes {
		names = append(names, name)
	}
	slices.Sort(names)
	for i, name := range names {
		l := ref.Scopes[name]
		if i > 0 {
			b.WriteByte(',')
		}
		if err := writeJSON(&b, name); err != nil {
			return nil, err
		}
		b.WriteString(`:{"revision":`)
		b.WriteString(strconv.FormatUint(l.Revision, 10))
		b.WriteString(`,"sequence":`)
		b.WriteString(strconv.FormatUint(l.Sequence, 10))
		if l.Digest != "" {
			b.WriteString(`,"digest":`)
			if err := writeJSON(&b, l.Digest); err != nil {
				return nil, err
			}
		}
		b.WriteString(`,"synced":`)
		b.WriteString(strconv.FormatBool(l.Synced))
		b.WriteString(`,"events":`)
		if l.Events == nil {
			b.WriteString("null")
		} else {
			b.WriteByte('[')
			for j, e := range l.Events {
				if j > 0 {
					b.WriteByte(',')
				}
				if len(e) == 0 {
					return nil, fmt.Errorf("encode reference file: scope %s event %d is empty", name, j+1)
				}
				b.Write(e)
			}
			b.WriteByte(']')
		}
		b.WriteByte('}')
	}
	b.WriteString(`},"node_events":`)
	if err := writeJSON(&b, ref.NodeLog); err != nil {
		return nil, err
	}
	if len(ref.Failures) > 0 {
		b.WriteString(`,"failures":`)
		if err := writeJSON(&b, ref.Failures); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeJSON(b *bytes.Buffer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode reference file: %w", err)
	}
	b.Write(data)
	return nil
}
