// Command bench is fpmq's system benchmark. It starts RabbitMQ, the php-fpm
// pool and the daemon in containers from the images make images built,
// drives them from the host, and measures the pipeline against baselines
// taken side by side in the same run: the pool driven directly over
// FastCGI, and a bare consumer that only acks. Absolute figures drift from
// run to run on a shared machine; the targets are ratios within one run.
//
// It prints a table and writes it as CSV and Markdown into -out. See
// BENCHMARKS.md for the latest figures and how to read them.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fpmq/fpmq/integration/stack"
)

// options are the sizes of a run.
type options struct {
	reps         int           // repetitions of every measurement
	jobs         int           // jobs per throughput measurement
	latencyJobs  int           // jobs per path per latency measurement
	callerJobs   int           // jobs per publisher
	articleJobs  int           // jobs of the article test
	articleSleep time.Duration // how long each of them sleeps
	out          string        // directory for the CSV and Markdown files
	set          []string      // SERVICE:KEY=VALUE over compose's settings
	images       stack.Images  // what runs: make images' unless -image-tag
}

func main() {
	o := options{articleJobs: 100, articleSleep: time.Second}
	flag.IntVar(&o.reps, "reps", 3, "repetitions of every measurement; figures are their median")
	flag.IntVar(&o.jobs, "jobs", 20000, "jobs per throughput measurement; latency (per path) and publishers use half as many")
	flag.StringVar(&o.out, "out", "bench-results", "directory for the CSV and Markdown results")
	flag.Func("set", "SERVICE:KEY=VALUE (repeatable): run SERVICE (rabbitmq, php-fpm or daemon) with KEY=VALUE over compose's default, to measure another setting; the report's header says so", func(v string) error {
		if _, _, _, err := parseSet(v); err != nil {
			return err
		}
		o.set = append(o.set, v)
		return nil
	})
	imageTag := flag.String("image-tag", "", "run the images the integration tests built with FPMQ_TEST_TAG=TAG (fpmq-test/NAME:TAG) instead of make images' (fpmq/NAME:dev)")
	quick := flag.Bool("quick", false, "smoke run: 1 repetition of 1000 jobs, and 10 article jobs of 0.5 s, unless -reps or -jobs say otherwise")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "bench: unexpected argument %q\n", flag.Arg(0))
		flag.Usage()
		os.Exit(2)
	}
	if *quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["reps"] {
			o.reps = 1
		}
		if !set["jobs"] {
			o.jobs = 1000
		}
		o.articleJobs, o.articleSleep = 10, 500*time.Millisecond
	}
	if o.reps < 1 || o.jobs < 100 {
		fmt.Fprintln(os.Stderr, "bench: -reps must be at least 1 and -jobs at least 100")
		os.Exit(2)
	}
	o.latencyJobs, o.callerJobs = o.jobs/2, o.jobs/2
	o.images = stack.ComposeImages
	if *imageTag != "" {
		o.images = stack.TestImages("fpmq-test/", *imageTag)
	}

	stack.UseLocalEngine()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// run starts the stack, measures, reports and cleans up, also when
// measuring fails or ctx is cancelled (Ctrl-C). A partial report is still
// printed and written.
func run(ctx context.Context, o options, stdout, stderr io.Writer) (err error) {
	begin := time.Now()
	progress := func(format string, args ...any) {
		fmt.Fprintf(stderr, "bench: %5s  %s\n", time.Since(begin).Round(time.Second), fmt.Sprintf(format, args...))
	}

	root, err := stack.RepoRoot()
	if err != nil {
		return err
	}
	dep, err := readDeployment(ctx, root)
	if err != nil {
		return err
	}
	if err := dep.override(o.set); err != nil {
		return err
	}
	progress("starting rabbitmq and php-fpm (%d children) as compose deploys them", dep.children)
	s, err := startSystem(ctx, o.images, dep, 0)
	if err != nil {
		return err
	}
	closeSystem := func(s *system) error {
		progress("removing %s: the containers, volumes, network and %s", s.Name, s.tmp)
		// Cleaning up must not be cut short by the Ctrl-C that ended the run.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		return s.close(ctx)
	}
	closed := false
	defer func() {
		if !closed {
			err = errors.Join(err, closeSystem(s))
		}
	}()

	rep := &report{
		title: fmt.Sprintf("fpmq system benchmark, %s: %d repetition(s), %d jobs per throughput measurement",
			begin.UTC().Format("2006-01-02 15:04 UTC"), o.reps, o.jobs),
		header: describe(ctx, s),
	}
	b := &bench{opts: o, sys: s, rep: rep, progress: progress}
	runErr := b.runAll(ctx)
	end := loadAndNeighbours(context.WithoutCancel(ctx), s)
	closed = true
	runErr = errors.Join(runErr, closeSystem(s))
	if runErr == nil {
		progress("starting rabbitmq and php-fpm with %d children", bigChildren)
		var big *system
		big, runErr = startSystem(ctx, o.images, dep, bigChildren)
		if runErr == nil {
			bb := &bench{opts: o, sys: big, rep: rep, progress: progress}
			runErr = errors.Join(bb.runBig(ctx), closeSystem(big))
			end = loadAndNeighbours(context.WithoutCancel(ctx), big)
		}
	}
	if runErr != nil {
		rep.notes = append(rep.notes, "run aborted, figures incomplete: "+runErr.Error())
	}
	rep.header = append(rep.header,
		field{"duration", time.Since(begin).Round(time.Second).String()},
		field{"at end", end},
	)
	b.addTargets()

	rep.writeText(stdout)
	return errors.Join(runErr, writeFiles(o, rep, begin, stdout))
}

// writeFiles writes the report as CSV and Markdown into o.out, named by the
// run's start time so that earlier runs stay.
func writeFiles(o options, rep *report, begin time.Time, stdout io.Writer) error {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("results directory: %w", err)
	}
	base := filepath.Join(o.out, "bench-"+begin.UTC().Format("20060102-150405"))
	var csvBuf, mdBuf bytes.Buffer
	if err := rep.writeCSV(&csvBuf, o.reps); err != nil {
		return err
	}
	rep.writeMarkdown(&mdBuf)
	for name, data := range map[string][]byte{base + ".csv": csvBuf.Bytes(), base + ".md": mdBuf.Bytes()} {
		if err := os.WriteFile(name, data, 0o644); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
	}
	written := base + ".csv, " + base + ".md"
	var png bytes.Buffer
	title := "fpmq: jobs/s against the daemon's CONCURRENCY, " + begin.UTC().Format("2006-01-02 15:04 UTC")
	limit, _ := summarize(rep.values(secDerived, limitName()))
	if err := writePlot(&png, title, sweepPoints(rep), limit.median, fmt.Sprintf("CPU limit from the baselines: %.0f jobs/s", limit.median)); err == nil {
		if err := os.WriteFile(base+"-concurrency.png", png.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
		written += ", " + base + "-concurrency.png"
	}
	fmt.Fprintf(stdout, "\nwritten: %s\n", written)
	return nil
}
