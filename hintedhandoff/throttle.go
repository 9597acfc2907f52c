package hintedhandoff

import (
	"context"
	"sync"
	"time"
)

// tokenBucket is the replay throttle: rate tokens (objects) per second, at
// most burst banked. A taker reserves its tokens at once, going into debt if
// need be, and waits until the debt would have been earned; concurrent
// takers queue behind each other's debt, so the long-run rate holds for all
// replays together. Safe for concurrent use.
type tokenBucket struct {
	rate  float64 // tokens per second
	burst float64 // most tokens banked

	mu     sync.Mutex // guards tokens and last
	tokens float64    // may be negative: reserved but not yet earned
	last   time.Time  // when tokens was last brought up to date
}

func newTokenBucket(rate, burst int) *tokenBucket {
	return &tokenBucket{rate: float64(rate), burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

// wait takes n tokens, blocking until they are earned or ctx ends (then it
// returns ctx's error; the tokens stay taken, which only slows later takers).
func (b *tokenBucket) wait(ctx context.Context, n int) error {
	b.mu.Lock()
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	b.tokens -= float64(n)
	debt := -b.tokens
	b.mu.Unlock()
	if debt <= 0 {
		return ctx.Err()
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
