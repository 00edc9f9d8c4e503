package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ParseAddresses returns the URLs of a cluster's nodes: rawURL with its
// host and port replaced by each entry of addresses in turn, a
// comma-separated list of HOST:PORT (AMQP_ADDRESSES; spaces around entries
// are ignored, an IPv6 host goes in brackets). Everything else of rawURL,
// its scheme, user, password, vhost and query, is kept, so every node is
// reached with the same credentials and TLS settings. An empty addresses
// returns rawURL alone.
//
// Errors name the bad entry, never the password: an entry that is not
// HOST:PORT with a port from 1 to 65535, an empty entry, the same entry
// twice, or a rawURL that is not amqp:// or amqps://.
func ParseAddresses(rawURL, addresses string) ([]string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
		return nil, errors.New("the URL is not an amqp:// or amqps:// URL with a host")
	}
	if strings.TrimSpace(addresses) == "" {
		return []string{rawURL}, nil
	}
	var urls []string
	seen := map[string]bool{}
	for i, entry := range strings.Split(addresses, ",") {
		entry = strings.TrimSpace(entry)
		host, port, err := net.SplitHostPort(entry)
		if err != nil || host == "" {
			return nil, fmt.Errorf("entry %d %q: want HOST:PORT", i+1, entry)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("entry %d %q: port must be 1 to 65535", i+1, entry)
		}
		key := strings.ToLower(entry)
		if seen[key] {
			return nil, fmt.Errorf("entry %d %q: listed twice", i+1, entry)
		}
		seen[key] = true
		node := *u
		node.Host = net.JoinHostPort(host, port)
		urls = append(urls, node.String())
	}
	return urls, nil
}

// Cluster dials one of several brokers, the nodes of a RabbitMQ cluster,
// that share users, vhosts and (with quorum queues) queues. It is safe for
// concurrent use.
type Cluster struct {
	urls []string
	tls  *tls.Config
	// dial connects to one node: Dial, unless a test puts a stand-in.
	dial func(ctx context.Context, rawURL string, tlsConfig *tls.Config) (*amqp.Connection, error)

	mu   sync.Mutex
	at   int              // the node Dial tries first, unless last has closed
	last *amqp.Connection // the connection Dial last returned; nil if none
}

// NewCluster returns a Cluster of the nodes at urls, as ParseAddresses
// returns them, each dialed with tlsConfig as Dial does. A Cluster of no
// node fails every Dial.
func NewCluster(urls []string, tlsConfig *tls.Config) *Cluster {
	return &Cluster{urls: slices.Clone(urls), tls: tlsConfig, dial: Dial}
}

// Nodes returns the nodes' URLs, passwords redacted, for logs.
func (c *Cluster) Nodes() []string {
	nodes := make([]string, len(c.urls))
	for i, u := range c.urls {
		nodes[i] = Redact(u)
	}
	return nodes
}

// Node returns the node of the connection Dial last returned, as host:port,
// or "" before the first.
func (c *Cluster) Node() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil || len(c.urls) == 0 {
		return ""
	}
	u, err := url.Parse(c.urls[c.at])
	if err != nil {
		return ""
	}
	return u.Host
}

// Dial connects to one node, trying each at most once before ctx is done,
// in list order from a starting node and round again from the first. It
// starts with the node of the connection it last returned, so that the
// connections of one process (the daemon's consuming and publishing ones)
// share a node and one node's failure is one fault, not two. If that
// connection has closed since, it starts with the next node instead, so
// that reconnecting after a node went away tries another node first; and a
// node that fails an attempt moves the start past it.
//
// With a deadline, each attempt gets an equal share of the time left for
// the nodes not yet tried, so that one node that does not answer (a
// network partition swallows packets) leaves time for the others; a node
// that refuses at once leaves its share to the next.
//
// Each node's certificate is verified against that node's host name, as
// Dial does, unless tlsConfig or the URL's server_name_indication names
// one. With one node, Dial is broker.Dial and its errors are Dial's;
// otherwise the error is a *ClusterError listing every node tried with its
// error, passwords redacted.
func (c *Cluster) Dial(ctx context.Context) (*amqp.Connection, error) {
	switch len(c.urls) {
	case 0:
		return nil, errors.New("connect: no broker address configured")
	case 1:
		conn, err := c.dial(ctx, c.urls[0], c.tls)
		return c.record(0, conn, err)
	}

	c.mu.Lock()
	start := c.at
	if c.last != nil && c.last.IsClosed() {
		start = (c.at + 1) % len(c.urls)
		c.at, c.last = start, nil
	}
	c.mu.Unlock()

	var errs []error
	for k := range len(c.urls) {
		i := (start + k) % len(c.urls)
		actx, cancel := ctx, context.CancelFunc(func() {})
		if deadline, ok := ctx.Deadline(); ok {
			share := time.Until(deadline) / time.Duration(len(c.urls)-k)
			actx, cancel = context.WithTimeout(ctx, share)
		}
		conn, err := c.dial(actx, c.urls[i], c.tls)
		cancel()
		if err == nil {
			return c.record(i, conn, nil)
		}
		errs = append(errs, err)
		c.mu.Lock()
		if c.at == i {
			c.at = (i + 1) % len(c.urls)
		}
		c.mu.Unlock()
		if ctx.Err() != nil {
			break
		}
	}
	return nil, &ClusterError{Nodes: len(c.urls), Errs: errs, ctxErr: ctx.Err()}
}

// record remembers conn, from node i, as the last connection returned.
func (c *Cluster) record(i int, conn *amqp.Connection, err error) (*amqp.Connection, error) {
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.at, c.last = i, conn
	c.mu.Unlock()
	return conn, nil
}

// ClusterError is a Cluster's failure to reach any node.
type ClusterError struct {
	Nodes  int     // nodes in the cluster
	Errs   []error // one per node tried, in the order tried, each naming its node
	ctxErr error   // why ctx ended before every node was tried, if it did
}

func (e *ClusterError) Error() string {
	var b strings.Builder
	if len(e.Errs) < e.Nodes {
		fmt.Fprintf(&b, "no broker reached: %d of %d nodes tried before %v: ", len(e.Errs), e.Nodes, e.ctxErr)
	} else {
		fmt.Fprintf(&b, "no broker reached, %d nodes tried: ", e.Nodes)
	}
	for i, err := range e.Errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

// Unwrap returns each node's error, and the context's if it ended the
// attempts, for errors.Is and errors.As.
func (e *ClusterError) Unwrap() []error {
	if e.ctxErr != nil {
		return append(e.Errs[:len(e.Errs):len(e.Errs)], e.ctxErr)
	}
	return e.Errs
}
