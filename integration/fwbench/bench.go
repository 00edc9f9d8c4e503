package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/testcontainers/testcontainers-go"

	"github.com/fpmq/fpmq/integration/stack"
)

// bench is one run: a stack of RabbitMQ and the php-fpm pool of the
// frameworks image, and what it found.
type bench struct {
	opts     options
	sys      *stack.Stack
	rep      *report
	progress func(format string, args ...any)
	tmp      string // host directory: pool/ini bound at poolIniDir in php-fpm, tmp-* the consumers' /tmp
	endpoint string // host:port of AMQP from the host
	current  string // the pool settings php-fpm runs with now (an ini file's text)
	// captured is each framework's message as its producer wrote it, by name.
	captured map[string]amqp.Publishing
}

// start makes the host directory, starts the stack, lets each route's
// daemon declare its queue once and captures each framework's message. On
// failure it removes what it created.
func start(ctx context.Context, o options, rep *report, progress func(string, ...any)) (b *bench, err error) {
	b = &bench{opts: o, rep: rep, progress: progress, captured: map[string]amqp.Publishing{}}
	refs := stack.ComposeImages
	refs.PHPFPM = o.image
	// Run image IDs: a build during the run cannot change what is measured.
	images, err := stack.Pin(ctx, refs)
	if err != nil {
		return nil, fmt.Errorf("%w (make images and make frameworks-image first; the bench never pulls)", err)
	}
	if err := b.makeDirs(); err != nil {
		return nil, err
	}
	queues := stack.JobQueue + " " + stack.ReportsQueue
	for _, fw := range frameworks {
		queues += " " + fw.queue
	}
	b.sys, err = stack.Start(ctx, stack.Options{
		Images:      images,
		Name:        "fpmq-fwbench-",
		Children:    o.procs + 1, // as compose: a child to spare for kept-alive connections
		RabbitMQEnv: map[string]string{"RABBITMQ_QUEUES": queues},
		// A leading ':' keeps the image's own scan directory first.
		PHPEnv:   map[string]string{"PHP_INI_SCAN_DIR": ":" + poolIniDir},
		PHPBinds: []string{b.hostPath("pool/ini") + ":" + poolIniDir},
	})
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(b.tmp))
	}
	defer func() {
		if err != nil {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			defer cancel()
			err = errors.Join(err, b.close(ctx))
			b = nil
		}
	}()
	if err := b.findEndpoint(ctx); err != nil {
		return b, err
	}
	if err := b.preparePool(ctx); err != nil {
		return b, err
	}
	for _, fw := range frameworks {
		// The daemon declares its queue, which the application's
		// producer and transport need.
		d, err := b.sys.Daemon(ctx, stack.Run{Env: b.daemonEnv(fw)})
		if err != nil {
			return b, fmt.Errorf("%s: %w", fw.name, err)
		}
		if err := b.sys.Remove(ctx, d); err != nil {
			return b, err
		}
		if b.captured[fw.name], err = b.capture(ctx, fw); err != nil {
			return b, err
		}
	}
	return b, nil
}

// makeDirs creates the host directory, in /dev/shm where there is one: the
// pool's ini/, with an empty settings file, and a /tmp for each framework's
// consumers.
func (b *bench) makeDirs() error {
	parent := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		parent = "/dev/shm"
	}
	tmp, err := os.MkdirTemp(parent, "fpmq-fwbench-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	b.tmp = tmp
	dirs := map[string]os.FileMode{tmp: 0o755, b.hostPath("pool"): 0o755, b.hostPath("pool/ini"): 0o755}
	for _, fw := range frameworks {
		dirs[b.consumerTmp(fw)] = 0o777 // the consumers run as www-data
	}
	for dir, mode := range dirs {
		if err := os.MkdirAll(dir, mode); err != nil {
			return fmt.Errorf("make %s: %w", dir, err)
		}
		// umask applies to MkdirAll.
		if err := os.Chmod(dir, mode); err != nil {
			return fmt.Errorf("chmod %s: %w", dir, err)
		}
	}
	if err := os.WriteFile(b.hostPath("pool/ini/fwbench.ini"), nil, 0o644); err != nil {
		return fmt.Errorf("write the pool settings: %w", err)
	}
	return nil
}

func (b *bench) hostPath(rel string) string { return filepath.Join(b.tmp, rel) }

func (b *bench) consumerTmp(fw framework) string {
	return b.hostPath("tmp-" + strings.ToLower(fw.name))
}

// close removes the stack and the host directory.
func (b *bench) close(ctx context.Context) error {
	var err error
	if b.sys != nil {
		err = b.sys.Close(ctx)
	}
	return errors.Join(err, os.RemoveAll(b.tmp))
}

// findEndpoint picks how the bench reaches RabbitMQ: the container's
// address on the stack's network where the host routes to it (Linux), as
// the daemon does, else the published port.
func (b *bench) findEndpoint(ctx context.Context) error {
	info, err := b.sys.RabbitMQ.Inspect(ctx)
	if err != nil {
		return fmt.Errorf("inspect rabbitmq: %w", err)
	}
	if nw, ok := info.NetworkSettings.Networks[b.sys.Network]; ok && nw.IPAddress.IsValid() {
		addr := net.JoinHostPort(nw.IPAddress.String(), "5672")
		if conn, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
			conn.Close()
			b.endpoint = addr
			return nil
		}
	}
	b.endpoint, err = b.sys.Endpoint(ctx)
	return err
}

// channel opens a connection to the broker as the admin and a channel on
// it; closeConn closes both.
func (b *bench) channel() (ch *amqp.Channel, closeConn func(), err error) {
	conn, err := amqp.Dial(b.sys.URLAt(stack.AdminUser, b.endpoint))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to rabbitmq: %w", err)
	}
	ch, err = conn.Channel()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("open channel: %w", err)
	}
	return ch, func() { conn.Close() }, nil
}

// adminURL is the admin's AMQP URL inside the stack's network: the
// consumers' and the Symfony application's (its transport declares
// exchanges).
func (b *bench) adminURL() string { return b.sys.URL(stack.AdminUser) }

// preparePool writes the applications' settings into the pool's /tmp, a
// tmpfs that a restart empties: php-fpm clears the environment, so they
// read them from files, as from a .env file.
func (b *bench) preparePool(ctx context.Context) error {
	script := `mkdir -p /tmp/laravel /tmp/symfony-app && printf "AMQP_URL='%s'\n" "$1" >/tmp/laravel/.env && printf 'MESSENGER_TRANSPORT_DSN=%s\n' "$2" >/tmp/symfony-app/app.env`
	return b.exec(ctx, "sh", "-c", script, "sh", b.sys.URL(stack.CallerUser), b.adminURL())
}

// exec runs cmd in the php-fpm container; a non-zero exit is an error that
// shows the output.
func (b *bench) exec(ctx context.Context, cmd ...string) error {
	code, out, err := stack.Exec(ctx, b.sys.PHP, cmd...)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("%s exited %d: %s", strings.Join(cmd[:min(len(cmd), 3)], " "), code, strings.TrimSpace(out))
	}
	return nil
}

// capture dispatches one no-op job with the application's producer and
// takes it off the queue as it was written: properties, headers, body.
func (b *bench) capture(ctx context.Context, fw framework) (amqp.Publishing, error) {
	if err := b.exec(ctx, fw.dispatch...); err != nil {
		return amqp.Publishing{}, fmt.Errorf("%s: dispatch: %w", fw.name, err)
	}
	ch, closeConn, err := b.channel()
	if err != nil {
		return amqp.Publishing{}, err
	}
	defer closeConn()
	d, ok, err := ch.Get(fw.queue, false) // false: ack below
	if err != nil || !ok {
		return amqp.Publishing{}, fmt.Errorf("%s: take the dispatched job off %s: found %v, %v", fw.name, fw.queue, ok, err)
	}
	if err := d.Ack(false); err != nil { // false: this one only
		return amqp.Publishing{}, fmt.Errorf("%s: ack: %w", fw.name, err)
	}
	return publishing(d), nil
}

// daemonEnv is the environment of fw's daemon: its route, raw bodies, and
// compose's settings that matter here (kept-alive FastCGI connections,
// one scheduler thread).
func (b *bench) daemonEnv(fw framework) map[string]string {
	return map[string]string{
		"AMQP_QUEUE":        fw.queue,
		"REQUEST_BODY":      "raw",
		"SCRIPT_FILENAME":   fw.entry,
		"CONCURRENCY":       strconv.Itoa(b.opts.procs),
		"FASTCGI_KEEPALIVE": "true",
		"GOMAXPROCS":        "1",
		"REQUEST_TIMEOUT":   "60s",
	}
}

// consumerScript starts P of fw's worker processes and, when the container
// is stopped (SIGQUIT, the php-fpm image's STOPSIGNAL, or SIGTERM), ends
// them: sh as PID 1 ignores both by itself.
func (b *bench) consumerScript(fw framework) string {
	return fmt.Sprintf(`pids=; trap 'kill $pids 2>/dev/null; exit 0' TERM INT QUIT
i=0; while [ $i -lt %d ]; do %s & pids="$pids $!"; i=$((i+1)); done
wait`, b.opts.procs, fw.consumer)
}

// describe returns the report's header: the machine and the images.
func (b *bench) describe(ctx context.Context) []field {
	host, _ := os.Hostname()
	fields := []field{{"machine", fmt.Sprintf("%s, %d cores, %s/%s", host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)}}
	for _, c := range []*testcontainers.DockerContainer{b.sys.RabbitMQ, b.sys.PHP} {
		if info, err := c.Inspect(ctx); err == nil {
			fields = append(fields, field{"image", strings.TrimPrefix(info.Name, "/") + ": " + info.Config.Image})
		}
	}
	fields = append(fields,
		field{"fpmq", fmt.Sprintf("daemon CONCURRENCY=%d FASTCGI_KEEPALIVE=true GOMAXPROCS=1, REQUEST_BODY=raw; php-fpm pm=static, pm.max_children=%d", b.opts.procs, b.opts.procs+1)},
		field{"workers", fmt.Sprintf("%d processes in one container of the frameworks image; RabbitMQ as admin", b.opts.procs)},
		field{"jobs", "captured once from each application's producer, published again by the bench (Laravel: a uuid of its own each)"},
		field{"cpu", "containers: cgroup v1 cpuacct.usage (else the engine's stats); machine: /proc/stat"},
	)
	return fields
}
