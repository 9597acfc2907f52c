package proto

import (
	"bytes"
	"testing"

	"github.com/mnemo-kv/mnemo/internal/wire"
)

// Benchmark messages shaped like a redis-benchmark SET's replica write: a
// 16-byte key and a one-sibling object of about 100 bytes.
var (
	benchPut      = ReplicaPut{Key: []byte("key:000000000042"), Object: bytes.Repeat([]byte{0x5a}, 100)}
	benchPutReply = ReplicaPutReply{Changed: true}
	benchGetReply = ReplicaGetReply{Found: true, Object: bytes.Repeat([]byte{0x5a}, 100)}
)

func BenchmarkMarshalReplicaPut(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.Marshal(&benchPut); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalReplicaPutReply(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.Marshal(&benchPutReply); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalReplicaGetReply(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.Marshal(&benchGetReply); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalReplicaPut(b *testing.B) {
	enc, err := wire.Marshal(&benchPut)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var m ReplicaPut
		if err := wire.Unmarshal(enc, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalReplicaPutReply(b *testing.B) {
	enc, err := wire.Marshal(&benchPutReply)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var m ReplicaPutReply
		if err := wire.Unmarshal(enc, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalReplicaGetReply(b *testing.B) {
	enc, err := wire.Marshal(&benchGetReply)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var m ReplicaGetReply
		if err := wire.Unmarshal(enc, &m); err != nil {
			b.Fatal(err)
		}
	}
}

// The Append and Decode benchmarks call the methods directly, as the hot
// call sites do: through wire.Marshal and wire.Unmarshal's interface
// argument the message itself moves to the heap.

func BenchmarkAppendReplicaPut(b *testing.B) {
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = benchPut.AppendMsgpack(buf[:0])
	}
}

func BenchmarkAppendReplicaGetReply(b *testing.B) {
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = benchGetReply.AppendMsgpack(buf[:0])
	}
}

func BenchmarkDecodeReplicaPut(b *testing.B) {
	enc := benchPut.Encode()
	b.ReportAllocs()
	for b.Loop() {
		var m ReplicaPut
		if err := m.DecodeMsgpack(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeReplicaPutReply(b *testing.B) {
	enc := benchPutReply.AppendMsgpack(nil)
	b.ReportAllocs()
	for b.Loop() {
		var m ReplicaPutReply
		if err := m.DecodeMsgpack(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeReplicaGetReply(b *testing.B) {
	enc := benchGetReply.AppendMsgpack(nil)
	b.ReportAllocs()
	for b.Loop() {
		var m ReplicaGetReply
		if err := m.DecodeMsgpack(enc); err != nil {
			b.Fatal(err)
		}
	}
}
