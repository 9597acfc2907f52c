// Package testutil holds the small helpers mnemo's tests share. Its main
// one is Eventually: tests wait for conditions, never for time. Only tests
// import it; code that ships waits with internal/poll.
package testutil

import (
	"context"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/internal/poll"
)

// Eventually polls cond every interval (10ms) until it returns true or the
// timeout passes; then it fails the test with what cond last reported. cond
// returns whether the condition holds and a description of what it saw.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	if err := poll.Until(context.Background(), timeout, 10*time.Millisecond, what, cond); err != nil {
		t.Fatal(err)
	}
}

// Consistently calls check every interval (50ms) for d and fails the test
// with the first error it returns: for what must stay true for a while.
func Consistently(t testing.TB, d time.Duration, check func() error) {
	t.Helper()
	if err := poll.Hold(context.Background(), d, 50*time.Millisecond, check); err != nil {
		t.Fatal(err)
	}
}
