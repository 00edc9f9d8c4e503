package tracing

import (
	"os"
	"strings"
	"testing"

	"github.com/kelseyhightower/envconfig"
)

// defaults returns Env with its envconfig defaults and the variables in
// vars.
func defaults(t *testing.T, vars map[string]string) Env {
	t.Helper()
	for _, name := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		t.Setenv(name, vars[name])
		if _, ok := vars[name]; !ok {
			os.Unsetenv(name) // t.Setenv restores it
		}
	}
	var e Env
	if err := envconfig.Process("", &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		name string
		vars map[string]string
		want bool
	}{
		{"nothing set: off", nil, false},
		{"an endpoint: on", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, true},
		{"a traces endpoint: on", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, true},
		{"otlp", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, true},
		{"none wins over an endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, false},
		{"empty values are unset", map[string]string{"OTEL_SDK_DISABLED": "", "OTEL_EXPORTER_OTLP_PROTOCOL": "", "OTEL_TRACES_SAMPLER": "", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, true},
		{"disabled wins", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := defaults(t, tc.vars)
			if err := e.Check(); err != nil {
				t.Fatal(err)
			}
			if got := e.Enabled(); got != tc.want {
				t.Errorf("Enabled() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		vars map[string]string
		want string // in the error; "" for none
	}{
		{map[string]string{"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER"},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{map[string]string{"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"},
		{map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "OTEL_TRACES_SAMPLER_ARG"},
		{map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}, ""},
		{map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}, ""},
	} {
		err := defaults(t, tc.vars).Check()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v, want no error", tc.vars, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: %v, want an error naming %s", tc.vars, err, tc.want)
		}
	}
	e := defaults(t, nil)
	e.QueueSize = 0
	if err := e.Check(); err == nil || !strings.Contains(err.Error(), "OTEL_BSP_MAX_QUEUE_SIZE") {
		t.Errorf("queue size 0: %v, want an error naming OTEL_BSP_MAX_QUEUE_SIZE", err)
	}
}
