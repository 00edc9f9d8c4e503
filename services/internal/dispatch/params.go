package dispatch

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/fastcgi"
)

// omittedParam names, for the worker, the headers that were left out.
const omittedParam = "HTTP_X_FPMQ_OMITTED_HEADERS"

// appendJobParams adds what the worker may know about its job, each value
// derived from the message and its delivery, never choosing what runs:
// attempt is this attempt's number from 1, maxAttempts the number the job
// gets in all, deadline the attempt's end. m's message id is its identity
// (Handle sets it). Params of properties the message does not have are left
// out. The README's "What the worker sees" table documents each one.
func appendJobParams(params []fastcgi.Param, m amqp.Delivery, queue string, attempt, maxAttempts int, deadline time.Time) []fastcgi.Param {
	add := func(name, value string) {
		if value != "" {
			params = append(params, fastcgi.Param{Name: name, Value: cgiValue(value)})
		}
	}
	add("HTTP_X_MESSAGE_ID", m.MessageId)
	add("HTTP_X_ATTEMPT", strconv.Itoa(attempt))
	add("HTTP_X_MAX_ATTEMPTS", strconv.Itoa(maxAttempts))
	add("HTTP_X_REDELIVERED", boolParam(m.Redelivered))
	if !m.Timestamp.IsZero() {
		add("HTTP_X_TIMESTAMP", strconv.FormatInt(m.Timestamp.Unix(), 10))
	}
	if !deadline.IsZero() {
		add("HTTP_X_DEADLINE", strconv.FormatFloat(float64(deadline.UnixMilli())/1000, 'f', 3, 64))
	}
	add("HTTP_X_JOB_NAME", m.Type)
	add("HTTP_X_CORRELATION_ID", m.CorrelationId)
	add("HTTP_X_REPLY_TO", m.ReplyTo)
	add("HTTP_X_APP_ID", m.AppId)
	add("HTTP_X_CONTENT_TYPE", m.ContentType)
	add("HTTP_X_CONTENT_ENCODING", m.ContentEncoding)
	add("HTTP_X_PRIORITY", strconv.Itoa(int(m.Priority)))
	add("HTTP_X_EXCHANGE", m.Exchange)
	add("HTTP_X_ROUTING_KEY", m.RoutingKey)
	add("HTTP_X_QUEUE", queue)
	// Quorum queues count deliveries themselves (RabbitMQ 3.x: a header
	// x-delivery-count on redeliveries).
	if n, ok := m.Headers["x-delivery-count"]; ok {
		if v, ok := scalar(n); ok {
			add("HTTP_X_DELIVERY_COUNT", v)
		}
	}
	return params
}

// appendHeaderParams passes the message's AMQP headers to the worker as
// HTTP_X_HEADER_<NAME> params: data only, with names reduced to [A-Z0-9_]
// and values stripped of control characters. Headers that are not scalars
// (tables, arrays) are left out. Params are sorted by name for a stable
// order. A header too large for one FastCGI record, which php-fpm could
// not read, is left out too: its name is returned, for appendOmitted.
func appendHeaderParams(params []fastcgi.Param, headers amqp.Table) ([]fastcgi.Param, []string) {
	if len(headers) == 0 {
		return params, nil
	}
	var omitted []string
	start := len(params)
	for k, v := range headers {
		value, ok := scalar(v)
		if !ok {
			continue
		}
		p := fastcgi.Param{Name: "HTTP_X_HEADER_" + cgiName(k), Value: cgiValue(value)}
		if fastcgi.PairSize(p.Name, p.Value) > fastcgi.MaxPairSize {
			omitted = append(omitted, cgiValue(k))
			continue
		}
		params = append(params, p)
	}
	added := params[start:]
	sort.Slice(added, func(i, j int) bool { return added[i].Name < added[j].Name })
	return params, omitted
}

// appendMessageParam adds HTTP_X_FPMQ_MESSAGE, the JSON of m's properties
// and headers (messageJSON). When it is too large for one FastCGI record it
// is left out, and "x-fpmq-message" is added to omitted, which is
// returned.
func appendMessageParam(params []fastcgi.Param, m amqp.Delivery, omitted []string) ([]fastcgi.Param, []string) {
	js, err := messageJSON(m)
	if err != nil || fastcgi.PairSize(messageParam, string(js)) > fastcgi.MaxPairSize {
		return params, append(omitted, messageOmitted)
	}
	return append(params, fastcgi.Param{Name: messageParam, Value: string(js)}), omitted
}

// appendOmitted lists for the worker, sorted and comma-separated in
// HTTP_X_FPMQ_OMITTED_HEADERS, the names of the headers left out (and
// "x-fpmq-message" when HTTP_X_FPMQ_MESSAGE was); nothing when there are
// none. A list too long for one record says how many there are instead.
func appendOmitted(params []fastcgi.Param, omitted []string) []fastcgi.Param {
	if len(omitted) == 0 {
		return params
	}
	sorted := slices.Sorted(slices.Values(omitted))
	list := strings.Join(sorted, ",")
	if fastcgi.PairSize(omittedParam, list) > fastcgi.MaxPairSize {
		list = strconv.Itoa(len(sorted)) + " headers"
	}
	return append(params, fastcgi.Param{Name: omittedParam, Value: list})
}

// scalar returns v as a param's text, if v is a string, bytes, a bool or a
// number of any type AMQP has; tables, arrays, timestamps and decimals are
// not scalars.
func scalar(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case []byte:
		return string(v), true
	case bool:
		return boolParam(v), true
	case float32:
		return strconv.FormatFloat(float64(v), 'g', -1, 32), true
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), true
	}
	return integerText(v)
}

// cgiName upper-cases name and turns every byte outside [A-Z0-9] into '_'.
func cgiName(name string) string {
	b := []byte(name)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		default:
			b[i] = '_'
		}
	}
	return string(b)
}

// cgiValue drops control characters, which have no business in a param.
func cgiValue(v string) string {
	if strings.IndexFunc(v, isControl) < 0 {
		return v
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return -1
		}
		return r
	}, v)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func boolParam(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
