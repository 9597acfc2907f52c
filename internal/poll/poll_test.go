package poll

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestUntil(t *testing.T) {
	n := 0
	err := Until(context.Background(), time.Minute, time.Millisecond, "three calls", func() (bool, string) {
		n++
		return n == 3, "not yet"
	})
	if err != nil || n != 3 {
		t.Errorf("Until = %v after %d calls, want nil after 3", err, n)
	}

	err = Until(context.Background(), 20*time.Millisecond, time.Millisecond, "the impossible", func() (bool, string) {
		return false, "still false"
	})
	if !errors.Is(err, ErrTimedOut) || !strings.Contains(err.Error(), "the impossible: timed out after 20ms; last seen: still false") {
		t.Errorf("timeout: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err = Until(ctx, 0, time.Millisecond, "cancelled", func() (bool, string) {
		calls++
		if calls == 2 {
			cancel()
		}
		return false, ""
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
