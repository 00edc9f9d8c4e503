package amqpconfig

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/kelseyhightower/envconfig"
	amqp "github.com/rabbitmq/amqp091-go"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name        string
		s           Settings
		passwordVar string
		want        string // the start of the error; empty: none
	}{
		{"empty URL", Settings{}, "", "AMQP_URL is empty"},
		{"not AMQP", Settings{URL: "http://u:secret@rabbitmq/"}, "", "AMQP_URL http://u:xxxxx@rabbitmq/ is not an AMQP URL: AMQP scheme must be"},
		{"bad port", Settings{URL: "amqp://u:secret@rabbitmq:99999999999/"}, "", "AMQP_URL amqp://u:xxxxx@rabbitmq:99999999999/ is not an AMQP URL"},
		{"unparsable", Settings{URL: "amqp://u:secret@rabbit%zz/"}, "", "AMQP_URL (unparsable AMQP URL) is not an AMQP URL"},
		{"no host", Settings{URL: "amqp:///fpmq"}, "", "AMQP_URL amqp:///fpmq is not an AMQP URL: no host (want amqp://USER:PASSWORD@HOST:PORT/VHOST"},
		{"no password, required", Settings{URL: "amqp://operator@rabbitmq/"}, "RABBITMQ_OPERATOR_PASSWORD",
			"AMQP_URL: no password (with compose: set RABBITMQ_OPERATOR_PASSWORD in .env, then restart rabbitmq)"},
		{"no password, left to RabbitMQ", Settings{URL: "amqp://daemon@rabbitmq/"}, "", ""},
		{"address without a port", Settings{URL: "amqp://u:secret@rabbitmq/", Addresses: "rabbitmq-1:5672,rabbitmq-2"}, "",
			`AMQP_ADDRESSES: entry 2 "rabbitmq-2": want HOST:PORT`},
		{"CA file without amqps", Settings{URL: "amqp://u:secret@rabbitmq/", CAFile: "/ca.pem"}, "", "AMQP_CA_FILE is set, but AMQP_URL is not amqps://"},
		{"unreadable CA file", Settings{URL: "amqps://u:secret@rabbitmq/", CAFile: "/nonexistent/ca.pem"}, "", "AMQP_CA_FILE: CA file /nonexistent/ca.pem: no such file"},
		{"key without certificate", Settings{URL: "amqps://u:secret@rabbitmq/", KeyFile: "/nonexistent/k.pem"}, "", "AMQP_CERT_FILE: client certificate file: missing"},
		{"amqps with the system's roots", Settings{URL: "amqps://u:secret@rabbitmq/"}, "RABBITMQ_OPERATOR_PASSWORD", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nodes, tlsConfig, err := tt.s.Check(tt.passwordVar)
			if tt.want == "" {
				if err != nil || len(nodes) != 1 || nodes[0] != tt.s.URL || tlsConfig != nil {
					t.Errorf("Check = %q, %v, %v; want the URL alone, no TLS configuration, no error", nodes, tlsConfig, err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("Check: %v; want an error starting with %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

func TestCheckNodes(t *testing.T) {
	s := Settings{URL: "amqps://u:secret@rabbitmq:5671/fpmq", Addresses: "rabbitmq-1:5671, rabbitmq-2:5671"}
	nodes, _, err := s.Check("")
	want := []string{"amqps://u:secret@rabbitmq-1:5671/fpmq", "amqps://u:secret@rabbitmq-2:5671/fpmq"}
	if err != nil || !reflect.DeepEqual(nodes, want) {
		t.Errorf("Check = %q, %v; want %q", nodes, err, want)
	}
}

// A command embeds Settings: envconfig reads them under their own names.
func TestEmbedded(t *testing.T) {
	var cfg struct {
		Settings
		Queue string `envconfig:"AMQP_QUEUE" default:"commands"`
	}
	t.Setenv("AMQP_URL", "amqp://u:secret@rabbitmq/")
	t.Setenv("AMQP_ADDRESSES", "a:1")
	t.Setenv("AMQP_CA_FILE", "/ca.pem")
	t.Setenv("AMQP_CERT_FILE", "/c.pem")
	t.Setenv("AMQP_KEY_FILE", "/k.pem")
	if err := envconfig.Process("", &cfg); err != nil {
		t.Fatal(err)
	}
	want := Settings{URL: "amqp://u:secret@rabbitmq/", Addresses: "a:1", CAFile: "/ca.pem", CertFile: "/c.pem", KeyFile: "/k.pem"}
	if cfg.Settings != want || cfg.Queue != "commands" {
		t.Errorf("read %+v, want %+v and the queue's default", cfg, want)
	}

	os.Unsetenv("AMQP_URL")
	if err := envconfig.Process("", &cfg); err == nil || !strings.Contains(err.Error(), "AMQP_URL") {
		t.Errorf("without AMQP_URL: %v, want an error naming it (required)", err)
	}
}

// AMQP_USERNAME and AMQP_PASSWORD replace AMQP_URL's, percent-encoded in
// every node's URL, and count as its password.
func TestCheckCredentials(t *testing.T) {
	const pw = "p@ss:w/rd%#?&= x"
	tests := []struct {
		name     string
		s        Settings
		wantUser string
	}{
		{"both", Settings{URL: "amqp://rabbitmq.ns.svc:5672/fpmq", Username: "daemon", Password: pw}, "daemon"},
		{"the password alone", Settings{URL: "amqp://daemon:old@rabbitmq.ns.svc:5672/fpmq", Password: pw}, "daemon"},
		{"through the addresses", Settings{URL: "amqp://rabbitmq:5672/fpmq", Addresses: "a:5672,b:5672", Username: "daemon", Password: pw}, "daemon"},
	}
	for _, tt := range tests {
		nodes, _, err := tt.s.Check("RABBITMQ_DAEMON_PASSWORD")
		if err != nil || len(nodes) == 0 {
			t.Fatalf("%s: Check = %q, %v", tt.name, nodes, err)
		}
		for _, n := range nodes {
			u, err := amqp.ParseURI(n)
			if err != nil || u.Username != tt.wantUser || u.Password != pw || u.Vhost != "fpmq" {
				t.Errorf("%s: node %q dials as %q/%q on vhost %q (%v); want %q/%q on fpmq", tt.name, n, u.Username, u.Password, u.Vhost, err, tt.wantUser, pw)
			}
		}
	}
}
