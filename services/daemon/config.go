package main

import (
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/fpmq/fpmq/services/internal/fastcgi"
)

// config is the daemon's whole configuration, read from the environment.
type config struct {
	AMQPURL         string        `envconfig:"AMQP_URL" required:"true" desc:"RabbitMQ URL, amqp://USER:PASSWORD@HOST:5672/VHOST (required; percent-encode special characters)"`
	Queue           string        `envconfig:"AMQP_QUEUE" default:"commands" desc:"queue to consume jobs from"`
	FastCGIAddr     string        `envconfig:"FASTCGI_ADDR" default:"unix:///run/php-fpm/commands.sock" desc:"php-fpm pool address: unix:///PATH or tcp://HOST:PORT"`
	ScriptFilename  string        `envconfig:"SCRIPT_FILENAME" default:"/app/worker.php" desc:"absolute path of the worker script where php-fpm runs"`
	Concurrency     int           `envconfig:"CONCURRENCY" default:"5" desc:"jobs run at once; at most the pool's pm.max_children"`
	Prefetch        int           `envconfig:"PREFETCH" default:"0" desc:"unacknowledged deliveries held from the broker; 0 means CONCURRENCY"`
	RequestTimeout  time.Duration `envconfig:"REQUEST_TIMEOUT" default:"60s" desc:"deadline of one job on php-fpm, connect to last byte; a timeout requeues the job"`
	RetryDelay      time.Duration `envconfig:"RETRY_DELAY" default:"1s" desc:"pause before a failed job is requeued"`
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"30s" desc:"on SIGTERM, how long in-flight jobs may finish before they are requeued"`
	ConnectTimeout  time.Duration `envconfig:"CONNECT_TIMEOUT" default:"10s" desc:"deadline of one broker connection attempt"`
	ReconnectMax    time.Duration `envconfig:"RECONNECT_MAX_DELAY" default:"30s" desc:"longest pause between broker reconnection attempts (backoff with jitter)"`
	LogLevel        string        `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat       string        `envconfig:"LOG_FORMAT" default:"auto" desc:"json, console, or auto (console on a terminal, JSON otherwise)"`
}

// loadConfig reads the configuration from the environment and checks it.
// Every error names the variable at fault.
func loadConfig() (config, error) {
	var c config
	if err := envconfig.Process("", &c); err != nil {
		return c, err
	}
	return c, c.validate()
}

func (c config) validate() error {
	u, err := url.Parse(c.AMQPURL)
	if err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
		return fmt.Errorf("AMQP_URL: want amqp://USER:PASSWORD@HOST:PORT/VHOST or amqps://..., got an invalid URL")
	}
	if c.Queue == "" {
		return fmt.Errorf("AMQP_QUEUE: must not be empty")
	}
	if _, _, err := fastcgi.ParseAddress(c.FastCGIAddr); err != nil {
		return fmt.Errorf("FASTCGI_ADDR: %w", err)
	}
	if !filepath.IsAbs(c.ScriptFilename) {
		return fmt.Errorf("SCRIPT_FILENAME: must be an absolute path, got %q", c.ScriptFilename)
	}
	if c.Concurrency < 1 {
		return fmt.Errorf("CONCURRENCY: must be at least 1, got %d", c.Concurrency)
	}
	if c.Prefetch < 0 {
		return fmt.Errorf("PREFETCH: must be 0 or more, got %d", c.Prefetch)
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"REQUEST_TIMEOUT", c.RequestTimeout},
		{"SHUTDOWN_TIMEOUT", c.ShutdownTimeout},
		{"CONNECT_TIMEOUT", c.ConnectTimeout},
		{"RECONNECT_MAX_DELAY", c.ReconnectMax},
	} {
		if d.value <= 0 {
			return fmt.Errorf("%s: must be positive, got %s", d.name, d.value)
		}
	}
	if c.RetryDelay < 0 {
		return fmt.Errorf("RETRY_DELAY: must not be negative, got %s", c.RetryDelay)
	}
	return nil
}
