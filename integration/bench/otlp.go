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
	"google.golang.org/protobuf/proto"
)

// spanReceiver is an OTLP/HTTP receiver of spans (protobuf, POST
// /v1/traces) on the host, on the system network's gateway, which the
// daemon's container reaches: the tracing phase exports to it. It decodes
// every request, as a collector would, and counts the spans.
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
	var in coltracepb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &in)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, rs := range in.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			r.spans.Add(int64(len(ss.GetSpans())))
		}
	}
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// close stops serving and waits for the server's goroutine.
func (r *spanReceiver) close() {
	r.srv.Close()
	<-r.done
}
