package deploy

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLastLines(t *testing.T) {
	for _, tt := range []struct {
		in      string
		n       int
		partial bool
		want    []string
	}{
		{"", 5, false, nil},
		{"a\nb\nc\n", 2, false, []string{"b", "c"}},
		{"a\r\n\n  \nb", 5, false, []string{"a", "b"}},
		{"tail of a line\nwhole\n", 5, true, []string{"whole"}},
		{"no newline at all", 5, true, nil},
	} {
		if got := LastLines([]byte(tt.in), tt.n, tt.partial); strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("LastLines(%q, %d, %v) = %q, want %q", tt.in, tt.n, tt.partial, got, tt.want)
		}
	}
}

func TestBoundLines(t *testing.T) {
	long := strings.Repeat("x", 2000) + "END"
	for _, tt := range []struct {
		in   []string
		want string
	}{
		{[]string{"1", "2", "3", "4", "5", "6", "7"}, "3|4|5|6|7"},
		{[]string{"a", strings.Repeat("y", 1023), "b"}, strings.Repeat("y", 1023) + "|b"},
		{[]string{"a", long}, "…" + long[len(long)-statusBytes:]},
	} {
		if got := strings.Join(boundLines(tt.in, statusLines, statusBytes), "|"); got != tt.want {
			t.Errorf("boundLines: got %d bytes %.40q…, want %d bytes %.40q…", len(got), got, len(tt.want), tt.want)
		}
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	var b TailBuffer
	for i := range TailBytes/4 + 10 {
		b.Write([]byte{'a' + byte(i%26), '\n', 'z', '\n'})
	}
	if !b.Partial || len(b.b) != TailBytes {
		t.Fatalf("partial %v, %d bytes kept", b.Partial, len(b.b))
	}
	if got := b.Lines(2); len(got) != 2 || got[1] != "z" {
		t.Errorf("lines %q", got)
	}
}

// A replica's output is anything it printed: its tail is bounded lines of
// valid text, whatever it was.
func FuzzLastLines(f *testing.F) {
	f.Add([]byte("a\nb\r\n\xff\xfe\n"), 3, true)
	f.Add([]byte(strings.Repeat("é", 700)), 5, false)
	f.Fuzz(func(t *testing.T, b []byte, n int, partial bool) {
		n = max(0, n%50)
		lines := LastLines(b, n, partial)
		if len(lines) > n {
			t.Fatalf("%d lines, want at most %d", len(lines), n)
		}
		for _, l := range lines {
			if l == "" || strings.ContainsRune(l, '\n') {
				t.Fatalf("line %q", l)
			}
		}
		bounded := boundLines(lines, statusLines, statusBytes)
		size := 0
		for _, l := range bounded {
			size += len(l)
		}
		if len(bounded) > statusLines || size > statusBytes+len("…") {
			t.Fatalf("bounded to %d lines, %d bytes", len(bounded), size)
		}
		if len(bounded) == 1 && strings.HasPrefix(bounded[0], "…") && !utf8.ValidString(bounded[0]) {
			t.Fatalf("a cut line is not valid text: %q", bounded[0])
		}
	})
}
