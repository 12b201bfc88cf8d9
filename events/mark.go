package events

import (
	"crypto/sha256"
	"encoding/hex"
)

// Mark names one stored message: its sequence and, when known, the digest
// of its body (Digest).
type Mark struct {
	Sequence uint64 `json:"sequence"`
	Digest   string `json:"digest,omitempty"`
}

// Digest is a short fingerprint of a stored message's body, enough to tell
// that a stream holds another message at a sequence than it once did.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:12])
}
