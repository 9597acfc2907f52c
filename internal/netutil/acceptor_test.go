package netutil

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mnemo-kv/mnemo/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// flakyListener fails its first accepts with a temporary error, then
// hands out the connections of a real loopback listener.
type flakyListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, errors.New("accept: too many open files")
	}
	return l.Listener.Accept()
}

// echoAcceptor serves each connection by echoing it until it ends, and
// counts what it saw.
type echoAcceptor struct {
	*Acceptor[net.Conn]
	forgot, rejected atomic.Int32
}

func newEcho(maxConns int) *echoAcceptor {
	e := &echoAcceptor{}
	e.Acceptor = NewAcceptor(AcceptorConfig[net.Conn]{
		Name: "test",
		Open: func(nc net.Conn) (net.Conn, func()) {
			return nc, func() { _, _ = io.Copy(nc, nc) }
		},
		CloseConn: func(nc net.Conn) { _ = nc.Close() },
		Forget:    func(net.Conn) { e.forgot.Add(1) },
		MaxConns:  maxConns,
		Reject: func(nc net.Conn) {
			e.rejected.Add(1)
			_, _ = nc.Write([]byte("full\n"))
		},
	})
	return e
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// echoes checks c echoes a line.
func echoes(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 3)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "hi\n" {
		t.Fatalf("echo: %q, %v", b, err)
	}
}

// TestAcceptorServesAfterTemporaryErrors: accept failures back off and
// retry; connections are served, forgotten when they end, and Close ends
// the rest and Serve.
func TestAcceptorServesAfterTemporaryErrors(t *testing.T) {
	l := &flakyListener{Listener: listen(t)}
	l.fails.Store(3)
	a := newEcho(0)
	errc := make(chan error, 1)
	go func() { errc <- a.Serve(l) }()

	c1, c2 := dial(t, l.Addr().String()), dial(t, l.Addr().String())
	echoes(t, c1)
	echoes(t, c2)
	_ = c1.Close()
	testutil.Eventually(t, 5*time.Second, "the closed connection forgotten", func() (bool, string) {
		n := 0
		a.Conns(func(m map[net.Conn]struct{}) { n = len(m) })
		return a.forgot.Load() == 1 && n == 1, "still tracked"
	})

	a.Close()
	if err := <-errc; err != nil {
		t.Errorf("Serve after Close: %v, want nil", err)
	}
	_ = c2.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err == nil {
		t.Error("connection still open after Close")
	}
	if err := a.Serve(listen(t)); err != nil {
		t.Errorf("Serve after Close: %v, want nil at once", err)
	}
	a.Close() // idempotent
}

// TestAcceptorMaxConns: a connection over MaxConns is rejected, and one
// is accepted again once a slot frees.
func TestAcceptorMaxConns(t *testing.T) {
	l := listen(t)
	a := newEcho(1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = a.Serve(l) }()
	defer func() { a.Close(); wg.Wait() }()

	c1 := dial(t, l.Addr().String())
	echoes(t, c1)
	c2 := dial(t, l.Addr().String())
	_ = c2.SetDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c2)
	if string(b) != "full\n" || a.rejected.Load() != 1 {
		t.Fatalf("second connection got %q (rejected %d), want the refusal", b, a.rejected.Load())
	}
	_ = c1.Close()
	testutil.Eventually(t, 5*time.Second, "a slot freed", func() (bool, string) {
		return a.forgot.Load() == 1, "first connection still tracked"
	})
	echoes(t, dial(t, l.Addr().String()))
}

// TestAcceptorListenerClosedElsewhere: a listener closed by its owner,
// not by Close, ends Serve with an error saying so.
func TestAcceptorListenerClosedElsewhere(t *testing.T) {
	l := listen(t)
	a := newEcho(0)
	defer a.Close()
	errc := make(chan error, 1)
	go func() { errc <- a.Serve(l) }()
	echoes(t, dial(t, l.Addr().String())) // Serve is running
	_ = l.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Serve: %v, want net.ErrClosed", err)
	}
}
