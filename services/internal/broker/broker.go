// Package broker holds what the caller and the daemon must agree on about
// RabbitMQ: how to connect and how the job queue is declared.
package broker

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ContentType is the content type of every job message.
const ContentType = "application/json"

// Dial connects to the broker at rawURL. The TCP connection, the TLS
// handshake if any and the AMQP handshake must all complete before ctx is
// done.
//
// An amqps:// URL is secured with tlsConfig, or, if it is nil, with the
// library's default: the system's roots and TLS 1.2 or later. Dial does not
// modify tlsConfig; it verifies the broker's certificate against the URL's
// host unless tlsConfig names a ServerName. A tlsConfig with an amqp:// URL
// is an error rather than a plain connection the caller did not mean.
func Dial(ctx context.Context, rawURL string, tlsConfig *tls.Config) (*amqp.Connection, error) {
	uri, err := amqp.ParseURI(rawURL)
	if err != nil {
		// A *url.Error quotes the whole URL, password included.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("connect to %s: invalid AMQP URL: %w", Redact(rawURL), err)
	}
	if tlsConfig != nil {
		if uri.Scheme != "amqps" {
			return nil, fmt.Errorf("connect to %s: TLS configured, but the URL is not amqps://", Redact(rawURL))
		}
		// A copy: the library sets ServerName in the config it is given,
		// and the caller's may serve other connections at the same time.
		tlsConfig = tlsConfig.Clone()
		if tlsConfig.ServerName == "" {
			tlsConfig.ServerName = cmp.Or(uri.ServerName, uri.Host)
		}
	}
	// The library's handshake takes no context: ctx reaches it through the
	// socket's deadline, set from ctx's deadline and moved to now when ctx
	// is cancelled. Dial waits for the library either way, so that nothing
	// it started outlives the call.
	var interrupt func() bool // stops moving the deadline; false if it was moved
	conn, err := amqp.DialConfig(rawURL, amqp.Config{
		Heartbeat:       10 * time.Second,
		Locale:          "en_US",
		TLSClientConfig: tlsConfig,
		Dial: func(network, addr string) (net.Conn, error) {
			var d net.Dialer
			nc, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// The library clears the deadline once the connection is open.
			if deadline, ok := ctx.Deadline(); ok {
				if err := nc.SetDeadline(deadline); err != nil {
					nc.Close()
					return nil, err
				}
			}
			interrupt = context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
			return nc, nil
		},
	})
	if interrupt != nil && !interrupt() && err == nil {
		// Cancelled as the handshake ended: the deadline may have hit the
		// open connection.
		conn.Close()
		err = ctx.Err()
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connect to %s: %w", Redact(rawURL), ctx.Err())
		}
		if hint := dialHint(uri, tlsConfig, err); hint != "" {
			return nil, fmt.Errorf("connect to %s: %s: %w", Redact(rawURL), hint, err)
		}
		return nil, fmt.Errorf("connect to %s: %w", Redact(rawURL), err)
	}
	return conn, nil
}

// dialHint says what probably went wrong when err, from dialing uri with
// tlsConfig, names only a symptom; else it returns "".
//
// A broker that requires a client certificate (RabbitMQ's
// ssl_options.verify = verify_peer with fail_if_no_peer_cert = true) and
// gets none checks it only after the client has finished its side of a
// TLS 1.3 handshake: the client then sees an alert, or just a reset or the
// end of the stream where the broker's first AMQP frame should be.
func dialHint(uri amqp.URI, tlsConfig *tls.Config, err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound,
		errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("no broker at %s:%d (is RabbitMQ running, and is the host right?)", uri.Host, uri.Port)
	case uri.Scheme != "amqps" || !droppedTLS(err):
		return ""
	case tlsConfig != nil && (len(tlsConfig.Certificates) > 0 || tlsConfig.GetClientCertificate != nil):
		return "the broker closed the TLS connection: it may not accept the client certificate (AMQP_CERT_FILE), or not trust its CA"
	}
	return "the broker closed the TLS connection: it may require a client certificate (AMQP_CERT_FILE/AMQP_KEY_FILE)"
}

// droppedTLS tells whether err is a peer that ended a TLS connection
// during or right after the handshake: a reset, the end of the stream, or
// an alert about the handshake or the certificates. The AMQP library
// reports what happened while it read the broker's first frame only as
// text (a 501 frame error), so that text is checked too; and if that
// happened before it sent its protocol header, it reports only that the
// connection is closed (amqp.ErrClosed).
func droppedTLS(err error) bool {
	var ae *amqp.Error
	if errors.Is(err, amqp.ErrClosed) {
		return true
	}
	if errors.As(err, &ae) && ae.Code == amqp.FrameError {
		r := ae.Reason
		return strings.Contains(r, "connection reset by peer") || r == "EOF" || strings.HasSuffix(r, ": EOF") ||
			strings.Contains(r, "unexpected EOF") || isCertAlert(r)
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isCertAlert(err.Error())
}

// isCertAlert tells whether msg holds a TLS alert that a peer sends when it
// refuses the handshake or a certificate.
func isCertAlert(msg string) bool {
	for _, alert := range []string{
		"tls: certificate required", "tls: bad certificate", "tls: handshake failure",
		"tls: unknown certificate authority", "tls: unsupported certificate", "tls: certificate unknown",
	} {
		if strings.Contains(msg, "remote error: "+alert) {
			return true
		}
	}
	return false
}

// Queue types, as RabbitMQ's x-queue-type argument names them.
const (
	QueueClassic = "classic"
	QueueQuorum  = "quorum"
)

// CheckQueueType returns an error unless t is QueueClassic or QueueQuorum.
func CheckQueueType(t string) error {
	if t != QueueClassic && t != QueueQuorum {
		return fmt.Errorf("queue type %q: want %s or %s", t, QueueClassic, QueueQuorum)
	}
	return nil
}

// DeclareQueue declares the durable queue name of the given type, with no
// other argument. A queue that exists with other arguments is an error
// wrapping ErrTopology that says which argument differs.
func DeclareQueue(ch *amqp.Channel, name, queueType string) (amqp.Queue, error) {
	return declare(ch, name, queueArgs(queueType))
}

// DeclareJobQueue declares the job queue name. Every program that touches
// the job queue declares it through here, so that the arguments always
// agree. maxPriority above 0 makes a classic queue a priority queue
// (x-max-priority); a quorum queue takes no such argument (RabbitMQ 4 gives
// every quorum queue two priorities, RabbitMQ 3 none), and 0 leaves the
// queue as older versions declared it.
//
// deadQueue, if not empty, is the queue's dead-letter target, given as
// arguments (x-dead-letter-exchange "", x-dead-letter-routing-key
// deadQueue): a job the broker drops (a delivery limit, a length limit, a
// TTL) then goes to deadQueue whatever policy applies, since RabbitMQ
// prefers these arguments to a policy's. Declaring them takes read on the
// queue and write on the default exchange: the daemon gives them; the
// caller, which may not read, gives "". The dead-letter arguments are the
// only ones that may differ from those of an existing queue: a queue
// declared without them (by older versions, or the caller), or with
// others, is used as it is.
//
// It declares on ch, or on a channel it opens from conn if ch is nil; a
// refusal closes that channel, and another try opens another. It returns
// the channel of the last try: open, and the queue declared on it, or on
// failure closed by the broker, or nil if none could be opened.
func DeclareJobQueue(conn *amqp.Connection, ch *amqp.Channel, name, queueType string, maxPriority int, deadQueue string) (*amqp.Channel, amqp.Queue, error) {
	args := queueArgs(queueType)
	if maxPriority > 0 && queueType == QueueClassic {
		args["x-max-priority"] = int64(maxPriority)
	}
	if deadQueue == "" {
		return declareFirst(conn, ch, name, args, nil)
	}
	withDLX := maps.Clone(args)
	withDLX["x-dead-letter-exchange"] = ""
	withDLX["x-dead-letter-routing-key"] = deadQueue
	return declareFirst(conn, ch, name, withDLX, args, nil)
}

// DeadDeliveryLimit is the delivery limit of a quorum dead-letter queue
// (x-delivery-limit, and the fpmq-QUEUE-dead policy of the rabbitmq
// image): "daemon dead" returns every message it reads, which a quorum
// queue counts as a delivery, and a dead letter must never be dropped for
// it. RabbitMQ 3 knows no -1 for "no limit"; a million reads is none.
const DeadDeliveryLimit = 1_000_000

// DeclareDeadQueue declares the dead-letter queue name, on ch or channels
// from conn as DeclareJobQueue does. A quorum queue gets x-delivery-limit
// DeadDeliveryLimit, which holds unless a policy sets a lower limit
// (RabbitMQ applies the lower of the two); a queue that exists without it,
// or with another, is used as it is.
func DeclareDeadQueue(conn *amqp.Connection, ch *amqp.Channel, name, queueType string) (*amqp.Channel, amqp.Queue, error) {
	args := queueArgs(queueType)
	if queueType != QueueQuorum {
		return declareFirst(conn, ch, name, args)
	}
	lifted := maps.Clone(args)
	lifted["x-delivery-limit"] = int64(DeadDeliveryLimit)
	return declareFirst(conn, ch, name, lifted, args, nil)
}

// declareFirst declares the queue name with the first of tries that
// RabbitMQ accepts; a nil try is a passive declaration, which takes the
// queue as it is. The first try is on ch (if not nil), each other on a
// channel it opens from conn, as a refused declaration closes its
// channel. The next try is made only when RabbitMQ refused the previous
// one for a dead-letter argument (x-dead-letter-*, x-delivery-limit): any
// other difference, such as the queue type, is an error wrapping
// ErrTopology, as it always was. It returns the channel of the last try,
// as DeclareJobQueue says.
func declareFirst(conn *amqp.Connection, ch *amqp.Channel, name string, tries ...amqp.Table) (*amqp.Channel, amqp.Queue, error) {
	var err error
	for i, args := range tries {
		if ch == nil || ch.IsClosed() {
			if ch, err = conn.Channel(); err != nil {
				return nil, amqp.Queue{}, fmt.Errorf("declare queue %q: open channel: %w", name, err)
			}
		}
		var q amqp.Queue
		if args == nil {
			q, err = ch.QueueDeclarePassive(name,
				true,  // durable
				false, // auto-delete
				false, // exclusive
				false, // no-wait
				nil)
			if err != nil {
				err = fmt.Errorf("declare queue %q: %w", name, err)
			}
		} else {
			q, err = declare(ch, name, args)
		}
		if err == nil || i == len(tries)-1 || !deadLetterArgRefused(err) {
			return ch, q, err
		}
	}
	return ch, amqp.Queue{}, err
}

// deadLetterArgRefused tells whether err, from declare, is RabbitMQ's
// refusal of a declaration for an inequivalent dead-letter argument. Its
// text, the same on RabbitMQ 3 and 4, names the argument: "inequivalent
// arg 'x-dead-letter-exchange' for queue ...".
func deadLetterArgRefused(err error) bool {
	if !errors.Is(err, ErrTopology) {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "arg 'x-dead-letter-") || strings.Contains(msg, "arg 'x-delivery-limit'")
}

// MaxPriority is the highest AMQP_MAX_PRIORITY: AMQP priorities are one
// byte, and RabbitMQ takes no more.
const MaxPriority = 255

// queueArgs returns the arguments that make a queue of type t. A classic
// queue gets none, so that it matches one declared by older versions.
func queueArgs(t string) amqp.Table {
	if t == QueueQuorum {
		return amqp.Table{"x-queue-type": QueueQuorum}
	}
	return amqp.Table{}
}

// ErrTopology means a queue exists with other arguments than ours. Retrying
// cannot fix it: an operator must delete the queue or change the setting.
var ErrTopology = errors.New("queue exists with other arguments")

func declare(ch *amqp.Channel, name string, args amqp.Table) (amqp.Queue, error) {
	q, err := ch.QueueDeclare(
		name,
		true,  // durable
		false, // auto-delete
		false, // exclusive
		false, // no-wait
		args,
	)
	if err != nil {
		var ae *amqp.Error
		if errors.As(err, &ae) && ae.Code == amqp.PreconditionFailed {
			// RabbitMQ's text names the argument and both values.
			return q, fmt.Errorf("declare queue %q: %w: %s; delete the queue or change the setting", name, ErrTopology, ae.Reason)
		}
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
