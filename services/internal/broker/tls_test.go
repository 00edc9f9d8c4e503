package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fpmq/fpmq/services/internal/testutil"
)

// writeFile writes data to a new file named name in dir and returns its path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTLSFilesConfig(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t)
	server := ca.Server("rabbitmq")
	client := ca.Client("fpmq-client")
	caFile, certFile, keyFile := ca.File(), client.File(), client.KeyFile()

	t.Run("no files", func(t *testing.T) {
		c, err := TLSFiles{}.Config()
		if c != nil || err != nil {
			t.Errorf("Config() = %v, %v; want nil, nil (the library's default)", c, err)
		}
	})

	t.Run("CA file", func(t *testing.T) {
		c, err := TLSFiles{CAFile: caFile}.Config()
		if err != nil {
			t.Fatal(err)
		}
		if c.MinVersion < tls.VersionTLS12 {
			t.Errorf("MinVersion %x, want TLS 1.2 or later", c.MinVersion)
		}
		if len(c.Certificates) != 0 {
			t.Errorf("%d client certificates, want none", len(c.Certificates))
		}
		if c.RootCAs == nil {
			t.Fatal("RootCAs is nil: the system's roots instead of the CA file")
		}
		if _, err := server.Cert.Verify(x509.VerifyOptions{Roots: c.RootCAs, DNSName: "rabbitmq"}); err != nil {
			t.Errorf("the CA file's roots do not verify the server: %v", err)
		}
	})

	t.Run("client certificate", func(t *testing.T) {
		c, err := TLSFiles{CertFile: certFile, KeyFile: keyFile}.Config()
		if err != nil {
			t.Fatal(err)
		}
		if c.RootCAs != nil {
			t.Error("RootCAs set without a CA file; want the system's roots")
		}
		if len(c.Certificates) != 1 || !c.Certificates[0].Leaf.Equal(client.Cert) {
			t.Errorf("client certificates %v, want the one of %s", c.Certificates, certFile)
		}
	})

	t.Run("certificate and key in one file", func(t *testing.T) {
		both := writeFile(t, dir, "both.pem", append(client.PEM(), client.KeyPEM()...))
		if _, err := (TLSFiles{CertFile: both, KeyFile: both}).Config(); err != nil {
			t.Error(err)
		}
	})
}

func TestTLSFilesConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t)
	client := ca.Client("fpmq-client")
	caFile, certFile, keyFile := ca.File(), client.File(), client.KeyFile()
	otherKey := ca.Client("someone else").KeyFile()
	garbage := writeFile(t, dir, "garbage.pem", []byte("not a certificate\n"))
	badDER := writeFile(t, dir, "bad-der.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}))
	missing := filepath.Join(dir, "missing.pem")

	tests := []struct {
		name  string
		files TLSFiles
		field string
		want  []string // in the message
	}{
		{"unreadable CA file", TLSFiles{CAFile: missing}, FieldCAFile, []string{"CA file " + missing, "no such file"}},
		{"CA file is a directory", TLSFiles{CAFile: dir}, FieldCAFile, []string{"CA file " + dir, "is a directory"}},
		{"garbage CA file", TLSFiles{CAFile: garbage}, FieldCAFile, []string{"CA file " + garbage, "no PEM certificate"}},
		{"key as CA file", TLSFiles{CAFile: keyFile}, FieldCAFile, []string{"no PEM certificate"}},
		{"unparsable CA certificate", TLSFiles{CAFile: badDER}, FieldCAFile, []string{"CA file " + badDER, "certificate 1: x509:"}},
		{"certificate without key", TLSFiles{CAFile: caFile, CertFile: certFile}, FieldKeyFile, []string{"client key file: missing", certFile}},
		{"key without certificate", TLSFiles{KeyFile: keyFile}, FieldCertFile, []string{"client certificate file: missing", keyFile}},
		{"unreadable certificate", TLSFiles{CertFile: missing, KeyFile: keyFile}, FieldCertFile, []string{"client certificate file " + missing, "no such file"}},
		{"garbage certificate", TLSFiles{CertFile: garbage, KeyFile: keyFile}, FieldCertFile, []string{"client certificate file " + garbage, "no PEM certificate"}},
		{"unreadable key", TLSFiles{CertFile: certFile, KeyFile: missing}, FieldKeyFile, []string{"client key file " + missing, "no such file"}},
		{"garbage key", TLSFiles{CertFile: certFile, KeyFile: garbage}, FieldKeyFile, []string{"client key file " + garbage}},
		{"key of another certificate", TLSFiles{CertFile: certFile, KeyFile: otherKey}, FieldKeyFile, []string{"client key file " + otherKey, "does not go with the certificate " + certFile, "does not match"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.files.Config()
			if err == nil {
				t.Fatalf("Config() = %v, want an error", c)
			}
			var fe *TLSFileError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *TLSFileError", err, err)
			}
			if fe.Field != tc.field {
				t.Errorf("error %q blames %s, want %s", err, fe.Field, tc.field)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}

	// The cause stays inspectable.
	_, err := TLSFiles{CAFile: missing}.Config()
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not wrap fs.ErrNotExist", err)
	}
}

// handshake is what the TLS server saw of one client.
type handshake struct {
	err        error
	serverName string // as the client sent it (SNI)
	peer       string // common name of the client certificate, if any
}

// tlsServer accepts TLS connections on loopback with a certificate for
// "localhost" signed by ca, completes the handshake, reports it and hangs
// up: it speaks no AMQP, so Dial fails after the handshake. With clientCAs,
// it requires a client certificate they signed.
func tlsServer(t *testing.T, ca *testutil.CA, clientCAs *x509.CertPool) (addr string, handshakes <-chan handshake) {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{ca.Server("localhost").TLS()}}
	if clientCAs != nil {
		cfg.ClientCAs = clientCAs
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := make(chan handshake, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			tc.SetDeadline(time.Now().Add(5 * time.Second))
			h := handshake{err: tc.Handshake()}
			st := tc.ConnectionState()
			h.serverName = st.ServerName
			if len(st.PeerCertificates) > 0 {
				h.peer = st.PeerCertificates[0].Subject.CommonName
			}
			c.Close()
			hs <- h
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	// By name, so that the client must send and verify one.
	return net.JoinHostPort("localhost", port), hs
}

// dialTLS dials addr over amqps:// with cfg and returns what the server saw
// and Dial's error.
func dialTLS(t *testing.T, addr string, hs <-chan handshake, cfg *tls.Config) (handshake, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := Dial(ctx, "amqps://user:secret@"+addr+"/", cfg)
	if err == nil {
		conn.Close()
		t.Fatal("Dial succeeded against a server that speaks no AMQP")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("Dial error shows the password: %v", err)
	}
	select {
	case h := <-hs:
		return h, err
	case <-ctx.Done():
		t.Fatalf("the server saw no handshake; Dial: %v", err)
		return handshake{}, nil
	}
}

func TestDialTLS(t *testing.T) {
	ca := testutil.NewCA(t)
	client := ca.Client("fpmq-client")
	files := TLSFiles{CAFile: ca.File(), CertFile: client.File(), KeyFile: client.KeyFile()}
	clientCAs := ca.Pool()

	t.Run("right CA", func(t *testing.T) {
		addr, hs := tlsServer(t, ca, nil)
		cfg, err := TLSFiles{CAFile: files.CAFile}.Config()
		if err != nil {
			t.Fatal(err)
		}
		h, dialErr := dialTLS(t, addr, hs, cfg)
		if h.err != nil {
			t.Fatalf("server handshake: %v (Dial: %v)", h.err, dialErr)
		}
		if h.serverName != "localhost" {
			t.Errorf("client sent server name %q, want the URL's host, localhost", h.serverName)
		}
		if cfg.ServerName != "" {
			t.Errorf("Dial set ServerName %q in the caller's config", cfg.ServerName)
		}
		var verr *tls.CertificateVerificationError
		if errors.As(dialErr, &verr) {
			t.Errorf("Dial failed on the certificate: %v", dialErr)
		}
	})

	t.Run("client certificate", func(t *testing.T) {
		addr, hs := tlsServer(t, ca, clientCAs)
		cfg, err := files.Config()
		if err != nil {
			t.Fatal(err)
		}
		h, dialErr := dialTLS(t, addr, hs, cfg)
		if h.err != nil {
			t.Fatalf("server handshake: %v (Dial: %v)", h.err, dialErr)
		}
		if h.peer != "fpmq-client" {
			t.Errorf("server saw client certificate %q, want fpmq-client", h.peer)
		}
	})

	t.Run("system roots", func(t *testing.T) {
		addr, hs := tlsServer(t, ca, nil)
		h, dialErr := dialTLS(t, addr, hs, nil)
		if h.serverName != "localhost" {
			t.Errorf("client sent server name %q, want the URL's host, localhost", h.serverName)
		}
		var unknown x509.UnknownAuthorityError
		if !errors.As(dialErr, &unknown) {
			t.Errorf("Dial error %v: want the system's roots not to know the test CA", dialErr)
		}
	})

	t.Run("wrong CA", func(t *testing.T) {
		addr, hs := tlsServer(t, testutil.NewCA(t), nil)
		cfg, err := TLSFiles{CAFile: files.CAFile}.Config()
		if err != nil {
			t.Fatal(err)
		}
		h, dialErr := dialTLS(t, addr, hs, cfg)
		if h.err == nil {
			t.Error("server handshake succeeded with a client that cannot verify it")
		}
		var unknown x509.UnknownAuthorityError
		if !errors.As(dialErr, &unknown) {
			t.Errorf("Dial error %v is not an unknown authority error", dialErr)
		}
	})

	t.Run("wrong host name", func(t *testing.T) {
		addr, hs := tlsServer(t, ca, nil)
		cfg, err := TLSFiles{CAFile: files.CAFile}.Config()
		if err != nil {
			t.Fatal(err)
		}
		cfg.ServerName = "rabbitmq" // not the server certificate's name
		_, dialErr := dialTLS(t, addr, hs, cfg)
		var host x509.HostnameError
		if !errors.As(dialErr, &host) {
			t.Errorf("Dial error %v is not a host name error", dialErr)
		}
	})
}

func TestDialTLSConfigNeedsAMQPS(t *testing.T) {
	conn, err := Dial(context.Background(), "amqp://user:secret@127.0.0.1:1/", &tls.Config{MinVersion: tls.VersionTLS12})
	if err == nil {
		conn.Close()
		t.Fatal("Dial with a TLS config and an amqp:// URL succeeded")
	}
	if !strings.Contains(err.Error(), "not amqps://") || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %q: want it to say the URL is not amqps://, without the password", err)
	}
}
