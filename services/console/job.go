package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/deadletter"
	"github.com/fpmq/fpmq/services/internal/outcome"
)

// knownReasons are the dead-letter reasons the daemon writes, offered
// by the reason filter.
var knownReasons = outcome.Reasons()

// field is one name and value of a job's properties or headers.
type field struct{ Name, Value string }

// death is one of RabbitMQ's x-death entries: a time the broker moved the
// message from a queue, and why (a retry or delay queue's expiry, a
// delivery limit).
type death struct{ Queue, Reason, Count, Time string }

// shownJob is a dead job as its page shows it, whole.
type shownJob struct {
	deadletter.Job
	Age        string
	Properties []field
	Headers    []field
	Deaths     []death
	Body       string
	BodyBase64 bool // Body is base64: the body is not UTF-8
	BodyBytes  int
}

// showJob turns j into what its page shows: every property, every header
// (sorted by name), the broker's deaths in order, and the body, as text
// when it is UTF-8 (indented when it is JSON) and as base64 otherwise.
func showJob(j deadletter.Job, now time.Time) shownJob {
	d := j.Message
	sj := shownJob{Job: j, Age: "n/a", BodyBytes: len(d.Body)}
	if age := j.Age(now); age >= 0 {
		sj.Age = age.Round(time.Second).String()
	}
	prop := func(name, v string) {
		if v != "" {
			sj.Properties = append(sj.Properties, field{name, v})
		}
	}
	prop("message_id", d.MessageId)
	prop("type", d.Type)
	prop("content_type", d.ContentType)
	prop("content_encoding", d.ContentEncoding)
	prop("correlation_id", d.CorrelationId)
	prop("reply_to", d.ReplyTo)
	prop("app_id", d.AppId)
	prop("user_id", d.UserId)
	prop("expiration", d.Expiration)
	if !d.Timestamp.IsZero() {
		prop("timestamp", d.Timestamp.UTC().Format(time.RFC3339))
	}
	if d.Priority != 0 {
		prop("priority", strconv.Itoa(int(d.Priority)))
	}
	prop("delivery_mode", strconv.Itoa(int(d.DeliveryMode)))
	names := make([]string, 0, len(d.Headers))
	for k := range d.Headers {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if k == "x-death" {
			sj.Deaths = deaths(d.Headers[k])
			continue
		}
		sj.Headers = append(sj.Headers, field{k, headerText(d.Headers[k])})
	}
	sj.Body, sj.BodyBase64 = bodyText(d.Body)
	return sj
}

// bodyText returns a body as text, JSON indented, or as base64.
func bodyText(b []byte) (string, bool) {
	if !utf8.Valid(b) {
		return base64.StdEncoding.EncodeToString(b), true
	}
	var v any
	if json.Unmarshal(b, &v) == nil {
		if out, err := json.MarshalIndent(v, "", "  "); err == nil {
			return string(out), false
		}
	}
	return string(b), false
}

// headerText shows a header's value: text as itself, anything else as
// Go prints it.
func headerText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		if utf8.Valid(x) {
			return string(x)
		}
		return "base64:" + base64.StdEncoding.EncodeToString(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	}
	return fmt.Sprint(v)
}

// deaths reads RabbitMQ's x-death header: an array of tables.
func deaths(v any) []death {
	list, _ := v.([]any)
	var out []death
	for _, e := range list {
		t, ok := e.(amqp.Table)
		if !ok {
			continue
		}
		out = append(out, death{
			Queue: headerText(t["queue"]), Reason: headerText(t["reason"]),
			Count: headerText(t["count"]), Time: headerText(t["time"]),
		})
	}
	return out
}
