package main

import (
	"math"
	"sync"
	"time"

	ratelimit "golang.org/x/time/rate"
)

// maxThrottleKeys bounds the throttle's memory: past it, the keys whose
// bucket is full again (nothing to remember) are forgotten.
const maxThrottleKeys = 10000

// throttle limits failed sign-ins, per key (the client's address, the user
// name tried): each key has a token bucket (golang.org/x/time/rate) of
// burst failures that refills by one every interval. A sign-in whose keys
// have a bucket out of tokens is refused before its password is checked,
// so that guessing costs an attacker interval per try once the burst is
// spent. It is safe for concurrent use.
type throttle struct {
	mu      sync.Mutex
	limit   ratelimit.Limit
	burst   int
	buckets map[string]*ratelimit.Limiter
	now     func() time.Time
}

// newThrottle returns a throttle of burst failures per key, one more every
// interval. A burst of 0 turns it off.
func newThrottle(burst int, interval time.Duration) *throttle {
	return &throttle{limit: ratelimit.Every(interval), burst: burst, buckets: map[string]*ratelimit.Limiter{}, now: time.Now}
}

// wait returns how long until every key may try again: 0 when they all may
// now.
func (t *throttle) wait(keys ...string) time.Duration {
	if t.burst == 0 {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var longest time.Duration
	for _, k := range keys {
		b, ok := t.buckets[k]
		if !ok {
			continue
		}
		if missing := 1 - b.TokensAt(now); missing > 0 {
			d := time.Duration(math.Ceil(missing / float64(t.limit) * float64(time.Second)))
			longest = max(longest, d)
		}
	}
	return longest
}

// failed counts a failed sign-in against each key.
func (t *throttle) failed(keys ...string) {
	if t.burst == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.buckets) >= maxThrottleKeys {
		for k, b := range t.buckets {
			if b.TokensAt(now) >= float64(t.burst) {
				delete(t.buckets, k)
			}
		}
	}
	for _, k := range keys {
		b, ok := t.buckets[k]
		if !ok {
			b = ratelimit.NewLimiter(t.limit, t.burst)
			t.buckets[k] = b
		}
		b.AllowN(now, 1)
	}
}
