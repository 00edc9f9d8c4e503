package tracing

import (
	"fmt"
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// sampler returns the sampler OTEL_TRACES_SAMPLER names, with the ratio of
// OTEL_TRACES_SAMPLER_ARG for the traceidratio ones; an error names the
// variable at fault.
func (s Env) sampler() (sdktrace.Sampler, error) {
	name := strings.TrimSpace(s.Sampler)
	if name == "" {
		name = "parentbased_always_on"
	}
	root, parentBased := strings.CutPrefix(name, "parentbased_")
	var base sdktrace.Sampler
	switch root {
	case "always_on":
		base = sdktrace.AlwaysSample()
	case "always_off":
		base = sdktrace.NeverSample()
	case "traceidratio":
		r, err := s.ratio()
		if err != nil {
			return nil, err
		}
		base = sdktrace.TraceIDRatioBased(r)
	default:
		return nil, fmt.Errorf("OTEL_TRACES_SAMPLER: want always_on, always_off, traceidratio or parentbased_ and one of them, got %q", s.Sampler)
	}
	if parentBased {
		return sdktrace.ParentBased(base), nil
	}
	return base, nil
}
