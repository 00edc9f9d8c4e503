package stack

import (
	"context"
	"fmt"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Jaeger, the tracing profile's (docker/jaeger/): on the stack's network
// as JaegerHost, as in compose.
const (
	JaegerDockerfile = "docker/jaeger/Dockerfile"
	JaegerHost       = "jaeger"
	JaegerQueryPort  = "16686/tcp"
	// JaegerOTLP is the daemons' and the caller's OTEL_EXPORTER_OTLP_ENDPOINT.
	JaegerOTLP = "http://" + JaegerHost + ":4318"
	// JaegerQuery is the console's CONSOLE_JAEGER_URL.
	JaegerQuery = "http://" + JaegerHost + ":16686"
)

// BuildJaeger builds JaegerDockerfile in the repository at root with the
// Go image goImage (GO_IMAGE), tagged <prefix>jaeger:<tag>, and returns its
// reference. Cold, it compiles Jaeger (minutes); Docker's cache makes a
// rebuild take seconds, and shares the layers of `make images`.
func BuildJaeger(ctx context.Context, root, prefix, tag, goImage string) (string, error) {
	return buildImage(ctx, root, JaegerDockerfile, prefix+"jaeger", tag, map[string]*string{"GO_IMAGE": &goImage})
}

// Jaeger runs the image on the stack's network as JaegerHost, hardened as
// compose runs it, with its query port published on the loopback, and
// waits until its query API answers. The stack removes it on Close.
func (s *Stack) Jaeger(ctx context.Context, image string) (*testcontainers.DockerContainer, error) {
	c, err := testcontainers.Run(ctx, image,
		testcontainers.WithName(s.Name+"-"+JaegerHost),
		network.WithNetworkName([]string{JaegerHost}, s.Network),
		testcontainers.WithHostConfigModifier(harden),
		loopback(JaegerQueryPort),
		testcontainers.WithWaitStrategy(wait.ForHTTP("/api/services").WithPort(JaegerQueryPort).
			WithPollInterval(200*time.Millisecond).WithStartupTimeout(DaemonStartTimeout)),
	)
	s.track(c)
	if err != nil {
		return c, fmt.Errorf("run jaeger: %w", err)
	}
	return c, nil
}
