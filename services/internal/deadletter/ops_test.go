package deadletter

import (
	"testing"
	"time"
)

func TestRateInterval(t *testing.T) {
	for _, tt := range []struct {
		r    Rate
		want time.Duration
	}{
		{0, 0}, // no limit
		{-1, 0},
		{10, 100 * time.Millisecond},
		{0.5, 2 * time.Second},
	} {
		if got := tt.r.Interval(); got != tt.want {
			t.Errorf("Rate(%g).Interval() = %v, want %v", float64(tt.r), got, tt.want)
		}
	}
}
