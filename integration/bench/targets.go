package main

import (
	"fmt"
	"math"
	"runtime"
)

// perRep applies f to the values of each repetition of the figures named,
// NaN where one is missing.
func perRep(f func(v []float64) float64, figs ...[]float64) []float64 {
	n := 0
	for _, v := range figs {
		n = max(n, len(v))
	}
	out := make([]float64, n)
	for i := range n {
		v := make([]float64, len(figs))
		for j, fig := range figs {
			v[j] = math.NaN()
			if i < len(fig) {
				v[j] = fig[i]
			}
		}
		out[i] = f(v)
	}
	return out
}

func sum(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}

// addDerived adds, repetition by repetition, the CPU limit the baselines
// set and the pipeline's whole cost per job.
func (b *bench) addDerived() {
	r := b.rep
	baselines := perRep(sum,
		r.values(secBare, "rabbitmq CPU per message"),
		r.values(secBare, "bench (consumer) CPU per message"),
		r.values(secDirect, "php-fpm CPU per request"),
		r.values(secDirect, "bench (FastCGI client) CPU per request"))
	whole := perRep(sum,
		r.values(secPipeline, fmt.Sprintf(cpuPerJobFmt, "daemon")),
		r.values(secPipeline, fmt.Sprintf(cpuPerJobFmt, "php-fpm")),
		r.values(secPipeline, fmt.Sprintf(cpuPerJobFmt, "rabbitmq")),
		r.values(secPipeline, "docker engine CPU per job"))
	cores := float64(runtime.NumCPU())
	for i := range baselines {
		r.add(secDerived, "baselines' CPU per item: rabbitmq and consumer (b), php-fpm and client (a)", "µs", baselines[i])
		r.add(secDerived, limitName(), "1/s", cores*1e6/baselines[i])
	}
	for i := range whole {
		r.add(secDerived, "pipeline CPU per job: daemon, php-fpm, rabbitmq, docker engine", "µs", whole[i])
	}
	confirmed := r.values(secPublish, confirmedRate)
	brokers, callers := ratios(confirmed, r.values(secPublish, plainRate)), ratios(r.values(secPublish, callerRate), confirmed)
	for i := range brokers {
		r.add(secPublish, "diagnostic: confirming publisher / plain publisher, the broker's price of confirms", "ratio", brokers[i])
		r.add(secPublish, "diagnostic: caller / confirming publisher, the caller's own price", "ratio", callers[i])
	}
}

// limitName names the CPU limit figure.
func limitName() string {
	return fmt.Sprintf("CPU limit: %d cores / the baselines' CPU per item", runtime.NumCPU())
}

// addTargets computes the benchmark's targets from the figures, repetition
// by repetition: issue 14's seven, and issue 23's tracing overhead.
func (b *bench) addTargets() {
	b.addDerived()
	r := b.rep
	consumerPlusClient := combine(r.values(secBare, "bench (consumer) CPU per message"),
		r.values(secDirect, "bench (FastCGI client) CPU per request"),
		func(x, y float64) float64 { return x + y })
	baselines := r.values(secDerived, "baselines' CPU per item: rabbitmq and consumer (b), php-fpm and client (a)")
	limit := r.values(secDerived, limitName())
	abs := func(v []float64) []float64 {
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = math.Abs(x)
		}
		return out
	}
	var bigDev []float64
	for _, f := range r.figures {
		if f.section == secBig && f.name == deviationName {
			bigDev = f.values
		}
	}
	r.targets = []target{
		{name: "1. efficiency: pipeline jobs/s / CPU limit", values: ratios(r.values(secPipeline, "jobs/s"), limit), limit: 0.65},
		{name: "2. daemon CPU/job / (consumer CPU/msg + FastCGI client CPU/req)", values: ratios(r.values(secPipeline, fmt.Sprintf(cpuPerJobFmt, "daemon")), consumerPlusClient), limit: 1.2, atMost: true},
		{name: "3. whole pipeline CPU/job / baselines' CPU per item", values: ratios(r.values(secDerived, "pipeline CPU per job: daemon, php-fpm, rabbitmq, docker engine"), baselines), limit: 1.5, atMost: true},
		{name: fmt.Sprintf("4a. %d jobs of %s on %d: |wall - ideal| / ideal", bigJobs, bigNap, bigC), unit: "%", values: abs(bigDev), limit: 5, atMost: true},
		{name: fmt.Sprintf("4b. article test, %d jobs of %s on %d: |wall - ideal| / ideal", b.opts.articleJobs, b.opts.articleSleep, b.sys.concurrency), unit: "%", values: abs(r.values(secArticle, deviationName)), limit: 1, atMost: true},
		{name: "5. added p99 latency at half load", unit: "ms", values: r.values(secLatency, "added p99 (pipeline p99 - direct p99)"), limit: 2, atMost: true},
		{name: fmt.Sprintf("6. daemon peak RSS (VmHWM), %d jobs at once", memoryC), unit: "MiB", values: r.values(secMemory, peakName), limit: 40, atMost: true},
		{name: "7. caller jobs/s / unconfirmed publisher jobs/s", values: ratios(r.values(secPublish, callerRate), r.values(secPublish, plainRate)), limit: 0.7},
		{name: "8. tracing on, every job sampled: pipeline jobs/s / tracing off", values: ratios(r.values(secTraced, "jobs/s"), r.values(secPipeline, "jobs/s")), limit: 0.95},
	}
}
