package gctune

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/internal/poll"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, headroom uint64
		want           int
	}{
		{25 * mib, 48 * mib, 192}, // a small heap gets the headroom
		{48 * mib, 48 * mib, 100},
		{200 * mib, 48 * mib, 100}, // never below Go's default
		{1 * mib, 48 * mib, MaxPercent},
		{0, 48 * mib, MaxPercent},
	} {
		if got := Percent(c.live, c.headroom); got != c.want {
			t.Errorf("Percent(%d MiB, %d MiB) = %d, want %d", c.live/mib, c.headroom/mib, got, c.want)
		}
	}
}

// gogc reads the collector's GOGC as the runtime sees it.
func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// TestTunerFollowsLiveHeap checks that the tuner raises GOGC for a small
// heap, lowers it to 100 after a collection finds a heap larger than the
// headroom, and restores 100 on Stop.
func TestTunerFollowsLiveHeap(t *testing.T) {
	if got := gogc(); got != 100 {
		t.Fatalf("GOGC before the tuner = %d, want 100 (is GOGC set in the environment?)", got)
	}
	runtime.GC()
	tu := Start(64 << 20)
	defer tu.Stop()
	if got := gogc(); got <= 100 {
		t.Fatalf("GOGC with a small heap = %d, want above 100", got)
	}

	ballast := make([]byte, 256<<20) // live and larger than the headroom
	for i := range ballast {
		ballast[i] = byte(i)
	}
	err := poll.Until(context.Background(), 10*time.Second, 10*time.Millisecond, "GOGC back to 100", func() (bool, string) {
		runtime.GC()
		return gogc() == 100, fmt.Sprintf("GOGC %d", gogc())
	})
	runtime.KeepAlive(ballast)
	if err != nil {
		t.Fatalf("GOGC with 256 MiB live = %d, want 100: %v", gogc(), err)
	}
	if tu.GCPercent() != 100 {
		t.Fatalf("GCPercent() = %d, want 100", tu.GCPercent())
	}

	tu.Stop()
	if got := gogc(); got != 100 {
		t.Fatalf("GOGC after Stop = %d, want 100", got)
	}
	if Start(0) != nil {
		t.Fatal("Start(0) returned a tuner; want nil (Go's defaults)")
	}
}
