package amqptest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// The environment that points the scenarios at a real RabbitMQ.
const (
	// envURL is the AMQP URL of a RabbitMQ whose user may declare, use and
	// delete queues named amqptest.* in the URL's vhost; empty skips the
	// RabbitMQ half of TestScenarios.
	envURL = "AMQPTEST_URL"
	// envRabbitmqctl is a command, split at spaces, that runs rabbitmqctl on
	// that broker (such as "docker exec CONTAINER rabbitmqctl"); empty skips
	// the scenarios that need an operator's hand (resource alarms).
	envRabbitmqctl = "AMQPTEST_RABBITMQCTL"
)

// fakeQuiet is how long a test of the fake waits to see that nothing more
// arrives.
const fakeQuiet = 20 * time.Millisecond

// broker is what a scenario runs against: the fake, or a real RabbitMQ.
type broker struct {
	url         string
	user, vhost string // the URL's
	// fake is the fake's server; nil on RabbitMQ.
	fake *Server
	// rabbitmqctl is the command that runs rabbitmqctl on RabbitMQ; nil on
	// the fake, or when envRabbitmqctl is empty.
	rabbitmqctl []string
	// quiet is how long a scenario waits to see that nothing more arrives:
	// longer on a real broker, which takes its time on another machine.
	quiet time.Duration
	// prefix starts the scenario's queue names: unique on RabbitMQ, whose
	// queues outlive a scenario unless deleted.
	prefix string
}

// fakeBroker starts a fake for one scenario, configured by configure if
// not nil; it stops when the scenario ends.
func fakeBroker(t *testing.T, configure func(*Server)) *broker {
	srv := &Server{}
	if configure != nil {
		configure(srv)
	}
	srv.Start(t)
	return &broker{url: srv.URL, user: "guest", vhost: "/", fake: srv, quiet: fakeQuiet, prefix: "amqptest."}
}

// rabbitMQBroker returns the RabbitMQ of envURL for one scenario.
func rabbitMQBroker(t *testing.T) *broker {
	url := os.Getenv(envURL)
	uri, err := amqp.ParseURI(url)
	if err != nil {
		t.Fatalf("%s: %v", envURL, err)
	}
	var id [4]byte
	rand.Read(id[:])
	return &broker{
		url:         url,
		user:        uri.Username,
		vhost:       uri.Vhost,
		rabbitmqctl: strings.Fields(os.Getenv(envRabbitmqctl)),
		quiet:       200 * time.Millisecond,
		prefix:      "amqptest." + hex.EncodeToString(id[:]) + ".",
	}
}

// onRabbitMQ reports whether b is a real broker.
func (b *broker) onRabbitMQ() bool { return b.fake == nil }

// dial connects to b and opens a channel; the test's end closes both.
func (b *broker) dial(t *testing.T) (*amqp.Connection, *amqp.Channel) {
	t.Helper()
	conn, err := amqp.Dial(b.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return conn, ch
}

// queue returns a queue name for the scenario, from name; on RabbitMQ the
// test's end deletes the queue.
func (b *broker) queue(t *testing.T, name string) string {
	t.Helper()
	name = b.prefix + name
	if b.onRabbitMQ() {
		t.Cleanup(func() {
			conn, err := amqp.Dial(b.url)
			if err != nil {
				t.Errorf("delete queue %s: %v", name, err)
				return
			}
			defer conn.Close()
			ch, err := conn.Channel()
			if err == nil {
				_, err = ch.QueueDelete(name, false, false, false) // even if used or not empty; wait
			}
			if err != nil {
				t.Errorf("delete queue %s: %v", name, err)
			}
		})
	}
	return name
}

// declare declares a durable classic queue for the scenario, from name,
// and returns its name.
func (b *broker) declare(t *testing.T, ch *amqp.Channel, name string) string {
	t.Helper()
	name = b.queue(t, name)
	if _, err := ch.QueueDeclare(name, true, false, false, false, nil); err != nil { // durable, not auto-delete, not exclusive, wait
		t.Fatal(err)
	}
	return name
}

// inspect returns what a passive queue.declare of name, on a channel of
// its own, answers: the ready messages and the consumers.
func (b *broker) inspect(t *testing.T, conn *amqp.Connection, name string) amqp.Queue {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil) // durable, not auto-delete, not exclusive, wait
	if err != nil {
		t.Fatalf("inspect queue %s: %v", name, err)
	}
	return q
}

// waitQueue polls name until its ready messages and consumers are as
// given: RabbitMQ may count a settlement, a cancel or a closed channel
// a moment after the client sent it.
func (b *broker) waitQueue(t *testing.T, conn *amqp.Connection, name string, ready, consumers int) {
	t.Helper()
	var q amqp.Queue
	deadline := time.Now().Add(5 * time.Second)
	for {
		q = b.inspect(t, conn, name)
		if q.Messages == ready && q.Consumers == consumers {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue %s holds %d ready and %d consumers, want %d and %d", name, q.Messages, q.Consumers, ready, consumers)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alarm raises a memory alarm and returns the function that clears it,
// which the test's end calls too if the test did not: on the fake through
// SetAlarm, on RabbitMQ with rabbitmqctl, which sets the memory high
// watermark to 0 and then back to what it was. It skips the test on a
// RabbitMQ without rabbitmqctl.
func (b *broker) alarm(t *testing.T) (clear func()) {
	t.Helper()
	set := func(on bool) { b.fake.SetAlarm(on) }
	if b.onRabbitMQ() {
		b.needRabbitmqctl(t, "to raise a resource alarm")
		// A fraction such as 0.4, or {absolute,Bytes}.
		was := strings.TrimSpace(b.ctl(t, "-q", "eval", "vm_memory_monitor:get_vm_memory_high_watermark()."))
		restore := []string{was}
		if n, ok := strings.CutPrefix(was, "{absolute,"); ok {
			restore = []string{"absolute", strings.TrimSuffix(n, "}")}
		}
		set = func(on bool) {
			if on {
				b.ctl(t, "set_vm_memory_high_watermark", "0")
			} else {
				b.ctl(t, append([]string{"set_vm_memory_high_watermark"}, restore...)...)
			}
		}
	}
	set(true)
	cleared := false
	clear = func() {
		if !cleared {
			cleared = true
			set(false)
		}
	}
	t.Cleanup(clear)
	return clear
}

// maxMessageSize returns the largest message RabbitMQ takes, in bytes:
// on RabbitMQ 3, which reads the setting when a channel opens, 1 MiB until
// the test ends (its default, 128 MiB, would make a slow test); on
// RabbitMQ 4, which reads it once at boot, as configured (16 MiB by
// default). It skips the test on a RabbitMQ without rabbitmqctl.
func (b *broker) maxMessageSize(t *testing.T) int {
	t.Helper()
	b.needRabbitmqctl(t, "to read max_message_size")
	vsn := strings.TrimSpace(b.ctl(t, "-q", "eval", "application:get_key(rabbit, vsn)."))
	if strings.HasPrefix(vsn, `{ok,"3.`) {
		const limit = 1 << 20
		b.setRabbitEnv(t, "max_message_size", strconv.Itoa(limit))
		return limit
	}
	got := strings.TrimSpace(b.ctl(t, "-q", "eval", "application:get_env(rabbit, max_message_size)."))
	limit, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(got, "{ok,"), "}"))
	if err != nil {
		t.Fatalf("max_message_size %q of RabbitMQ %s: %v", got, vsn, err)
	}
	return limit
}

// setRabbitEnv sets the rabbit application's setting key to value on
// RabbitMQ, an Erlang term, until the test ends. It skips the test on a
// RabbitMQ without rabbitmqctl.
func (b *broker) setRabbitEnv(t *testing.T, key, value string) {
	t.Helper()
	b.needRabbitmqctl(t, "to change "+key)
	// {ok,Value}, or undefined.
	was := strings.TrimSpace(b.ctl(t, "-q", "eval", "application:get_env(rabbit, "+key+")."))
	restore := "application:unset_env(rabbit, " + key + ")."
	if v, ok := strings.CutPrefix(was, "{ok,"); ok {
		restore = "application:set_env(rabbit, " + key + ", " + strings.TrimSuffix(v, "}") + ")."
	}
	b.ctl(t, "-q", "eval", "application:set_env(rabbit, "+key+", "+value+").")
	t.Cleanup(func() { b.ctl(t, "-q", "eval", restore) })
}

// needRabbitmqctl skips the test on a RabbitMQ without rabbitmqctl, which
// it needs for what why says.
func (b *broker) needRabbitmqctl(t *testing.T, why string) {
	t.Helper()
	if len(b.rabbitmqctl) == 0 {
		t.Skipf("%s is empty: no rabbitmqctl %s", envRabbitmqctl, why)
	}
}

// ctl runs rabbitmqctl with args on RabbitMQ and returns its output.
func (b *broker) ctl(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	argv := append(append([]string(nil), b.rabbitmqctl...), args...)
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// receive returns the next delivery, failing the test if none comes within
// 5 s or deliveries closes.
func receive(t *testing.T, deliveries <-chan amqp.Delivery) amqp.Delivery {
	t.Helper()
	select {
	case d, ok := <-deliveries:
		if !ok {
			t.Fatal("deliveries closed")
		}
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery")
	}
	panic("unreachable")
}

// noDelivery fails the test if a delivery comes, or deliveries closes,
// within quiet.
func noDelivery(t *testing.T, deliveries <-chan amqp.Delivery, quiet time.Duration) {
	t.Helper()
	select {
	case d, ok := <-deliveries:
		if !ok {
			t.Fatal("deliveries closed")
		}
		t.Fatalf("unexpected delivery %q", d.MessageId)
	case <-time.After(quiet):
	}
}

// consume sets prefetch on ch (per consumer) and consumes queue with
// manual acks under tag.
func consume(t *testing.T, ch *amqp.Channel, queue, tag string, prefetch int) <-chan amqp.Delivery {
	t.Helper()
	if err := ch.Qos(prefetch, 0, false); err != nil { // false: per consumer
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(queue, tag,
		false, // auto-ack
		false, // exclusive
		false, // no-local
		false, // no-wait
		nil)
	if err != nil {
		t.Fatal(err)
	}
	return deliveries
}

// publish publishes msgs on ch, in confirm mode, to queue through the
// default exchange, mandatory, and fails the test unless the broker acks
// each.
func publish(t *testing.T, ch *amqp.Channel, queue string, msgs ...amqp.Publishing) {
	t.Helper()
	for _, m := range msgs {
		dc, err := ch.PublishWithDeferredConfirmWithContext(t.Context(), "", queue, true, false, m) // mandatory, not immediate
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := dc.WaitContext(t.Context()); !ok || err != nil {
			t.Fatalf("publish %q: acked %v, %v", m.MessageId, ok, err)
		}
	}
}

// closedWith waits up to 5 s for closed to report an error and fails the
// test unless its code is code.
func closedWith(t *testing.T, what string, closed <-chan *amqp.Error, code int) *amqp.Error {
	t.Helper()
	select {
	case e := <-closed:
		if e == nil || e.Code != code {
			t.Fatalf("%s closed with %v, want code %d", what, e, code)
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatalf("%s still open, want it closed with code %d", what, code)
	}
	panic("unreachable")
}

// amqpCode returns the reply code of err, an *amqp.Error, or 0.
func amqpCode(err error) int {
	var e *amqp.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}
