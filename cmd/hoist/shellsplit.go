package main

import (
	"fmt"
	"strings"

	"github.com/hoist-dev/hoist/view"
)

// splitArgs splits a command line into words the way a POSIX shell would
// for quoting, and nothing more: no variables, globs or redirections.
//
//   - blanks (space, tab, newline) separate words;
//   - '…' keeps everything literally;
//   - "…" keeps everything, except that \" \\ \$ \` and \newline are escapes;
//   - outside quotes, \x is x, and \newline joins lines.
//
// An unterminated quote or a trailing backslash is an error.
func splitArgs(s string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("unterminated single quote at byte %d", i+1)
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) && strings.IndexByte("\"\\$`\n", s[j+1]) >= 0 {
					j++
					if s[j] != '\n' {
						cur.WriteByte(s[j])
					}
					continue
				}
				cur.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated double quote at byte %d", i+1)
			}
			i = j
			inWord = true
		case c == '\\':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("trailing backslash at byte %d", i+1)
			}
			i++
			if s[i] == '\n' {
				continue // line continuation
			}
			cur.WriteByte(s[i])
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// joinArgs quotes words so that splitArgs gives them back, for display.
func joinArgs(words []string) string { return view.JoinArgs(words) }
