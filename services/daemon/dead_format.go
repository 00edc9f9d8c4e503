package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/deadletter"
)

// Widths of the shortened columns of a list line, in characters.
const (
	nameWidth    = 24
	errorWidth   = 40
	payloadWidth = 40
)

// listWriter writes one line per dead job: a table for people, or one JSON
// object per line for scripts. Call Flush at the end: the table is aligned
// over all its lines.
type listWriter struct {
	tw      *tabwriter.Writer // nil for JSON
	json    *json.Encoder     // nil for the table
	now     time.Time         // ages are counted up to it
	started bool              // the table's heading is written
}

// newListWriter returns a listWriter to w, in JSON if asJSON is set. Ages
// are counted up to now.
func newListWriter(w io.Writer, asJSON bool, now time.Time) *listWriter {
	lw := &listWriter{now: now}
	if asJSON {
		lw.json = json.NewEncoder(w)
		lw.json.SetEscapeHTML(false)
	} else {
		lw.tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	}
	return lw
}

// Write writes the line of j. The table's first call writes its heading.
func (lw *listWriter) Write(j deadletter.Job) error {
	if lw.json != nil {
		return lw.json.Encode(summaryOf(j, lw.now))
	}
	if !lw.started {
		lw.started = true
		fmt.Fprintln(lw.tw, "ID\tJOB\tREASON\tATTEMPTS\tSTATUS\tAGE\tERROR\tPAYLOAD")
	}
	_, err := fmt.Fprintf(lw.tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n",
		orDash(shorten(j.ID, 64)), orDash(shorten(j.Name, nameWidth)), orDash(shorten(j.Reason, nameWidth)),
		j.Attempts, j.LastStatus, formatAge(j.Age(lw.now)),
		orDash(shorten(j.LastError, errorWidth)), orDash(preview(j.Message.Body, payloadWidth)))
	return err
}

// Flush writes out the table.
func (lw *listWriter) Flush() error {
	if lw.tw == nil {
		return nil
	}
	return lw.tw.Flush()
}

// summary is a dead job as list --json writes it.
type summary struct {
	ID         string     `json:"id"`
	Job        string     `json:"job"`
	Reason     string     `json:"reason"`
	Attempts   int        `json:"attempts"`
	LastStatus int        `json:"last_status"`
	LastError  string     `json:"last_error"`
	Queue      string     `json:"queue"`
	Timestamp  *time.Time `json:"timestamp"`   // null without one
	AgeSeconds *int64     `json:"age_seconds"` // null without a timestamp
	Size       int        `json:"size"`        // of the body, in bytes
	// Body is the body if it is UTF-8 text; otherwise BodyBase64 holds it.
	Body       *string `json:"body,omitempty"`
	BodyBase64 []byte  `json:"body_base64,omitempty"`
}

func summaryOf(j deadletter.Job, now time.Time) summary {
	s := summary{
		ID: j.ID, Job: j.Name, Reason: j.Reason, Attempts: j.Attempts,
		LastStatus: j.LastStatus, LastError: j.LastError, Queue: j.Queue,
		Size: len(j.Message.Body),
	}
	if !j.Timestamp.IsZero() {
		ts := j.Timestamp.UTC()
		age := int64(j.Age(now) / time.Second)
		s.Timestamp, s.AgeSeconds = &ts, &age
	}
	if utf8.Valid(j.Message.Body) {
		body := string(j.Message.Body)
		s.Body = &body
	} else {
		s.BodyBase64 = j.Message.Body
	}
	return s
}

// writeShow writes the whole of j: every property, every header and the
// body. For people, control characters are escaped; in JSON (asJSON),
// the body is a string if it is UTF-8, else base64 in body_base64, and the
// headers keep their AMQP types as far as JSON has them.
func writeShow(w io.Writer, j deadletter.Job, asJSON bool, now time.Time) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return enc.Encode(detailOf(j, now))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "properties")
	for _, p := range properties(j.Message) {
		v := escape(p.value)
		if p.name == "timestamp" {
			v += " (" + formatAge(j.Age(now)) + " ago)"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", p.name, v)
	}
	fmt.Fprintln(tw, "headers")
	for _, k := range slices.Sorted(maps.Keys(j.Message.Headers)) {
		fmt.Fprintf(tw, "  %s\t%s\n", escape(k), formatValue(j.Message.Headers[k], false))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	body := j.Message.Body
	fmt.Fprintf(w, "body (%d bytes)\n", len(body))
	text := bodyText(body)
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	_, err := io.WriteString(w, text)
	return err
}

// detail is a dead job as show --json writes it.
type detail struct {
	summary
	Properties map[string]string `json:"properties"`
	Headers    amqp.Table        `json:"headers"`
}

func detailOf(j deadletter.Job, now time.Time) detail {
	d := detail{summary: summaryOf(j, now), Properties: map[string]string{}, Headers: j.Message.Headers}
	for _, p := range properties(j.Message) {
		d.Properties[p.name] = p.value
	}
	if d.Headers == nil {
		d.Headers = amqp.Table{}
	}
	return d
}

type property struct{ name, value string }

// properties lists the AMQP properties of d that are set, by their names
// in the AMQP specification.
func properties(d amqp.Delivery) []property {
	var ps []property
	add := func(name, value string) {
		if value != "" {
			ps = append(ps, property{name, value})
		}
	}
	add("message-id", d.MessageId)
	add("type", d.Type)
	if !d.Timestamp.IsZero() {
		add("timestamp", d.Timestamp.UTC().Format(time.RFC3339))
	}
	add("content-type", d.ContentType)
	add("content-encoding", d.ContentEncoding)
	if d.DeliveryMode != 0 {
		add("delivery-mode", strconv.Itoa(int(d.DeliveryMode)))
	}
	if d.Priority != 0 {
		add("priority", strconv.Itoa(int(d.Priority)))
	}
	add("correlation-id", d.CorrelationId)
	add("reply-to", d.ReplyTo)
	add("expiration", d.Expiration)
	add("user-id", d.UserId)
	add("app-id", d.AppId)
	return ps
}

// shorten returns s on one line, for a column: runs of white space and
// control characters become one space, invalid UTF-8 becomes U+FFFD, and
// past width characters it is cut, ending with "…".
func shorten(s string, width int) string {
	var b strings.Builder
	space := false
	for _, r := range strings.TrimSpace(s) {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		if !unicode.IsPrint(r) {
			r = utf8.RuneError
		}
		b.WriteRune(r)
	}
	out := b.String()
	if utf8.RuneCountInString(out) <= width {
		return out
	}
	runes := []rune(out)
	return strings.TrimRight(string(runes[:max(width-1, 0)]), " ") + "…"
}

// preview returns the start of body for a column: shorten of the text, or
// "(N bytes, binary)" if body is not UTF-8.
func preview(body []byte, width int) string {
	if !utf8.Valid(body) {
		return fmt.Sprintf("(%d bytes, binary)", len(body))
	}
	return shorten(string(body), width)
}

// formatAge returns d in at most two units ("42s", "12m", "3h12m",
// "2d4h"), or "-" if d is negative (no timestamp).
func formatAge(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d < 0:
		return "-"
	case d < time.Minute:
		return fmt.Sprintf("%ds", d/time.Second)
	case d < time.Hour:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d < day:
		return fmt.Sprintf("%dh%02dm", d/time.Hour, d%time.Hour/time.Minute)
	default:
		return fmt.Sprintf("%dd%02dh", d/day, d%day/time.Hour)
	}
}

// bodyText returns body for people: as it is if it is printable UTF-8
// text (new lines and tabs allowed), else quoted as a Go string.
func bodyText(body []byte) string {
	if utf8.Valid(body) {
		printable := true
		for _, r := range string(body) {
			if r != '\n' && r != '\t' && r != '\r' && !unicode.IsPrint(r) && !unicode.IsSpace(r) {
				printable = false
				break
			}
		}
		if printable {
			return string(body)
		}
	}
	return strconv.Quote(string(body))
}

// escape returns s with its non-printable characters escaped, as Go would
// in a quoted string, but without the quotes.
func escape(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsPrint(r) || r == ' ':
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}

// formatValue writes an AMQP field value for people. Within tables and
// arrays (nested), strings are quoted.
func formatValue(v any, nested bool) string {
	switch v := v.(type) {
	case nil:
		return "(void)"
	case string:
		if nested {
			return strconv.Quote(v)
		}
		return escape(v)
	case []byte:
		return "bytes " + strconv.Quote(string(v))
	case time.Time:
		return v.UTC().Format(time.RFC3339)
	case amqp.Decimal:
		return new(big.Rat).SetFrac(big.NewInt(int64(v.Value)), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(v.Scale)), nil)).FloatString(int(v.Scale))
	case amqp.Table:
		parts := make([]string, 0, len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			parts = append(parts, strconv.Quote(k)+": "+formatValue(v[k], true))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			parts = append(parts, formatValue(e, true))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	default:
		return fmt.Sprint(v)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
