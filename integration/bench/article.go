package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// article runs the original article's test on the running daemon of
// CONCURRENCY c: n jobs that each sleep nap, published at once, against
// the ideal time of c children working in parallel, recorded into section.
// The end is when the last worker finished, as bench.php notes it; the
// daemon acks right after, and rabbitmqctl then confirms that nothing is
// left unacked.
func (b *bench) article(ctx context.Context, section string, n int, nap time.Duration, c int) error {
	ideal := time.Duration(math.Ceil(float64(n)/float64(c))) * nap
	ctx, cancel := context.WithTimeout(ctx, time.Minute+3*ideal)
	defer cancel()
	if err := b.clearSamples(); err != nil {
		return err
	}
	start := time.Now()
	if err := b.publishConfirmed(ctx, n, func(i int) []byte { return sampleJob(i, "article", nap) }); err != nil {
		return err
	}
	samples, err := b.waitSamples(ctx, "article", n)
	if err != nil {
		return err
	}
	if err := b.sys.settled(ctx); err != nil {
		return err
	}
	end := slices.MaxFunc(samples, func(x, y sample) int { return int(x.end - y.end) }).end
	wall := time.UnixMicro(end).Sub(start)
	name := fmt.Sprintf("wall time, %d jobs of %s on %d (ideal %s)", n, nap, c, ideal)
	b.rep.add(section, name, "s", wall.Seconds())
	b.rep.add(section, deviationName, "%", 100*(wall-ideal).Seconds()/ideal.Seconds())
	return nil
}

// deviationName names an article test's deviation from its ideal time.
const deviationName = "deviation from the ideal"
