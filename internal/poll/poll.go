// Package poll waits for a condition the way mnemo's tests, tools and
// harnesses do: call it at an interval until it holds, a deadline passes
// or a context ends, and say what it last reported. Production code may
// import it (the demo and the bench do); testutil.Eventually wraps it for
// tests.
package poll

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrTimedOut is wrapped by Until's error when the timeout passed.
var ErrTimedOut = errors.New("timed out")

// Until calls cond every interval until it returns true (Until returns
// nil), timeout passes (an error wrapping ErrTimedOut) or ctx ends (an
// error wrapping ctx.Err()). cond returns whether the condition holds and
// what it saw; the error names what was awaited and ends with the last
// non-empty thing cond saw. A timeout of 0 or less sets no bound but ctx.
// cond runs on the caller's goroutine, at least once.
func Until(ctx context.Context, timeout, interval time.Duration, what string, cond func() (bool, string)) error {
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	last := ""
	for {
		ok, seen := cond()
		if ok {
			return nil
		}
		if seen != "" {
			last = seen
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w; last seen: %s", what, ctx.Err(), last)
		case <-deadline:
			return fmt.Errorf("%s: %w after %v; last seen: %s", what, ErrTimedOut, timeout, last)
		case <-tick.C:
		}
	}
}

// Hold calls check every interval for d and returns the first error it
// returns (nil if none did by then), or an error wrapping ctx.Err() if ctx
// ends first. It is Until's counterpart for what must stay true for a
// while: a stranger that must not join, a member that must not be seen
// dead. check runs on the caller's goroutine, at least once.
func Hold(ctx context.Context, d, interval time.Duration, check func() error) error {
	end := time.NewTimer(d)
	defer end.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if err := check(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("poll: hold: %w", ctx.Err())
		case <-end.C:
			return nil
		case <-tick.C:
		}
	}
}
