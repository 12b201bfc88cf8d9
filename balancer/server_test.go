package balancer

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// writeCert writes a self-signed certificate for names and returns the
// file pair.
func writeCert(t *testing.T, names ...string) CertFiles {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cf := CertFiles{Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
	if err := os.WriteFile(cf.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cf.Key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cf
}

func TestTLSPicksCertificateBySNI(t *testing.T) {
	a := writeCert(t, "a.example.com")
	wild := writeCert(t, "*.b.example.com")
	fx := newFixture(t, func(c *Config) { c.TLSCerts = []CertFiles{a, wild}; c.Listen = "" })
	be := newBackend(t, "secure", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get("X-Forwarded-Proto"))
	})
	fx.deploy(t, web, events.Spec{Hosts: []string{"x.b.example.com"}})
	fx.announce(web, "n1", be.addr())
	if err := fx.b.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go fx.b.serveOnly(ctx)
	addr := fx.b.Addr("https").String()

	for sni, want := range map[string]string{"a.example.com": "a.example.com", "x.b.example.com": "*.b.example.com", "other.example.com": "a.example.com"} {
		conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("%s: %v", sni, err)
		}
		got := conn.ConnectionState().PeerCertificates[0].DNSNames[0]
		conn.Close()
		if got != want {
			t.Errorf("SNI %s got the certificate for %s, want %s", sni, got, want)
		}
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{ServerName: "x.b.example.com", InsecureSkipVerify: true}}}
	defer client.CloseIdleConnections()
	res, body := get(t, client, "https://"+addr, "x.b.example.com", "/")
	if res.StatusCode != 200 || body != "https" {
		t.Fatalf("over TLS: %d %q", res.StatusCode, body)
	}
}

// serveOnly serves the bound listeners without following streams (for
// fixtures, which set the table themselves).
func (b *Balancer) serveOnly(ctx context.Context) {
	for _, l := range b.servers {
		go func() {
			if l.srv.TLSConfig != nil {
				_ = l.srv.ServeTLS(l.ln, "", "")
			} else {
				_ = l.srv.Serve(l.ln)
			}
		}()
	}
	<-ctx.Done()
}

func TestMetricsHealthAndDebugTable(t *testing.T) {
	fx := newFixture(t, nil)
	be := newBackend(t, "m", nil)
	fx.deploy(t, web, events.Spec{Hosts: []string{"web.localhost"}})
	fx.announce(web, "n1", be.addr())
	fx.score(t, web, be.addr(), 42)
	for range 3 {
		get(t, fx.proxy.Client(), fx.proxy.URL, "web.localhost", "/")
	}
	get(t, fx.proxy.Client(), fx.proxy.URL, "nope.localhost", "/")

	admin := fx.b.AdminHandler()
	call := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		admin.ServeHTTP(rec, must(http.NewRequest(http.MethodGet, path, nil)))
		return rec.Code, rec.Body.String()
	}
	code, metrics := call("/metrics")
	for _, want := range []string{
		`hoist_balancer_requests_total{scope="acme.prod.web",backend="` + be.addr() + `",code="200"} 3`,
		`hoist_balancer_requests_total{scope="",backend="",code="404"} 1`,
		`hoist_balancer_backend_weight{scope="acme.prod.web",backend="` + be.addr() + `"} 42`,
		`hoist_balancer_backend_in_flight{scope="acme.prod.web",backend="` + be.addr() + `"} 0`,
		`hoist_balancer_request_duration_seconds_count{scope="acme.prod.web"} 3`,
		`hoist_balancer_request_duration_seconds_bucket{scope="acme.prod.web",le="+Inf"} 3`,
		"# TYPE hoist_balancer_request_duration_seconds histogram",
	} {
		if code != 200 || !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}
	// The fixture never follows the streams, so it never becomes ready.
	if code, _ := call("/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("healthz before catch-up: %d", code)
	}
	code, body := call("/debug/table")
	var v TableView
	if err := json.Unmarshal([]byte(body), &v); code != 200 || err != nil {
		t.Fatalf("debug table: %d %v\n%s", code, err, body)
	}
	if len(v.Scopes) != 1 || v.Scopes[0].Backends[0].Weight != 42 || v.Digest != fx.b.Table().Digest() {
		t.Fatalf("debug table: %+v", v)
	}
}

func TestGracefulShutdownDrainsInFlight(t *testing.T) {
	srv := natstest.Start(t)
	pub := &publisher{t: t, st: srv.Store(t)}
	entered, release := make(chan struct{}), make(chan struct{})
	slow := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-release // in flight while the balancer closes
		_, _ = io.WriteString(w, "done")
	})
	pub.deploy(web, events.Spec{Hosts: []string{"web.localhost"}})
	pub.announce(web, "n1", slow.addr())

	b, err := New(testConfig(), srv.Store(t), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	runErr := make(chan error, 1)
	go func() { runErr <- b.Run(ctx) }()
	if err := b.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+b.Addr("http").String()+"/", nil)
		req.Host = "web.localhost"
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- err.Error()
			return
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		got <- string(body)
	}()
	<-entered
	cancel()
	// Once the balancer has stopped accepting, let the request finish.
	natstest.Eventually(t, 10*time.Second, func() error {
		b.mu.Lock()
		defer b.mu.Unlock()
		if !b.closed {
			return fmt.Errorf("not closing yet")
		}
		return nil
	})
	close(release)
	if body := <-got; body != "done" {
		t.Fatalf("in-flight request during shutdown: %q", body)
	}
	if err := <-runErr; err != nil {
		t.Fatalf("run: %v", err)
	}
	if _, err := http.Get("http://" + b.Addr("http").String()); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return v
}
