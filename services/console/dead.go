package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/deadletter"
	"github.com/fpmq/fpmq/services/internal/management"
	"github.com/fpmq/fpmq/services/internal/queuepolicy"
)

// deadPage is one page of a route's dead letters, read from the head of
// its dead-letter queue.
type deadPage struct {
	Total int              // messages in the dead-letter queue when it was read
	Read  int              // of them, read from the head to make this page
	Jobs  []deadletter.Job // the matches shown, in queue order
	// More is true when a next page may hold more matches.
	More bool
	// Capped is true when a filtered page stopped at CONSOLE_DEAD_SCAN
	// messages before the end of the queue: matches beyond are not shown.
	Capped bool
	Took   time.Duration
}

// deadSource is what the console does with the dead-letter queues. Each
// method reads the queue of the route queue (QUEUE.dead) without changing
// what it does not delete, and keeps its order, as "daemon dead" does.
type deadSource interface {
	// Page returns the matches of f from the skip-th on, at most limit,
	// reading at most scan messages when f selects, and only skip+limit+1
	// when it does not.
	Page(ctx context.Context, queue string, f deadletter.Filter, skip, limit, scan int) (deadPage, error)
	// Show returns the first job whose message id is id, reading the
	// queue up to it; errJobNotFound if none.
	Show(ctx context.Context, queue, id string) (deadletter.Job, error)
	// Matching returns the jobs of the whole queue that f selects, their
	// bodies left out, at most max of them, and how many matched in all.
	Matching(ctx context.Context, queue string, f deadletter.Filter, max int) ([]deadletter.Job, int, error)
	// Replay and Purge are deadletter.Replay and deadletter.Purge on the
	// whole queue.
	Replay(ctx context.Context, queue string, f deadletter.Filter, rate deadletter.Rate, progress deadletter.Progress) (deadletter.Result, error)
	Purge(ctx context.Context, queue string, f deadletter.Filter, progress deadletter.Progress) (deadletter.Result, error)
}

// errJobNotFound means no dead letter has the id asked for.
var errJobNotFound = errors.New("no dead letter with this id")

// errEnough stops a read that found what it needed.
var errEnough = errors.New("enough")

// deadQueueOf names the dead-letter queue of a route, as the daemon
// declares it by default (DEAD_LETTER_QUEUE empty).
func deadQueueOf(queue string) string { return queue + ".dead" }

// amqpDead is the deadSource on RabbitMQ, with the console's own user. It
// keeps one connection, dialled when first needed and again after it
// closed, and opens a channel per read.
type amqpDead struct {
	nodes          []string
	tls            *tls.Config
	api            *management.Client
	connectTimeout time.Duration
	publishTimeout time.Duration

	mu   sync.Mutex
	conn *amqp.Connection
	// checked holds when each dead-letter queue was last found safe to
	// read (no delivery limit that would drop dead jobs).
	checked map[string]time.Time
}

// checkTTL is how long a dead-letter queue found safe to read stays so
// without asking the management API again.
const checkTTL = 30 * time.Second

func newAMQPDead(c config) *amqpDead {
	return &amqpDead{nodes: c.nodes, tls: c.tls, api: c.api, connectTimeout: c.ConnectTimeout,
		publishTimeout: c.PublishTimeout, checked: map[string]time.Time{}}
}

// connection returns the open connection, dialling one if needed.
func (a *amqpDead) connection(ctx context.Context) (*amqp.Connection, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conn != nil && !a.conn.IsClosed() {
		return a.conn, nil
	}
	ctx, cancel := context.WithTimeout(ctx, a.connectTimeout)
	defer cancel()
	conn, err := broker.NewCluster(a.nodes, a.tls).Dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to RabbitMQ: %w", err)
	}
	a.conn = conn
	return conn, nil
}

// Close closes the connection, if one is open.
func (a *amqpDead) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conn == nil {
		return nil
	}
	return a.conn.CloseDeadline(time.Now().Add(5 * time.Second))
}

// open checks that the route's dead-letter queue may be read, as "daemon
// dead" does (queuepolicy.CheckDead), and opens a session on it.
func (a *amqpDead) open(ctx context.Context, queue string) (*deadletter.Session, *amqp.Connection, error) {
	name := deadQueueOf(queue)
	a.mu.Lock()
	at, ok := a.checked[name]
	a.mu.Unlock()
	if !ok || time.Since(at) > checkTTL {
		if err := queuepolicy.CheckDead(ctx, a.api, name); err != nil {
			return nil, nil, err
		}
		a.mu.Lock()
		a.checked[name] = time.Now()
		a.mu.Unlock()
	}
	conn, err := a.connection(ctx)
	if err != nil {
		return nil, nil, err
	}
	s, err := deadletter.Open(conn, name)
	if err != nil {
		return nil, nil, err
	}
	return s, conn, nil
}

// closeSession closes s and joins its error to err.
func closeSession(s *deadletter.Session, err error) error {
	if cerr := s.Close(); cerr != nil {
		return errors.Join(err, cerr)
	}
	return err
}

func (a *amqpDead) Page(ctx context.Context, queue string, f deadletter.Filter, skip, limit, scan int) (page deadPage, err error) {
	start := time.Now()
	s, _, err := a.open(ctx, queue)
	if err != nil {
		return page, err
	}
	defer func() { err = closeSession(s, err) }()
	bound := skip + limit + 1 // one more than shown, to tell whether there are more
	if !f.IsZero() {
		bound = max(scan, bound)
	}
	s.Limit(bound)
	matched := 0
	res, err := deadletter.List(ctx, s, f, time.Now(), func(j deadletter.Job) error {
		matched++
		if matched <= skip {
			return nil
		}
		if len(page.Jobs) == limit {
			page.More = true
			return errEnough
		}
		page.Jobs = append(page.Jobs, j)
		return nil
	}, nil)
	if err != nil && !errors.Is(err, errEnough) {
		return page, err
	}
	page.Total, page.Read = res.Total, res.Read
	page.Capped = !f.IsZero() && !page.More && res.Read == bound && bound < res.Total
	page.Took = time.Since(start)
	return page, nil
}

func (a *amqpDead) Show(ctx context.Context, queue, id string) (job deadletter.Job, err error) {
	s, _, err := a.open(ctx, queue)
	if err != nil {
		return job, err
	}
	defer func() { err = closeSession(s, err) }()
	found := false
	_, err = deadletter.List(ctx, s, deadletter.Filter{IDs: []string{id}}, time.Now(), func(j deadletter.Job) error {
		job, found = j, true
		return errEnough
	}, nil)
	if err != nil && !errors.Is(err, errEnough) {
		return job, err
	}
	if !found {
		return job, errJobNotFound
	}
	return job, nil
}

func (a *amqpDead) Matching(ctx context.Context, queue string, f deadletter.Filter, most int) (jobs []deadletter.Job, matched int, err error) {
	s, _, err := a.open(ctx, queue)
	if err != nil {
		return nil, 0, err
	}
	defer func() { err = closeSession(s, err) }()
	res, err := deadletter.List(ctx, s, f, time.Now(), func(j deadletter.Job) error {
		if len(jobs) < most {
			j.Message.Body = nil // the confirmation shows no bodies
			jobs = append(jobs, j)
		}
		return nil
	}, nil)
	return jobs, res.Matched, err
}

func (a *amqpDead) Replay(ctx context.Context, queue string, f deadletter.Filter, rate deadletter.Rate, progress deadletter.Progress) (res deadletter.Result, err error) {
	s, conn, err := a.open(ctx, queue)
	if err != nil {
		return res, err
	}
	defer func() { err = closeSession(s, err) }()
	pub, err := broker.NewPublisher(conn)
	if err != nil {
		return res, fmt.Errorf("open publisher: %w", err)
	}
	defer pub.Close()
	return deadletter.Replay(ctx, s, deadletter.ReplayConfig{
		Filter:   f,
		Fallback: queue,
		Rate:     rate,
		Publish:  a.publishWith(pub),
		Progress: progress,
	})
}

// publishWith returns replay's Publish through pub, each job within
// PUBLISH_TIMEOUT; a channel the broker closed ends the replay.
func (a *amqpDead) publishWith(pub *broker.Publisher) deadletter.Publish {
	closed := pub.NotifyClose(make(chan *amqp.Error, 1))
	return func(ctx context.Context, queue string, msg amqp.Publishing) error {
		ctx, cancel := context.WithTimeout(ctx, a.publishTimeout)
		defer cancel()
		err := pub.Publish(ctx, queue, msg)
		select {
		case e, ok := <-closed:
			if ok && e != nil {
				return fmt.Errorf("publish to %q: channel closed: %w", queue, e)
			}
			return fmt.Errorf("publish to %q: %w", queue, amqp.ErrClosed)
		default:
		}
		return err
	}
}

func (a *amqpDead) Purge(ctx context.Context, queue string, f deadletter.Filter, progress deadletter.Progress) (res deadletter.Result, err error) {
	s, _, err := a.open(ctx, queue)
	if err != nil {
		return res, err
	}
	defer func() { err = closeSession(s, err) }()
	return deadletter.Purge(ctx, s, f, time.Now(), nil, progress)
}
