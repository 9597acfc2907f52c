package wire

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// goResult is what a Go call's Done received.
type goResult struct {
	kind    Kind
	payload []byte
	err     error
}

// goCall makes one Go call and returns a channel with its result; it
// fails the test if Done runs twice.
func goCall(t *testing.T, c *Conn, kind Kind, payload []byte, timeout time.Duration) <-chan goResult {
	t.Helper()
	ch := make(chan goResult, 2)
	c.Go(kind, payload, timeout, func(k Kind, p []byte, err error) { ch <- goResult{k, p, err} })
	return ch
}

func waitGo(t *testing.T, ch <-chan goResult, what string) goResult {
	t.Helper()
	select {
	case r := <-ch:
		select {
		case r2 := <-ch:
			t.Fatalf("%s: Done ran twice: %+v then %+v", what, r, r2)
		case <-time.After(50 * time.Millisecond):
		}
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: Done never ran", what)
	}
	return goResult{}
}

// TestGoRoundTrip makes many concurrent Go calls over one connection; each
// gets its own response, once.
func TestGoRoundTrip(t *testing.T) {
	_, addr := startServer(t, ServerConfig{}, echo)
	c := dial(t, addr, ClientConfig{})
	var wg sync.WaitGroup
	errs := make(chan error, 500)
	for i := range 500 {
		wg.Add(1)
		want := fmt.Sprint(i)
		c.Go(3, []byte(want), 5*time.Second, func(k Kind, p []byte, err error) {
			defer wg.Done()
			if err != nil || k != 4 || string(p) != want {
				errs <- fmt.Errorf("call %d: %d %q %v", i, k, p, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := c.async.Load(); n != 0 {
		t.Fatalf("%d Go calls still counted as pending", n)
	}
	r := waitGo(t, goCall(t, c, 0, nil, time.Second), "kind 0")
	if !errors.Is(r.err, errReservedKind) {
		t.Fatalf("kind 0: %v, want errReservedKind", r.err)
	}
}

// TestGoTimeout: a call the server does not answer fails with
// DeadlineExceeded about its timeout later; a late response is dropped and
// the connection stays usable.
func TestGoTimeout(t *testing.T) {
	release := make(chan struct{})
	_, addr := startServer(t, ServerConfig{}, func(ctx context.Context, kind Kind, p []byte) (Kind, []byte, error) {
		if kind == 2 {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return echo(ctx, kind, p)
	})
	c := dial(t, addr, ClientConfig{})
	start := time.Now()
	r := waitGo(t, goCall(t, c, 2, nil, 60*time.Millisecond), "slow call")
	took := time.Since(start)
	if !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", r.err)
	}
	if took < 60*time.Millisecond || took > 2*time.Second {
		t.Fatalf("timed out after %v, want about 60ms (+%v)", took, sweepEvery)
	}
	close(release)
	r = waitGo(t, goCall(t, c, 5, []byte("x"), 5*time.Second), "call after timeout")
	if r.err != nil || string(r.payload) != "x" {
		t.Fatalf("after timeout: %q %v", r.payload, r.err)
	}
	if err := c.Err(); err != nil {
		t.Fatalf("conn down: %v", err)
	}
}

// TestGoConnClosed: pending Go calls fail with ErrConnClosed when the
// connection closes, and calls after that fail at once.
func TestGoConnClosed(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	_, addr := startServer(t, ServerConfig{}, func(ctx context.Context, kind Kind, p []byte) (Kind, []byte, error) {
		select {
		case <-block:
		case <-ctx.Done():
		}
		return kind, nil, nil
	})
	c := dial(t, addr, ClientConfig{})
	pending := goCall(t, c, 1, nil, time.Minute)
	_ = c.Close()
	if r := waitGo(t, pending, "pending call"); !errors.Is(r.err, ErrConnClosed) {
		t.Fatalf("pending: %v, want ErrConnClosed", r.err)
	}
	if r := waitGo(t, goCall(t, c, 1, nil, time.Minute), "call after close"); !errors.Is(r.err, ErrConnClosed) {
		t.Fatalf("after close: %v, want ErrConnClosed", r.err)
	}
}

// TestPoolGo: Pool.Go reaches the server, reports a dial failure as
// ErrNotSent and a closed pool as ErrPoolClosed.
func TestPoolGo(t *testing.T) {
	_, addr := startServer(t, ServerConfig{}, echo)
	p := NewPool(ClientConfig{DialTimeout: time.Second})
	ch := make(chan goResult, 1)
	p.Go(addr, 1, []byte("p"), 5*time.Second, func(k Kind, b []byte, err error) { ch <- goResult{k, b, err} })
	if r := waitGo(t, ch, "pool call"); r.err != nil || string(r.payload) != "p" {
		t.Fatalf("pool Go: %q %v", r.payload, r.err)
	}
	p.Go("127.0.0.1:1", 1, nil, time.Second, func(k Kind, b []byte, err error) { ch <- goResult{k, b, err} })
	if r := waitGo(t, ch, "dial failure"); !errors.Is(r.err, ErrNotSent) {
		t.Fatalf("dial failure: %v, want ErrNotSent", r.err)
	}
	_ = p.Close()
	p.Go(addr, 1, nil, time.Second, func(k Kind, b []byte, err error) { ch <- goResult{k, b, err} })
	if r := waitGo(t, ch, "closed pool"); !errors.Is(r.err, ErrPoolClosed) {
		t.Fatalf("closed pool: %v, want ErrPoolClosed", r.err)
	}
}

// TestInlineKinds: requests of an inline kind run one at a time, in the
// order sent, and are answered like any other; other kinds still run
// concurrently beside them.
func TestInlineKinds(t *testing.T) {
	var mu sync.Mutex
	var order []string
	running, maxRunning := 0, 0
	_, addr := startServer(t, ServerConfig{Inline: func(k Kind) bool { return k == 9 }}, func(ctx context.Context, kind Kind, p []byte) (Kind, []byte, error) {
		if kind == 9 {
			mu.Lock()
			running++
			maxRunning = max(maxRunning, running)
			order = append(order, string(p))
			mu.Unlock()
			// Give another handler, were one running beside this one,
			// the CPU to show up in running.
			for range 100 {
				runtime.Gosched()
			}
			mu.Lock()
			running--
			mu.Unlock()
		}
		return echo(ctx, kind, p)
	})
	c := dial(t, addr, ClientConfig{})
	var wg sync.WaitGroup
	var want []string
	for i := range 20 {
		wg.Add(1)
		want = append(want, fmt.Sprint(i))
		c.Go(9, []byte(fmt.Sprint(i)), 5*time.Second, func(k Kind, p []byte, err error) {
			defer wg.Done()
			if err != nil || k != 10 || string(p) != fmt.Sprint(i) {
				t.Errorf("inline call %d: %d %q %v", i, k, p, err)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if maxRunning != 1 {
		t.Errorf("inline handlers ran %d at once, want 1", maxRunning)
	}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Errorf("inline order %v, want %v", order, want)
	}
}
