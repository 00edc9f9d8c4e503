package tracing

import (
	"context"
	"errors"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/trace"
)

const (
	traceHex = "4bf92f3577b34da6a3ce929d0e0e4736"
	spanHex  = "00f067aa0ba902b7"
	valid    = "00-" + traceHex + "-" + spanHex + "-01"
)

func TestExtract(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers amqp.Table
		want    Parent
		sampled bool
	}{
		{"no headers", nil, NoParent, false},
		{"other headers", amqp.Table{"tenant": "acme"}, NoParent, false},
		{"valid", amqp.Table{"traceparent": valid}, ValidParent, true},
		{"valid, as bytes", amqp.Table{"traceparent": []byte(valid)}, ValidParent, true},
		{"not sampled", amqp.Table{"traceparent": "00-" + traceHex + "-" + spanHex + "-00"}, ValidParent, false},
		{"a later version, longer", amqp.Table{"traceparent": "cc-" + traceHex + "-" + spanHex + "-01-what-comes"}, ValidParent, true},
		{"empty", amqp.Table{"traceparent": ""}, MalformedParent, false},
		{"upper-case hex", amqp.Table{"traceparent": "00-4BF92F3577B34DA6A3CE929D0E0E4736-" + spanHex + "-01"}, MalformedParent, false},
		{"all-zero trace id", amqp.Table{"traceparent": "00-00000000000000000000000000000000-" + spanHex + "-01"}, MalformedParent, false},
		{"all-zero span id", amqp.Table{"traceparent": "00-" + traceHex + "-0000000000000000-01"}, MalformedParent, false},
		{"version ff", amqp.Table{"traceparent": "ff-" + traceHex + "-" + spanHex + "-01"}, MalformedParent, false},
		{"version 00, too long", amqp.Table{"traceparent": valid + "-extra"}, MalformedParent, false},
		{"short trace id", amqp.Table{"traceparent": "00-4bf92f35-" + spanHex + "-01"}, MalformedParent, false},
		{"a number", amqp.Table{"traceparent": int64(1)}, MalformedParent, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, got := Extract(context.Background(), tc.headers)
			if got != tc.want {
				t.Fatalf("Extract: %v, want %v", got, tc.want)
			}
			sc := trace.SpanContextFromContext(ctx)
			if sc.IsValid() != (tc.want == ValidParent) {
				t.Errorf("span context valid: %v, want %v", sc.IsValid(), tc.want == ValidParent)
			}
			if tc.want == ValidParent && (sc.TraceID().String() != traceHex || sc.SpanID().String() != spanHex || sc.IsSampled() != tc.sampled || !sc.IsRemote()) {
				t.Errorf("span context %v, want trace %s span %s sampled %v remote", sc, traceHex, spanHex, tc.sampled)
			}
		})
	}
}

// Inject replaces what the headers held, and deletes it without a span
// context; tracestate goes along.
func TestInject(t *testing.T) {
	sc, err := Parse(valid, "vendor=x,other=y")
	if err != nil {
		t.Fatal(err)
	}
	h := amqp.Table{"traceparent": "garbage", "tracestate": "stale=1", "tenant": "acme"}
	Inject(trace.ContextWithSpanContext(context.Background(), sc), h)
	if h["traceparent"] != valid || h["tracestate"] != "vendor=x,other=y" || h["tenant"] != "acme" {
		t.Errorf("headers %v", h)
	}
	Inject(context.Background(), h)
	if _, ok := h["traceparent"]; ok {
		t.Errorf("headers %v: no span context, want no traceparent", h)
	}
	if _, ok := h["tracestate"]; ok {
		t.Errorf("headers %v: no span context, want no tracestate", h)
	}
}

func TestParseAndFormat(t *testing.T) {
	sc, err := Parse(valid, "vendor=x")
	if err != nil {
		t.Fatal(err)
	}
	if tp, ts := Format(sc); tp != valid || ts != "vendor=x" {
		t.Errorf("Format(Parse(...)) = %q, %q", tp, ts)
	}
	if tp, ts := Format(trace.SpanContext{}); tp != "" || ts != "" {
		t.Errorf("Format of an invalid span context = %q, %q, want nothing", tp, ts)
	}
	for _, bad := range []string{"", "00-xyz-01", "00-" + traceHex + "-" + spanHex} {
		if _, err := Parse(bad, ""); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q): %v, want ErrMalformed", bad, err)
		}
	}
	// A tracestate W3C refuses is dropped; the traceparent stands.
	sc, err = Parse(valid, "not a list member")
	if err != nil || sc.TraceState().Len() != 0 {
		t.Errorf("Parse with a bad tracestate: %v, %v; want the traceparent, no state", sc, err)
	}
}
