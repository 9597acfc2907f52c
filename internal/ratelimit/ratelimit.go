// Package ratelimit is the token bucket background work (hint replay,
// anti-entropy, ownership transfer) uses so it never crowds out foreground
// requests. A nil *Bucket, or a rate of zero or less, never waits.
package ratelimit

import (
	"context"
	"sync"
	"time"
)

// Bucket allows Rate units per second on average, with bursts of up to
// Burst. A taker reserves its units at once, going into debt if need be,
// and waits until the debt would have been earned; concurrent takers queue
// behind each other's debt, so the long-run rate holds for all of them
// together and a request larger than the burst still passes (after a
// proportional wait). Safe for concurrent use.
type Bucket struct {
	rate  float64 // units per second; <= 0: unlimited
	burst float64 // most units banked

	// mu guards tokens and last.
	mu     sync.Mutex
	tokens float64 // may be negative: reserved but not yet earned
	last   time.Time
	now    func() time.Time
}

// New returns a bucket of rate units per second and a burst of one
// second's worth (at least 1).
func New(rate float64) *Bucket { return NewWithBurst(rate, max(rate, 1)) }

// NewWithBurst returns a bucket of rate units per second banking at most
// burst units.
func NewWithBurst(rate, burst float64) *Bucket {
	return &Bucket{rate: rate, burst: burst, tokens: burst, now: time.Now}
}

// SetClock replaces the bucket's clock (tests).
func (b *Bucket) SetClock(now func() time.Time) { b.now = now }

// Wait takes n units and blocks until they are earned or ctx ends; then it
// returns ctx's error, and the units stay taken (which only slows later
// takers).
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
