package stack

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Rabbitmqctl runs rabbitmqctl with args in the broker's container and
// returns its output; a non-zero exit is an error that shows the output.
func (s *Stack) Rabbitmqctl(ctx context.Context, args ...string) (string, error) {
	code, out, err := Exec(ctx, s.RabbitMQ, append([]string{"rabbitmqctl"}, args...)...)
	if err != nil {
		return "", err
	}
	if code != 0 {
		return "", fmt.Errorf("rabbitmqctl %s exited %d: %s", args[0], code, strings.TrimSpace(out))
	}
	return out, nil
}

// Table runs a rabbitmqctl list command, such as
// Table(ctx, "list_connections", "user", "ssl"), and returns its rows, one
// cell per column asked for. RabbitMQ answers from its own state, not from
// the sampled statistics of the management plugin, and takes about a second.
func (s *Stack) Table(ctx context.Context, command string, columns ...string) ([][]string, error) {
	args := []string{"-q", command}
	if command == "list_queues" {
		args = append(args, "-p", VHost)
	}
	args = append(append(args, "--no-table-headers"), columns...)
	out, err := s.Rabbitmqctl(ctx, args...)
	if err != nil {
		return nil, err
	}
	return parseTable(out, len(columns)), nil
}

// parseTable splits rabbitmqctl's table output into rows of n cells. Cells
// are separated by tabs and may hold spaces (a certificate's subject); lines
// with another number of cells (warnings, blank lines) are left out.
func parseTable(out string, n int) [][]string {
	var rows [][]string
	for line := range strings.Lines(out) {
		cells := strings.Split(strings.TrimRight(line, "\r\n"), "\t")
		if len(cells) == n {
			rows = append(rows, cells)
		}
	}
	return rows
}

// Queue is what the broker holds in one queue right now.
type Queue struct {
	Exists         bool
	Type           string // classic, quorum, ...
	Ready, Unacked int
	Consumers      int
}

// Queues asks the broker for the state of every queue of the vhost, by name.
func (s *Stack) Queues(ctx context.Context) (map[string]Queue, error) {
	rows, err := s.Table(ctx, "list_queues", "name", "type", "messages_ready", "messages_unacknowledged", "consumers")
	if err != nil {
		return nil, err
	}
	return parseQueues(rows)
}

// Queue asks the broker for the state of the named queue; Exists is false
// if there is no such queue.
func (s *Stack) Queue(ctx context.Context, name string) (Queue, error) {
	qs, err := s.Queues(ctx)
	return qs[name], err
}

func parseQueues(rows [][]string) (map[string]Queue, error) {
	queues := map[string]Queue{}
	for _, r := range rows {
		var n [3]int
		for i := range n {
			v, err := strconv.Atoi(r[2+i])
			if err != nil {
				return nil, fmt.Errorf("rabbitmqctl list_queues: queue %s: %w", r[0], err)
			}
			n[i] = v
		}
		queues[r[0]] = Queue{Exists: true, Type: r[1], Ready: n[0], Unacked: n[1], Consumers: n[2]}
	}
	return queues, nil
}

// PublishWindow is how many messages PublishConfirmed keeps unconfirmed.
const PublishWindow = 1000

// PublishConfirmed publishes msg(i) for i from 0 to n-1 on ch to queue
// through the default exchange, mandatory, as the caller does (see Job),
// with publisher confirms pipelined up to PublishWindow, and returns
// once the broker confirmed them all.
func PublishConfirmed(ctx context.Context, ch *amqp.Channel, queue string, n int, msg func(i int) amqp.Publishing) error {
	if err := ch.Confirm(false); err != nil { // false: wait for confirm.select-ok
		return fmt.Errorf("enable confirms: %w", err)
	}
	pending := make([]*amqp.DeferredConfirmation, 0, n)
	await := func(i int) error {
		ok, err := pending[i].WaitContext(ctx)
		if err != nil {
			return fmt.Errorf("message %d not confirmed: %w", i, err)
		}
		if !ok {
			return fmt.Errorf("message %d nacked by the broker", i)
		}
		return nil
	}
	for i := range n {
		if i >= PublishWindow {
			if err := await(i - PublishWindow); err != nil {
				return err
			}
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue,
			true,  // mandatory
			false, // immediate
			msg(i))
		if err != nil {
			return fmt.Errorf("publish message %d: %w", i, err)
		}
		pending = append(pending, dc)
	}
	for i := max(0, n-PublishWindow); i < n; i++ {
		if err := await(i); err != nil {
			return err
		}
	}
	return nil
}

// Job returns body as the caller publishes a job: persistent JSON, with a
// message id and a timestamp.
func Job(id string, body []byte) amqp.Publishing {
	return amqp.Publishing{
		ContentType:  "application/json",
		DeliveryMode: amqp.Persistent,
		MessageId:    id,
		Timestamp:    time.Now(),
		Body:         body,
	}
}
