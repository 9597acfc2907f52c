// Package testutil holds the small helpers mnemo's tests share. Its main
// one is Eventually: tests wait for conditions, never for time.
package testutil

import (
	"testing"
	"time"
)

// Eventually polls cond every interval (10ms) until it returns true or the
// timeout passes; then it fails the test with what cond last reported. cond
// returns whether the condition holds and a description of what it saw.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	if !Poll(timeout, 10*time.Millisecond, cond) {
		_, seen := cond()
		t.Fatalf("after %v still not %s; last seen: %s", timeout, what, seen)
	}
}

// Poll calls cond every interval until it returns true (Poll returns true)
// or the timeout passes (false). For non-test code paths such as the demo.
func Poll(timeout, interval time.Duration, cond func() (bool, string)) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if ok, _ := cond(); ok {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
}
