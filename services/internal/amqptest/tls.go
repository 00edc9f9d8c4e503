package amqptest

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
	"sync"
	"testing"
	"time"
)

// CertRefusal is how a TLS listener that requires a client certificate
// turns away a client that presents none.
type CertRefusal int

const (
	// Reset completes the server's side of a TLS 1.3 handshake, then drops
	// the connection with a TCP reset: what a client of RabbitMQ with
	// ssl_options.verify = verify_peer and fail_if_no_peer_cert = true
	// usually sees, as the reset destroys the alert sent before it.
	Reset CertRefusal = iota
	// Alert refuses the handshake with TLS's own alert (certificate
	// required, or bad certificate for one it cannot verify), as Go's
	// crypto/tls does.
	Alert
)

// RequireClientCert listens on loopback as a broker that requires a
// client certificate and speaks no AMQP: every client ends as how says.
// It returns the address to dial, "localhost:PORT", and the path of a PEM
// file of the self-signed certificate it presents, to trust as the CA
// (AMQP_CA_FILE). It stops when the test ends.
func RequireClientCert(t testing.TB, how CertRefusal) (addr, caFile string) {
	t.Helper()
	cert, certPEM := selfSigned(t)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatalf("amqptest: %v", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	if how == Alert {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = x509.NewCertPool()
		cfg.ClientCAs.AddCert(cert.Leaf)
	} else {
		// Asked for, not required, so that the handshake completes.
		cfg.ClientAuth = tls.RequestClientCert
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("amqptest: %v", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				refuse(nc, cfg, how)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return net.JoinHostPort("localhost", port), caFile
}

// refuse runs the server's side of one connection.
func refuse(nc net.Conn, cfg *tls.Config, how CertRefusal) {
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Server(nc, cfg)
	err := tc.Handshake()
	if how == Reset && err == nil && len(tc.ConnectionState().PeerCertificates) == 0 {
		// Wait for the client's first bytes (the AMQP protocol header):
		// closing with unread data makes the kernel send a reset anyway,
		// and SetLinger(0) makes sure of it.
		tc.Read(make([]byte, 1))
		if tcp, ok := nc.(*net.TCPConn); ok {
			tcp.SetLinger(0)
		}
	}
	nc.Close()
}

// selfSigned returns a certificate for localhost and 127.0.0.1 that signs
// itself, and its PEM form.
func selfSigned(t testing.TB) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("amqptest: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "amqptest"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("amqptest: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("amqptest: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
