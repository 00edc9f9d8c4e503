// Command soak runs fpmq for a long while under faults and counts every job.
// It starts a three-node RabbitMQ cluster with quorum queues, the php-fpm
// pool and two daemons that know every node (AMQP_ADDRESSES), from images
// it builds from the repository (fpmq-soak/*:soak, on the upstream images
// of RABBITMQ_IMAGE, PHP_IMAGE and GO_IMAGE, which make soak reads from
// .env). It publishes SOAK_JOBS jobs with the caller
// image, in batches spread over SOAK_DURATION, while it restarts, at random
// moments and in random order, one of the daemons, php-fpm, and a random
// broker node. The other daemon runs throughout: its resident set is
// sampled to see whether it grows.
//
// At the end it waits for every job to run, then prints sent / processed /
// duplicates / dead-lettered / lost, the faults, and that daemon's RSS over
// time. It exits 1 if a job was lost or the RSS grew by more than
// SOAK_RSS_GROWTH_MAX. It is not part of CI: make soak runs it (about 15
// minutes with the defaults; as root, for /proc of the daemon).
//
// Settings, from the environment:
//
//	SOAK_JOBS            jobs to publish (100000)
//	SOAK_DURATION        how long publishing and faults last (10m)
//	SOAK_FAULT_INTERVAL  mean pause between two faults, uniform from half to 1.5 times it (30s)
//	SOAK_RSS_GROWTH_MAX  most the sampled daemon's RSS may grow, in MiB, from the end of
//	                     the first tenth of the run to the last tenth (16)
//	SOAK_DRAIN_TIMEOUT   how long to wait, after publishing, for every job to run (5m)
//	SOAK_SEED            seed of the fault schedule (the time)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/fpmq/fpmq/integration/stack"
)

// settings are a run's sizes, from the environment.
type settings struct {
	jobs          int
	duration      time.Duration
	faultInterval time.Duration
	rssGrowthMax  float64 // MiB
	drainTimeout  time.Duration
	seed          uint64
}

// loadSettings reads the SOAK_* variables; an error names the one at fault.
func loadSettings(getenv func(string) string) (settings, error) {
	s := settings{jobs: 100000, duration: 10 * time.Minute, faultInterval: 30 * time.Second, rssGrowthMax: 16, drainTimeout: 5 * time.Minute, seed: uint64(time.Now().UnixNano())}
	for _, v := range []struct {
		name  string
		parse func(string) error
	}{
		{"SOAK_JOBS", func(x string) (err error) { s.jobs, err = strconv.Atoi(x); return }},
		{"SOAK_DURATION", func(x string) (err error) { s.duration, err = time.ParseDuration(x); return }},
		{"SOAK_FAULT_INTERVAL", func(x string) (err error) { s.faultInterval, err = time.ParseDuration(x); return }},
		{"SOAK_RSS_GROWTH_MAX", func(x string) (err error) { s.rssGrowthMax, err = strconv.ParseFloat(x, 64); return }},
		{"SOAK_DRAIN_TIMEOUT", func(x string) (err error) { s.drainTimeout, err = time.ParseDuration(x); return }},
		{"SOAK_SEED", func(x string) (err error) { s.seed, err = strconv.ParseUint(x, 10, 64); return }},
	} {
		if x := getenv(v.name); x != "" {
			if err := v.parse(x); err != nil {
				return s, fmt.Errorf("%s: %w", v.name, err)
			}
		}
	}
	switch {
	case s.jobs < 1:
		return s, fmt.Errorf("SOAK_JOBS: at least 1, got %d", s.jobs)
	case s.duration < 10*time.Second:
		return s, fmt.Errorf("SOAK_DURATION: at least 10s, got %s", s.duration)
	case s.faultInterval < 2*time.Second:
		return s, fmt.Errorf("SOAK_FAULT_INTERVAL: at least 2s, got %s", s.faultInterval)
	case s.rssGrowthMax <= 0:
		return s, fmt.Errorf("SOAK_RSS_GROWTH_MAX: must be positive, got %g", s.rssGrowthMax)
	case s.drainTimeout <= 0:
		return s, fmt.Errorf("SOAK_DRAIN_TIMEOUT: must be positive, got %s", s.drainTimeout)
	}
	return s, nil
}

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: soak (no arguments; settings SOAK_JOBS, SOAK_DURATION, SOAK_FAULT_INTERVAL, SOAK_RSS_GROWTH_MAX, SOAK_DRAIN_TIMEOUT, SOAK_SEED: see the package's documentation)")
		os.Exit(2)
	}
	cfg, err := loadSettings(os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak: %v\n", err)
		os.Exit(2)
	}
	stack.UseLocalEngine()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, cfg, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak: %v\n", err)
		os.Exit(1)
	}
}

// run starts the system, soaks it, reports, and removes it. Its error says
// why the run failed: a lost job, a growing RSS, or a broken run.
func run(ctx context.Context, cfg settings, stdout, stderr io.Writer) (err error) {
	begin := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "soak: %6s  %s\n", time.Since(begin).Round(time.Second), fmt.Sprintf(format, args...))
	}
	logf("starting a %d-node RabbitMQ cluster, php-fpm (%d children) and two daemons; seed %d", nodes, children, cfg.seed)
	sys, err := start(ctx, logf)
	if err != nil {
		return err
	}
	defer func() {
		logf("removing %s", sys.Name)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
		defer cancel()
		err = errors.Join(err, sys.Close(ctx))
	}()

	s := &soak{sys: sys, cfg: cfg, logf: logf, rng: rand.New(rand.NewPCG(cfg.seed, 0x50a4))}
	res, runErr := s.run(ctx)
	res.duration = time.Since(begin)
	res.write(stdout, cfg)
	return errors.Join(runErr, res.verdict(cfg))
}
