package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// "daemon dead" checks its configuration before it connects, and tells the
// operator where the password of its user comes from.
func TestDeadBadConfigurationNamesTheVariable(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"not an AMQP URL", map[string]string{"AMQP_URL": "http://operator:secret@rabbitmq/"}, "AMQP_URL http://operator:xxxxx@rabbitmq/ is not an AMQP URL"},
		{"no password", map[string]string{"AMQP_URL": "amqp://operator@rabbitmq/"},
			"AMQP_URL: no password (with compose: set RABBITMQ_OPERATOR_PASSWORD in .env, then restart rabbitmq)"},
		{"address without a port", map[string]string{"AMQP_ADDRESSES": "rabbitmq-1"}, "AMQP_ADDRESSES"},
		{"CA file without amqps", map[string]string{"AMQP_CA_FILE": "/ca.pem"}, "AMQP_CA_FILE is set, but AMQP_URL is not amqps://"},
		{"empty queue", map[string]string{"DEAD_LETTER_QUEUE": ""}, "DEAD_LETTER_QUEUE: must not be empty"},
		{"zero connect timeout", map[string]string{"CONNECT_TIMEOUT": "0s"}, "CONNECT_TIMEOUT: must be positive"},
		{"zero publish timeout", map[string]string{"PUBLISH_TIMEOUT": "0s"}, "PUBLISH_TIMEOUT: must be positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AMQP_URL", "amqp://operator:secret@127.0.0.1:1/")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), []string{"dead", "list"}, nil, &stdout, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", code, stderr.String())
			}
			if want := "daemon dead: configuration: " + tc.want; !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr %q does not say %q", stderr.String(), want)
			}
			if strings.Contains(stderr.String(), "secret") {
				t.Errorf("stderr shows the password: %s", stderr.String())
			}
		})
	}
}
