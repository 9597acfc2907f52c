package wire

import (
	"context"
	"flag"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

var seedFlag = flag.Uint64("seed", 0, "seed for randomized tests (0: pick one and print it)")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newRand returns a seeded generator and logs the seed, so a failure
// replays with -seed.
func newRand(t testing.TB) *rand.Rand {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -seed=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// startServer serves h on a fresh loopback port until the test ends.
func startServer(t testing.TB, cfg ServerConfig, h Handler) (*Server, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, l, cfg, h), l.Addr().String()
}

// serveOn serves h on l until the test ends (or the returned server is
// closed); Serve's result is checked at cleanup.
func serveOn(t testing.TB, l net.Listener, cfg ServerConfig, h Handler) *Server {
	t.Helper()
	s := NewServer(cfg, h)
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	t.Cleanup(func() {
		_ = s.Close()
		if err := <-errc; err != nil {
			t.Errorf("Serve returned %v after Close, want nil", err)
		}
	})
	return s
}

// echo answers every request with its own payload and kind+1.
func echo(_ context.Context, kind Kind, payload []byte) (Kind, []byte, error) {
	return kind + 1, payload, nil
}

// dial opens a Conn to addr that is closed when the test ends.
func dial(t testing.TB, addr string, cfg ClientConfig) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// ctxTimeout is a context for one test step that cannot hang the suite.
func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
