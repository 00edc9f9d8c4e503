package testutil

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCAIssuesCertificatesItVerifies(t *testing.T) {
	ca := NewCA(t)
	server := ca.Server("localhost", "127.0.0.1")
	client := ca.Client("fpmq-client")
	for _, tc := range []struct {
		name  string
		cert  *Cert
		opts  x509.VerifyOptions
		usage x509.ExtKeyUsage
	}{
		{"server by name", server, x509.VerifyOptions{DNSName: "localhost"}, x509.ExtKeyUsageServerAuth},
		{"server by address", server, x509.VerifyOptions{DNSName: "127.0.0.1"}, x509.ExtKeyUsageServerAuth},
		{"client", client, x509.VerifyOptions{KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, x509.ExtKeyUsageClientAuth},
	} {
		tc.opts.Roots = ca.Pool()
		if _, err := tc.cert.Cert.Verify(tc.opts); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if u := tc.cert.Cert.ExtKeyUsage; len(u) != 1 || u[0] != tc.usage {
			t.Errorf("%s: extended key usage %v, want %v alone", tc.name, u, tc.usage)
		}
	}
	if client.Cert.Subject.CommonName != "fpmq-client" {
		t.Errorf("client common name %q, want fpmq-client", client.Cert.Subject.CommonName)
	}

	// Another CA does not verify what this one issued.
	var unknown x509.UnknownAuthorityError
	if _, err := server.Cert.Verify(x509.VerifyOptions{Roots: NewCA(t).Pool(), DNSName: "localhost"}); !errors.As(err, &unknown) {
		t.Errorf("another CA's roots: %v, want an unknown authority", err)
	}
}

func TestCertFiles(t *testing.T) {
	ca := NewCA(t)
	client := ca.Client("fpmq-client")
	caFile, certFile, keyFile := ca.File(), client.File(), client.KeyFile()
	for path, want := range map[string]string{caFile: "ca.pem", certFile: "fpmq-client.pem", keyFile: "fpmq-client-key.pem"} {
		if filepath.Base(path) != want {
			t.Errorf("file %s, want it named %s", path, want)
		}
	}
	data, err := os.ReadFile(caFile)
	if err != nil || !bytes.Equal(data, ca.PEM()) {
		t.Errorf("CA file holds %q (%v), want the CA's certificate", data, err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !pair.Leaf.Equal(client.Cert) || !pair.Leaf.Equal(client.TLS().Leaf) {
		t.Error("the files hold another certificate than the client's")
	}
}
