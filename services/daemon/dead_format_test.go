package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/deadletter"
	"github.com/fpmq/fpmq/services/internal/outcome"
)

// testNow is the time the tests count ages up to.
var testNow = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

// listedJob returns a dead job as deadletter.JobOf reads what the daemon
// dead-letters, published age ago.
func listedJob(id, name, reason string, age time.Duration) deadletter.Job {
	return deadletter.Job{
		ID: id, Name: name, Reason: reason, Attempts: 5, LastStatus: 500, LastError: "worker answered 500",
		Queue: "commands", Timestamp: testNow.Add(-age), Message: amqp.Delivery{Body: []byte(`{"number":42}`)},
	}
}

func TestShorten(t *testing.T) {
	tests := []struct {
		in    string
		width int
		want  string
	}{
		{"short", 10, "short"},
		{"  line one\nline two\t\ttabs  ", 40, "line one line two tabs"},
		{"0123456789abc", 10, "012345678…"},
		{"word word word", 6, "word…"}, // no space before the ellipsis
		{"é€𝄞 wide", 4, "é€𝄞…"},
		{"bell\a and \x1b[31mescape", 40, "bell and [31mescape"},
		{"bad \xff byte", 40, "bad \uFFFD byte"},
		{"", 5, ""},
	}
	for _, tt := range tests {
		if got := shorten(tt.in, tt.width); got != tt.want {
			t.Errorf("shorten(%q, %d) = %q, want %q", tt.in, tt.width, got, tt.want)
		}
	}
}

func TestPreview(t *testing.T) {
	if got := preview([]byte(`{"number":42}`), 40); got != `{"number":42}` {
		t.Errorf("preview of JSON = %q", got)
	}
	if got := preview([]byte{0xff, 0xfe, 0}, 40); got != "(3 bytes, binary)" {
		t.Errorf("preview of binary = %q", got)
	}
}

func TestFormatAge(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-1, "-"},
		{0, "0s"},
		{59 * time.Second, "59s"},
		{12*time.Minute + 30*time.Second, "12m"},
		{3*time.Hour + 5*time.Minute, "3h05m"},
		{50 * time.Hour, "2d02h"},
	}
	for _, tt := range tests {
		if got := formatAge(tt.d); got != tt.want {
			t.Errorf("formatAge(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestListWriterTable(t *testing.T) {
	var b bytes.Buffer
	lw := newListWriter(&b, false, testNow)
	j := listedJob("m1", "send-mail", outcome.ReasonExhausted, 3*time.Hour)
	j.LastError = "worker answered 500:\nInternal Server Error, and a long explanation after it"
	if err := lw.Write(j); err != nil {
		t.Fatal(err)
	}
	bare := deadletter.JobOf(amqp.Delivery{})
	if err := lw.Write(bare); err != nil {
		t.Fatal(err)
	}
	if err := lw.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a heading and 2 lines, got:\n%s", b.String())
	}
	for i, want := range [][]string{
		{"ID", "JOB", "REASON", "ATTEMPTS", "STATUS", "AGE", "ERROR", "PAYLOAD"},
		{"m1", "send-mail", "attempts-exhausted", "5", "500", "3h00m", "worker answered 500: Internal Server Er…", `{"number":42}`},
		{"-", "-", "-", "0", "0", "-", "-", "-"},
	} {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("line %d = %q, want the fields %q", i, lines[i], want)
		}
	}
	// Columns are aligned: every line has its JOB column at the same place.
	if strings.Index(lines[0], "JOB") != strings.Index(lines[1], "send-mail") {
		t.Errorf("columns not aligned:\n%s", b.String())
	}
}

func TestListWriterJSON(t *testing.T) {
	var b bytes.Buffer
	lw := newListWriter(&b, true, testNow)
	j := listedJob("m1", "send-mail", outcome.ReasonRejected, 90*time.Second)
	binary := deadletter.JobOf(amqp.Delivery{MessageId: "m2", Body: []byte{0xff, 0x00}})
	for _, j := range []deadletter.Job{j, binary} {
		if err := lw.Write(j); err != nil {
			t.Fatal(err)
		}
	}
	lw.Flush()
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one line per job, got:\n%s", b.String())
	}
	var got []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		got = append(got, m)
	}
	want := map[string]any{
		"id": "m1", "job": "send-mail", "reason": "rejected", "attempts": 5.0, "last_status": 500.0,
		"last_error": "worker answered 500", "queue": "commands", "timestamp": "2025-03-10T11:58:30Z",
		"age_seconds": 90.0, "size": 13.0, "body": `{"number":42}`,
	}
	for k, v := range want {
		if got[0][k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[0][k], v)
		}
	}
	if got[1]["body_base64"] != "/wA=" || got[1]["body"] != nil || got[1]["timestamp"] != nil || got[1]["age_seconds"] != nil {
		t.Errorf("binary job without timestamp: %v", got[1])
	}
}

func TestWriteShow(t *testing.T) {
	j := deadletter.JobOf(amqp.Delivery{
		MessageId:    "m1",
		Type:         "send-mail",
		Timestamp:    testNow.Add(-2 * time.Hour),
		ContentType:  "application/json",
		DeliveryMode: amqp.Persistent,
		AppId:        "shop",
		Headers: amqp.Table{
			outcome.HeaderReason:    outcome.ReasonRejected,
			outcome.HeaderLastError: "line one\nline two\x1b[0m",
			outcome.HeaderAttempts:  int64(1),
			"x-death":               []any{amqp.Table{"count": int64(2), "queue": "commands.retry.1s"}},
			"price":                 amqp.Decimal{Scale: 2, Value: 1999},
		},
		Body: []byte("{\"number\":42,\n \"note\":\"two lines\"}"),
	})
	var b bytes.Buffer
	if err := writeShow(&b, j, false, testNow); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"message-id", "m1", "type", "send-mail", "timestamp", "2025-03-10T10:00:00Z (2h00m ago)",
		"content-type", "application/json", "delivery-mode", "2", "app-id", "shop",
		"x-fpmq-reason", "rejected", `line one\nline two\x1b[0m`, "x-fpmq-attempts", "1",
		`x-death`, `[{"count": 2, "queue": "commands.retry.1s"}]`, "price", "19.99",
		"body (34 bytes)\n{\"number\":42,\n \"note\":\"two lines\"}\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("show let a control character through:\n%q", out)
	}
	if strings.Index(out, "x-death") > strings.Index(out, "x-fpmq-reason") {
		t.Error("headers are not sorted by name")
	}

	b.Reset()
	j.Message.Body = []byte("bin\x00ary")
	writeShow(&b, j, false, testNow)
	if !strings.Contains(b.String(), `"bin\x00ary"`) {
		t.Errorf("binary body not quoted:\n%s", b.String())
	}

	b.Reset()
	j.Message.Body = []byte("not \xff UTF-8")
	if err := writeShow(&b, j, true, testNow); err != nil {
		t.Fatal(err)
	}
	var got struct {
		ID         string            `json:"id"`
		BodyBase64 []byte            `json:"body_base64"`
		Properties map[string]string `json:"properties"`
		Headers    map[string]any    `json:"headers"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("show --json: %v\n%s", err, b.String())
	}
	if got.ID != "m1" || string(got.BodyBase64) != "not \xff UTF-8" || got.Properties["app-id"] != "shop" ||
		got.Headers[outcome.HeaderReason] != "rejected" || got.Headers[outcome.HeaderAttempts] != 1.0 {
		t.Errorf("show --json = %+v", got)
	}
}
