package wire

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/internal/testutil"
)

func TestRoundTrip(t *testing.T) {
	_, addr := startServer(t, ServerConfig{}, echo)
	c := dial(t, addr, ClientConfig{})
	ctx := ctxTimeout(t, 5*time.Second)

	kind, resp, err := c.Call(ctx, 41, []byte("hello"))
	if err != nil || kind != 42 || string(resp) != "hello" {
		t.Fatalf("Call = %d %q %v, want 42 \"hello\" nil", kind, resp, err)
	}
	kind, resp, err = c.Call(ctx, 7, nil)
	if err != nil || kind != 8 || len(resp) != 0 {
		t.Fatalf("empty Call = %d %q %v", kind, resp, err)
	}
	if _, _, err := c.Call(ctx, 0, nil); !errors.Is(err, errReservedKind) {
		t.Fatalf("kind 0: err = %v, want errReservedKind", err)
	}
}

// TestLargePayload sends a payload larger than the read chunk each way.
func TestLargePayload(t *testing.T) {
	_, addr := startServer(t, ServerConfig{}, echo)
	c := dial(t, addr, ClientConfig{})
	payload := bytes.Repeat([]byte("mnemo"), 1<<18) // 1.25 MiB
	_, resp, err := c.Call(ctxTimeout(t, 10*time.Second), 1, payload)
	if err != nil || !bytes.Equal(resp, payload) {
		t.Fatalf("Call: %d bytes back, err %v", len(resp), err)
	}
}

// TestConcurrentCallsOutOfOrder runs 1000 calls at once over one connection;
// random handler delays finish them out of order, and each caller must get
// its own payload back.
func TestConcurrentCallsOutOfOrder(t *testing.T) {
	rng := newRand(t)
	var mu sync.Mutex
	delays := make([]time.Duration, 1000)
	for i := range delays {
		delays[i] = time.Duration(rng.IntN(5000)) * time.Microsecond
	}
	var order []int // request indexes in the order their handlers finished
	_, addr := startServer(t, ServerConfig{MaxInFlight: 1000}, func(ctx context.Context, kind Kind, p []byte) (Kind, []byte, error) {
		i := int(binary.BigEndian.Uint32(p))
		timer := time.NewTimer(delays[i])
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		}
		mu.Lock()
		order = append(order, i)
		mu.Unlock()
		return kind, p, nil
	})
	c := dial(t, addr, ClientConfig{})
	ctx := ctxTimeout(t, 30*time.Second)

	var wg sync.WaitGroup
	errs := make(chan error, len(delays))
	for i := range delays {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := binary.BigEndian.AppendUint32(nil, uint32(i))
			_, resp, err := c.Call(ctx, 1, req)
			if err != nil {
				errs <- fmt.Errorf("call %d: %w", i, err)
			} else if !bytes.Equal(resp, req) {
				errs <- fmt.Errorf("call %d got the response to call %d", i, binary.BigEndian.Uint32(resp))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	outOfOrder := 0
	for k := 1; k < len(order); k++ {
		if order[k] < order[k-1] {
			outOfOrder++
		}
	}
	t.Logf("%d of %d responses finished before an earlier-numbered one", outOfOrder, len(order))
}

func TestErrorResponses(t *testing.T) {
	quorum := &Error{Code: CodeQuorum, Msg: "1 of 2 acks", Data: []byte{0x92, 1, 2}}
	_, addr := startServer(t, ServerConfig{}, func(_ context.Context, kind Kind, _ []byte) (Kind, []byte, error) {
		switch kind {
		case 1:
			return 0, []byte("ignored"), quorum
		case 2:
			return 0, nil, fmt.Errorf("node: put: %w", quorum)
		case 3:
			return 0, nil, errors.New("disk on fire")
		default:
			return 0, nil, Errorf(CodeUnknownKind, "kind %d", kind)
		}
	})
	c := dial(t, addr, ClientConfig{})
	ctx := ctxTimeout(t, 5*time.Second)

	tests := []struct {
		kind Kind
		want *Error
	}{
		{1, quorum},
		{2, quorum}, // the *Error inside a wrapped error is sent as is
		{3, &Error{Code: CodeInternal, Msg: "disk on fire"}},
		{99, &Error{Code: CodeUnknownKind, Msg: "kind 99"}},
	}
	for _, tt := range tests {
		_, resp, err := c.Call(ctx, tt.kind, nil)
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("kind %d: err = %v (%T), want *Error", tt.kind, err, err)
		}
		if e.Code != tt.want.Code || e.Msg != tt.want.Msg || !bytes.Equal(e.Data, tt.want.Data) || resp != nil {
			t.Errorf("kind %d: got %+v resp %q, want %+v", tt.kind, e, resp, tt.want)
		}
	}
}

func TestHandlerPanic(t *testing.T) {
	s, addr := startServer(t, ServerConfig{}, func(ctx context.Context, kind Kind, p []byte) (Kind, []byte, error) {
		if kind == 13 {
			panic("boom")
		}
		return echo(ctx, kind, p)
	})
	c := dial(t, addr, ClientConfig{})
	ctx := ctxTimeout(t, 5*time.Second)

	_, _, err := c.Call(ctx, 13, nil)
	if CodeOf(err) != CodeInternal || !strings.Contains(err.Error(), "handler panic: boom") {
		t.Fatalf("panicking handler: err = %v, want CodeInternal with the panic", err)
	}
	if _, resp, err := c.Call(ctx, 1, []byte("still here")); err != nil || string(resp) != "still here" {
		t.Fatalf("after panic: %q %v", resp, err)
	}
	if got := s.Stats().HandlerPanics; got != 1 {
		t.Fatalf("HandlerPanics = %d, want 1", got)
	}
}

// TestCallTimeout: a call whose context ends while its handler is slow
// returns promptly with DeadlineExceeded, and the connection stays usable,
// including after the late response arrives and is dropped.
func TestCallTimeout(t *testing.T) {
	release := make(chan struct{})
	var slowDone atomic.Bool
	_, addr := startServer(t, ServerConfig{}, func(ctx context.Context, kind Kind, p []byte) (Kind, []byte, error) {
		if kind == 2 {
			select {
			case <-release:
			case <-ctx.Done():
			}
			defer slowDone.Store(true)
			return kind, []byte("late"), nil
		}
		return echo(ctx, kind, p)
	})
	c := dial(t, addr, ClientConfig{})

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := c.Call(ctx, 2, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("timed-out call took %v", d)
	}

	ok := ctxTimeout(t, 5*time.Second)
	if _, resp, err := c.Call(ok, 1, []byte("a")); err != nil || string(resp) != "a" {
		t.Fatalf("after timeout: %q %v", resp, err)
	}
	close(release)
	testutil.Eventually(t, 5*time.Second, "slow handler finishes", func() (bool, string) {
		return slowDone.Load(), "handler still running"
	})
	if _, resp, err := c.Call(ok, 1, []byte("b")); err != nil || string(resp) != "b" {
		t.Fatalf("after late response: %q %v", resp, err)
	}
	if err := c.Err(); err != nil {
		t.Fatalf("conn down: %v", err)
	}
}

// rawConn opens a plain TCP connection for sending bad bytes.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return nc
}

// waitClosed reads from nc until the server closes it, returning any frames
// received first. It fails the test if nc is still open after a deadline.
func waitClosed(t *testing.T, nc net.Conn) []byte {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(nc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("server did not close the connection; read %d bytes", len(b))
	}
	return b
}

// TestBadInput sends garbage on raw connections; the server must drop or
// answer them and go on serving well-formed clients.
func TestBadInput(t *testing.T) {
	rng := newRand(t)
	s, addr := startServer(t, ServerConfig{FrameTimeout: 100 * time.Millisecond, MaxFrame: 1 << 20}, func(_ context.Context, kind Kind, p []byte) (Kind, []byte, error) {
		if kind != 1 {
			return 0, nil, Errorf(CodeUnknownKind, "kind %d", kind)
		}
		return kind, p, nil
	})
	c := dial(t, addr, ClientConfig{})
	ctx := ctxTimeout(t, 10*time.Second)
	healthy := func(step string) {
		t.Helper()
		if _, resp, err := c.Call(ctx, 1, []byte(step)); err != nil || string(resp) != step {
			t.Fatalf("after %s: %q %v", step, resp, err)
		}
	}
	healthy("start")

	t.Run("random bytes", func(t *testing.T) {
		junk := make([]byte, 4096)
		for i := range junk {
			junk[i] = byte(rng.Uint32())
		}
		junk[0] = 0xff // a length far over the limit, whatever follows
		nc := rawConn(t, addr)
		_, _ = nc.Write(junk)
		waitClosed(t, nc)
		healthy("random bytes")
	})

	t.Run("frame over the limit", func(t *testing.T) {
		nc := rawConn(t, addr)
		_, _ = nc.Write(rawHeader(9999999, 5, 1, 0))
		got := waitClosed(t, nc)
		h, p, err := ReadFrame(bufio.NewReader(bytes.NewReader(got)), DefaultMaxFrame)
		if err != nil {
			t.Fatalf("no error frame before close (%d bytes): %v", len(got), err)
		}
		e := decodeError(p)
		if h.ID != 0 || h.Flags != FlagResponse|FlagError || e.Code != CodeTooLarge ||
			e.Msg != "wire: frame of 9999999 bytes exceeds limit 1048576" {
			t.Fatalf("got %+v %+v", h, e)
		}
		healthy("frame over the limit")
	})

	t.Run("frame under its header", func(t *testing.T) {
		nc := rawConn(t, addr)
		_, _ = nc.Write(rawHeader(3, 5, 1, 0))
		got := waitClosed(t, nc)
		_, p, err := ReadFrame(bufio.NewReader(bytes.NewReader(got)), DefaultMaxFrame)
		if err != nil || decodeError(p).Code != CodeBadRequest {
			t.Fatalf("want a CodeBadRequest frame, got %v %+v", err, decodeError(p))
		}
		healthy("frame under its header")
	})

	t.Run("truncated frame then close", func(t *testing.T) {
		nc := rawConn(t, addr)
		frame := AppendFrame(nil, Header{ID: 1, Kind: 1}, []byte("cut short"))
		_, _ = nc.Write(frame[:len(frame)-3])
		_ = nc.Close()
		healthy("truncated frame")
	})

	t.Run("half a header then stall", func(t *testing.T) {
		before := s.Stats().ProtocolErrors
		nc := rawConn(t, addr)
		_, _ = nc.Write(AppendFrame(nil, Header{ID: 1, Kind: 1}, nil)[:7])
		start := time.Now()
		waitClosed(t, nc) // FrameTimeout is 100ms
		t.Logf("disconnected after %v", time.Since(start))
		testutil.Eventually(t, 5*time.Second, "stall counted", func() (bool, string) {
			got := s.Stats().ProtocolErrors
			return got > before, fmt.Sprintf("ProtocolErrors %d", got)
		})
		healthy("stall")
	})

	t.Run("kind 0 and a stray response", func(t *testing.T) {
		nc := rawConn(t, addr)
		var in []byte
		in = AppendFrame(in, Header{ID: 9, Kind: 1, Flags: FlagResponse}, []byte("stray"))
		in = AppendFrame(in, Header{ID: 10, Kind: 0}, nil)
		in = AppendFrame(in, Header{ID: 11, Kind: 1}, []byte("ok"))
		_, _ = nc.Write(in)
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(nc)
		h, p, err := ReadFrame(br, DefaultMaxFrame)
		if err != nil || h.ID != 10 || decodeError(p).Code != CodeBadRequest {
			t.Fatalf("kind 0: %+v %v %+v", h, err, decodeError(p))
		}
		h, p, err = ReadFrame(br, DefaultMaxFrame)
		if err != nil || h.ID != 11 || string(p) != "ok" {
			t.Fatalf("after stray response: %+v %q %v", h, p, err)
		}
	})

	t.Run("unknown kind", func(t *testing.T) {
		_, _, err := c.Call(ctx, 77, nil)
		if CodeOf(err) != CodeUnknownKind {
			t.Fatalf("err = %v, want CodeUnknownKind", err)
		}
		healthy("unknown kind")
	})

	testutil.Eventually(t, 5*time.Second, "bad connections closed", func() (bool, string) {
		st := s.Stats()
		return st.ConnsOpen == 1, fmt.Sprintf("%+v", st)
	})
}

// TestOversizedRequestClosesConn: a client whose own limit is higher than
// the server's sends a frame the server refuses; the server's id-0 notice
// fails the pending call with its code, and the pool's next call redials.
func TestOversizedRequestClosesConn(t *testing.T) {
	_, addr := startServer(t, ServerConfig{MaxFrame: 64 << 10}, echo)
	p := NewPool(ClientConfig{ConnsPerAddr: 1})
	t.Cleanup(func() { _ = p.Close() })
	ctx := ctxTimeout(t, 10*time.Second)

	_, _, err := p.Call(ctx, addr, 1, make([]byte, 100<<10))
	if !errors.Is(err, ErrConnClosed) || CodeOf(err) != CodeTooLarge {
		t.Fatalf("err = %v, want ErrConnClosed carrying CodeTooLarge", err)
	}
	if _, resp, err := p.Call(ctx, addr, 1, []byte("x")); err != nil || string(resp) != "x" {
		t.Fatalf("after redial: %q %v", resp, err)
	}
}

func TestSizeLimits(t *testing.T) {
	_, addr := startServer(t, ServerConfig{MaxFrame: 4 << 10}, func(context.Context, Kind, []byte) (Kind, []byte, error) {
		return 1, make([]byte, 8<<10), nil
	})
	c := dial(t, addr, ClientConfig{MaxFrame: 2 << 10})
	ctx := ctxTimeout(t, 5*time.Second)
	if _, _, err := c.Call(ctx, 1, make([]byte, 4<<10)); !errors.Is(err, ErrFrameSize) {
		t.Fatalf("oversized request: err = %v, want ErrFrameSize", err)
	}
	if _, _, err := c.Call(ctx, 1, nil); CodeOf(err) != CodeTooLarge {
		t.Fatalf("oversized response: err = %v, want CodeTooLarge", err)
	}
}

// TestBackpressure: with MaxInFlight 2, no more than two handlers run on a
// connection at once, and every call still completes.
func TestBackpressure(t *testing.T) {
	var running, peak atomic.Int32
	release := make(chan struct{})
	_, addr := startServer(t, ServerConfig{MaxInFlight: 2}, func(ctx context.Context, kind Kind, p []byte) (Kind, []byte, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return kind, p, nil
	})
	c := dial(t, addr, ClientConfig{})
	ctx := ctxTimeout(t, 10*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := c.Call(ctx, 1, nil); err != nil {
				errs <- err
			}
		}()
	}
	testutil.Eventually(t, 5*time.Second, "two handlers running", func() (bool, string) {
		n := running.Load()
		return n == 2, fmt.Sprintf("%d running", n)
	})
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if p := peak.Load(); p != 2 {
		t.Fatalf("peak concurrent handlers %d, want 2", p)
	}
}

// TestServerCloseInFlight: Close with calls in flight cancels their
// handlers, fails the callers with ErrConnClosed and leaves no goroutines
// (checked by goleak in TestMain).
func TestServerCloseInFlight(t *testing.T) {
	var started atomic.Int32
	s, addr := startServer(t, ServerConfig{}, func(ctx context.Context, kind Kind, p []byte) (Kind, []byte, error) {
		started.Add(1)
		<-ctx.Done()
		return 0, nil, ctx.Err()
	})
	p := NewPool(ClientConfig{})
	t.Cleanup(func() { _ = p.Close() })
	ctx := ctxTimeout(t, 10*time.Second)

	const calls = 50
	errs := make(chan error, calls)
	for range calls {
		go func() {
			_, _, err := p.Call(ctx, addr, 1, nil)
			errs <- err
		}()
	}
	testutil.Eventually(t, 5*time.Second, "all handlers started", func() (bool, string) {
		n := started.Load()
		return n == calls, fmt.Sprintf("%d started", n)
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	for range calls {
		if err := <-errs; !errors.Is(err, ErrConnClosed) {
			t.Errorf("in-flight call: err = %v, want ErrConnClosed", err)
		}
	}
	if st := s.Stats(); st.ConnsOpen != 0 {
		t.Fatalf("after Close: %+v", st)
	}
}

func TestPoolRedialsAfterRestart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	first := serveOn(t, l, ServerConfig{}, echo)
	p := NewPool(ClientConfig{})
	t.Cleanup(func() { _ = p.Close() })
	ctx := ctxTimeout(t, 10*time.Second)

	for i := range 4 { // touch both connections of the address
		if _, _, err := p.Call(ctx, addr, 1, nil); err != nil {
			t.Fatalf("call %d before restart: %v", i, err)
		}
	}
	_ = first.Close()
	if _, _, err := p.Call(ctx, addr, 1, nil); err == nil {
		t.Fatal("call succeeded with the server down")
	}

	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("relisten on %s: %v", addr, err)
	}
	serveOn(t, l2, ServerConfig{}, echo)
	var last error
	testutil.Eventually(t, 5*time.Second, "pool reaches the restarted server", func() (bool, string) {
		_, resp, err := p.Call(ctx, addr, 1, []byte("back"))
		last = err
		return err == nil && string(resp) == "back", fmt.Sprint(last)
	})
	for i := range 4 { // every slot has redialed by now
		if _, _, err := p.Call(ctx, addr, 1, nil); err != nil {
			t.Fatalf("call %d after restart: %v", i, err)
		}
	}
}

func TestPoolClose(t *testing.T) {
	_, addr := startServer(t, ServerConfig{}, echo)
	p := NewPool(ClientConfig{})
	ctx := ctxTimeout(t, 5*time.Second)
	if _, _, err := p.Call(ctx, addr, 1, nil); err != nil {
		t.Fatal(err)
	}
	_ = p.Close()
	_ = p.Close()
	if _, _, err := p.Call(ctx, addr, 1, nil); !errors.Is(err, ErrPoolClosed) {
		t.Fatalf("after Close: err = %v, want ErrPoolClosed", err)
	}
}

func TestPoolDialFailure(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens here now
	p := NewPool(ClientConfig{})
	t.Cleanup(func() { _ = p.Close() })
	if _, _, err := p.Call(ctxTimeout(t, 5*time.Second), addr, 1, nil); err == nil || !strings.HasPrefix(err.Error(), "wire: ") {
		t.Fatalf("err = %v, want a wire: dial error", err)
	}
}

// TestConnClose fails pending calls with ErrConnClosed.
func TestConnClose(t *testing.T) {
	_, addr := startServer(t, ServerConfig{}, func(ctx context.Context, _ Kind, _ []byte) (Kind, []byte, error) {
		<-ctx.Done()
		return 0, nil, nil
	})
	c := dial(t, addr, ClientConfig{})
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.Call(ctxTimeout(t, 10*time.Second), 1, nil)
		errc <- err
	}()
	testutil.Eventually(t, 5*time.Second, "call pending", func() (bool, string) {
		n := 0
		for i := range c.shards {
			c.shards[i].mu.Lock()
			n += len(c.shards[i].m)
			c.shards[i].mu.Unlock()
		}
		return n == 1, fmt.Sprintf("%d pending", n)
	})
	_ = c.Close()
	_ = c.Close()
	if err := <-errc; !errors.Is(err, ErrConnClosed) {
		t.Fatalf("pending call: err = %v, want ErrConnClosed", err)
	}
	if _, _, err := c.Call(context.Background(), 1, nil); !errors.Is(err, ErrConnClosed) {
		t.Fatalf("call after Close: err = %v, want ErrConnClosed", err)
	}
}

// TestIdleTimeout: the server closes a connection that sends nothing, but
// not while a handler is still working for it.
func TestIdleTimeout(t *testing.T) {
	release := make(chan struct{})
	_, addr := startServer(t, ServerConfig{IdleTimeout: 50 * time.Millisecond}, func(ctx context.Context, kind Kind, p []byte) (Kind, []byte, error) {
		if kind == 2 {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return kind, p, nil
	})

	busy := dial(t, addr, ClientConfig{})
	errc := make(chan error, 1)
	go func() {
		_, _, err := busy.Call(ctxTimeout(t, 10*time.Second), 2, nil)
		errc <- err
	}()

	idle := dial(t, addr, ClientConfig{})
	select {
	case <-idle.Done():
		t.Logf("idle conn closed: %v", idle.Err())
	case <-time.After(5 * time.Second):
		t.Fatal("idle connection still open after 5s")
	}
	// The idle conn's close proves more than one IdleTimeout has passed
	// since busy's call started; it must still be pending.
	select {
	case err := <-errc:
		t.Fatalf("busy call ended early: %v", err)
	default:
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatalf("busy call: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	err := ServerConfig{MaxFrame: 10, MaxInFlight: -1, FrameTimeout: -1, IdleTimeout: -1, WriteTimeout: -1}.Validate()
	for _, want := range []string{"MaxFrame", "MaxInFlight", "FrameTimeout", "IdleTimeout", "WriteTimeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ServerConfig.Validate = %v, want it to name %s", err, want)
		}
	}
	err = ClientConfig{MaxFrame: 10, DialTimeout: -1, ConnsPerAddr: -1, IdleTimeout: -1}.Validate()
	for _, want := range []string{"MaxFrame", "DialTimeout", "ConnsPerAddr", "IdleTimeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ClientConfig.Validate = %v, want it to name %s", err, want)
		}
	}
	if err := DefaultServerConfig().Validate(); err != nil {
		t.Error(err)
	}
	if err := (ClientConfig{}).Validate(); err != nil {
		t.Error(err)
	}
}

// TestPoolRetiresIdleConns: a pooled connection unused for the client's
// IdleTimeout is replaced by a fresh one on the next call, and one in use is
// kept. The pool's clock is faked so that no test time passes.
func TestPoolRetiresIdleConns(t *testing.T) {
	s, addr := startServer(t, ServerConfig{}, echo)
	p := NewPool(ClientConfig{ConnsPerAddr: 1, IdleTimeout: time.Minute})
	t.Cleanup(func() { _ = p.Close() })
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	p.now = func() time.Time { return time.Unix(0, clock.Load()) }
	ctx := ctxTimeout(t, 10*time.Second)
	call := func() {
		t.Helper()
		if _, _, err := p.Call(ctx, addr, 1, nil); err != nil {
			t.Fatal(err)
		}
	}

	call()
	clock.Add(int64(59 * time.Second))
	call() // used within IdleTimeout: kept, and its idle time restarts
	clock.Add(int64(59 * time.Second))
	call()
	if n := s.Stats().ConnsAccepted; n != 1 {
		t.Fatalf("ConnsAccepted = %d before any idle period, want 1", n)
	}
	clock.Add(int64(61 * time.Second))
	call()
	testutil.Eventually(t, 5*time.Second, "idle conn replaced", func() (bool, string) {
		st := s.Stats()
		return st.ConnsAccepted == 2 && st.ConnsOpen == 1, fmt.Sprintf("%+v", st)
	})
}

func TestPoolCloseAddr(t *testing.T) {
	s, addr := startServer(t, ServerConfig{}, echo)
	p := NewPool(ClientConfig{})
	t.Cleanup(func() { _ = p.Close() })
	ctx := ctxTimeout(t, 10*time.Second)
	for range 2 {
		if _, _, err := p.Call(ctx, addr, 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	p.CloseAddr(addr)
	p.CloseAddr("127.0.0.1:1") // unknown: no-op
	testutil.Eventually(t, 5*time.Second, "server sees the conns close", func() (bool, string) {
		st := s.Stats()
		return st.ConnsOpen == 0, fmt.Sprintf("%+v", st)
	})
	if _, resp, err := p.Call(ctx, addr, 1, []byte("again")); err != nil || string(resp) != "again" {
		t.Fatalf("after CloseAddr: %q %v", resp, err)
	}
}

func TestServeAfterClose(t *testing.T) {
	s := NewServer(ServerConfig{}, echo)
	_ = s.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(l); err != nil {
		t.Fatalf("Serve after Close = %v, want nil", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("listener not closed: %v", err)
	}
}

func TestServerStats(t *testing.T) {
	s, addr := startServer(t, ServerConfig{}, echo)
	c := dial(t, addr, ClientConfig{})
	ctx := ctxTimeout(t, 5*time.Second)
	for range 3 {
		if _, _, err := c.Call(ctx, 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if st.FramesIn != 3 || st.FramesOut != 3 || st.ConnsOpen != 1 || st.ConnsAccepted != 1 || st.Flushes == 0 || st.Flushes > 3 {
		t.Fatalf("stats %+v", st)
	}
}

// TestServerWriteTimeout: a client that sends requests but never reads the
// responses is disconnected once WriteTimeout passes without progress, so
// it cannot pin the server's handlers and buffers.
func TestServerWriteTimeout(t *testing.T) {
	big := bytes.Repeat([]byte("r"), 256<<10)
	srv, addr := startServer(t, ServerConfig{WriteTimeout: 200 * time.Millisecond}, func(_ context.Context, kind Kind, _ []byte) (Kind, []byte, error) {
		return kind, big, nil
	})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	go func() {
		var frame []byte
		for id := uint64(1); id <= 200; id++ {
			frame = AppendFrame(frame[:0], Header{ID: id, Kind: 1}, nil)
			if _, err := nc.Write(frame); err != nil {
				return
			}
		}
	}()
	testutil.Eventually(t, 10*time.Second, "server closes the non-reading connection", func() (bool, string) {
		st := srv.Stats()
		return st.ConnsAccepted == 1 && st.ConnsOpen == 0, fmt.Sprintf("%+v", st)
	})
}
