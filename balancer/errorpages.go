package balancer

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
)

// errorPage is a ready-to-send error response.
type errorPage struct {
	contentType []string
	length      []string
	body        []byte
}

// errorPages holds one page per status the balancer itself answers with.
type errorPages map[int]*errorPage

// pageCodes are the statuses the balancer can answer on its own.
var pageCodes = []int{
	http.StatusNotFound, http.StatusRequestEntityTooLarge, 499, http.StatusInternalServerError,
	http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout,
}

var pageText = map[int]string{
	http.StatusNotFound:              "no site is configured for this host",
	http.StatusRequestEntityTooLarge: "the request body is too large",
	499:                              "the client closed the request",
	http.StatusInternalServerError:   "internal error",
	http.StatusBadGateway:            "the backend failed to answer",
	http.StatusServiceUnavailable:    "no backend is available, try again shortly",
	http.StatusGatewayTimeout:        "the backend did not answer in time",
}

// loadErrorPages builds the plain built-in pages, replaced by NNN.html
// from dir where present. It reads dir once, at start.
func loadErrorPages(dir string) (errorPages, error) {
	pages := make(errorPages, len(pageCodes))
	for _, code := range pageCodes {
		body := []byte(strconv.Itoa(code) + " " + http.StatusText(code) + ": " + pageText[code] + "\n")
		ctype := "text/plain; charset=utf-8"
		if dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(code)+".html"))
			switch {
			case err == nil:
				body, ctype = b, "text/html; charset=utf-8"
			case !errors.Is(err, fs.ErrNotExist):
				return nil, fmt.Errorf("read error page: %w", err)
			}
		}
		pages[code] = &errorPage{contentType: []string{ctype}, length: []string{strconv.Itoa(len(body))}, body: body}
	}
	if dir != "" {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("error pages: %w", err)
		}
	}
	return pages, nil
}

// write sends the page for code; retryAfter, when set, goes in Retry-After.
func (p errorPages) write(w http.ResponseWriter, code int, retryAfter []string) {
	page := p[code]
	if page == nil {
		page = p[http.StatusInternalServerError]
	}
	h := w.Header()
	h["Content-Type"] = page.contentType
	h["Content-Length"] = page.length
	h["X-Content-Type-Options"] = nosniff
	h["Cache-Control"] = noStore
	if retryAfter != nil {
		h["Retry-After"] = retryAfter
	}
	w.WriteHeader(code)
	_, _ = w.Write(page.body)
}

var (
	nosniff = []string{"nosniff"}
	noStore = []string{"no-store"}
)
