//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/client"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/testcontainers/testcontainers-go"

	"github.com/fpmq/fpmq/integration/stack"
)

// TestComposeGivesRabbitMQEveryUser checks that the rabbitmq service of
// compose.yaml passes on every user name and password that
// docker/rabbitmq/definitions.sh creates users from: a variable left out
// is a user that never exists (the console's was, until a fresh user's
// trial found its pages empty).
func TestComposeGivesRabbitMQEveryUser(t *testing.T) {
	script, err := os.ReadFile(filepath.Join(repoRoot(t), "docker", "rabbitmq", "definitions.sh"))
	if err != nil {
		t.Fatal(err)
	}
	read := regexp.MustCompile(`\$\{(RABBITMQ_[A-Z]+_(?:USER|PASSWORD))`).FindAllStringSubmatch(string(script), -1)
	if len(read) < 6 {
		t.Fatalf("definitions.sh reads %d user variables, want at least 6: has it changed?", len(read))
	}
	env := composeDefaults(t, "rabbitmq")
	for _, m := range read {
		if _, ok := env[m[1]]; !ok {
			t.Errorf("compose.yaml's rabbitmq service does not pass %s, which docker/rabbitmq/definitions.sh reads", m[1])
		}
	}
}

// TestComposeIsHardened reads the deployment as compose resolves it: what
// users actually run.
func TestComposeIsHardened(t *testing.T) {
	cmd := exec.Command("docker", "compose", "--profile", "tools", "--profile", "cluster", "config", "--format", "json")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker compose config: %v", err)
	}
	var cfg struct {
		Services map[string]struct {
			ReadOnly    bool              `json:"read_only"`
			CapDrop     []string          `json:"cap_drop"`
			SecurityOpt []string          `json:"security_opt"`
			Privileged  bool              `json:"privileged"`
			Environment map[string]string `json:"environment"`
			Ports       []struct {
				HostIP    string `json:"host_ip"`
				Published string `json:"published"`
			} `json:"ports"`
		} `json:"services"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("parse compose config: %v", err)
	}
	for _, name := range []string{"daemon", "daemon-reports", "caller", "php-fpm", "daemon-cluster", "caller-cluster", "console"} {
		svc, ok := cfg.Services[name]
		if !ok {
			t.Errorf("no service %s", name)
			continue
		}
		if !svc.ReadOnly || !slices.Contains(svc.CapDrop, "ALL") || !slices.Contains(svc.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: read_only %v, cap_drop %v, security_opt %v; want a read-only root, no capabilities, no new privileges",
				name, svc.ReadOnly, svc.CapDrop, svc.SecurityOpt)
		}
	}
	for name, svc := range cfg.Services {
		if svc.Privileged {
			t.Errorf("%s is privileged", name)
		}
		for _, p := range svc.Ports {
			if p.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes port %s on %q, want 127.0.0.1 only", name, p.Published, p.HostIP)
			}
		}
		for k, v := range svc.Environment {
			if strings.Contains(strings.ToLower(v), "guest") {
				t.Errorf("%s: %s mentions guest", name, k)
			}
		}
	}
}

// TestImagesRunAsNonRoot checks the user every image runs as.
func TestImagesRunAsNonRoot(t *testing.T) {
	images, err := buildImages()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := testcontainers.NewDockerClientWithOpts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for name, want := range map[string]string{
		images.Daemon: "10001:10001", images.Caller: "10001:10001", images.PHPFPM: "www-data", images.RabbitMQ: "rabbitmq",
	} {
		img, err := cli.ImageInspect(context.Background(), name)
		if err != nil {
			t.Fatalf("inspect %s: %v", name, err)
		}
		if user := img.Config.User; user != want {
			t.Errorf("image %s runs as %q, want %q", name, user, want)
		}
	}
}

// TestRunningStackIsLocked looks at a running stack from outside.
func TestRunningStackIsLocked(t *testing.T) {
	s := newStack(t, stackOptions{})
	ctx := context.Background()

	t.Run("no process runs as root", func(t *testing.T) {
		for name, c := range map[string]*testcontainers.DockerContainer{"daemon": s.daemon, "php-fpm": s.PHP, "rabbitmq": s.RabbitMQ} {
			top, err := s.Docker.ContainerTop(ctx, c.GetContainerID(), client.ContainerTopOptions{Arguments: []string{"-o", "pid,uid,comm"}})
			if err != nil {
				t.Fatalf("top %s: %v", name, err)
			}
			if len(top.Processes) == 0 || !slices.Equal(top.Titles, []string{"PID", "UID", "COMMAND"}) {
				t.Fatalf("%s: unexpected process list %v %v", name, top.Titles, top.Processes)
			}
			for _, p := range top.Processes {
				if p[1] == "0" {
					t.Errorf("%s: %s runs as root", name, p[2])
				}
			}
		}
	})

	t.Run("the FastCGI sockets are the daemon's group's only", func(t *testing.T) {
		for _, socket := range []string{stack.SocketDir + "/commands.sock", stack.ReportsSocket} {
			code, out := execIn(t, s.PHP, "stat", "-c", "%a %U %G", socket)
			if code != 0 {
				t.Fatalf("stat %s: exit %d: %s", socket, code, out)
			}
			if got := strings.TrimSpace(out); got != "660 www-data fpmq" {
				t.Errorf("%s: mode, owner, group = %q, want \"660 www-data fpmq\"", socket, got)
			}
		}
	})

	endpoint, err := s.Endpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dial := func(user, password, vh string) (*amqp.Connection, error) {
		return amqp.Dial(fmt.Sprintf("amqp://%s:%s@%s/%s", user, password, endpoint, vh))
	}

	t.Run("guest cannot log in", func(t *testing.T) {
		for _, vh := range []string{"", vhost} {
			if conn, err := dial("guest", "guest", vh); err == nil {
				conn.Close()
				t.Errorf("guest logged in to vhost %q", vh)
			} else if !isAccessRefused(err) {
				t.Errorf("guest login to %q failed, but not as refused: %v", vh, err)
			}
		}
		// The same check lets a real user in.
		conn, err := dial(callerUser, s.Passwords[callerUser], vhost)
		if err != nil {
			t.Fatalf("caller login: %v", err)
		}
		conn.Close()
	})

	t.Run("the caller may publish jobs and nothing else", func(t *testing.T) {
		conn, err := dial(callerUser, s.Passwords[callerUser], vhost)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		try := func(what string, op func(*amqp.Channel) error) error {
			ch, err := conn.Channel()
			if err != nil {
				t.Fatalf("channel: %v", err)
			}
			defer ch.Close()
			return op(ch)
		}
		if err := try("consume", func(ch *amqp.Channel) error {
			_, err := ch.Consume(jobQueue, "", false, false, false, false, nil)
			return err
		}); !isAccessRefused(err) {
			t.Errorf("caller consuming the job queue: %v, want access refused", err)
		}
		if err := try("declare", func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("caller-owned", true, false, false, false, nil)
			return err
		}); !isAccessRefused(err) {
			t.Errorf("caller declaring another queue: %v, want access refused", err)
		}
		if err := try("read dead letters", func(ch *amqp.Channel) error {
			_, _, err := ch.Get(deadQueue, false)
			return err
		}); !isAccessRefused(err) {
			t.Errorf("caller reading dead letters: %v, want access refused", err)
		}
		for _, queue := range []string{jobQueue, reportsQueue} {
			if err := try("declare a job queue", func(ch *amqp.Channel) error {
				_, err := ch.QueueDeclare(queue, true, false, false, false, nil)
				return err
			}); err != nil && !otherDeadLetterArgs(err) {
				t.Errorf("caller declaring the job queue %s: %v", queue, err)
			}
		}
		if err := try("read the reports' dead letters", func(ch *amqp.Channel) error {
			_, _, err := ch.Get(reportsDead, false)
			return err
		}); !isAccessRefused(err) {
			t.Errorf("caller reading the reports' dead letters: %v, want access refused", err)
		}
	})

	t.Run("the daemon may not touch other queues", func(t *testing.T) {
		conn, err := dial(daemonUser, s.Passwords[daemonUser], vhost)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		if _, err := ch.QueueDeclare("daemon-owned", true, false, false, false, nil); !isAccessRefused(err) {
			t.Errorf("daemon declaring another queue: %v, want access refused", err)
		}
		// Exactly the routes' queues: each one's own, and no other whose
		// name merely starts like one.
		for _, tc := range []struct {
			queue string
			ok    bool
		}{
			{reportsQueue, true},
			{reportsDead, true},
			{reportsQueue + ".retry.1", true},
			{reportsQueue + "-other", false},
			{"x" + jobQueue, false},
		} {
			ch, err := conn.Channel()
			if err != nil {
				t.Fatal(err)
			}
			_, err = ch.QueueDeclare(tc.queue, true, false, false, false, nil)
			if tc.ok && err != nil {
				t.Errorf("daemon declaring %s: %v", tc.queue, err)
			} else if !tc.ok && !isAccessRefused(err) {
				t.Errorf("daemon declaring %s: %v, want access refused", tc.queue, err)
			}
			ch.Close()
		}
	})

	t.Run("the operator may read dead letters and publish jobs, and nothing else", func(t *testing.T) {
		conn, err := dial(operatorUser, s.Passwords[operatorUser], vhost)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// try runs op on a channel of its own, and returns op's error or,
		// if the broker closed the channel afterwards (a refused publish
		// is only reported that way), why it did.
		try := func(op func(*amqp.Channel) error) error {
			ch, err := conn.Channel()
			if err != nil {
				t.Fatalf("channel: %v", err)
			}
			defer ch.Close()
			closed := ch.NotifyClose(make(chan *amqp.Error, 1))
			if err := op(ch); err != nil {
				return err
			}
			// A round trip: the broker handles the operation before it.
			if _, err := ch.QueueDeclarePassive(deadQueue, true, false, false, false, nil); err != nil {
				if e := <-closed; e != nil {
					return e
				}
				return err
			}
			return nil
		}
		publish := func(exchange, key string) func(*amqp.Channel) error {
			return func(ch *amqp.Channel) error {
				return ch.PublishWithContext(context.Background(), exchange, key, true, false, // mandatory, not immediate
					amqp.Publishing{ContentType: "application/json", Body: []byte(`{"number":7}`)})
			}
		}

		if err := try(func(ch *amqp.Channel) error {
			_, err := ch.Consume(deadQueue, "", false, false, false, false, nil)
			return err
		}); err != nil {
			t.Errorf("operator reading the dead-letter queue: %v", err)
		}
		if err := try(func(ch *amqp.Channel) error {
			if _, err := ch.QueueDeclarePassive(reportsDead, true, false, false, false, nil); err != nil {
				return err
			}
			_, err := ch.Consume(reportsDead, "", false, false, false, false, nil)
			return err
		}); err != nil {
			t.Errorf("operator reading the reports' dead-letter queue: %v", err)
		}
		if err := try(func(ch *amqp.Channel) error {
			if err := ch.Confirm(false); err != nil {
				return err
			}
			dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "", jobQueue, true, false, // mandatory, not immediate
				amqp.Publishing{ContentType: "application/json", Body: []byte(`{"number":7}`)})
			if err != nil {
				return err
			}
			if ok, err := dc.WaitContext(context.Background()); err != nil || !ok {
				return fmt.Errorf("not confirmed: %v", err)
			}
			return nil
		}); err != nil {
			t.Errorf("operator publishing a job: %v", err)
		}

		for _, tc := range []struct {
			what string
			op   func(*amqp.Channel) error
		}{
			{"reading the job queue", func(ch *amqp.Channel) error {
				_, _, err := ch.Get(jobQueue, false)
				return err
			}},
			{"reading the reports' job queue", func(ch *amqp.Channel) error {
				_, _, err := ch.Get(reportsQueue, false)
				return err
			}},
			{"purging the job queue", func(ch *amqp.Channel) error {
				_, err := ch.QueuePurge(jobQueue, false)
				return err
			}},
			{"declaring a queue", func(ch *amqp.Channel) error {
				_, err := ch.QueueDeclare("operator-owned", true, false, false, false, nil)
				return err
			}},
			{"declaring the dead-letter queue", func(ch *amqp.Channel) error {
				_, err := ch.QueueDeclare(deadQueue, true, false, false, false, nil)
				return err
			}},
			{"deleting the dead-letter queue", func(ch *amqp.Channel) error {
				_, err := ch.QueueDelete(deadQueue, false, false, false)
				return err
			}},
			{"binding the dead-letter queue", func(ch *amqp.Channel) error {
				return ch.QueueBind(deadQueue, "x", "amq.direct", false, nil)
			}},
			{"declaring an exchange", func(ch *amqp.Channel) error {
				return ch.ExchangeDeclare("operator-owned", "direct", true, false, false, false, nil)
			}},
			{"publishing to another exchange", publish("amq.direct", jobQueue)},
			{"publishing to amq.topic", publish("amq.topic", "commands.dead")},
		} {
			if err := try(tc.op); !isAccessRefused(err) {
				t.Errorf("operator %s: %v, want access refused", tc.what, err)
			}
		}
	})
}

func isAccessRefused(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Code == amqp.AccessRefused
}

// otherDeadLetterArgs tells whether err refuses a declaration, which the
// user was allowed to make, because the queue exists with dead-letter
// arguments: the daemon declares the job queue with them, and the caller
// then takes it as it is.
func otherDeadLetterArgs(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Code == amqp.PreconditionFailed && strings.Contains(ae.Reason, "inequivalent arg 'x-dead-letter-")
}
