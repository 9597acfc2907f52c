package antientropy

import (
	"context"
	"sync"
	"time"
)

// limiter is a token bucket over bytes: rate bytes per second, bursts of
// up to burst bytes. A caller takes its bytes at once and then waits until
// the bucket is no longer in debt, so a message larger than the burst
// still goes through (after a proportional wait) and later callers queue
// behind it. A nil limiter never waits.
type limiter struct {
	rate  float64 // bytes per second
	burst float64 // bytes

	// mu guards tokens and last.
	mu     sync.Mutex
	tokens float64   // may go negative: the debt of callers waiting
	last   time.Time // when tokens was last refilled
	now    func() time.Time
}

// newLimiter returns a limiter of rate bytes per second, or nil (no
// limit) for rate < 0.
func newLimiter(rate int64) *limiter {
	if rate < 0 {
		return nil
	}
	burst := max(float64(rate)/8, 256<<10)
	return &limiter{rate: float64(rate), burst: burst, tokens: burst, now: time.Now}
}

// wait takes n bytes from the bucket and blocks until it is out of debt
// or ctx ends.
func (l *limiter) wait(ctx context.Context, n int) error {
	if l == nil || n <= 0 {
		return nil
	}
	l.mu.Lock()
	now := l.now()
	if !l.last.IsZero() {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	l.tokens -= float64(n)
	debt := -l.tokens
	l.mu.Unlock()
	if debt <= 0 {
		return nil
	}
	d := time.Duration(debt / l.rate * float64(time.Second))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
