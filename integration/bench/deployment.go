package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"

	"github.com/fpmq/fpmq/integration/stack"
)

// deployment is what compose.yaml runs with default settings: the
// environment of RabbitMQ, php-fpm and the commands route's daemon, and each
// one's log driver. The bench builds its containers with these, so that it
// measures the deployment users start, not settings of its own.
type deployment struct {
	rabbitmqEnv, phpEnv, daemonEnv map[string]string
	logging                        map[string]container.LogConfig // by service
	concurrency                    int                            // the daemon's CONCURRENCY
	children                       int                            // php-fpm's FPM_MAX_CHILDREN
	overrides                      []string                       // -set values applied, SERVICE:KEY=VALUE
}

// The compose services the bench runs, by their names in compose.yaml.
var deployedServices = []string{"rabbitmq", "php-fpm", "daemon"}

// readDeployment asks docker compose for compose.yaml's configuration in
// the repository at root with default settings: no .env (--env-file
// /dev/null), no variable from the bench's own environment but the
// passwords compose requires, which the stack replaces by its own.
func readDeployment(ctx context.Context, root string) (deployment, error) {
	cmd := exec.CommandContext(ctx, "docker", "compose", "--env-file", os.DevNull, "-p", namePrefix+"config", "config", "--format", "json")
	cmd.Dir = root
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	if h, ok := os.LookupEnv("DOCKER_HOST"); ok {
		cmd.Env = append(cmd.Env, "DOCKER_HOST="+h)
	}
	for _, user := range []string{"ADMIN", "CALLER", "DAEMON"} {
		cmd.Env = append(cmd.Env, "RABBITMQ_"+user+"_PASSWORD=unused")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return deployment{}, fmt.Errorf("docker compose config: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return parseDeployment(out)
}

// composeConfig is the part of `docker compose config --format json` the
// bench reads.
type composeConfig struct {
	Services map[string]struct {
		Environment map[string]*string `json:"environment"`
		Logging     *struct {
			Driver  string            `json:"driver"`
			Options map[string]string `json:"options"`
		} `json:"logging"`
	} `json:"services"`
}

// private are the variables that name users, passwords, the vhost and the
// queues: the stack sets them itself.
func private(name string) bool {
	return name == "AMQP_URL" || name == "ADMIN_TOKEN" || name == "RABBITMQ_VHOST" || name == "RABBITMQ_QUEUES" ||
		strings.HasSuffix(name, "_USER") || strings.HasSuffix(name, "_PASSWORD")
}

// parseDeployment reads a `docker compose config --format json` output.
func parseDeployment(data []byte) (deployment, error) {
	var cfg composeConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return deployment{}, fmt.Errorf("docker compose config: %w", err)
	}
	d := deployment{logging: map[string]container.LogConfig{}}
	envs := map[string]map[string]string{}
	for _, name := range deployedServices {
		svc, ok := cfg.Services[name]
		if !ok {
			return deployment{}, fmt.Errorf("compose.yaml has no service %q", name)
		}
		env := map[string]string{}
		for k, v := range svc.Environment {
			if v != nil && !private(k) {
				env[k] = *v
			}
		}
		envs[name] = env
		if svc.Logging != nil {
			d.logging[name] = container.LogConfig{Type: svc.Logging.Driver, Config: maps.Clone(svc.Logging.Options)}
		}
	}
	d.rabbitmqEnv, d.phpEnv, d.daemonEnv = envs["rabbitmq"], envs["php-fpm"], envs["daemon"]
	var err error
	if d.concurrency, err = positive(d.daemonEnv, "CONCURRENCY", "daemon"); err != nil {
		return deployment{}, err
	}
	if d.children, err = positive(d.phpEnv, "FPM_MAX_CHILDREN", "php-fpm"); err != nil {
		return deployment{}, err
	}
	return d, nil
}

func positive(env map[string]string, name, service string) (int, error) {
	n, err := strconv.Atoi(env[name])
	if err != nil || n < 1 {
		return 0, fmt.Errorf("compose.yaml: service %s: %s is %q, want a positive number", service, name, env[name])
	}
	return n, nil
}

// parseSet splits a -set value, SERVICE:KEY=VALUE.
func parseSet(v string) (service, key, value string, err error) {
	service, kv, ok := strings.Cut(v, ":")
	key, value, ok2 := strings.Cut(kv, "=")
	if !ok || !ok2 || key == "" || !slices.Contains(deployedServices, service) {
		return "", "", "", fmt.Errorf("want SERVICE:KEY=VALUE with SERVICE one of %s, got %q", strings.Join(deployedServices, ", "), v)
	}
	return service, key, value, nil
}

// override sets each SERVICE:KEY=VALUE of set over compose's settings and
// notes it for the report.
func (d *deployment) override(set []string) error {
	for _, v := range set {
		service, key, value, err := parseSet(v)
		if err != nil {
			return err
		}
		env := map[string]map[string]string{"rabbitmq": d.rabbitmqEnv, "php-fpm": d.phpEnv, "daemon": d.daemonEnv}[service]
		env[key] = value
		d.overrides = append(d.overrides, v)
	}
	var err error
	if d.concurrency, err = positive(d.daemonEnv, "CONCURRENCY", "daemon"); err != nil {
		return err
	}
	d.children, err = positive(d.phpEnv, "FPM_MAX_CHILDREN", "php-fpm")
	return err
}

// stackOptions returns the stack's options for this deployment, with
// children php-fpm children (0: the deployment's).
func (d deployment) stackOptions(ids stack.Images, children int, sockHost, filesDir string) stack.Options {
	php := maps.Clone(d.phpEnv)
	if children > 0 {
		php["FPM_MAX_CHILDREN"] = strconv.Itoa(children)
	}
	return stack.Options{
		Images:      ids,
		Name:        namePrefix,
		Children:    d.concurrency,
		SocketDir:   sockHost,
		PHPBinds:    []string{filesDir + ":" + scriptDir},
		RabbitMQEnv: d.rabbitmqEnv,
		PHPEnv:      php,
		Logging:     d.logging,
	}
}

// describe says what the deployment sets, for the report's header.
func (d deployment) describe() string {
	var parts []string
	for _, svc := range []struct {
		name string
		env  map[string]string
	}{{"daemon", d.daemonEnv}, {"php-fpm", d.phpEnv}, {"rabbitmq", d.rabbitmqEnv}} {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(svc.env)) {
			kv = append(kv, k+"="+svc.env[k])
		}
		text := svc.name + ": " + strings.Join(kv, " ")
		if lc, ok := d.logging[svc.name]; ok {
			text += fmt.Sprintf(", log driver %s %v", lc.Type, lc.Config)
		} else {
			text += ", the engine's default log driver"
		}
		parts = append(parts, text)
	}
	text := strings.Join(parts, "; ")
	if len(d.overrides) > 0 {
		text += "; NOT THE DEFAULTS: -set " + strings.Join(d.overrides, " -set ")
	}
	return text
}
