package main

import (
	"context"
	"fmt"
	"net"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/integration/stack"
)

// declareQueue declares the job queue as the daemon and the caller do: a
// durable classic queue without arguments.
func (s *system) declareQueue(ctx context.Context) error {
	ch, closeConn, err := s.channel(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	_, err = ch.QueueDeclare(jobQueue,
		true,  // durable
		false, // auto-delete
		false, // exclusive
		false, // no-wait
		nil,
	)
	if err != nil {
		return fmt.Errorf("declare queue %s: %w", jobQueue, err)
	}
	return nil
}

// channel opens a connection of its own (see dial) and a channel on it;
// closing the connection, with the function returned, closes both.
func (s *system) channel(ctx context.Context) (*amqp.Channel, func(), error) {
	conn, err := s.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("open channel: %w", err)
	}
	return ch, func() { conn.Close() }, nil
}

// dial connects to the broker from the host, as the administrator. The
// connection closes when ctx ends, which also ends any call blocked on it.
func (s *system) dial(ctx context.Context) (*amqp.Connection, error) {
	conn, err := amqp.DialConfig(s.URLAt(stack.AdminUser, s.endpoint), amqp.Config{
		Heartbeat: 10 * time.Second,
		Locale:    "en_US",
		Dial: func(network, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("connect to rabbitmq: %w", err)
	}
	context.AfterFunc(ctx, func() { conn.Close() })
	return conn, nil
}

// settleTimeout bounds the wait for the daemon to finish the jobs it holds.
const settleTimeout = time.Minute

// settled waits until rabbitmqctl shows the job queue empty with nothing
// unacknowledged. rabbitmqctl is exact but takes about a second; the AMQP
// passive declare is cheap but counts ready jobs only.
func (s *system) settled(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	for {
		q, err := s.Queue(ctx, jobQueue)
		if err != nil {
			return err
		}
		if !q.Exists {
			return fmt.Errorf("rabbitmqctl list_queues: no queue %s", jobQueue)
		}
		if q.Ready == 0 && q.Unacked == 0 {
			return nil
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("queue not settled (%d ready, %d unacked): %w", q.Ready, q.Unacked, err)
		}
	}
}
