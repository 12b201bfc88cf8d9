package balancer

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// trafficPage is a 503 the balancer answers for a scope on purpose (a
// maintenance page, a pause that lasted too long), rendered once in the
// three forms a client may ask for: HTML for browsers, JSON for API
// clients, plain text for the rest (curl, scripts), like the built-in
// error pages. The message comes from an event: the HTML form escapes it.
type trafficPage struct {
	forms [numFormats]errorPage
}

// pageFormat is a form of a page, chosen by the request's Accept header.
type pageFormat int

const (
	formatText pageFormat = iota
	formatHTML
	formatJSON
	numFormats
)

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;color:#222}p{white-space:pre-line}</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
</body>
</html>
`))

// pageJSON is the JSON form: {"status":503,"error":"maintenance",...}.
type pageJSON struct {
	Status  int       `json:"status"`
	Error   string    `json:"error"`
	Message string    `json:"message"`
	Since   time.Time `json:"since,omitzero"`
}

// newTrafficPage renders a page; kind names it in JSON ("maintenance",
// "paused"), since is when it began (zero: not shown).
func newTrafficPage(kind, title, message string, since time.Time) *trafficPage {
	var html bytes.Buffer
	if err := pageTemplate.Execute(&html, struct{ Title, Message string }{title, message}); err != nil {
		panic(err) // a fixed template over two strings cannot fail
	}
	js, _ := json.Marshal(pageJSON{Status: http.StatusServiceUnavailable, Error: kind, Message: message, Since: since.UTC()})
	text := "503 Service Unavailable: " + strings.ToLower(title) + "\n\n" + message + "\n"
	p := &trafficPage{}
	set := func(f pageFormat, ctype string, body []byte) {
		p.forms[f] = errorPage{contentType: []string{ctype}, length: []string{strconv.Itoa(len(body))}, body: body}
	}
	set(formatText, "text/plain; charset=utf-8", []byte(text))
	set(formatHTML, "text/html; charset=utf-8", html.Bytes())
	set(formatJSON, "application/json", append(js, '\n'))
	return p
}

// write answers 503 with the form r asks for, and Retry-After.
func (p *trafficPage) write(w http.ResponseWriter, r *http.Request, retryAfter []string) {
	page := &p.forms[negotiate(r.Header.Get("Accept"))]
	h := w.Header()
	h["Content-Type"] = page.contentType
	h["Content-Length"] = page.length
	h["X-Content-Type-Options"] = nosniff
	h["Cache-Control"] = noStore
	h["Vary"] = varyAccept
	h["Retry-After"] = retryAfter
	w.WriteHeader(http.StatusServiceUnavailable)
	if r.Method != http.MethodHead {
		_, _ = w.Write(page.body)
	}
}

var varyAccept = []string{"Accept"}

// offers are the media types of the forms, in the order a tie goes.
var offers = [numFormats]struct{ typ, sub string }{
	formatText: {"text", "plain"},
	formatHTML: {"text", "html"},
	formatJSON: {"application", "json"},
}

// maxAcceptRanges bounds the work an Accept header can cause.
const maxAcceptRanges = 32

// negotiate picks the form an Accept header prefers (RFC 9110 12.5.1):
// each form takes the quality of the most specific range that matches it;
// the highest quality wins, then the more specific match, then the range
// listed first, then text. An empty or unreadable header gets text.
func negotiate(accept string) pageFormat {
	type match struct {
		q    float64
		spec int // 3 type/sub, 2 type/*, 1 */*
		pos  int
	}
	var best [numFormats]match
	for pos, rng := range strings.SplitN(accept, ",", maxAcceptRanges+1) {
		if pos == maxAcceptRanges {
			break
		}
		mt, params, _ := strings.Cut(rng, ";")
		typ, sub, ok := strings.Cut(strings.TrimSpace(mt), "/")
		if !ok {
			continue
		}
		q, ok := quality(params)
		if !ok {
			continue
		}
		for f, o := range offers {
			spec := 0
			switch {
			case typ == "*" && sub == "*":
				spec = 1
			case strings.EqualFold(typ, o.typ) && sub == "*":
				spec = 2
			case strings.EqualFold(typ, o.typ) && strings.EqualFold(sub, o.sub):
				spec = 3
			}
			if spec > best[f].spec { // the most specific range decides
				best[f] = match{q: q, spec: spec, pos: pos}
			}
		}
	}
	pick := formatText
	for f := formatText + 1; f < numFormats; f++ {
		a, b := best[f], best[pick]
		if a.q > b.q || a.q == b.q && a.q > 0 && (a.spec > b.spec || a.spec == b.spec && a.pos < b.pos) {
			pick = f
		}
	}
	return pick
}

// quality reads the q parameter of a media range (1 when absent); ok is
// false when it is malformed, and the range is then ignored.
func quality(params string) (float64, bool) {
	q := 1.0
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, _ := strings.Cut(p, "=")
		if !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || !(f >= 0 && f <= 1) {
			return 0, false
		}
		q = f
	}
	return q, true
}
