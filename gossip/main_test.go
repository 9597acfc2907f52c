package gossip

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/internal/poll"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests.
//
// memberlist's Shutdown does not wait for all of its goroutines: a probe in
// progress (up to ProbeInterval), a connection handler or a push/pull (up to
// TCPTimeout) and suspicion timers (time.AfterFunc) finish on their own
// shortly after. So rather than ignore memberlist's functions, the check
// polls with a deadline until they are gone, and reports what was last seen.
func TestMain(m *testing.M) {
	zerolog.TimeFieldFormat = time.RFC3339Nano // test logs interleave several nodes
	code := m.Run()
	if code == 0 {
		if err := waitNoLeaks(10 * time.Second); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func waitNoLeaks(within time.Duration) error {
	return poll.Until(context.Background(), within, 50*time.Millisecond, "no goroutine left after the tests", func() (bool, string) {
		if err := goleak.Find(); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}
