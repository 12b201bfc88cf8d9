package balancer

import (
	"strings"
	"testing"
	"time"
)

func TestNegotiate(t *testing.T) {
	tests := []struct {
		accept string
		want   pageFormat
	}{
		{"", formatText},
		{"*/*", formatText}, // curl
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", formatHTML}, // a browser
		{"application/json", formatJSON},
		{"application/json, text/plain, */*", formatJSON}, // axios
		{"application/*", formatJSON},
		{"text/*", formatText},
		{"text/html;q=0.5, application/json;q=0.9", formatJSON},
		{"text/html, application/json", formatHTML}, // a tie goes to the first listed
		{"TEXT/HTML", formatHTML},
		{"text/html;q=0, */*", formatText},
		{"application/json;q=0", formatText},
		{"image/png", formatText},
		{"text/html;q=2", formatText}, // malformed: ignored
		{"text/html;q=abc, application/json", formatJSON},
		{"text/html ; charset=utf-8 ; q=0.8, text/plain;q=0.7", formatHTML},
		{";;;,,,/,*/", formatText},
		{strings.Repeat("image/png,", maxAcceptRanges) + "application/json", formatText}, // past the bound
	}
	for _, tt := range tests {
		if got := negotiate(tt.accept); got != tt.want {
			t.Errorf("negotiate(%q) = %d, want %d", tt.accept, got, tt.want)
		}
	}
}

// FuzzNegotiate: any Accept header picks one of the forms, without panic.
func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"", "*/*", "text/html;q=0.9,application/json", "a/b;q=0.5;q=1", "text/html;q=NaN"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		if got := negotiate(accept); got < 0 || got >= numFormats {
			t.Fatalf("negotiate(%q) = %d", accept, got)
		}
	})
}

// TestTrafficPageEscapes: the HTML form escapes the message; the others
// carry it as it is.
func TestTrafficPageEscapes(t *testing.T) {
	p := newTrafficPage("maintenance", "Down for maintenance", "<b>x</b>\nline 2", time.Time{})
	html := string(p.forms[formatHTML].body)
	if strings.Contains(html, "<b>") || !strings.Contains(html, "&lt;b&gt;x&lt;/b&gt;\nline 2") {
		t.Fatalf("html:\n%s", html)
	}
	if !strings.Contains(string(p.forms[formatText].body), "<b>x</b>\nline 2") {
		t.Fatalf("text:\n%s", p.forms[formatText].body)
	}
	if js := string(p.forms[formatJSON].body); strings.Contains(js, "since") {
		t.Fatalf("a zero since is shown: %s", js)
	}
}
