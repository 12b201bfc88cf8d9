package secrets

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpensOnlyWithItsKey(t *testing.T) {
	scope, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := GenerateKey()
	sealed, err := Seal(scope.Public(), []byte("hunter2"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "hunter2") {
		t.Fatal("sealed value holds the plaintext")
	}
	got, err := scope.Open(sealed)
	if err != nil || string(got) != "hunter2" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := other.Open(sealed); !errors.Is(err, ErrOpen) {
		t.Fatalf("another key opened it: %v", err)
	}
	b := []byte(sealed)
	b[len(b)/2] ^= 1
	if _, err := scope.Open(string(b)); err == nil {
		t.Fatal("an altered box opened")
	}
}

func TestKeySealedToANode(t *testing.T) {
	node, _ := GenerateKey()
	scope, _ := GenerateKey()
	sealed, err := SealKey(node.Public(), scope)
	if err != nil {
		t.Fatal(err)
	}
	got, err := node.OpenKey(sealed)
	if err != nil {
		t.Fatal(err)
	}
	if got.Public() != scope.Public() {
		t.Fatal("opened another key")
	}
}

func TestPublicKeyRoundTripAndTypos(t *testing.T) {
	k, _ := GenerateKey()
	s := k.Public().String()
	if s[0] != 'X' || len(s) != 56 {
		t.Fatalf("public key %q", s)
	}
	back, err := ParsePublicKey(s)
	if err != nil || back != k.Public() {
		t.Fatalf("ParsePublicKey = %v, %v", back, err)
	}
	typo := []byte(s)
	typo[10] = 'A' + (typo[10]-'A'+1)%26
	for _, bad := range []string{"", "X", string(typo), "U" + s[1:]} {
		if _, err := ParsePublicKey(bad); err == nil {
			t.Errorf("ParsePublicKey(%q) accepted", bad)
		}
	}
}

func TestValidateSealed(t *testing.T) {
	k, _ := GenerateKey()
	ok, _ := Seal(k.Public(), nil)
	if err := ValidateSealed(ok); err != nil {
		t.Fatalf("a sealed empty value: %v", err)
	}
	for _, bad := range []string{"", "not base64!", "AAAA", strings.Repeat("A", 200000)} {
		if err := ValidateSealed(bad); err == nil {
			t.Errorf("ValidateSealed(%.20q) accepted", bad)
		}
	}
	if _, err := Seal(k.Public(), make([]byte, MaxValue+1)); err == nil {
		t.Fatal("sealed a value over MaxValue")
	}
}

func TestLoadOrCreateKeepsOneKeyPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "node.key")
	k, created, err := LoadOrCreate(path)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreate: %v, created %v", err, created)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", fi.Mode().Perm(), err)
	}
	again, created, err := LoadOrCreate(path)
	if err != nil || created || again.Public() != k.Public() {
		t.Fatalf("second LoadOrCreate: %v, created %v, same %v", err, created, again.Public() == k.Public())
	}
	if err := os.WriteFile(path, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreate(path); err == nil || !strings.Contains(err.Error(), "move it away") {
		t.Fatalf("a corrupt key file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "garbage\n" {
		t.Fatal("a corrupt key file was replaced")
	}
	os.WriteFile(path, k.Seed(), 0o644)
	os.Chmod(path, 0o644)
	if _, _, err := LoadOrCreate(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable key file: %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	k, _ := GenerateKey()
	ok, _ := Seal(k.Public(), []byte("v"))
	f.Add(ok)
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := k.Open(s); err != nil && s == ok {
			t.Fatal(err)
		}
		ParsePublicKey(s)
		parseSeed([]byte(s))
	})
}

func TestLooksSecret(t *testing.T) {
	for _, c := range []struct {
		name, value string
		want        bool
	}{
		{"DB_PASSWORD", "x", true},
		{"github_token", "x", true},
		{"STRIPE_API_KEY", "x", true},
		{"TLS_PRIVATE_KEY", "x", true},
		{"AWS_SECRET_ACCESS_KEY", "x", true},
		{"DATABASE_URL", "postgres://app:hunter2@db:5432/app", true},
		{"DATABASE_URL", "postgres://app@db:5432/app", false},
		{"MODE", "fast", false},
		{"GREETING", "hello://world", false},
	} {
		if got := LooksSecret(c.name, c.value); got != c.want {
			t.Errorf("LooksSecret(%s, %s) = %v", c.name, c.value, got)
		}
	}
	env := map[string]string{"MODE": "fast", "DB_PASSWORD": "hunter2"}
	masked, any := MaskEnv(env)
	if !any || masked["DB_PASSWORD"] != mask || masked["MODE"] != "fast" || env["DB_PASSWORD"] != "hunter2" {
		t.Fatalf("MaskEnv = %v, %v (env now %v)", masked, any, env)
	}
}
