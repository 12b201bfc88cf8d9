package secrets

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/nats-io/nkeys"
)

// The text form is the one NATS writes: keys written before it was written
// here, by nkeys, must read the same, and keys written now must be ones
// nkeys reads.
func TestKeyTextIsNkeys(t *testing.T) {
	for range 200 {
		var priv [32]byte
		rand.Read(priv[:])
		seed, err := nkeys.EncodeSeed(nkeys.PrefixByteCurve, priv[:])
		if err != nil {
			t.Fatal(err)
		}
		if got := encodeSeed(priv); !bytes.Equal(got, seed) {
			t.Fatalf("seed %s, nkeys writes %s", got, seed)
		}
		kp, err := nkeys.FromCurveSeed(seed)
		if err != nil {
			t.Fatal(err)
		}
		public, err := kp.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		k, err := parseSeed(seed)
		if err != nil {
			t.Fatalf("parseSeed(%s): %v", seed, err)
		}
		if got := k.Public().String(); got != public {
			t.Fatalf("public key %s, nkeys derives %s", got, public)
		}
		back, err := ParsePublicKey(public)
		if err != nil || back != k.Public() {
			t.Fatalf("ParsePublicKey(%s) = %v, %v", public, back, err)
		}
	}
}

// A changed character fails the checksum, as in nkeys. The one a typo can
// pass is the last character's unused low bits, which base32 ignores:
// then both read the same key.
func TestKeyTextRejectsATypo(t *testing.T) {
	for range 20 {
		k, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		public, seed := []byte(k.Public().String()), k.Seed()
		for i := range public {
			typo := withTypo(public, i)
			got, err := decodePublic(string(typo))
			raw, nerr := nkeys.Decode(nkeys.PrefixByteCurve, typo)
			if (err == nil) != (nerr == nil) || err == nil && (got != k.Public() || !bytes.Equal(raw, got[:])) {
				t.Errorf("public key typo %s: read %v, %v; nkeys %v", typo, got, err, nerr)
			}
		}
		for i := range seed {
			typo := withTypo(seed, i)
			got, err := decodeSeed(typo)
			_, raw, nerr := nkeys.DecodeSeed(typo)
			if (err == nil) != (nerr == nil) || err == nil && (got != k.private || !bytes.Equal(raw, got[:])) {
				t.Errorf("seed typo %s: read %v; nkeys %v", typo, err, nerr)
			}
		}
	}
}

// withTypo is text with its i-th character changed to another letter.
func withTypo(text []byte, i int) []byte {
	typo := bytes.Clone(text)
	if typo[i] == 'A' {
		typo[i] = 'B'
	} else {
		typo[i] = 'A'
	}
	return typo
}

// Whatever the text, the public key and seed readers accept exactly what
// nkeys accepts as a 32-byte curve key, and read the same bytes.
func FuzzKeyTextAgreesWithNkeys(f *testing.F) {
	k, _ := GenerateKey()
	f.Add([]byte(k.Public().String()))
	f.Add(k.Seed())
	f.Add([]byte("XAAAA"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, text []byte) {
		pub, err := decodePublic(string(text))
		raw, nerr := nkeys.Decode(nkeys.PrefixByteCurve, text)
		if nok := nerr == nil && len(raw) == 32; nok != (err == nil) || nok && !bytes.Equal(raw, pub[:]) {
			t.Fatalf("public %q: read %x, %v; nkeys %x, %v", text, pub, err, raw, nerr)
		}
		seed, err := decodeSeed(text)
		prefix, raw, nerr := nkeys.DecodeSeed(text)
		if nok := nerr == nil && prefix == nkeys.PrefixByteCurve && len(raw) == 32; nok != (err == nil) || nok && !bytes.Equal(raw, seed[:]) {
			t.Fatalf("seed %q: read %x, %v; nkeys %v %x, %v", text, seed, err, prefix, raw, nerr)
		}
	})
}
