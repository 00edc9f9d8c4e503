package main

import (
	"strings"
	"testing"
)

func TestParseDeployment(t *testing.T) {
	cfg := `{"services": {
		"rabbitmq": {"environment": {"RABBITMQ_ADMIN_PASSWORD": "x", "RABBITMQ_VHOST": "fpmq", "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "+sbwt none"},
			"logging": {"driver": "json-file", "options": {"max-size": "10m"}}},
		"php-fpm": {"environment": {"FPM_MAX_CHILDREN": "6", "WORKER_SLEEP": "1"}},
		"daemon": {"environment": {"AMQP_URL": "amqp://daemon:x@rabbitmq:5672/fpmq", "ADMIN_TOKEN": "", "CONCURRENCY": "5", "FASTCGI_KEEPALIVE": "true", "PPROF": null},
			"logging": {"driver": "local"}}
	}}`
	d, err := parseDeployment([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if d.concurrency != 5 || d.children != 6 {
		t.Errorf("concurrency %d, children %d; want 5 and 6", d.concurrency, d.children)
	}
	if len(d.rabbitmqEnv) != 1 || d.rabbitmqEnv["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] != "+sbwt none" {
		t.Errorf("rabbitmq env %v: want the Erlang flags and no account", d.rabbitmqEnv)
	}
	if _, ok := d.daemonEnv["AMQP_URL"]; ok || d.daemonEnv["FASTCGI_KEEPALIVE"] != "true" || len(d.daemonEnv) != 2 {
		t.Errorf("daemon env %v: want CONCURRENCY and FASTCGI_KEEPALIVE only", d.daemonEnv)
	}
	if lc := d.logging["rabbitmq"]; lc.Type != "json-file" || lc.Config["max-size"] != "10m" {
		t.Errorf("rabbitmq logging %+v", lc)
	}
	if _, ok := d.logging["php-fpm"]; ok {
		t.Error("php-fpm has no logging section, yet a log config")
	}
	if text := d.describe(); !strings.Contains(text, "FASTCGI_KEEPALIVE=true") || !strings.Contains(text, "php-fpm: FPM_MAX_CHILDREN=6 WORKER_SLEEP=1, the engine's default log driver") {
		t.Errorf("describe = %q", text)
	}
}

func TestParseDeploymentRejects(t *testing.T) {
	for _, cfg := range []string{
		`not json`,
		`{"services": {"rabbitmq": {}, "php-fpm": {"environment": {"FPM_MAX_CHILDREN": "6"}}}}`,
		`{"services": {"rabbitmq": {}, "php-fpm": {"environment": {"FPM_MAX_CHILDREN": "6"}}, "daemon": {"environment": {"CONCURRENCY": "0"}}}}`,
		`{"services": {"rabbitmq": {}, "php-fpm": {"environment": {}}, "daemon": {"environment": {"CONCURRENCY": "5"}}}}`,
	} {
		if _, err := parseDeployment([]byte(cfg)); err == nil {
			t.Errorf("parseDeployment(%s) did not fail", cfg)
		}
	}
}

func TestOverride(t *testing.T) {
	d := deployment{rabbitmqEnv: map[string]string{}, phpEnv: map[string]string{"FPM_MAX_CHILDREN": "6"}, daemonEnv: map[string]string{"CONCURRENCY": "5"}}
	if err := d.override([]string{"rabbitmq:RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=", "daemon:CONCURRENCY=10", "php-fpm:FPM_MAX_CHILDREN=11"}); err != nil {
		t.Fatal(err)
	}
	if v, ok := d.rabbitmqEnv["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]; !ok || v != "" || d.concurrency != 10 || d.children != 11 {
		t.Errorf("after override: %+v", d)
	}
	if !strings.Contains(d.describe(), "NOT THE DEFAULTS: -set rabbitmq:RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS= -set daemon:CONCURRENCY=10") {
		t.Errorf("describe does not say what was overridden: %s", d.describe())
	}
	for _, bad := range []string{"daemon", "daemon:=1", "caller:X=1", "CONCURRENCY=5"} {
		if _, _, _, err := parseSet(bad); err == nil {
			t.Errorf("parseSet(%q) did not fail", bad)
		}
	}
}
