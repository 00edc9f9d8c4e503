package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// sample is one line of bench.php's samples.log, times in µs.
type sample struct {
	number, sent, start, end int64
}

// parseSamples returns the samples of r that carry tag.
func parseSamples(r io.Reader, tag string) ([]sample, error) {
	var out []sample
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != tag {
			continue
		}
		if len(f) != 5 {
			return nil, fmt.Errorf("samples: malformed line %q", sc.Text())
		}
		var v [4]int64
		for i := range v {
			n, err := strconv.ParseInt(f[i+1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("samples: malformed line %q: %w", sc.Text(), err)
			}
			v[i] = n
		}
		out = append(out, sample{v[0], v[1], v[2], v[3]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("samples: %w", err)
	}
	return out, nil
}

// waitSamples waits until samples.log holds n samples tagged tag, one per
// job number (a job run twice would be redelivered, which is a failure
// here), and returns them.
func (b *bench) waitSamples(ctx context.Context, tag string, n int) ([]sample, error) {
	for {
		s, err := b.readSamples(tag)
		if err != nil {
			return nil, err
		}
		if len(s) >= n {
			seen := map[int64]bool{}
			for _, x := range s {
				seen[x.number] = true
			}
			if len(s) > n || len(seen) != n {
				return nil, fmt.Errorf("%d %s samples for %d distinct jobs, want %d", len(s), tag, len(seen), n)
			}
			return s, nil
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, fmt.Errorf("%d of %d %s samples: %w", len(s), n, tag, err)
		}
	}
}

func (b *bench) readSamples(tag string) ([]sample, error) {
	f, err := os.Open(b.sys.samplesPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("samples: %w", err)
	}
	defer f.Close()
	return parseSamples(f, tag)
}

// clearSamples deletes samples.log; bench.php creates it again. Nothing must
// be running on the pool.
func (b *bench) clearSamples() error {
	if err := os.Remove(b.sys.samplesPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("clear samples: %w", err)
	}
	return nil
}
