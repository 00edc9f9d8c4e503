package main

import (
	"math"
	"slices"
)

// summary is what the report shows of one figure: the median, the minimum
// and the maximum of its values over the repetitions.
type summary struct{ median, min, max float64 }

// summarize returns the summary of values, ignoring NaNs; ok is false when
// no value is left. It does not modify values.
func summarize(values []float64) (s summary, ok bool) {
	v := make([]float64, 0, len(values))
	for _, x := range values {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return summary{}, false
	}
	slices.Sort(v)
	n := len(v)
	s = summary{min: v[0], max: v[n-1], median: v[n/2]}
	if n%2 == 0 {
		s.median = (v[n/2-1] + v[n/2]) / 2
	}
	return s, true
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest value that at least p % of the values do
// not exceed. It is always one of the values, so a p99 of 200 samples is
// their second largest, never an interpolation. It returns NaN for no values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// ratios returns a[i]/b[i] for every repetition i, side by side: a drift of
// the machine between repetitions moves both figures of a ratio together.
// A missing or NaN value on either side gives NaN.
func ratios(a, b []float64) []float64 {
	return combine(a, b, func(x, y float64) float64 { return x / y })
}

func combine(a, b []float64, f func(x, y float64) float64) []float64 {
	out := make([]float64, max(len(a), len(b)))
	for i := range out {
		if i >= len(a) || i >= len(b) {
			out[i] = math.NaN()
			continue
		}
		out[i] = f(a[i], b[i])
	}
	return out
}
