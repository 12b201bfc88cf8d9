package balancer

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"sync"
	"testing"

	"github.com/hoist-dev/hoist/internal/tlstest"
)

// TestCertificateBySNI shakes hands over TCP with the balancer's TLS
// configuration and checks which certificate each ServerName gets. The
// wildcard is given before the exact certificate for one of its hosts, and
// the exact one must still win.
func TestCertificateBySNI(t *testing.T) {
	ca := tlstest.NewCA(t, "sni")
	fallback := ca.Server(t, "fallback", "fallback.example.org")
	wild := ca.Server(t, "wild", "*.example.com")
	exact := ca.Server(t, "exact", "web.example.com", "api.example.net")
	cs, err := loadCerts([]CertFiles{
		{Cert: fallback.CertFile, Key: fallback.KeyFile},
		{Cert: wild.CertFile, Key: wild.KeyFile},
		{Cert: exact.CertFile, Key: exact.KeyFile},
	}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, cs.config())
	roots := x509.NewCertPool()
	pem, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	roots.AppendCertsFromPEM(pem)

	for _, tc := range []struct {
		name, sni string
		want      string // the served certificate's first DNS name
		verify    bool   // the client verifies it for sni
	}{
		{"exact", "web.example.com", "web.example.com", true},
		{"exact second name", "api.example.net", "web.example.com", true},
		{"exact, other case", "WEB.Example.COM", "web.example.com", true},
		{"wildcard", "shop.example.com", "*.example.com", true},
		{"wildcard covers one label only", "a.shop.example.com", "fallback.example.org", false},
		{"wildcard not the bare domain", "example.com", "fallback.example.org", false},
		{"fallback name", "fallback.example.org", "fallback.example.org", true},
		{"unknown name", "unknown.test", "fallback.example.org", false},
		{"no SNI", "", "fallback.example.org", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &tls.Config{ServerName: tc.sni, RootCAs: roots, InsecureSkipVerify: !tc.verify}
			if tc.sni == "" {
				// With an empty ServerName crypto/tls sends no SNI; it
				// would take one from the address only in tls.Dial.
				cfg.InsecureSkipVerify = true
			}
			raw, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			conn := tls.Client(raw, cfg)
			defer conn.Close()
			if err := conn.HandshakeContext(t.Context()); err != nil {
				t.Fatalf("handshake for SNI %q: %v", tc.sni, err)
			}
			got := conn.ConnectionState().PeerCertificates[0].DNSNames[0]
			if got != tc.want {
				t.Errorf("SNI %q got the certificate for %s, want %s", tc.sni, got, tc.want)
			}
		})
	}
}

// serveTLS accepts on a random port and completes each handshake, until
// the test ends.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			} else if err != nil {
				t.Errorf("accept: %v", err)
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.(*tls.Conn).HandshakeContext(t.Context())
				_, _ = c.Read(make([]byte, 1)) // until the client hangs up
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}
