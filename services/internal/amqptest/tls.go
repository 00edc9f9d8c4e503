package amqptest

import (
	"crypto/tls"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/fpmq/fpmq/services/internal/testutil"
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
// file of the CA that signed the certificate it presents, to trust
// (AMQP_CA_FILE). It stops when the test ends.
func RequireClientCert(t testing.TB, how CertRefusal) (addr, caFile string) {
	t.Helper()
	ca := testutil.NewCA(t)
	cfg := &tls.Config{
		Certificates: []tls.Certificate{ca.Server("localhost", "127.0.0.1").TLS()},
		MinVersion:   tls.VersionTLS13,
	}
	if how == Alert {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = ca.Pool()
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
	return net.JoinHostPort("localhost", port), ca.File()
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
