package balancer

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"strings"
)

// certSet is the balancer's certificates, chosen by SNI in crypto/tls.
//
// The handshake walks Config.Certificates in the order given and serves the
// first one whose names cover the ClientHello's SNI, exactly or by a
// one-label wildcard, and that the client can use
// ((*tls.ClientHelloInfo).SupportsCertificate); with no SNI or no match it
// serves the first certificate given. On top of that, GetCertificate serves
// a certificate that names the host exactly before an earlier wildcard one,
// so a wildcard certificate can be the fallback while a later certificate
// takes over one of its hosts. Certificates are read once: renewing them
// is a restart (docs/balancer.md).
type certSet struct {
	certs []tls.Certificate
	// exact maps a lowercased DNS name without wildcard to the first
	// certificate that names it.
	exact map[string]*tls.Certificate
}

// loadCerts reads the certificate/key pairs; nil when there are none.
func loadCerts(files []CertFiles, log *slog.Logger) (*certSet, error) {
	if len(files) == 0 {
		return nil, nil
	}
	cs := &certSet{certs: make([]tls.Certificate, 0, len(files)), exact: make(map[string]*tls.Certificate)}
	for _, f := range files {
		c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("load TLS certificate %s: %w", f.Cert, err)
		}
		if c.Leaf == nil { // GODEBUG=x509keypairleaf=0 leaves it unparsed
			if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				return nil, fmt.Errorf("parse TLS certificate %s: %w", f.Cert, err)
			}
		}
		if len(c.Leaf.DNSNames) == 0 && len(c.Leaf.IPAddresses) == 0 {
			log.Warn("TLS certificate has no DNS names (subject alternative names); clients ignore its common name, so it is served only as the fallback when given first",
				"cert", f.Cert, "common_name", c.Leaf.Subject.CommonName)
		}
		cs.certs = append(cs.certs, c)
	}
	for i := range cs.certs {
		for _, n := range cs.certs[i].Leaf.DNSNames {
			n = strings.ToLower(strings.TrimSuffix(n, "."))
			if _, taken := cs.exact[n]; !taken && !strings.HasPrefix(n, "*") {
				cs.exact[n] = &cs.certs[i]
			}
		}
	}
	return cs, nil
}

// config is the listener's TLS configuration.
func (cs *certSet) config() *tls.Config {
	return &tls.Config{Certificates: cs.certs, GetCertificate: cs.exactName, MinVersion: tls.VersionTLS12}
}

// exactName is tls.Config.GetCertificate, called only for a ClientHello with
// SNI. Returning nil hands the choice to crypto/tls: wildcards and the
// fallback.
func (cs *certSet) exactName(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := cs.exact[normalizeHost(hello.ServerName)]; c != nil && hello.SupportsCertificate(c) == nil {
		return c, nil
	}
	return nil, nil
}
