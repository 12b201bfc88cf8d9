package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitArgs(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		err  string
	}{
		{in: "", want: nil},
		{in: "   \t\n ", want: nil},
		{in: "./api", want: []string{"./api"}},
		{in: "  ./api   --listen :8080 ", want: []string{"./api", "--listen", ":8080"}},
		{in: `sh -c 'echo "hi there"'`, want: []string{"sh", "-c", `echo "hi there"`}},
		{in: `echo "a 'b' c"`, want: []string{"echo", "a 'b' c"}},
		{in: `echo "say \"hi\"" \$HOME`, want: []string{"echo", `say "hi"`, "$HOME"}},
		{in: `echo "a\nb \\ \$x \q"`, want: []string{"echo", `a\nb \ $x \q`}},
		{in: `echo 'it'\''s'`, want: []string{"echo", "it's"}},
		{in: `a""b ''`, want: []string{"ab", ""}},
		{in: `a\ b c`, want: []string{"a b", "c"}},
		{in: "a \\\nb", want: []string{"a", "b"}},
		{in: "a\\\nb", want: []string{"ab"}},
		{in: `--flag="x y"`, want: []string{"--flag=x y"}},
		{in: "$HOME *.go", want: []string{"$HOME", "*.go"}},
		{in: `sh -c 'echo hi`, err: "unterminated single quote at byte 7"},
		{in: `echo "hi`, err: "unterminated double quote at byte 6"},
		{in: `echo "hi\"`, err: "unterminated double quote"},
		{in: `echo hi\`, err: "trailing backslash"},
	}
	for _, c := range cases {
		got, err := splitArgs(c.in)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("splitArgs(%q) = %q, %v; want error %q", c.in, got, err, c.err)
			}
		case err != nil || !reflect.DeepEqual(got, c.want):
			t.Errorf("splitArgs(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestJoinArgsRoundTrips(t *testing.T) {
	for _, words := range [][]string{
		{"sh", "-c", `echo "it's" $HOME`},
		{"a b", "", "\t", `\`, "'", `"`},
		{"plain", "--flag=value"},
	} {
		got, err := splitArgs(joinArgs(words))
		if err != nil || !reflect.DeepEqual(got, words) {
			t.Errorf("splitArgs(joinArgs(%q)) = %q, %v", words, got, err)
		}
	}
}

// FuzzSplitArgs: any input either splits or fails cleanly, and whatever it
// splits into survives a join and a second split unchanged.
func FuzzSplitArgs(f *testing.F) {
	for _, s := range []string{"", "a b", `sh -c 'echo "hi"'`, `a\ b "c\"d"`, "'unbalanced", `"x`, "a\\\nb", `\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := splitArgs(s)
		if err != nil {
			return
		}
		again, err := splitArgs(joinArgs(words))
		if err != nil {
			t.Fatalf("joinArgs(%q) does not split: %v", words, err)
		}
		if len(words) == 0 && len(again) == 0 {
			return
		}
		if !reflect.DeepEqual(again, words) {
			t.Fatalf("round trip of %q: %q became %q", s, words, again)
		}
	})
}
