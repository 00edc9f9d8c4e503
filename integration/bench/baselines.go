package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// direct drives the pool over FastCGI from the bench, CONCURRENCY requests at a
// time, with the parameters and form the daemon would send: baseline (a).
func (b *bench) direct(ctx context.Context) error {
	n := b.opts.jobs
	php := b.sys.PHP.GetContainerID()
	before, err := b.snapshot(ctx, php)
	if err != nil {
		return err
	}
	if err := b.drive(ctx, n); err != nil {
		return err
	}
	after, err := b.snapshot(ctx, php)
	if err != nil {
		return err
	}
	elapsed := after.at.Sub(before.at)
	b.rep.add(secDirect, "requests/s", "1/s", float64(n)/elapsed.Seconds())
	b.rep.add(secDirect, "bench (FastCGI client) CPU per request", "µs", perItem(before.self, after.self, n))
	b.rep.add(secDirect, "php-fpm CPU per request", "µs", perItem(before.byID[php], after.byID[php], n))
	b.addEngine(secDirect, "docker engine CPU per request", before, after, n)
	b.addBusy(secDirect, "", before, after, true, php)
	return nil
}

// drive sends n requests to the pool, CONCURRENCY at a time.
func (b *bench) drive(ctx context.Context, n int) error {
	socket := b.sys.socketPath()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, b.sys.concurrency)
	for w := range b.sys.concurrency {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n) && errs[w] == nil; i = next.Add(1) {
				errs[w] = do(ctx, socket, jobForm(i), i)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// requestTimeout bounds one request to the pool: the daemon's default
// REQUEST_TIMEOUT.
const requestTimeout = time.Minute

// do sends one job's form to the pool at socket and checks that it answered
// 200. Its parameters are those of the daemon's dispatcher
// (services/internal/dispatch/params.go), so that php-fpm does the same work
// for both paths.
func do(ctx context.Context, socket string, form []byte, id int64) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	status, stderr, err := fastcgiRequest(ctx, socket, []param{
		{"GATEWAY_INTERFACE", "CGI/1.1"},
		{"SERVER_SOFTWARE", "fpmq"},
		{"SERVER_PROTOCOL", "HTTP/1.1"},
		{"REQUEST_METHOD", "POST"},
		{"SCRIPT_FILENAME", script},
		{"SCRIPT_NAME", "/bench.php"},
		{"REQUEST_URI", "/bench.php"},
		{"DOCUMENT_URI", "/bench.php"},
		{"QUERY_STRING", ""},
		{"CONTENT_TYPE", "application/x-www-form-urlencoded"},
		{"CONTENT_LENGTH", strconv.Itoa(len(form))},
		// As long as the caller's random message IDs.
		{"HTTP_X_MESSAGE_ID", fmt.Sprintf("%032x", id)},
		{"HTTP_X_ATTEMPT", "1"},
		{"HTTP_X_REDELIVERED", "0"},
		{"HTTP_X_TIMESTAMP", strconv.FormatInt(time.Now().Unix(), 10)},
	}, form)
	if err != nil {
		return err
	}
	if status != 200 {
		return fmt.Errorf("php-fpm answered %d: %s", status, bytes.TrimSpace(stderr))
	}
	return nil
}

// bareConsumer consumes a pre-filled queue with nothing but amqp091-go at
// prefetch, acking every every-th message with multiple set (every 1: each
// message on its own, as the daemon does), and records into section:
// baseline (b) and its diagnostic.
func (b *bench) bareConsumer(ctx context.Context, section string, prefetch, every int) error {
	n := b.opts.jobs
	if err := b.refill(ctx, n); err != nil {
		return err
	}
	ch, closeConn, err := b.sys.channel(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	if err := ch.Qos(prefetch, 0, false); err != nil { // false: per consumer, as the daemon
		return fmt.Errorf("set prefetch: %w", err)
	}
	rabbit := b.sys.RabbitMQ.GetContainerID()
	before, err := b.snapshot(ctx, rabbit)
	if err != nil {
		return err
	}
	deliveries, err := ch.Consume(jobQueue, "fpmq-bench",
		false, // auto-ack: no, as the daemon
		false, // exclusive
		false, // no-local
		false, // no-wait
		nil,
	)
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	for i := range n {
		d, ok := <-deliveries
		if !ok {
			return errors.New("delivery channel closed")
		}
		if (i+1)%every != 0 && i+1 != n {
			continue
		}
		if err := d.Ack(every > 1); err != nil { // multiple: this delivery and all before it
			return fmt.Errorf("ack: %w", err)
		}
	}
	after, err := b.snapshot(ctx, rabbit)
	if err != nil {
		return err
	}
	elapsed := after.at.Sub(before.at)
	b.rep.add(section, "messages/s", "1/s", float64(n)/elapsed.Seconds())
	b.rep.add(section, "bench (consumer) CPU per message", "µs", perItem(before.self, after.self, n))
	b.rep.add(section, "rabbitmq CPU per message", "µs", perItem(before.byID[rabbit], after.byID[rabbit], n))
	b.addBusy(section, "", before, after, true, rabbit)
	return nil
}
