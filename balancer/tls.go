package balancer

import (
	"crypto/tls"
	"fmt"
	"strings"
)

// certStore picks a certificate by SNI: an exact name, then a wildcard
// certificate for the parent domain, then the first certificate.
type certStore struct {
	byName map[string]*tls.Certificate
	first  *tls.Certificate
}

// loadCerts reads the certificate/key pairs; nil when there are none.
func loadCerts(files []CertFiles) (*certStore, error) {
	if len(files) == 0 {
		return nil, nil
	}
	cs := &certStore{byName: make(map[string]*tls.Certificate)}
	for _, f := range files {
		c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("load TLS certificate %s: %w", f.Cert, err)
		}
		cert := &c
		if cs.first == nil {
			cs.first = cert
		}
		names := cert.Leaf.DNSNames
		if len(names) == 0 && cert.Leaf.Subject.CommonName != "" {
			names = []string{cert.Leaf.Subject.CommonName}
		}
		for _, n := range names {
			n = strings.ToLower(strings.TrimSuffix(n, "."))
			if _, taken := cs.byName[n]; !taken { // the first pair given wins
				cs.byName[n] = cert
			}
		}
	}
	return cs, nil
}

// get is tls.Config.GetCertificate.
func (cs *certStore) get(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return cs.lookup(hello.ServerName), nil
}

func (cs *certStore) lookup(serverName string) *tls.Certificate {
	name := normalizeHost(serverName)
	if c := cs.byName[name]; c != nil {
		return c
	}
	if dot := strings.IndexByte(name, '.'); dot > 0 {
		if c := cs.byName["*"+name[dot:]]; c != nil {
			return c
		}
	}
	return cs.first
}
