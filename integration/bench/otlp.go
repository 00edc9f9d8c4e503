package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/moby/moby/client"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// spanReceiver is an OTLP/HTTP receiver of spans (protobuf, POST
// /v1/traces) on the host, on the system network's gateway, which the
// daemon's container reaches: the tracing phase exports to it. It reads
// every request whole and counts its spans by walking the protobuf wire
// format (countSpans), without decoding them into messages: the bench
// shares its 2 cores with the system it measures, and decoding is the
// cost of a collector, which in a deployment runs elsewhere, not of fpmq.
type spanReceiver struct {
	endpoint string // the daemon's OTEL_EXPORTER_OTLP_ENDPOINT
	spans    atomic.Int64
	srv      *http.Server
	done     chan struct{}
}

// startSpanReceiver serves a receiver on the gateway of s's network until
// close.
func startSpanReceiver(ctx context.Context, s *system) (*spanReceiver, error) {
	res, err := s.Docker.NetworkInspect(ctx, s.Network, client.NetworkInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("inspect network: %w", err)
	}
	var gateway string
	for _, c := range res.Network.IPAM.Config {
		if c.Gateway.Is4() {
			gateway = c.Gateway.String()
		}
	}
	if gateway == "" {
		return nil, errors.New("the bench's network has no IPv4 gateway")
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(gateway, "0"))
	if err != nil {
		return nil, fmt.Errorf("listen for spans: %w", err)
	}
	r := &spanReceiver{endpoint: "http://" + ln.Addr().String(), done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.export)
	r.srv = &http.Server{Handler: mux}
	go func() {
		defer close(r.done)
		r.srv.Serve(ln)
	}()
	return r, nil
}

// export takes one ExportTraceServiceRequest and counts its spans.
func (r *spanReceiver) export(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	var n int
	if err == nil {
		n, err = countSpans(body)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.spans.Add(int64(n))
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(exportResponse)
}

// exportResponse is an empty ExportTraceServiceResponse: full success.
var exportResponse, _ = proto.Marshal(&coltracepb.ExportTraceServiceResponse{})

// The field numbers on the way from an ExportTraceServiceRequest to its
// spans, in OTLP's trace_service.proto and trace.proto.
const (
	fieldResourceSpans protowire.Number = 1 // ExportTraceServiceRequest.resource_spans
	fieldScopeSpans    protowire.Number = 2 // ResourceSpans.scope_spans
	fieldSpans         protowire.Number = 2 // ScopeSpans.spans
)

// countSpans returns how many spans an encoded ExportTraceServiceRequest
// holds, or an error if it is not valid protobuf on the way to them.
func countSpans(req []byte) (int, error) {
	n := 0
	err := eachField(req, fieldResourceSpans, func(rs []byte) error {
		return eachField(rs, fieldScopeSpans, func(ss []byte) error {
			return eachField(ss, fieldSpans, func([]byte) error {
				n++
				return nil
			})
		})
	})
	return n, err
}

// eachField calls f with the content of each length-delimited field
// number num of the encoded message b, skipping the other fields.
func eachField(b []byte, num protowire.Number, f func([]byte) error) error {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return protowire.ParseError(l)
			}
			if err := f(v); err != nil {
				return err
			}
			b = b[l:]
			continue
		}
		if l = protowire.ConsumeFieldValue(n, typ, b); l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
	}
	return nil
}

// close stops serving and waits for the server's goroutine.
func (r *spanReceiver) close() {
	r.srv.Close()
	<-r.done
}
