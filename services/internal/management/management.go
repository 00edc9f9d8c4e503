// Package management reads what RabbitMQ's management HTTP API says of
// queues: their type, arguments and the policies in effect, which no AMQP
// method tells. It needs the user's "management" tag, the least that lets
// a user use the API, and the API's plugin (rabbitmq_management).
package management

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Off is the value of RABBITMQ_MANAGEMENT_URL that turns the API off.
const Off = "off"

// Ports of the management listener when RABBITMQ_MANAGEMENT_URL is not
// set: RabbitMQ's defaults for plain HTTP and for HTTPS.
const (
	defaultPort    = "15672"
	defaultTLSPort = "15671"
)

// Config holds the setting of the API's address, with its envconfig
// tag; a command embeds it (anonymously) in its configuration struct.
type Config struct {
	ManagementURL string `envconfig:"RABBITMQ_MANAGEMENT_URL" desc:"RabbitMQ's management HTTP API, read to check the policies and delivery limits in effect on fpmq's queues: http://HOST:15672 or https://..., with AMQP_URL's user and password unless the URL has its own (the user needs the management tag); off turns the checks off (default: AMQP_URL's host, http://HOST:15672, or https://HOST:15671 for amqps://)"`
}

// Client returns a client of the API that s names, for the vhost and user
// of amqpURL, or nil if s turns it off. Over https it verifies the
// server's certificate with tlsConfig's roots (nil: the system's) and
// presents its client certificate, if any: the AMQP connection's. Its
// errors start with RABBITMQ_MANAGEMENT_URL or AMQP_URL and never show a
// password.
func (s Config) Client(amqpURL string, tlsConfig *tls.Config) (*Client, error) {
	if strings.EqualFold(s.ManagementURL, Off) {
		return nil, nil
	}
	uri, err := amqp.ParseURI(amqpURL)
	if err != nil {
		return nil, errors.New("AMQP_URL: not an AMQP URL")
	}
	raw := s.ManagementURL
	if raw == "" {
		scheme, port := "http", defaultPort
		if uri.Scheme == "amqps" {
			scheme, port = "https", defaultTLSPort
		}
		raw = scheme + "://" + net.JoinHostPort(uri.Host, port)
	}
	base, err := url.Parse(raw)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("RABBITMQ_MANAGEMENT_URL: want http://HOST:PORT, https://HOST:PORT or %s, got %q", Off, redactRaw(raw))
	}
	c := &Client{VHost: uri.Vhost, user: uri.Username, password: uri.Password}
	if base.User != nil {
		c.user = base.User.Username()
		c.password, _ = base.User.Password()
		base.User = nil
	}
	base.Path = strings.TrimSuffix(base.Path, "/")
	base.RawQuery, base.Fragment = "", ""
	c.base = base
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if tlsConfig != nil {
		transport.TLSClientConfig = tlsConfig.Clone()
		// The certificate is checked against the API's host, which may not
		// be the AMQP connection's.
		transport.TLSClientConfig.ServerName = ""
	}
	c.http = &http.Client{Transport: transport, Timeout: requestTimeout}
	return c, nil
}

// requestTimeout bounds one request, whatever the caller's context.
const requestTimeout = 10 * time.Second

// Client reads the management API as one user, in one vhost.
type Client struct {
	// VHost is the vhost of the AMQP URL, whose queues the client reads.
	VHost string

	base           *url.URL // scheme, host and path prefix, no credentials
	user, password string
	http           *http.Client
}

// URL returns the API's address, for messages: it holds no password.
func (c *Client) URL() string { return c.base.String() }

// Errors of a request, by the API's answer; test them with errors.Is.
var (
	// ErrNotFound: the API has no such object (404), or, for a queue, the
	// queue does not exist.
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized: the API refused the user (401): a wrong password,
	// or a user without the management tag.
	ErrUnauthorized = errors.New("not authorized")
	// ErrForbidden: the user may not read the object (403).
	ErrForbidden = errors.New("forbidden")
)

// Queue is what the API says of one queue.
type Queue struct {
	Name  string `json:"name"`
	VHost string `json:"vhost"`
	// Type is classic, quorum or stream.
	Type string `json:"type"`
	// Policy and OperatorPolicy name the policy and the operator policy in
	// effect: RabbitMQ applies at most one of each, the one of highest
	// priority whose pattern matches. Empty: none.
	Policy         string `json:"policy"`
	OperatorPolicy string `json:"operator_policy"`
	// Effective is the definition in effect from the two policies merged,
	// by key ("delivery-limit", "dead-letter-exchange", ...). It is nil
	// when the answer has none: RabbitMQ reports it, and Policy and
	// OperatorPolicy, with the queue's statistics, a few seconds after the
	// queue was created or the broker started, and leaves them out before.
	Effective Definition `json:"effective_policy_definition"`
	// Arguments are the queue's optional arguments, by name
	// ("x-queue-type", "x-dead-letter-exchange", ...).
	Arguments Definition `json:"arguments"`
}

// Definition is a JSON object of settings: a policy's definition, or a
// queue's arguments. Numbers are float64, as encoding/json decodes them.
type Definition map[string]any

// UnmarshalJSON decodes an object, and an empty array or null as an empty
// Definition: some RabbitMQ versions write an empty definition as [].
func (d *Definition) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) || bytes.Equal(b, []byte("[]")) {
		*d = Definition{}
		return nil
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*d = m
	return nil
}

// Int returns the integer value of key, and whether d has one: a number,
// or a string of digits (as an operator may type one in the UI).
func (d Definition) Int(key string) (int64, bool) {
	switch v := d[key].(type) {
	case float64:
		return int64(v), v == float64(int64(v))
	case json.Number:
		n, err := v.Int64()
		return n, err == nil
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// String returns the string value of key, and whether d has one.
func (d Definition) String(key string) (string, bool) {
	v, ok := d[key].(string)
	return v, ok
}

// Queue returns the queue name of the client's vhost. The error wraps
// ErrNotFound if it does not exist.
func (c *Client) Queue(ctx context.Context, name string) (Queue, error) {
	var q Queue
	err := c.get(ctx, "/api/queues/"+url.PathEscape(c.VHost)+"/"+url.PathEscape(name), nil, &q)
	if err != nil {
		return q, fmt.Errorf("queue %q: %w", name, err)
	}
	return q, nil
}

// HeadTimestamps returns, by queue name, the timestamp property of the
// message at the head of each queue of the client's vhost that reports
// one: RabbitMQ gives head_message_timestamp (whole seconds since the Unix
// epoch) for classic queues whose head message has a timestamp, and for
// no quorum queue (rabbitmq-server issue 6813). One request for them all.
func (c *Client) HeadTimestamps(ctx context.Context) (map[string]time.Time, error) {
	var qs []struct {
		Name string `json:"name"`
		// A number, or "" (older versions) or absent when there is none.
		Head any `json:"head_message_timestamp"`
	}
	query := url.Values{"columns": {"name,head_message_timestamp"}}
	if err := c.get(ctx, "/api/queues/"+url.PathEscape(c.VHost), query, &qs); err != nil {
		return nil, fmt.Errorf("queues of vhost %q: %w", c.VHost, err)
	}
	heads := map[string]time.Time{}
	for _, q := range qs {
		if s, ok := q.Head.(float64); ok && s > 0 {
			heads[q.Name] = time.Unix(int64(s), 0)
		}
	}
	return heads, nil
}

// Queues returns every queue of the client's vhost, with the fields of
// Queue only: one request, however many queues fpmq has.
func (c *Client) Queues(ctx context.Context) ([]Queue, error) {
	var qs []Queue
	query := url.Values{"columns": {"name,vhost,type,policy,operator_policy,effective_policy_definition,arguments"}}
	if err := c.get(ctx, "/api/queues/"+url.PathEscape(c.VHost), query, &qs); err != nil {
		return nil, fmt.Errorf("queues of vhost %q: %w", c.VHost, err)
	}
	return qs, nil
}

// Version returns the broker's version, such as "4.0.5".
func (c *Client) Version(ctx context.Context) (string, error) {
	var o struct {
		Version string `json:"rabbitmq_version"`
	}
	if err := c.get(ctx, "/api/overview", nil, &o); err != nil {
		return "", fmt.Errorf("overview: %w", err)
	}
	return o.Version, nil
}

// PolicyPriority returns the priority of the policy name of the client's
// vhost, or of the operator policy name if operator is set. Reading
// policies takes the policymaker tag, which fpmq's users do not have: the
// error then wraps ErrUnauthorized or ErrForbidden.
func (c *Client) PolicyPriority(ctx context.Context, name string, operator bool) (int, error) {
	kind := "policies"
	if operator {
		kind = "operator-policies"
	}
	var p struct {
		Priority int `json:"priority"`
	}
	if err := c.get(ctx, "/api/"+kind+"/"+url.PathEscape(c.VHost)+"/"+url.PathEscape(name), nil, &p); err != nil {
		return 0, fmt.Errorf("policy %q: %w", name, err)
	}
	return p.Priority, nil
}

// maxBody bounds an answer's size: the queues of a vhost, with the few
// columns asked for, take a few hundred bytes each.
const maxBody = 32 << 20

// get asks for path (under the base URL) with query and decodes the JSON
// answer into v.
func (c *Client) get(ctx context.Context, path string, query url.Values, v any) error {
	// path is escaped already: a vhost "/" is %2F in it.
	target := c.base.String() + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(c.user, c.password)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		// A *url.Error quotes the URL, which holds no password here.
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusUnauthorized:
		return fmt.Errorf("%w (%s): check the user and password, and give the user the management tag", ErrUnauthorized, answer(body))
	case http.StatusForbidden:
		return fmt.Errorf("%w (%s)", ErrForbidden, answer(body))
	default:
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, answer(body))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: not the management API's JSON (%w)", path, err)
	}
	return nil
}

// answer returns the reason of an error answer of the API
// ({"error":"...","reason":"..."}), or the start of its body.
func answer(body []byte) string {
	var e struct{ Error, Reason string }
	if json.Unmarshal(body, &e) == nil && (e.Error != "" || e.Reason != "") {
		return strings.TrimSpace(e.Error + ": " + e.Reason)
	}
	const most = 200
	s := strings.TrimSpace(string(body))
	if len(s) > most {
		s = s[:most] + "..."
	}
	return s
}

// redactRaw returns raw with its password hidden, if it parses as a URL.
func redactRaw(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}
