package secrets

import (
	"encoding/base32"
	"encoding/binary"
	"errors"
)

// Keys are written in the nkeys text form of curve keys, as NATS writes
// its own: base32 (no padding) of a prefix, the 32 key bytes and a
// CRC-16/XMODEM of both, little endian. A public key's prefix is one byte
// that makes it start with 'X'; a seed's is two that make it start with
// "SX". The form is written here rather than linked from nkeys, so that the
// domain core (package events, which checks the keys that secret events
// carry) links no NATS package; keytext_test.go holds it to nkeys byte for
// byte.

const (
	prefixCurve byte = 23 << 3 // 'X'
	prefixSeed  byte = 18 << 3 // 'S'
)

var keyEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

var errKeyText = errors.New("not a key in the nkeys text form")

// encodeKeyText writes prefix and key with their checksum.
func encodeKeyText(prefix []byte, key []byte) []byte {
	raw := append(append([]byte{}, prefix...), key...)
	raw = binary.LittleEndian.AppendUint16(raw, crc16(raw))
	out := make([]byte, keyEncoding.EncodedLen(len(raw)))
	keyEncoding.Encode(out, raw)
	return out
}

// decodeKeyText reads what encodeKeyText wrote: the prefix and key, once
// the checksum matches.
func decodeKeyText(text []byte) ([]byte, error) {
	raw := make([]byte, keyEncoding.DecodedLen(len(text)))
	n, err := keyEncoding.Decode(raw, text)
	if err != nil || n < 4 {
		return nil, errKeyText
	}
	raw = raw[:n]
	body, sum := raw[:n-2], binary.LittleEndian.Uint16(raw[n-2:])
	if crc16(body) != sum {
		return nil, errKeyText
	}
	return body, nil
}

// encodePublic writes a public curve key ("X…").
func encodePublic(key [32]byte) string {
	return string(encodeKeyText([]byte{prefixCurve}, key[:]))
}

// decodePublic reads a public curve key.
func decodePublic(text string) ([32]byte, error) {
	b, err := decodeKeyText([]byte(text))
	if err != nil || len(b) != 33 || b[0] != prefixCurve {
		return [32]byte{}, errKeyText
	}
	return [32]byte(b[1:]), nil
}

// seedPrefix is a curve seed's two prefix bytes: the seed prefix's five
// bits, then the curve prefix's.
var seedPrefix = [2]byte{prefixSeed | prefixCurve>>5, (prefixCurve & 31) << 3}

// encodeSeed writes a curve key's private half as a seed ("SX…").
func encodeSeed(private [32]byte) []byte {
	return encodeKeyText(seedPrefix[:], private[:])
}

// decodeSeed reads a curve seed. As nkeys does, it ignores the three low
// bits of the second prefix byte, which the encoding leaves zero.
func decodeSeed(text []byte) ([32]byte, error) {
	b, err := decodeKeyText(text)
	if err != nil || len(b) != 34 || b[0] != seedPrefix[0] || b[1]&^7 != seedPrefix[1] {
		return [32]byte{}, errKeyText
	}
	return [32]byte(b[2:]), nil
}

// crc16 is CRC-16/XMODEM: polynomial 0x1021, initial value 0.
func crc16(data []byte) uint16 {
	var crc uint16
	for _, b := range data {
		crc ^= uint16(b) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
