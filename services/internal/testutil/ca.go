package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Cert is a certificate with its private key, for one test: its methods
// fail the test on any error. Certificates are valid from an hour before
// they were made to an hour after.
type Cert struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey

	t   testing.TB
	dir string // where File and KeyFile write: the test's temporary directory
}

// CA is a self-signed certificate authority for tests. Each CA has its own
// key and name, so one CA never verifies what another issued.
type CA struct {
	*Cert
}

// NewCA returns a new CA whose files go to a temporary directory of t.
func NewCA(t testing.TB) *CA {
	t.Helper()
	serial := randomSerial(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "fpmq test CA " + serial.Text(16)},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	return &CA{newCert(t, t.TempDir(), tmpl, nil)}
}

// Server returns a server certificate that ca signed for hosts, each a DNS
// name or an IP address; the first is also its common name.
func (ca *CA) Server(hosts ...string) *Cert {
	ca.t.Helper()
	if len(hosts) == 0 {
		ca.t.Fatal("testutil: a server certificate needs a host")
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: hosts[0]},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return newCert(ca.t, ca.dir, tmpl, ca.Cert)
}

// Client returns a client certificate that ca signed, with the common
// name name.
func (ca *CA) Client(name string) *Cert {
	ca.t.Helper()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return newCert(ca.t, ca.dir, tmpl, ca.Cert)
}

// Pool returns a pool that holds ca's certificate alone: the roots of a
// client, or the client CAs of a server.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert.Cert)
	return p
}

// newCert makes a new key and a certificate of it from tmpl, signed by
// parent, or by itself if parent is nil. It sets the serial number, unless
// tmpl has one, and the validity.
func newCert(t testing.TB, dir string, tmpl *x509.Certificate, parent *Cert) *Cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = randomSerial(t)
	}
	now := time.Now()
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(time.Hour)
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	return &Cert{Cert: cert, Key: key, t: t, dir: dir}
}

// randomSerial returns a random 128-bit serial number.
func randomSerial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	return n
}

// PEM returns the certificate in PEM form.
func (c *Cert) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
}

// KeyPEM returns the private key in PEM form (PKCS #8).
func (c *Cert) KeyPEM() []byte {
	c.t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		c.t.Fatalf("testutil: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// TLS returns the certificate and its key for a tls.Config.
func (c *Cert) TLS() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.Cert.Raw}, PrivateKey: c.Key, Leaf: c.Cert}
}

// File writes the certificate as a PEM file and returns its path:
// COMMON_NAME.pem in the test's temporary directory (ca.pem for a CA).
func (c *Cert) File() string {
	c.t.Helper()
	return c.write(".pem", c.PEM())
}

// KeyFile writes the private key as a PEM file and returns its path:
// COMMON_NAME-key.pem in the test's temporary directory.
func (c *Cert) KeyFile() string {
	c.t.Helper()
	return c.write("-key.pem", c.KeyPEM())
}

func (c *Cert) write(suffix string, data []byte) string {
	c.t.Helper()
	name := c.Cert.Subject.CommonName
	if c.Cert.IsCA {
		name = "ca"
	}
	path := filepath.Join(c.dir, name+suffix)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		c.t.Fatalf("testutil: %v", err)
	}
	return path
}
