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

func TestHold(t *testing.T) {
	n := 0
	start := time.Now()
	if err := Hold(context.Background(), 30*time.Millisecond, time.Millisecond, func() error { n++; return nil }); err != nil {
		t.Fatalf("Hold of a true condition: %v", err)
	}
	if el := time.Since(start); el < 30*time.Millisecond || n < 2 {
		t.Errorf("Hold returned after %v and %d checks, want 30ms and several", el, n)
	}

	bad := errors.New("seen dead")
	n = 0
	err := Hold(context.Background(), time.Minute, time.Millisecond, func() error {
		n++
		if n == 3 {
			return bad
		}
		return nil
	})
	if !errors.Is(err, bad) || n != 3 {
		t.Errorf("Hold = %v after %d checks, want the third check's error", err, n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Hold(ctx, time.Minute, time.Millisecond, func() error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Hold with a cancelled context: %v", err)
	}
}
