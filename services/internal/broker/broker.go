// Package broker holds what the caller and the daemon must agree on about
// RabbitMQ: how to connect and how the job queue is declared.
package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ContentType is the content type of every job message.
const ContentType = "application/json"

// Dial connects to the broker at rawURL. The TCP connection and the AMQP
// handshake must both complete before ctx is done.
func Dial(ctx context.Context, rawURL string) (*amqp.Connection, error) {
	if _, err := amqp.ParseURI(rawURL); err != nil {
		// A *url.Error quotes the whole URL, password included.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("connect to %s: invalid AMQP URL: %w", Redact(rawURL), err)
	}
	type result struct {
		conn *amqp.Connection
		err  error
	}
	done := make(chan result, 1)
	go func() {
		conn, err := amqp.DialConfig(rawURL, amqp.Config{
			Heartbeat: 10 * time.Second,
			Locale:    "en_US",
			Dial: func(network, addr string) (net.Conn, error) {
				var d net.Dialer
				conn, err := d.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				// The handshake must not outlive ctx either; the deadline is
				// cleared by the library once the connection is open.
				if deadline, ok := ctx.Deadline(); ok {
					if err := conn.SetDeadline(deadline); err != nil {
						conn.Close()
						return nil, err
					}
				}
				return conn, nil
			},
		})
		done <- result{conn, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("connect to %s: %w", Redact(rawURL), r.err)
		}
		return r.conn, nil
	case <-ctx.Done():
		// Close whatever the dial goroutine ends up with.
		go func() {
			if r := <-done; r.conn != nil {
				r.conn.Close()
			}
		}()
		return nil, fmt.Errorf("connect to %s: %w", Redact(rawURL), ctx.Err())
	}
}

// DeclareQueue declares the durable job queue. Every program that touches the
// queue declares it through here, so that the arguments always agree.
func DeclareQueue(ch *amqp.Channel, name string) (amqp.Queue, error) {
	q, err := ch.QueueDeclare(
		name,
		true,  // durable
		false, // auto-delete
		false, // exclusive
		false, // no-wait
		nil,   // arguments
	)
	if err != nil {
		return q, fmt.Errorf("declare queue %q: %w", name, err)
	}
	return q, nil
}

// Redact returns rawURL with its password replaced, for logs and errors.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable AMQP URL)"
	}
	return u.Redacted()
}
