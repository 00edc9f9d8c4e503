//go:build integration

package integration

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	dockerclient "github.com/moby/moby/client"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP receiver of spans (protobuf, POST
// /v1/traces, as the OpenTelemetry protocol specifies), served by the test
// on the stack network's gateway: the host's side of the bridge, which
// the containers reach. It keeps every span it was sent.
type otlpReceiver struct {
	// Endpoint is the containers' OTEL_EXPORTER_OTLP_ENDPOINT for it.
	Endpoint string

	mu    sync.Mutex
	spans []receivedSpan
}

// receivedSpan is one span as the receiver got it, ids in lowercase hex.
type receivedSpan struct {
	Service                       string
	TraceID, SpanID, ParentSpanID string
	Name                          string
	Kind                          tracepb.Span_SpanKind
	Status                        tracepb.Status_StatusCode
	Attrs                         map[string]any // string, int64, float64 or bool values
	Links                         []receivedLink
	Start                         time.Time
}

type receivedLink struct {
	TraceID, SpanID string
	Attrs           map[string]any
}

// startOTLPReceiver serves a receiver on the gateway of network until the
// test ends.
func startOTLPReceiver(t *testing.T, docker *dockerclient.Client, network string) *otlpReceiver {
	t.Helper()
	gateway := networkGateway(t, docker, network)
	ln, err := net.Listen("tcp", net.JoinHostPort(gateway, "0"))
	if err != nil {
		t.Fatalf("listen on the network's gateway: %v", err)
	}
	r := &otlpReceiver{Endpoint: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.export)
	srv := &http.Server{Handler: mux}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("OTLP receiver: %v", err)
		}
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return r
}

// closedEndpoint returns an OTEL_EXPORTER_OTLP_ENDPOINT on the gateway of
// network where nothing listens: a collector that is down.
func closedEndpoint(t *testing.T, docker *dockerclient.Client, network string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(networkGateway(t, docker, network), "0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// networkGateway returns the gateway address of the Docker network.
func networkGateway(t *testing.T, docker *dockerclient.Client, network string) string {
	t.Helper()
	res, err := docker.NetworkInspect(context.Background(), network, dockerclient.NetworkInspectOptions{})
	if err != nil {
		t.Fatalf("inspect network %s: %v", network, err)
	}
	for _, c := range res.Network.IPAM.Config {
		if c.Gateway.Is4() {
			return c.Gateway.String()
		}
	}
	t.Fatalf("network %s has no IPv4 gateway", network)
	return ""
}

// export takes one ExportTraceServiceRequest.
func (r *otlpReceiver) export(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var in coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for _, rs := range in.GetResourceSpans() {
		service, _ := attrMap(rs.GetResource().GetAttributes())["service.name"].(string)
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, received(service, s))
			}
		}
	}
	r.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

func received(service string, s *tracepb.Span) receivedSpan {
	rs := receivedSpan{
		Service:      service,
		TraceID:      hex.EncodeToString(s.GetTraceId()),
		SpanID:       hex.EncodeToString(s.GetSpanId()),
		ParentSpanID: hex.EncodeToString(s.GetParentSpanId()),
		Name:         s.GetName(),
		Kind:         s.GetKind(),
		Status:       s.GetStatus().GetCode(),
		Attrs:        attrMap(s.GetAttributes()),
		Start:        time.Unix(0, int64(s.GetStartTimeUnixNano())),
	}
	for _, l := range s.GetLinks() {
		rs.Links = append(rs.Links, receivedLink{
			TraceID: hex.EncodeToString(l.GetTraceId()),
			SpanID:  hex.EncodeToString(l.GetSpanId()),
			Attrs:   attrMap(l.GetAttributes()),
		})
	}
	return rs
}

func attrMap(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = v.IntValue
		case *commonpb.AnyValue_DoubleValue:
			m[kv.GetKey()] = v.DoubleValue
		case *commonpb.AnyValue_BoolValue:
			m[kv.GetKey()] = v.BoolValue
		}
	}
	return m
}

// Spans returns the spans received so far that keep says to keep.
func (r *otlpReceiver) Spans(keep func(receivedSpan) bool) []receivedSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(r.spans), func(s receivedSpan) bool { return !keep(s) })
}
