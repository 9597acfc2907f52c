// Package ratelimit is a token bucket for background work (hint replay,
// anti-entropy, ownership transfer) so it never crowds out foreground
// requests. Zero or negative rates mean unlimited.
package ratelimit

import (
	"context"
	"sync"
	"time"
)

// Bucket allows Rate units per second on average, with bursts up to Burst.
// Safe for concurrent use.
type Bucket struct {
	rate  float64 // units per second; <= 0: unlimited
	burst float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
	now    func() time.Time
}

// New returns a bucket of rate units per second and a burst of one
// second's worth (at least 1).
func New(rate float64) *Bucket {
	return &Bucket{rate: rate, burst: max(rate, 1), tokens: max(rate, 1), now: time.Now}
}

// Wait blocks until n units may pass or ctx ends. A request larger than the
// burst passes once the bucket is full and leaves it in debt, so large
// batches are throttled on average without being refused. The units are
// taken even when ctx ends first.
func (b *Bucket) Wait(ctx context.Context, n int) error {
	if b == nil || b.rate <= 0 || n <= 0 {
		return nil
	}
	b.mu.Lock()
	now := b.now()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	b.tokens -= float64(n)
	debt := -b.tokens
	b.mu.Unlock()
	if debt <= 0 {
		return nil
	}
	t := time.NewTimer(time.Duration(debt / b.rate * float64(time.Second)))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
