package wire

import (
	"bufio"
	"context"
	"runtime"
	"testing"
	"time"
)

// benchGet is shaped like a client GET: a key and its quorum settings.
type benchGet struct {
	Key       []byte `msgpack:"k"`
	N         uint8  `msgpack:"n"`
	R         uint8  `msgpack:"r"`
	W         uint8  `msgpack:"w"`
	TimeoutMS int64  `msgpack:"t"`
}

var benchMsg = benchGet{Key: []byte("user:0000000042"), N: 3, R: 2, W: 2, TimeoutMS: 500}

func BenchmarkFrameEncode(b *testing.B) {
	payload := make([]byte, 100)
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(HeaderSize + len(payload)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf = AppendFrame(buf[:0], Header{ID: uint64(i), Kind: 3}, payload)
	}
}

// loopReader yields its bytes forever, as a stream of back-to-back frames.
type loopReader struct {
	b   []byte
	off int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := copy(p, r.b[r.off:])
	r.off = (r.off + n) % len(r.b)
	return n, nil
}

func BenchmarkFrameDecode(b *testing.B) {
	payload := make([]byte, 100)
	var stream []byte
	for i := range 64 {
		stream = AppendFrame(stream, Header{ID: uint64(i), Kind: 3}, payload)
	}
	br := bufio.NewReaderSize(&loopReader{b: stream}, readBufSize)
	b.SetBytes(int64(HeaderSize + len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ReadFrame(br, DefaultMaxFrame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshal(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Marshal(&benchMsg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	enc, err := Marshal(&benchMsg)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		var m benchGet
		if err := Unmarshal(enc, &m); err != nil {
			b.Fatal(err)
		}
	}
}

// benchCall measures round trips of a 64-byte echo over loopback with the
// given number of concurrent callers; call picks how a caller calls. It
// also reports how many responses s batched into each flush.
func benchCall(b *testing.B, s *Server, callers int, call func(ctx context.Context, p []byte) error) {
	payload := make([]byte, 64)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(max(1, (callers+runtime.GOMAXPROCS(0)-1)/runtime.GOMAXPROCS(0)))
	before := s.Stats()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := call(ctx, payload); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
	after := s.Stats()
	b.ReportMetric(float64(after.FramesOut-before.FramesOut)/float64(max(1, after.Flushes-before.Flushes)), "resp/flush")
}

// BenchmarkCall is the hot path: 64 concurrent callers through a Pool
// (default 2 connections) to one server over loopback.
func BenchmarkCall(b *testing.B) {
	s, addr := startServer(b, ServerConfig{}, echo)
	p := NewPool(ClientConfig{})
	b.Cleanup(func() { _ = p.Close() })
	benchCall(b, s, 64, func(ctx context.Context, payload []byte) error {
		_, _, err := p.Call(ctx, addr, 1, payload)
		return err
	})
}

// BenchmarkCallOneConn: 64 callers multiplexed on a single Conn.
func BenchmarkCallOneConn(b *testing.B) {
	s, addr := startServer(b, ServerConfig{}, echo)
	c := dial(b, addr, ClientConfig{})
	benchCall(b, s, 64, func(ctx context.Context, payload []byte) error {
		_, _, err := c.Call(ctx, 1, payload)
		return err
	})
}

// BenchmarkCallSerial: one caller, so ns/op is the loopback round-trip
// latency.
func BenchmarkCallSerial(b *testing.B) {
	_, addr := startServer(b, ServerConfig{}, echo)
	c := dial(b, addr, ClientConfig{})
	payload := make([]byte, 64)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.Call(ctx, 1, payload); err != nil {
			b.Fatal(err)
		}
	}
}
