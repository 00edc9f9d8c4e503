//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/fpmq/fpmq/integration/stack"
)

// rabbitTLSConf turns on RabbitMQ's TLS listener, next to the plain one. It
// asks clients for a certificate and verifies any they present, but lets
// those without one in, so that both kinds of client can be tested.
const rabbitTLSConf = `listeners.ssl.default = 5671
ssl_options.cacertfile = /etc/rabbitmq/tls/ca.pem
ssl_options.certfile = /etc/rabbitmq/tls/server.pem
ssl_options.keyfile = /etc/rabbitmq/tls/server-key.pem
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
`

// certsDir is where the daemon and the caller find the files of certsOnHost.
const certsDir = "/certs"

// TestTLS runs a job through RabbitMQ's TLS listener: the caller publishes
// over amqps:// trusting the test's CA, and the daemon consumes over
// amqps:// presenting a client certificate. A daemon and a caller that trust
// another CA must fail on the broker's certificate and never get further.
func TestTLS(t *testing.T) {
	ca := newTestCA(t, "fpmq test CA")
	server := ca.issue(t, "rabbitmq", x509.ExtKeyUsageServerAuth)
	client := ca.issue(t, "fpmq-daemon", x509.ExtKeyUsageClientAuth)
	other := newTestCA(t, "unrelated CA")

	var rabbitFiles []testcontainers.ContainerFile
	for path, data := range map[string][]byte{
		"/etc/rabbitmq/conf.d/20-tls.conf": []byte(rabbitTLSConf),
		"/etc/rabbitmq/tls/ca.pem":         ca.certPEM(),
		"/etc/rabbitmq/tls/server.pem":     server.certPEM(),
		"/etc/rabbitmq/tls/server-key.pem": server.keyPEM(t),
	} {
		// World-readable so that the rabbitmq user reads them; a test key.
		rabbitFiles = append(rabbitFiles, testcontainers.ContainerFile{Reader: bytes.NewReader(data), ContainerFilePath: path, FileMode: 0o644})
	}
	certs := certsOnHost(t, map[string][]byte{
		"ca.pem":         ca.certPEM(),
		"other-ca.pem":   other.certPEM(),
		"daemon.pem":     client.certPEM(),
		"daemon-key.pem": client.keyPEM(t),
	})

	// No plain daemon: the job must be run by the one that connects over TLS.
	s := newStack(t, stackOptions{noDaemon: true, rabbitFiles: rabbitFiles})

	t.Run("a job travels over TLS both ways", func(t *testing.T) {
		daemon := s.startWithCerts(t, s.Daemon, certs, map[string]string{
			"AMQP_URL":       amqpsURL(t, s.URL(daemonUser)),
			"AMQP_CA_FILE":   certsDir + "/ca.pem",
			"AMQP_CERT_FILE": certsDir + "/daemon.pem",
			"AMQP_KEY_FILE":  certsDir + "/daemon-key.pem",
			"LOG_FORMAT":     "json",
		}, stack.DaemonReady())

		caller := s.startWithCerts(t, s.Caller, certs, map[string]string{
			"AMQP_URL":     amqpsURL(t, s.URL(callerUser)),
			"AMQP_CA_FILE": certsDir + "/ca.pem",
		}, wait.ForExit().WithExitTimeout(time.Minute), "4242")
		if code, out := exitCode(t, caller), containerLogs(t, caller); code != 0 || !strings.Contains(out, " [x] Message sent: 4242") {
			t.Fatalf("caller over TLS: exit %d:\n%s", code, out)
		}
		eventually(t, settleTimeout, "job 4242 processed", func() bool { return s.processed(t)[4242] == 1 })

		// The broker's view: the daemon's connection is TLS and carries
		// the client certificate, which RabbitMQ verified.
		conns := s.connections(t)
		if got := conns[daemonUser]; !strings.Contains(got, "true") || !strings.Contains(got, "CN=fpmq-daemon") {
			t.Errorf("daemon connection (ssl, peer certificate) = %q, want TLS with CN=fpmq-daemon; all: %v\ndaemon log:\n%s", got, conns, containerLogs(t, daemon))
		}
	})

	t.Run("a daemon that trusts another CA never consumes", func(t *testing.T) {
		daemon := s.startWithCerts(t, s.Daemon, certs, map[string]string{
			"AMQP_URL":     amqpsURL(t, s.URL(daemonUser)),
			"AMQP_CA_FILE": certsDir + "/other-ca.pem",
			"LOG_FORMAT":   "json",
			"LOG_LEVEL":    "debug",
		}, // A second failed attempt: the first one was no accident.
			wait.ForLog(`"message":"reconnect failed"`).WithStartupTimeout(stack.DaemonStartTimeout))
		log := containerLogs(t, daemon)
		if !strings.Contains(log, "x509: certificate signed by unknown authority") {
			t.Errorf("daemon log shows no certificate error:\n%s", log)
		}
		if strings.Contains(log, stack.ConsumingLog) {
			t.Errorf("daemon consumes despite an unverifiable broker:\n%s", log)
		}
	})

	t.Run("a caller that trusts another CA publishes nothing", func(t *testing.T) {
		caller := s.startWithCerts(t, s.Caller, certs, map[string]string{
			"AMQP_URL":     amqpsURL(t, s.URL(callerUser)),
			"AMQP_CA_FILE": certsDir + "/other-ca.pem",
		}, wait.ForExit().WithExitTimeout(time.Minute), "4343")
		code, out := exitCode(t, caller), containerLogs(t, caller)
		if code != 1 || !strings.Contains(out, "x509: certificate signed by unknown authority") {
			t.Errorf("caller with the wrong CA: exit %d, want 1 with a certificate error:\n%s", code, out)
		}
		if strings.Contains(out, "Message sent") {
			t.Errorf("caller with the wrong CA reports a job sent:\n%s", out)
		}
	})
}

// amqpsURL returns the URL of the TLS listener of the broker that plain,
// an amqp:// URL inside the stack's network, points at.
func amqpsURL(t *testing.T, plain string) string {
	t.Helper()
	u, err := url.Parse(plain)
	if err != nil {
		t.Fatalf("parse %s: %v", plain, err)
	}
	u.Scheme = "amqps"
	u.Host = net.JoinHostPort(u.Hostname(), "5671")
	return u.String()
}

// certsOnHost writes files into a new directory on the host and returns
// it, for a read-only bind mount at certsDir, as a deployment would mount
// them: the services' root filesystem is read-only, so files cannot be
// copied in. The services run as uid 10001, hence the modes.
func certsOnHost(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		// WriteFile's mode is subject to the umask.
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// startWithCerts runs the daemon or the caller (start is s.Daemon or
// s.Caller) as compose does, with certs mounted read-only at certsDir, and
// waits as until says.
func (s *testStack) startWithCerts(t *testing.T, start func(context.Context, stack.Run) (*testcontainers.DockerContainer, error), certs string, env map[string]string, until wait.Strategy, args ...string) *testcontainers.DockerContainer {
	t.Helper()
	return s.run(t, start, stack.Run{Env: env, Args: args, Binds: []string{certs + ":" + certsDir + ":ro"}, Wait: until})
}

// connections returns, by user, whether each client connection to the
// broker uses TLS and the subject of its client certificate, as RabbitMQ
// reports them.
func (s *testStack) connections(t *testing.T) map[string]string {
	t.Helper()
	rows, err := s.Table(context.Background(), "list_connections", "user", "ssl", "peer_cert_subject")
	if err != nil {
		t.Fatal(err)
	}
	conns := map[string]string{}
	for _, r := range rows {
		conns[r[0]] = r[1] + " " + r[2]
	}
	return conns
}

// keyPair is a certificate with its key; a CA's signs others.
type keyPair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T, name string) keyPair {
	t.Helper()
	return keyPair{}.sign(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: name},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	})
}

// issue returns a certificate for name signed by ca: a server's, valid for
// the host name name, or a client's.
func (ca keyPair) issue(t *testing.T, name string, usage x509.ExtKeyUsage) keyPair {
	t.Helper()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.DNSNames = []string{name}
	}
	return ca.sign(t, tmpl)
}

// sign makes a certificate from tmpl with a new key, signed by ca, or by
// itself if ca is the zero keyPair.
func (ca keyPair) sign(t *testing.T, tmpl *x509.Certificate) keyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	parent, signer := ca.cert, ca.key
	if parent == nil {
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{cert, key}
}

func (c keyPair) certPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw})
}

func (c keyPair) keyPEM(t *testing.T) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}
