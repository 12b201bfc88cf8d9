package balancer

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// cannedTransport answers every request at once with a small 200, so the
// benchmarks below measure the proxy's own work without a network.
type cannedTransport struct{}

func (cannedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: 200, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"text/plain"}, "Content-Length": {"2"}},
		Body:          io.NopCloser(strings.NewReader("ok")),
		ContentLength: 2, Request: req,
	}, nil
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

func overheadRequest() *http.Request {
	req := httptest.NewRequest(http.MethodGet, "http://web.localhost/", nil)
	req.RemoteAddr = "10.0.0.1:5555"
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "*/*")
	return req
}

// BenchmarkHandlerOverhead is one request through the balancer's handler
// (routing, picking, retries, metrics, forwarding headers) to a transport
// that answers at once: what hoist adds to httputil.ReverseProxy, compare
// BenchmarkHandlerOverheadBaseline.
func BenchmarkHandlerOverhead(b *testing.B) {
	bal, err := New(testConfig(), nil, testLogger())
	if err != nil {
		b.Fatal(err)
	}
	defer bal.Close()
	bal.proxy.Transport = &retryTransport{base: cannedTransport{}, b: bal}
	f, reg := newFolded(), newRegistry()
	mustApplyB(b, f, deployed(web, 1, "web.localhost"))
	f.applyReport(reportRecord(&events.BackendsReport{Node: "n1", Scope: web, Backends: []string{"10.0.0.1:80", "10.0.0.2:80"}}))
	bal.publish(buildTable(f, bal.buildOptions(), time.Now(), reg))
	h := bal.Handler()
	req := overheadRequest()
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

// BenchmarkHandlerOverheadBaseline is the same request through a bare
// httputil.ReverseProxy that sets the target and X-Forwarded-* headers.
func BenchmarkHandlerOverheadBaseline(b *testing.B) {
	h := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.Host = "http", "10.0.0.1:80", pr.In.Host
			pr.SetXForwarded()
		},
		Transport:  cannedTransport{},
		BufferPool: newBufferPool(),
	}
	req := overheadRequest()
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}
