package broker

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// TLSFiles names the PEM files that secure an amqps:// connection. All are
// optional: without CAFile the system's roots verify the broker; CertFile
// and KeyFile, which go together, give a client certificate to present.
type TLSFiles struct {
	CAFile   string // CA certificates that sign the broker's certificate
	CertFile string // client certificate, possibly followed by intermediates
	KeyFile  string // private key of the client certificate
}

// The fields of TLSFiles, as a TLSFileError names them.
const (
	FieldCAFile   = "CAFile"
	FieldCertFile = "CertFile"
	FieldKeyFile  = "KeyFile"
)

// TLSFileError is a file of TLSFiles that cannot be used. Field says which
// one, so that a program can name its own setting for it.
type TLSFileError struct {
	Field string // FieldCAFile, FieldCertFile or FieldKeyFile
	Path  string // empty when the file is missing from the configuration
	Err   error
}

func (e *TLSFileError) Error() string {
	what := map[string]string{
		FieldCAFile:   "CA file",
		FieldCertFile: "client certificate file",
		FieldKeyFile:  "client key file",
	}[e.Field]
	if e.Path == "" {
		return fmt.Sprintf("%s: %v", what, e.Err)
	}
	return fmt.Sprintf("%s %s: %v", what, e.Path, e.Err)
}

func (e *TLSFileError) Unwrap() error { return e.Err }

// Config reads the files and returns the TLS configuration they describe,
// or nil if f names no file: Dial then uses the library's default for an
// amqps:// URL, the system's roots. The configuration requires TLS 1.2 or
// later. Every error is a *TLSFileError.
func (f TLSFiles) Config() (*tls.Config, error) {
	if f == (TLSFiles{}) {
		return nil, nil
	}
	switch {
	case f.CertFile != "" && f.KeyFile == "":
		return nil, &TLSFileError{FieldKeyFile, "", fmt.Errorf("missing: the client certificate %s needs its key", f.CertFile)}
	case f.KeyFile != "" && f.CertFile == "":
		return nil, &TLSFileError{FieldCertFile, "", fmt.Errorf("missing: the client key %s needs its certificate", f.KeyFile)}
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CAFile != "" {
		data, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, &TLSFileError{FieldCAFile, f.CAFile, unwrapPath(err)}
		}
		certs, err := parseCertificates(data)
		if err != nil {
			return nil, &TLSFileError{FieldCAFile, f.CAFile, err}
		}
		c.RootCAs = x509.NewCertPool()
		for _, cert := range certs {
			c.RootCAs.AddCert(cert)
		}
	}
	if f.CertFile != "" {
		certPEM, err := os.ReadFile(f.CertFile)
		if err != nil {
			return nil, &TLSFileError{FieldCertFile, f.CertFile, unwrapPath(err)}
		}
		// Checked here so that a bad certificate is not blamed on the key
		// by tls.X509KeyPair.
		if _, err := parseCertificates(certPEM); err != nil {
			return nil, &TLSFileError{FieldCertFile, f.CertFile, err}
		}
		keyPEM, err := os.ReadFile(f.KeyFile)
		if err != nil {
			return nil, &TLSFileError{FieldKeyFile, f.KeyFile, unwrapPath(err)}
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, &TLSFileError{FieldKeyFile, f.KeyFile, fmt.Errorf("does not go with the certificate %s: %w", f.CertFile, err)}
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// parseCertificates returns the certificates of the PEM data, which must
// hold at least one. Other blocks are skipped, as tls.X509KeyPair does, so
// that a file holding a certificate and its key serves as both.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate in it")
	}
	return certs, nil
}

// unwrapPath drops the path from a *fs.PathError, which the TLSFileError
// already shows.
func unwrapPath(err error) error {
	if pe := (*os.PathError)(nil); errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// TLSConfigFor reads the TLS files for rawURL, which must be an amqps://
// URL if any file is given. The caller and the daemon take the files from
// the same variables, AMQP_CA_FILE, AMQP_CERT_FILE and AMQP_KEY_FILE, and
// every error names the one at fault.
func TLSConfigFor(rawURL string, files TLSFiles) (*tls.Config, error) {
	vars := []struct{ name, field, path string }{
		{"AMQP_CA_FILE", FieldCAFile, files.CAFile},
		{"AMQP_CERT_FILE", FieldCertFile, files.CertFile},
		{"AMQP_KEY_FILE", FieldKeyFile, files.KeyFile},
	}
	var set []string
	for _, v := range vars {
		if v.path != "" {
			set = append(set, v.name)
		}
	}
	if u, err := url.Parse(rawURL); len(set) > 0 && (err != nil || u.Scheme != "amqps") {
		verb := "is"
		if len(set) > 1 {
			verb = "are"
		}
		return nil, fmt.Errorf("%s %s set, but AMQP_URL is not amqps://", strings.Join(set, " and "), verb)
	}
	c, err := files.Config()
	if fe := (*TLSFileError)(nil); errors.As(err, &fe) {
		for _, v := range vars {
			if v.field == fe.Field {
				return nil, fmt.Errorf("%s: %w", v.name, err)
			}
		}
	}
	return c, err
}
