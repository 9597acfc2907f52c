package resp

import (
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// memBackend is the leanest Backend: a map under a RWMutex, nothing
// recorded, so benchmarks measure the server rather than the fake.
type memBackend struct {
	mu   sync.RWMutex
	data map[string][]byte
}

func (m *memBackend) Get(ctx context.Context, key []byte, q Quorum) ([]byte, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok := m.data[string(key)]
	return v, ok, nil
}

func (m *memBackend) Set(ctx context.Context, key, value []byte, q Quorum) error {
	v := append([]byte(nil), value...)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data[string(key)] = v
	return nil
}

func (m *memBackend) Delete(ctx context.Context, key []byte, q Quorum) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.data[string(key)]
	delete(m.data, string(key))
	return ok, nil
}

func (m *memBackend) Info() []InfoSection { return nil }

// memConn is a net.Conn that serves the same batch of requests a given
// number of times, then EOF, and discards replies: the server's per
// command cost without the kernel's.
type memConn struct {
	batch []byte
	left  int
	out   int64 // reply bytes written
}

func (m *memConn) Read(p []byte) (int, error) {
	if m.left == 0 {
		return 0, io.EOF
	}
	m.left--
	return copy(p, m.batch), nil
}

func (m *memConn) Write(p []byte) (int, error) {
	m.out += int64(len(p))
	return len(p), nil
}

func (m *memConn) Close() error                       { return nil }
func (m *memConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (m *memConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (m *memConn) SetDeadline(t time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(t time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(t time.Time) error { return nil }

// BenchmarkServeConn measures parse, dispatch, an in-memory Backend and
// reply encoding per command, for batches of 1 (a client waiting for each
// reply) and 16 (redis-benchmark -P 16) requests per read, on distinct
// keys. P16/spawn forces a goroutine per pipelined command, as the server
// does for a slow Backend, to show what that costs with a fast one.
func BenchmarkServeConn(b *testing.B) {
	for _, op := range []string{"SET", "GET"} {
		for _, depth := range []int{1, 16} {
			b.Run(op+"/P"+strconv.Itoa(depth), func(b *testing.B) {
				benchServeConn(b, op, depth, false)
			})
		}
		b.Run(op+"/P16/spawn", func(b *testing.B) {
			benchServeConn(b, op, 16, true)
		})
	}
}

func benchServeConn(b *testing.B, op string, depth int, spawn bool) {
	if spawn {
		defer func(d time.Duration) { spawnAbove = d }(spawnAbove)
		spawnAbove = 0
	}
	f := &memBackend{data: map[string][]byte{}}
	var batch []byte
	for i := range depth {
		k := "key:" + strconv.Itoa(i)
		f.data[k] = []byte("xxx")
		if op == "SET" {
			batch = append(batch, encode("SET", k, "xxx")...)
		} else {
			batch = append(batch, encode("GET", k)...)
		}
	}
	s := NewServer(Config{}, f)
	defer s.Close()
	mc := &memConn{batch: batch, left: max(1, b.N/depth)}
	c := newConn(s, mc)
	b.ReportAllocs()
	b.SetBytes(int64(len(batch) / depth))
	b.ResetTimer()
	c.serve()
	b.StopTimer()
	if want := int64(b.N/depth) * int64(depth); depth <= b.N && mc.out < want*5 {
		b.Fatalf("only %d reply bytes for %d commands", mc.out, want)
	}
}
