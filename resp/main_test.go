package resp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeBackend is an in-memory Backend: a map under a mutex. It records the
// quorum of each call by key, and can delay, fail or block calls.
type fakeBackend struct {
	mu   sync.Mutex
	data map[string][]byte
	// quorums is the Quorum of the last call per "op key" (op: get, set, del).
	quorums map[string]Quorum
	calls   int
	// inflight counts calls running now; maxInflight is its peak.
	inflight, maxInflight int

	// hook, if set, runs at the start of every call (outside mu) and may
	// return an error to fail it. It sees the op ("get", "set", "del"),
	// the key and the value (set only).
	hook func(ctx context.Context, op string, key, value []byte) error
	// info is what Info returns.
	info []InfoSection
}

func newFake() *fakeBackend {
	return &fakeBackend{data: map[string][]byte{}, quorums: map[string]Quorum{}}
}

func (f *fakeBackend) enter(ctx context.Context, op string, key, value []byte, q Quorum) error {
	f.mu.Lock()
	f.calls++
	f.inflight++
	f.maxInflight = max(f.maxInflight, f.inflight)
	f.quorums[op+" "+string(key)] = q
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, op, key, value); err != nil {
			f.exit()
			return err
		}
	}
	return nil
}

func (f *fakeBackend) exit() {
	f.mu.Lock()
	f.inflight--
	f.mu.Unlock()
}

func (f *fakeBackend) Get(ctx context.Context, key []byte, q Quorum) ([]byte, bool, error) {
	if err := f.enter(ctx, "get", key, nil, q); err != nil {
		return nil, false, err
	}
	defer f.exit()
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.data[string(key)]
	return v, ok, nil
}

func (f *fakeBackend) Set(ctx context.Context, key, value []byte, q Quorum) error {
	if err := f.enter(ctx, "set", key, value, q); err != nil {
		return err
	}
	defer f.exit()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data[string(key)] = append([]byte(nil), value...)
	return nil
}

func (f *fakeBackend) Delete(ctx context.Context, key []byte, q Quorum) (bool, error) {
	if err := f.enter(ctx, "del", key, nil, q); err != nil {
		return false, err
	}
	defer f.exit()
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.data[string(key)]
	delete(f.data, string(key))
	return ok, nil
}

func (f *fakeBackend) Info() []InfoSection {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.info != nil {
		return f.info
	}
	return []InfoSection{
		{Name: "Server", Fields: []InfoField{{"mnemo_version", "test"}, {"node_id", "n1"}}},
		{Name: "Replication", Fields: []InfoField{{"role", "master"}, {"mnemo_n", "3"}, {"mnemo_r", "2"}, {"mnemo_w", "2"}}},
		{Name: "Keyspace", Fields: []InfoField{{"db0", "keys=" + strconv.Itoa(len(f.data)) + ",expires=0,avg_ttl=0"}}},
	}
}

// quorum returns the quorum of the last call op made for key.
func (f *fakeBackend) quorum(op, key string) (Quorum, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q, ok := f.quorums[op+" "+key]
	return q, ok
}

func (f *fakeBackend) peak() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxInflight
}

// wait blocks for d or until ctx ends: a fake replica round trip. It is
// the backend's latency, not a test waiting for time.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startServer serves b on a fresh loopback port until the test ends.
func startServer(t testing.TB, cfg Config, b Backend) (*Server, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(cfg, b)
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	t.Cleanup(func() {
		_ = s.Close()
		if err := <-errc; err != nil {
			t.Errorf("Serve returned %v after Close, want nil", err)
		}
	})
	return s, l.Addr().String()
}

// Reply types of the test client.
type (
	status   string // +simple string
	errReply string // -error
	respMap  []any  // RESP3 map, as key, value, key, value...
)

// client is a minimal RESP client for tests.
type client struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	// No test waits this long unless something hangs.
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &client{t: t, nc: nc, r: bufio.NewReader(nc)}
}

// encode returns args as a RESP array of bulk strings.
func encode(args ...string) []byte {
	b := appendArray(nil, len(args))
	for _, a := range args {
		b = appendBulkString(b, a)
	}
	return b
}

func (c *client) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// do sends one command and returns its reply.
func (c *client) do(args ...string) any {
	c.t.Helper()
	c.write(encode(args...))
	return c.read()
}

func (c *client) read() any {
	c.t.Helper()
	v, err := readReply(c.r)
	if err != nil {
		c.t.Fatalf("read reply: %v", err)
	}
	return v
}

// readEOF checks that the server closes the connection with nothing more
// to say.
func (c *client) readEOF() {
	c.t.Helper()
	v, err := readReply(c.r)
	if err == nil {
		c.t.Fatalf("got reply %q, want the connection closed", v)
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !strings.Contains(err.Error(), "reset") {
		c.t.Fatalf("got %v, want the connection closed", err)
	}
}

// readReply reads one RESP2 or RESP3 value.
func readReply(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("bad line %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+':
		return status(body), nil
	case '-':
		return errReply(body), nil
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '_':
		return nil, nil
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		return string(b[:n]), nil
	case '*', '%':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		if line[0] == '%' {
			n *= 2
		}
		arr := make([]any, n)
		for i := range arr {
			if arr[i], err = readReply(r); err != nil {
				return nil, err
			}
		}
		if line[0] == '%' {
			return respMap(arr), nil
		}
		return arr, nil
	}
	return nil, fmt.Errorf("unknown reply type %q", line)
}
