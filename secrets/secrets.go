// Package secrets seals values to public keys, so that the event log only
// ever holds ciphertext.
//
// Every scope has a key pair. The CLI seals a secret's value to the scope's
// public key and can never open it again: it holds no private key. Every
// agent has a key pair of its own (its node key), and the scope's private
// key reaches an agent only sealed to that agent's public key, by an event
// a granted agent publishes. Sealing is NaCl's anonymous box
// (X25519, XSalsa20 and Poly1305); keys are written as NATS writes curve
// keys, in the nkeys text form ("X…" public, "SX…" seed, see keytext.go),
// which carries a checksum, so a mistyped key is caught rather than used.
package secrets

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/nacl/box"

	"github.com/hoist-dev/hoist/internal/atomicfile"
)

// MaxValue is the largest secret value: 64 KiB, far below NATS's message
// limit once sealed and encoded.
const MaxValue = 64 << 10

// overhead is what an anonymous box adds to its plaintext: an ephemeral
// public key and a Poly1305 tag.
const overhead = 32 + box.Overhead

// ErrOpen is matched by every failure to open a sealed value: the wrong
// key, or ciphertext that was changed.
var ErrOpen = errors.New("cannot open sealed value")

// PublicKey is the public half of a key pair: what values are sealed to.
type PublicKey [32]byte

// ParsePublicKey reads a public key written as a curve key ("X…").
func ParsePublicKey(s string) (PublicKey, error) {
	raw, err := decodePublic(s)
	if err != nil {
		return PublicKey{}, fmt.Errorf("%q is not a public curve key (X… of 56 characters)", truncate(s))
	}
	return PublicKey(raw), nil
}

// String writes k as a curve key.
func (k PublicKey) String() string { return encodePublic(k) }

// Fingerprint is a short name for k, for logs and listings.
func (k PublicKey) Fingerprint() string { return k.String()[:12] }

// Key is a key pair. Its private half never leaves the process that holds
// it, except sealed.
type Key struct {
	public  PublicKey
	private [32]byte
}

// GenerateKey makes a new key pair from the system's random source.
func GenerateKey() (*Key, error) {
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return &Key{public: *pub, private: *priv}, nil
}

// parseSeed reads a key pair from its seed ("SX…").
func parseSeed(seed []byte) (*Key, error) {
	raw, err := decodeSeed(bytes.TrimSpace(seed))
	if err != nil {
		return nil, errors.New("not a curve key seed (SX…)")
	}
	k := &Key{private: raw}
	pub, err := publicOf(k.private)
	if err != nil {
		return nil, err
	}
	k.public = pub
	return k, nil
}

// publicOf is the X25519 public key of a private one.
func publicOf(priv [32]byte) (PublicKey, error) {
	k, err := ecdh.X25519().NewPrivateKey(priv[:])
	if err != nil {
		return PublicKey{}, fmt.Errorf("curve key: %w", err)
	}
	return PublicKey(k.PublicKey().Bytes()), nil
}

// Public returns the public half of k.
func (k *Key) Public() PublicKey { return k.public }

// Seed returns the private half of k as a curve seed ("SX…"). Only seal
// it, or write it to a file no one else can read.
func (k *Key) Seed() []byte { return encodeSeed(k.private) }

// Open opens a value sealed to k's public key.
func (k *Key) Open(sealed string) ([]byte, error) {
	b, err := decodeSealed(sealed)
	if err != nil {
		return nil, err
	}
	out, ok := box.OpenAnonymous(nil, b, (*[32]byte)(&k.public), &k.private)
	if !ok {
		return nil, fmt.Errorf("%w: sealed to another key than %s, or altered", ErrOpen, k.public.Fingerprint())
	}
	return out, nil
}

// OpenKey opens a key pair's seed sealed to k.
func (k *Key) OpenKey(sealed string) (*Key, error) {
	seed, err := k.Open(sealed)
	if err != nil {
		return nil, err
	}
	return parseSeed(seed)
}

// Seal seals value to the public key to. Only the holder of its private
// half can open the result, a base64 string.
func Seal(to PublicKey, value []byte) (string, error) {
	if len(value) > MaxValue {
		return "", fmt.Errorf("the value is %d bytes (at most %d)", len(value), MaxValue)
	}
	b, err := box.SealAnonymous(nil, value, (*[32]byte)(&to), rand.Reader)
	if err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// SealKey seals k's seed to the public key to.
func SealKey(to PublicKey, k *Key) (string, error) { return Seal(to, k.Seed()) }

// ValidateSealed checks that s could be a sealed value: base64, long
// enough to hold a box, short enough for MaxValue. It cannot tell whether
// s opens.
func ValidateSealed(s string) error {
	_, err := decodeSealed(s)
	return err
}

func decodeSealed(s string) ([]byte, error) {
	if len(s) > base64.StdEncoding.EncodedLen(MaxValue+overhead) {
		return nil, fmt.Errorf("sealed value is %d characters, longer than any sealed %d bytes", len(s), MaxValue)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	switch {
	case err != nil:
		return nil, fmt.Errorf("sealed value is not base64: %w", err)
	case len(b) < overhead:
		return nil, fmt.Errorf("sealed value is %d bytes, shorter than a sealed box (%d)", len(b), overhead)
	}
	return b, nil
}

// LoadOrCreate reads the key pair kept in the file at path, or makes one
// and writes it there (mode 0600) when there is no file. created reports
// the second case. A file that exists but does not hold a seed is an
// error, never replaced: replacing it would orphan every grant made to it.
func LoadOrCreate(path string) (k *Key, created bool, err error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		k, err := parseSeed(b)
		if err != nil {
			return nil, false, fmt.Errorf("key file %s: %w; move it away to make a new key (the node then needs new grants: hoist secret grant)", path, err)
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return nil, false, fmt.Errorf("key file %s is readable by others (mode %v); chmod 600 it", path, fi.Mode().Perm())
		}
		return k, false, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, false, fmt.Errorf("key file: %w", err)
	}
	k, err = GenerateKey()
	if err != nil {
		return nil, false, err
	}
	if err := atomicfile.WriteNew(path, append(k.Seed(), '\n'), 0o600, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return LoadOrCreate(path) // made meanwhile by another process
		}
		return nil, false, fmt.Errorf("key file: %w", err)
	}
	return k, true, nil
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
