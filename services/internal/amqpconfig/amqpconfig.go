// Package amqpconfig declares the settings of a connection to RabbitMQ,
// which the daemon, "daemon dead" and the caller read from the same
// environment variables (AMQP_URL, AMQP_ADDRESSES and the TLS files), and
// checks them, once for all three.
package amqpconfig

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/broker"
)

// Settings are the connection settings, with envconfig tags. A command
// embeds Settings (anonymously) in its configuration struct, so that
// envconfig reads them under their own names and envhelp lists them where
// the struct embeds them: first, in each command of fpmq.
type Settings struct {
	URL       string `envconfig:"AMQP_URL" required:"true" desc:"RabbitMQ URL, amqp://USER:PASSWORD@HOST:5672/VHOST or amqps://... (required; percent-encode special characters); with compose, the vhost is fpmq and the user RABBITMQ_DAEMON_USER for the daemon, RABBITMQ_OPERATOR_USER for daemon dead, RABBITMQ_CALLER_USER for the caller"`
	Addresses string `envconfig:"AMQP_ADDRESSES" desc:"a RabbitMQ cluster's nodes, HOST:PORT,HOST:PORT,... (empty: AMQP_URL's host alone): each replaces AMQP_URL's host and port in turn, keeping its user, password, vhost and TLS; fpmq connects to the first that answers and, when that one fails, reconnects to another, where the caller publishes its unconfirmed jobs again; see \"A RabbitMQ cluster\" in the daemon's README"`
	Username  string `envconfig:"AMQP_USERNAME" desc:"the user, in place of AMQP_URL's (optional): with AMQP_PASSWORD, for credentials kept apart from the URL, such as a Kubernetes Secret's, which need no percent-encoding"`
	Password  string `envconfig:"AMQP_PASSWORD" desc:"the password, in place of AMQP_URL's (optional; see AMQP_USERNAME)"`
	CAFile    string `envconfig:"AMQP_CA_FILE" desc:"PEM file of the CA certificates that verify RabbitMQ's certificate over amqps:// (empty: the system's CA bundle)"`
	CertFile  string `envconfig:"AMQP_CERT_FILE" desc:"PEM client certificate to present over amqps://, with AMQP_KEY_FILE (optional)"`
	KeyFile   string `envconfig:"AMQP_KEY_FILE" desc:"PEM private key of AMQP_CERT_FILE"`
}

// wantURL is the form of AMQP_URL, for errors.
const wantURL = "want amqp://USER:PASSWORD@HOST:PORT/VHOST or amqps://..."

// Check checks s and returns what to dial: nodes, the broker URLs of
// AMQP_URL and AMQP_ADDRESSES for broker.NewCluster, and the TLS
// configuration of the TLS files (nil without any: the system's roots).
//
// passwordVar, if not empty, names where the command's user gets its
// password (with compose, RABBITMQ_OPERATOR_PASSWORD in .env): Check then
// refuses an AMQP_URL without a password and says to set it there. With an
// empty passwordVar, RabbitMQ is left to refuse one at login.
//
// Every error starts with the variable at fault and never shows a
// password.
func (s Settings) Check(passwordVar string) (nodes []string, tlsConfig *tls.Config, err error) {
	if s.URL == "" {
		return nil, nil, errors.New("AMQP_URL is empty")
	}
	u, err := parseURL(s.URL)
	if err != nil {
		return nil, nil, fmt.Errorf("AMQP_URL %s is not an AMQP URL: %w (%s)", broker.Redact(s.URL), err, wantURL)
	}
	raw := s.withCredentials(u)
	if raw == "" {
		raw = s.URL
	}
	if pw, _ := u.User.Password(); pw == "" && passwordVar != "" {
		// RabbitMQ refuses empty passwords; say so before it does.
		return nil, nil, fmt.Errorf("AMQP_URL: no password (with compose: set %s in .env, then restart rabbitmq)", passwordVar)
	}
	if nodes, err = broker.ParseAddresses(raw, s.Addresses); err != nil {
		return nil, nil, fmt.Errorf("AMQP_ADDRESSES: %w", err)
	}
	// Its errors name AMQP_CA_FILE, AMQP_CERT_FILE or AMQP_KEY_FILE.
	tlsConfig, err = broker.TLSConfigFor(raw, broker.TLSFiles{CAFile: s.CAFile, CertFile: s.CertFile, KeyFile: s.KeyFile})
	if err != nil {
		return nil, nil, err
	}
	return nodes, tlsConfig, nil
}

// withCredentials sets AMQP_USERNAME and AMQP_PASSWORD, those set, as
// u's user and password, and returns u as a URL, in which they are
// percent-encoded; "" when neither is set.
func (s Settings) withCredentials(u *url.URL) string {
	if s.Username == "" && s.Password == "" {
		return ""
	}
	user, pw := u.User.Username(), ""
	if p, ok := u.User.Password(); ok {
		pw = p
	}
	if s.Username != "" {
		user = s.Username
	}
	if s.Password != "" {
		pw = s.Password
	}
	u.User = url.UserPassword(user, pw)
	return u.String()
}

// parseURL parses raw as the AMQP client will when it dials, and as
// broker.ParseAddresses does: an amqp:// or amqps:// URL with a host and,
// if any, a port that is a number. Its errors never quote raw.
func parseURL(raw string) (*url.URL, error) {
	if _, err := amqp.ParseURI(raw); err != nil {
		// A url.Error quotes the whole URL, password included.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, err
	}
	u, _ := url.Parse(raw) // as ParseURI did, without an error
	if u.Host == "" {
		// ParseURI takes a missing host for localhost; the node list
		// of AMQP_ADDRESSES replaces a host that must be there.
		return nil, errors.New("no host")
	}
	return u, nil
}
