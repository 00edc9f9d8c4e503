package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/fpmq/fpmq/services/internal/amqpconfig"
	"github.com/fpmq/fpmq/services/internal/management"
)

// minPassword is the shortest sign-in password accepted: make .env
// generates 32 hex digits.
const minPassword = 12

// minAdminToken is the daemons' own lower bound of ADMIN_TOKEN.
const minAdminToken = 16

// config is the console's whole configuration, read from the environment.
type config struct {
	amqpconfig.Settings // AMQP_URL, AMQP_ADDRESSES and the TLS files
	management.Config   // RABBITMQ_MANAGEMENT_URL

	Addr             string        `envconfig:"CONSOLE_ADDR" default:"127.0.0.1:8080" desc:"address the console listens on, HOST:PORT; the default serves the loopback interface only (compose listens on :8080 in the container and publishes it on 127.0.0.1:CONSOLE_PORT)"`
	TLSCertFile      string        `envconfig:"CONSOLE_TLS_CERT_FILE" desc:"PEM certificate (chain) to serve HTTPS with, with CONSOLE_TLS_KEY_FILE; empty: plain HTTP, for the loopback"`
	TLSKeyFile       string        `envconfig:"CONSOLE_TLS_KEY_FILE" desc:"PEM private key of CONSOLE_TLS_CERT_FILE"`
	OperatorUser     string        `envconfig:"CONSOLE_OPERATOR_USER" default:"operator" desc:"user name of the operator, who may see everything and act: pause, resume, replay, purge"`
	OperatorPassword string        `envconfig:"CONSOLE_OPERATOR_PASSWORD" desc:"the operator's password, at least 12 characters (make .env generates one); empty: no operator can sign in"`
	ViewerUser       string        `envconfig:"CONSOLE_VIEWER_USER" default:"viewer" desc:"user name of the read-only user, who may see everything and do nothing"`
	ViewerPassword   string        `envconfig:"CONSOLE_VIEWER_PASSWORD" desc:"the read-only user's password, at least 12 characters (make .env generates one); empty: no read-only user"`
	SignInBurst      int           `envconfig:"CONSOLE_SIGNIN_BURST" default:"5" desc:"failed sign-ins allowed from one client address, and for one user name, before each further try waits CONSOLE_SIGNIN_INTERVAL (answered 429 with Retry-After, the password unchecked); 0 turns the limit off"`
	SignInInterval   time.Duration `envconfig:"CONSOLE_SIGNIN_INTERVAL" default:"12s" desc:"after CONSOLE_SIGNIN_BURST failed sign-ins, one more try is allowed every this long"`
	SessionTTL       time.Duration `envconfig:"CONSOLE_SESSION_TTL" default:"12h" desc:"how long a sign-in lasts; sessions live in the console's memory, so a restart signs everyone out"`
	Daemons          []string      `envconfig:"CONSOLE_DAEMONS" desc:"the daemons' METRICS_ADDR as URLs, comma-separated: http://daemon:9090,http://daemon-reports:9090; the console reads their /admin/status and /metrics and pauses and resumes them through /admin/"`
	AdminToken       string        `envconfig:"ADMIN_TOKEN" desc:"the daemons' ADMIN_TOKEN, sent as a bearer token to their /admin/ endpoints (required with CONSOLE_DAEMONS)"`
	DaemonTimeout    time.Duration `envconfig:"CONSOLE_DAEMON_TIMEOUT" default:"2s" desc:"deadline of one request to a daemon; a daemon that does not answer in time shows as unreachable"`
	CacheTTL         time.Duration `envconfig:"CONSOLE_CACHE_TTL" default:"2s" desc:"how long the daemons' answers are reused before they are asked again, however many browsers poll"`
	RefreshInterval  time.Duration `envconfig:"CONSOLE_REFRESH" default:"3s" desc:"how often an open page asks for fresh figures"`
	HistoryStep      time.Duration `envconfig:"CONSOLE_HISTORY_STEP" default:"15s" desc:"how often the console adds a point to each route's history (the route page's charts) from the daemons' counters"`
	HistoryKeep      time.Duration `envconfig:"CONSOLE_HISTORY_KEEP" default:"6h" desc:"how long each route's history is kept (at least 1h): the longest window the route page can show"`
	HistoryFile      string        `envconfig:"CONSOLE_HISTORY_FILE" desc:"file the history is saved to after each point and read from at start, so that it outlives a restart of the console (compose keeps it in the console-data volume); empty: memory only"`
	DeadPageSize     int           `envconfig:"CONSOLE_DEAD_PAGE_SIZE" default:"50" desc:"dead letters shown per page"`
	DeadScan         int           `envconfig:"CONSOLE_DEAD_SCAN" default:"5000" desc:"with a filter or a search, how many dead letters from the head of the queue a page reads at most to find its matches (RabbitMQ has no random access: a page reads from the head); replay and purge read the whole queue"`
	JaegerURL        string        `envconfig:"CONSOLE_JAEGER_URL" desc:"Jaeger's query API, http://HOST:16686 (the tracing profile of compose.yaml sets http://jaeger:16686): the trace page shows a job's spans from there, found by message id or trace id; empty: no trace page"`
	ConnectTimeout   time.Duration `envconfig:"CONNECT_TIMEOUT" default:"10s" desc:"deadline of the connection to RabbitMQ"`
	PublishTimeout   time.Duration `envconfig:"PUBLISH_TIMEOUT" default:"30s" desc:"replay: how long the broker may take to confirm one job"`
	LogLevel         string        `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat        string        `envconfig:"LOG_FORMAT" default:"auto" desc:"json, console, or auto (console on a terminal, JSON otherwise)"`

	tls   *tls.Config        // AMQP's, from AMQP_CA_FILE, AMQP_CERT_FILE and AMQP_KEY_FILE
	nodes []string           // the broker URLs of AMQP_URL and AMQP_ADDRESSES
	api   *management.Client // from RABBITMQ_MANAGEMENT_URL; nil when off
}

// loadConfig reads the configuration from the environment and checks it.
// Every error names the variable at fault and never shows a password.
func loadConfig() (config, error) {
	var c config
	if err := envconfig.Process("", &c); err != nil {
		return c, err
	}
	var err error
	if c.nodes, c.tls, err = c.Settings.Check("RABBITMQ_CONSOLE_PASSWORD"); err != nil {
		return c, err
	}
	if c.api, err = c.Config.Client(c.URL, c.tls); err != nil {
		return c, err
	}
	return c, c.validate()
}

// validate checks the settings other than the AMQP connection's.
func (c config) validate() error {
	if c.OperatorPassword == "" && c.ViewerPassword == "" {
		return errors.New("CONSOLE_OPERATOR_PASSWORD and CONSOLE_VIEWER_PASSWORD: both empty, so nobody could sign in (make .env generates them)")
	}
	for _, p := range []struct{ name, user, password string }{
		{"CONSOLE_OPERATOR", c.OperatorUser, c.OperatorPassword},
		{"CONSOLE_VIEWER", c.ViewerUser, c.ViewerPassword},
	} {
		if p.password != "" && len(p.password) < minPassword {
			return fmt.Errorf("%s_PASSWORD: at least %d characters, got %d (make .env generates one)", p.name, minPassword, len(p.password))
		}
		if p.password != "" && strings.TrimSpace(p.user) == "" {
			return fmt.Errorf("%s_USER: must not be empty", p.name)
		}
	}
	if c.OperatorPassword != "" && c.ViewerPassword != "" && c.OperatorUser == c.ViewerUser {
		return fmt.Errorf("CONSOLE_VIEWER_USER: must differ from CONSOLE_OPERATOR_USER, both %q", c.OperatorUser)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("CONSOLE_TLS_CERT_FILE and CONSOLE_TLS_KEY_FILE: set both, or neither")
	}
	for _, d := range c.Daemons {
		u, err := url.Parse(d)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("CONSOLE_DAEMONS: %q is not a daemon's address: want http://HOST:PORT", d)
		}
	}
	if err := checkJaegerURL(c.JaegerURL); err != nil {
		return err
	}
	if len(c.Daemons) > 0 && len(c.AdminToken) < minAdminToken {
		return fmt.Errorf("ADMIN_TOKEN: the daemons' token, at least %d characters, got %d (make .env generates one)", minAdminToken, len(c.AdminToken))
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"CONSOLE_SESSION_TTL", c.SessionTTL},
		{"CONSOLE_SIGNIN_INTERVAL", c.SignInInterval},
		{"CONSOLE_DAEMON_TIMEOUT", c.DaemonTimeout},
		{"CONSOLE_REFRESH", c.RefreshInterval},
		{"CONNECT_TIMEOUT", c.ConnectTimeout},
		{"PUBLISH_TIMEOUT", c.PublishTimeout},
	} {
		if d.value <= 0 {
			return fmt.Errorf("%s: must be positive, got %s", d.name, d.value)
		}
	}
	if c.HistoryStep < time.Second {
		return fmt.Errorf("CONSOLE_HISTORY_STEP: at least 1s, got %s", c.HistoryStep)
	}
	if c.HistoryKeep < time.Hour || c.HistoryKeep > 7*24*time.Hour {
		return fmt.Errorf("CONSOLE_HISTORY_KEEP: 1h to 168h, got %s", c.HistoryKeep)
	}
	if c.HistoryKeep/c.HistoryStep > maxHistoryPoints {
		return fmt.Errorf("CONSOLE_HISTORY_KEEP / CONSOLE_HISTORY_STEP: at most %d points per route, got %d: keep less or step longer", maxHistoryPoints, c.HistoryKeep/c.HistoryStep)
	}
	if c.SignInBurst < 0 {
		return fmt.Errorf("CONSOLE_SIGNIN_BURST: must be 0 or more, got %d", c.SignInBurst)
	}
	if c.CacheTTL < 0 {
		return fmt.Errorf("CONSOLE_CACHE_TTL: must be 0 or more, got %s", c.CacheTTL)
	}
	if c.DeadPageSize < 1 || c.DeadPageSize > 1000 {
		return fmt.Errorf("CONSOLE_DEAD_PAGE_SIZE: 1 to 1000, got %d", c.DeadPageSize)
	}
	if c.DeadScan < c.DeadPageSize {
		return fmt.Errorf("CONSOLE_DEAD_SCAN: at least CONSOLE_DEAD_PAGE_SIZE (%d), got %d", c.DeadPageSize, c.DeadScan)
	}
	return nil
}
