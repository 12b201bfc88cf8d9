package events

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// decodeCanonical is Decode's fast path. It accepts only the exact layout
// Encode writes (keys in order, lowercase, no whitespace, strings without
// escapes, plain unsigned numbers) and only events that decode and
// validate; for anything else it returns ok=false and Decode takes the
// general path, which then produces the error. So it changes the cost of
// decoding, never its result: FuzzFastDecode checks that every event it
// accepts is exactly what the general path returns.
//
// Encode writes:
//
//	{"schema":1,"id":"…","kind":"…"[,"scope":"…"][,"node":"…"],"revision":N,"time":"…"[,"actor":"…"],"data":{…}}
func decodeCanonical(b []byte) (*Event, bool) {
	c := cursor{b: b}
	if !c.lit(`{"schema":`) {
		return nil, false
	}
	schema, ok := c.uint()
	if !ok || schema != SchemaVersion || !c.lit(`,"id":`) {
		return nil, false
	}
	id, ok := c.str()
	if !ok || len(id) == 0 || !c.lit(`,"kind":`) {
		return nil, false
	}
	kind, ok := c.str()
	if !ok {
		return nil, false
	}
	e := &Event{Schema: int(schema), Kind: Kind(kind)}
	if c.lit(`,"scope":`) {
		s, ok := c.str()
		if !ok {
			return nil, false
		}
		if len(s) > 0 {
			if e.Scope, ok = scopeFromBytes(s); !ok {
				return nil, false
			}
		}
	}
	if c.lit(`,"node":`) {
		s, ok := c.str()
		if !ok {
			return nil, false
		}
		e.Node = string(s)
	}
	if !c.lit(`,"revision":`) {
		return nil, false
	}
	if e.Revision, ok = c.uint(); !ok || !c.lit(`,"time":`) {
		return nil, false
	}
	start := c.i
	if _, ok := c.str(); !ok || e.Time.UnmarshalJSON(b[start:c.i]) != nil {
		return nil, false
	}
	if c.lit(`,"actor":`) {
		s, ok := c.str()
		if !ok {
			return nil, false
		}
		e.Actor = string(s)
	}
	if !c.lit(`,"data":`) || len(b) < c.i+2 || b[len(b)-1] != '}' {
		return nil, false
	}
	p := decodePayload(e.Kind, b[c.i:len(b)-1])
	if p == nil {
		return nil, false
	}
	e.ID, e.Data = string(id), p
	if e.Validate() != nil {
		return nil, false
	}
	return e, true
}

// decodePayload decodes the data of a known kind, or returns nil. The
// small payloads are read by hand; the others (deploys, env changes) by
// encoding/json straight into their type.
func decodePayload(k Kind, data []byte) Payload {
	c := cursor{b: data}
	switch k {
	case KindScaled:
		if c.lit(`{"replicas":`) {
			if n, ok := c.uint(); ok && n <= MaxReplicas && c.end(`}`) {
				return &Scaled{Replicas: int(n)}
			}
		}
	case KindRolledBack:
		if c.lit(`{"to":`) {
			if n, ok := c.uint(); ok && c.end(`}`) {
				return &RolledBack{To: n}
			}
		}
	case KindRemoved:
		if c.end(`{}`) {
			return &Removed{}
		}
	case KindNodeUndrained:
		if c.end(`{}`) {
			return &NodeUndrained{}
		}
	case KindNodeDrained:
		if c.end(`{}`) {
			return &NodeDrained{}
		}
		if c.lit(`{"reason":`) {
			if s, ok := c.str(); ok && c.end(`}`) {
				return &NodeDrained{Reason: string(s)}
			}
		}
	case KindBackendScored:
		if c.lit(`{"backend":`) {
			backend, ok := c.str()
			if ok && c.lit(`,"score":`) {
				if n, ok := c.uint(); ok && n <= 100 && c.end(`}`) {
					return &BackendScored{Backend: string(backend), Score: int(n)}
				}
			}
		}
	}
	p := newPayload(k)
	if p == nil || len(data) == 0 || data[0] != '{' {
		return nil
	}
	if err := json.Unmarshal(data, p); err != nil {
		return nil
	}
	return p
}

// scopeFromBytes parses a scope without the allocations of ParseScope.
func scopeFromBytes(b []byte) (Scope, bool) {
	s := string(b)
	i := strings.IndexByte(s, '.')
	if i < 0 {
		return Scope{}, false
	}
	j := strings.IndexByte(s[i+1:], '.')
	if j < 0 {
		return Scope{}, false
	}
	j += i + 1
	sc := Scope{Client: s[:i], Environment: s[i+1 : j], Solution: s[j+1:]}
	for _, tok := range [3]string{sc.Client, sc.Environment, sc.Solution} {
		if tokenRule(tok) != "" {
			return Scope{}, false
		}
	}
	return sc, true
}

// cursor reads the canonical JSON layout. Every method consumes input
// only when it matches.
type cursor struct {
	b []byte
	i int
}

// lit consumes s if the input continues with it.
func (c *cursor) lit(s string) bool {
	if len(c.b)-c.i < len(s) || string(c.b[c.i:c.i+len(s)]) != s {
		return false
	}
	c.i += len(s)
	return true
}

// end reports whether the rest of the input is exactly s.
func (c *cursor) end(s string) bool { return string(c.b[c.i:]) == s }

// str consumes a string without escapes or control characters and returns
// its contents, which are valid UTF-8.
func (c *cursor) str() ([]byte, bool) {
	if c.i >= len(c.b) || c.b[c.i] != '"' {
		return nil, false
	}
	rest := c.b[c.i+1:]
	n := bytes.IndexByte(rest, '"')
	if n < 0 {
		return nil, false
	}
	s := rest[:n]
	ascii := true
	for _, ch := range s {
		if ch < 0x20 || ch == '\\' {
			return nil, false
		}
		if ch >= utf8.RuneSelf {
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(s) {
		return nil, false
	}
	c.i += n + 2
	return s, true
}

// uint consumes an unsigned integer without leading zeros, sign, fraction
// or exponent, of at most 18 digits (so it cannot overflow an int64).
func (c *cursor) uint() (uint64, bool) {
	start, n := c.i, uint64(0)
	for c.i < len(c.b) && c.b[c.i] >= '0' && c.b[c.i] <= '9' {
		n = n*10 + uint64(c.b[c.i]-'0')
		c.i++
	}
	digits := c.i - start
	switch {
	case digits == 0, digits > 18, digits > 1 && c.b[start] == '0':
		c.i = start
		return 0, false
	case c.i < len(c.b) && (c.b[c.i] == '.' || c.b[c.i] == 'e' || c.b[c.i] == 'E'):
		c.i = start
		return 0, false
	}
	return n, true
}

// appendEnvelope writes the envelope exactly as encodeGeneral does, without
// reflection and without re-scanning data (json.Marshal compacts a
// json.RawMessage; data comes straight from json.Marshal, so it is
// compact already). ok is false for what it does not handle (strings that
// need escaping, times outside years 0-9999); Encode then uses
// encodeGeneral. TestEncodeMatchesGeneral and FuzzEncode check that both
// write the same bytes.
func appendEnvelope(b []byte, e *Event, schema int, data []byte) ([]byte, bool) {
	t := e.Time.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, false
	}
	var ok bool
	b = append(b, `{"schema":`...)
	b = strconv.AppendInt(b, int64(schema), 10)
	b = append(b, `,"id":`...)
	if b, ok = appendPlainString(b, e.ID); !ok {
		return nil, false
	}
	b = append(b, `,"kind":`...)
	if b, ok = appendPlainString(b, string(e.Kind)); !ok {
		return nil, false
	}
	if !e.Scope.IsZero() {
		b = append(b, `,"scope":`...)
		if b, ok = appendPlainString(b, e.Scope.String()); !ok {
			return nil, false
		}
	}
	if e.Node != "" {
		b = append(b, `,"node":`...)
		if b, ok = appendPlainString(b, e.Node); !ok {
			return nil, false
		}
	}
	b = append(b, `,"revision":`...)
	b = strconv.AppendUint(b, e.Revision, 10)
	b = append(b, `,"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if e.Actor != "" {
		b = append(b, `,"actor":`...)
		if b, ok = appendPlainString(b, e.Actor); !ok {
			return nil, false
		}
	}
	b = append(b, `,"data":`...)
	b = append(b, data...)
	return append(b, '}'), true
}

// appendPlainString quotes s when encoding/json would write it unchanged:
// printable ASCII without '"', '\\' or the HTML characters it escapes.
func appendPlainString(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return nil, false
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), true
}
