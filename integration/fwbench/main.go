// Command fwbench is the framework benchmark of issue 21: jobs/s and CPU
// per job of a no-op Laravel job and a no-op Symfony Messenger message run
// through fpmq (the daemon and a php-fpm pool running each bridge's entry
// script) against the same jobs under the framework's own long-running
// worker (`php artisan queue:work`, `bin/console messenger:consume`), with
// the same number of processes, on the same RabbitMQ, side by side in each
// repetition. The pool runs as shipped (OPcache on) and, in variant runs,
// with other OPcache settings.
//
// It prints a table and writes it as CSV and Markdown into -out. See
// BENCHMARKS.md, "Laravel and Symfony", for the latest figures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fpmq/fpmq/integration/stack"
)

// options are the sizes and settings of a run.
type options struct {
	reps     int       // repetitions of every measurement; figures are their median
	jobs     int       // jobs per measured drain
	procs    int       // P: consumer processes, php-fpm children at work, the daemon's CONCURRENCY
	image    string    // the php-frameworks image, by reference
	out      string    // directory for the CSV and Markdown files
	variants []variant // the pool settings measured, the shipped ones first
}

func main() {
	o := options{}
	flag.IntVar(&o.reps, "reps", 3, "repetitions of every measurement; figures are their median")
	flag.IntVar(&o.jobs, "jobs", 3000, "jobs per measured drain")
	flag.IntVar(&o.procs, "procs", 4, "processes on each side: consumer processes, and the daemon's CONCURRENCY (the pool has one child more, as compose deploys it)")
	flag.StringVar(&o.image, "image", "fpmq/php-frameworks:dev", "the php-frameworks image (make frameworks-image)")
	flag.StringVar(&o.out, "out", "bench-results", "directory for the CSV and Markdown results")
	names := flag.String("variants", allVariantNames(), "comma-separated pool settings to measure fpmq with: "+allVariantNames()+" (shipped always runs)")
	quick := flag.Bool("quick", false, "smoke run: 1 repetition of 300 jobs, shipped settings only, unless -reps, -jobs or -variants say otherwise")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "fwbench: unexpected argument %q\n", flag.Arg(0))
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
			o.jobs = 300
		}
		if !set["variants"] {
			*names = "shipped"
		}
	}
	var err error
	if o.variants, err = parseVariants(*names); err != nil {
		fmt.Fprintf(os.Stderr, "fwbench: %v\n", err)
		os.Exit(2)
	}
	if o.reps < 1 || o.jobs < 100 || o.procs < 1 {
		fmt.Fprintln(os.Stderr, "fwbench: -reps and -procs must be at least 1, -jobs at least 100")
		os.Exit(2)
	}
	stack.UseLocalEngine()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, o, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "fwbench: %v\n", err)
		os.Exit(1)
	}
}

// run starts the stack, measures, reports and cleans up, also when a
// measurement fails or ctx ends (Ctrl-C): a partial report is still
// printed and written.
func run(ctx context.Context, o options, stdout, stderr io.Writer) (err error) {
	begin := time.Now()
	progress := func(format string, args ...any) {
		fmt.Fprintf(stderr, "fwbench: %5s  %s\n", time.Since(begin).Round(time.Second), fmt.Sprintf(format, args...))
	}
	var names []string
	for _, v := range o.variants {
		names = append(names, v.name)
	}
	rep := &report{title: fmt.Sprintf("fpmq framework benchmark, %s: %d repetition(s) of %d jobs, P = %d, pool settings %s",
		begin.UTC().Format("2006-01-02 15:04 UTC"), o.reps, o.jobs, o.procs, strings.Join(names, ", "))}
	progress("starting rabbitmq and php-fpm (%s)", o.image)
	b, err := start(ctx, o, rep, progress)
	if err != nil {
		return err
	}
	runErr := b.runAll(ctx)
	rep.header = append(rep.header, b.describe(context.WithoutCancel(ctx))...)
	progress("removing %s", b.sys.Name)
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	runErr = errors.Join(runErr, b.close(closeCtx))
	if runErr != nil {
		rep.notes = append(rep.notes, "run aborted, figures incomplete: "+runErr.Error())
	}
	rep.header = append(rep.header, field{"duration", time.Since(begin).Round(time.Second).String()})
	b.addRatios()
	rep.writeText(stdout)
	return errors.Join(runErr, rep.writeFiles(o, begin, stdout))
}
