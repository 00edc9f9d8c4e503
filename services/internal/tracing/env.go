// Package tracing is fpmq's OpenTelemetry tracing: the settings read from
// the standard OTEL_* environment variables, a tracer provider that
// exports spans over OTLP/HTTP through a bounded queue whose drops are
// counted, and W3C Trace Context (traceparent, tracestate) carried in AMQP
// headers. Tracing is off unless the environment asks for an exporter;
// off, the tracer makes no spans but still passes a context it is given
// on unchanged.
package tracing

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Env is the OpenTelemetry settings, with envconfig tags, under the
// specification's names (OpenTelemetry's "Environment Variable
// Specification"). A command embeds Env (anonymously) in its
// configuration struct. The OTLP exporter reads its other variables itself
// (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION, _CERTIFICATE and
// their _TRACES_ forms), as the specification says.
type Env struct {
	Exporter       string `envconfig:"OTEL_TRACES_EXPORTER" desc:"otlp exports spans over OTLP/HTTP, none turns tracing off; empty: otlp when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, else none (tracing is off by default); see \"Tracing\" in the daemon's README"`
	Endpoint       string `envconfig:"OTEL_EXPORTER_OTLP_ENDPOINT" desc:"the OTLP/HTTP receiver, such as http://collector:4318 (spans go to its /v1/traces)"`
	TracesEndpoint string `envconfig:"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" desc:"the OTLP/HTTP receiver's URL for spans, used as is (empty: OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces)"`
	Protocol       string `envconfig:"OTEL_EXPORTER_OTLP_PROTOCOL" default:"http/protobuf" desc:"OTLP's transport: only http/protobuf"`
	ServiceName    string `envconfig:"OTEL_SERVICE_NAME" desc:"the service.name of the spans (empty: fpmq-daemon, fpmq-caller); OTEL_RESOURCE_ATTRIBUTES adds others"`
	Sampler        string `envconfig:"OTEL_TRACES_SAMPLER" default:"parentbased_always_on" desc:"which traces to record: always_on, always_off, traceidratio, or parentbased_ and one of them (follow the producer's choice)"`
	SamplerArg     string `envconfig:"OTEL_TRACES_SAMPLER_ARG" desc:"the ratio of traceidratio samplers, 0 to 1 (empty: 1)"`
	QueueSize      int    `envconfig:"OTEL_BSP_MAX_QUEUE_SIZE" default:"2048" desc:"spans waiting to be exported at most; past it a span is dropped and counted, never waited for"`
	BatchSize      int    `envconfig:"OTEL_BSP_MAX_EXPORT_BATCH_SIZE" default:"512" desc:"spans sent in one export at most"`
	ScheduleDelay  int    `envconfig:"OTEL_BSP_SCHEDULE_DELAY" default:"5000" desc:"milliseconds between two exports at most"`
	ExportTimeout  int    `envconfig:"OTEL_BSP_EXPORT_TIMEOUT" default:"30000" desc:"milliseconds one export may take, retries included; its spans are dropped and counted past it"`
	Disabled       string `envconfig:"OTEL_SDK_DISABLED" default:"false" desc:"true turns tracing off whatever else is set"`
}

// Enabled reports whether s asks for spans to be exported.
func (s Env) Enabled() bool {
	if strings.EqualFold(strings.TrimSpace(s.Disabled), "true") {
		return false
	}
	switch s.Exporter {
	case "otlp":
		return true
	case "":
		return s.Endpoint != "" || s.TracesEndpoint != ""
	}
	return false
}

// Check returns an error naming the variable at fault, or nil.
func (s Env) Check() error {
	switch s.Exporter {
	case "", "none", "otlp":
	default:
		return fmt.Errorf("OTEL_TRACES_EXPORTER: want otlp or none, got %q", s.Exporter)
	}
	if s.Protocol != "http/protobuf" && s.Protocol != "" {
		return fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL: only http/protobuf is built in, got %q", s.Protocol)
	}
	if s.Enabled() && s.Endpoint == "" && s.TracesEndpoint == "" {
		return errors.New("OTEL_TRACES_EXPORTER=otlp: set OTEL_EXPORTER_OTLP_ENDPOINT (such as http://collector:4318)")
	}
	if _, err := s.sampler(); err != nil {
		return err
	}
	for _, v := range []struct {
		name  string
		value int
	}{
		{"OTEL_BSP_MAX_QUEUE_SIZE", s.QueueSize},
		{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", s.BatchSize},
		{"OTEL_BSP_SCHEDULE_DELAY", s.ScheduleDelay},
		{"OTEL_BSP_EXPORT_TIMEOUT", s.ExportTimeout},
	} {
		if v.value <= 0 {
			return fmt.Errorf("%s: must be positive, got %d", v.name, v.value)
		}
	}
	return nil
}

// ratio returns OTEL_TRACES_SAMPLER_ARG as a ratio from 0 to 1; 1 when
// it is empty.
func (s Env) ratio() (float64, error) {
	if strings.TrimSpace(s.SamplerArg) == "" {
		return 1, nil
	}
	r, err := strconv.ParseFloat(strings.TrimSpace(s.SamplerArg), 64)
	if err != nil || r < 0 || r > 1 {
		return 0, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG: want a ratio from 0 to 1, got %q", s.SamplerArg)
	}
	return r, nil
}

func millis(n int) time.Duration { return time.Duration(n) * time.Millisecond }
