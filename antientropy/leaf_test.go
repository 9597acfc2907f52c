package antientropy

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
	"github.com/mnemo-kv/mnemo/version"
)

// randomObject builds a valid object with rng: up to 12 context entries
// (more than LeafHashEncoded keeps on its stack), siblings whose dots the
// context covers, tombstones, actors and values of every msgpack length
// class, and counters and timestamps of every integer width.
func randomObject(rng *rand.Rand) *version.Object {
	nActors := rng.IntN(13)
	if nActors == 0 && rng.IntN(4) > 0 {
		nActors = 1
	}
	actors := map[string]bool{}
	for len(actors) < nActors {
		var a string
		switch rng.IntN(4) {
		case 0: // fixstr
			a = fmt.Sprintf("n%d#%x", rng.IntN(100), rng.Uint32())
		case 1: // str8
			a = "node-" + strings.Repeat("x", 30+rng.IntN(200))
		case 2:
			a = version.NewActor(fmt.Sprintf("node-%d", rng.IntN(5)), fmt.Sprintf("%016x", rng.Uint64())).Node() + "#e"
		default:
			a = strings.Repeat("a", 1+rng.IntN(version.MaxActorLen))
		}
		actors[a] = true
	}
	names := make([]string, 0, len(actors))
	for a := range actors {
		names = append(names, a)
	}
	slices.Sort(names)
	counter := func() uint64 {
		switch rng.IntN(5) {
		case 0:
			return 1 + rng.Uint64N(127)
		case 1:
			return 128 + rng.Uint64N(128)
		case 2:
			return 256 + rng.Uint64N(1<<16)
		case 3:
			return 1<<16 + rng.Uint64N(1<<32)
		}
		return 1<<32 + rng.Uint64N(math.MaxUint64-1<<32)
	}
	o := &version.Object{}
	for _, a := range names {
		o.Context = append(o.Context, version.Entry{Actor: version.Actor(a), Counter: counter()})
	}
	for _, e := range o.Context {
		// Zero to two siblings per actor, with distinct counters up to the
		// context's.
		var cs []uint64
		for range rng.IntN(3) {
			c := 1 + rng.Uint64N(e.Counter)
			if !slices.Contains(cs, c) {
				cs = append(cs, c)
			}
		}
		slices.Sort(cs)
		for _, c := range cs {
			s := version.Sibling{Dot: version.Dot{Actor: e.Actor, Counter: c}, Tombstone: rng.IntN(4) == 0}
			if !s.Tombstone {
				switch rng.IntN(10) {
				case 0:
					s.Value = make([]byte, 256+rng.IntN(1000)) // bin16
				case 1:
					if rng.IntN(20) == 0 {
						s.Value = make([]byte, 1<<16+rng.IntN(100)) // bin32
					}
				default:
					s.Value = make([]byte, rng.IntN(200))
				}
				for i := range s.Value {
					s.Value[i] = byte(rng.Uint32())
				}
			}
			switch rng.IntN(4) {
			case 0:
				s.Timestamp = -1 - rng.Int64N(32) // negative fixint
			case 1:
				s.Timestamp = math.MinInt64 + rng.Int64N(1<<40) // int64
			default:
				s.Timestamp = rng.Int64()
			}
			o.Siblings = append(o.Siblings, s)
		}
	}
	return o
}

func randomKey(rng *rand.Rand) []byte {
	n := 1 + rng.IntN(40)
	if rng.IntN(10) == 0 {
		n = 200 + rng.IntN(2000) // longer than the hasher's buffer
	}
	k := make([]byte, n)
	for i := range k {
		k[i] = byte(rng.Uint32())
	}
	return k
}

// TestLeafHashEncoded: for many valid objects, hashing the encoding
// equals hashing the decoded object, which is what makes a tree built from
// a raw scan equal to one kept current from decoded objects.
func TestLeafHashEncoded(t *testing.T) {
	rng := newRand(t)
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for i := range n {
		key, o := randomKey(rng), randomObject(rng)
		enc := version.Encode(o)
		got, err := LeafHashEncoded(key, enc)
		if err != nil {
			t.Fatalf("object %d (%s): %v", i, describe(o), err)
		}
		if want := LeafHash(key, o); got != want {
			t.Fatalf("object %d (%s): LeafHashEncoded %x, LeafHash %x", i, describe(o), got, want)
		}
	}
	// The empty object, and an object as the store writes it.
	if h, err := LeafHashEncoded([]byte("k"), version.Encode(nil)); h != 0 || err != nil {
		t.Fatalf("empty object: %x %v, want 0", h, err)
	}
	o, _ := version.Update(nil, nil, version.NewActor("n1", "e"), []byte("v"), false, 1)
	if h, err := LeafHashEncoded([]byte("k"), version.Encode(o)); err != nil || h != LeafHash([]byte("k"), o) {
		t.Fatalf("stored object: %x %v, want %x", h, err, LeafHash([]byte("k"), o))
	}
}

// TestLeafHashEncodedRejects: what version.Decode rejects is rejected,
// with version.ErrMalformed.
func TestLeafHashEncodedRejects(t *testing.T) {
	good := version.Encode(obj([]version.Entry{{Actor: "a#1", Counter: 2}}, sib("a#1", 2, "x", false)))
	cases := map[string][]byte{
		"empty":              nil,
		"truncated":          good[:len(good)-1],
		"trailing byte":      append(slices.Clone(good), 0),
		"not an array":       {0xc0},
		"three fields":       {0x93, 0x90, 0x90, 0x90},
		"odd context":        {0x92, 0x91, 0xa1, 'a', 0x90},
		"zero counter":       {0x92, 0x92, 0xa1, 'a', 0x00, 0x90},
		"unsorted context":   {0x92, 0x94, 0xa1, 'b', 0x01, 0xa1, 'a', 0x01, 0x90},
		"dot outside":        version.Encode(&version.Object{Context: version.VV{{Actor: "a", Counter: 1}}, Siblings: []version.Sibling{{Dot: version.Dot{Actor: "a", Counter: 2}}}}),
		"no context":         version.Encode(&version.Object{Siblings: []version.Sibling{{Dot: version.Dot{Actor: "a", Counter: 1}}}}),
		"siblings unsorted":  version.Encode(&version.Object{Context: version.VV{{Actor: "a", Counter: 3}}, Siblings: []version.Sibling{{Dot: version.Dot{Actor: "a", Counter: 2}}, {Dot: version.Dot{Actor: "a", Counter: 1}}}}),
		"siblings repeated":  version.Encode(&version.Object{Context: version.VV{{Actor: "a", Counter: 3}}, Siblings: []version.Sibling{{Dot: version.Dot{Actor: "a", Counter: 2}}, {Dot: version.Dot{Actor: "a", Counter: 2}}}}),
		"huge sibling count": {0x92, 0x90, 0xdd, 0xff, 0xff, 0xff, 0xff},
		"timestamp too big":  {0x92, 0x92, 0xa1, 'a', 0x01, 0x91, 0x95, 0xa1, 'a', 0x01, 0xc4, 0x00, 0xc2, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := version.Decode(b); err == nil {
				t.Fatalf("version.Decode accepts %x: fix the case", b)
			}
			if h, err := LeafHashEncoded([]byte("k"), b); !errors.Is(err, version.ErrMalformed) {
				t.Fatalf("LeafHashEncoded(%x) = %x, %v; want version.ErrMalformed", b, h, err)
			}
		})
	}
}

// FuzzLeafHashEncoded: on any input, LeafHashEncoded accepts exactly what
// version.Decode accepts, agrees with LeafHash of the decoded object, and
// never panics.
func FuzzLeafHashEncoded(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 30 {
		o := randomObject(rng)
		for i := range o.Siblings {
			o.Siblings[i].Value = o.Siblings[i].Value[:min(len(o.Siblings[i].Value), 8)]
		}
		f.Add([]byte("key"), version.Encode(o))
	}
	f.Add([]byte(""), version.Encode(nil))
	f.Fuzz(func(t *testing.T, key, data []byte) {
		o, derr := version.Decode(data)
		h, err := LeafHashEncoded(key, data)
		switch {
		case derr != nil && err == nil:
			t.Fatalf("Decode rejects (%v), LeafHashEncoded accepts (%x)", derr, h)
		case derr == nil && err != nil:
			t.Fatalf("Decode accepts (%s), LeafHashEncoded rejects: %v", describe(o), err)
		case err != nil && !errors.Is(err, version.ErrMalformed):
			t.Fatalf("error %v is not version.ErrMalformed", err)
		case err == nil && h != LeafHash(key, o):
			t.Fatalf("LeafHashEncoded %x, LeafHash %x of %s", h, LeafHash(key, o), describe(o))
		}
	})
}

func BenchmarkLeafHash(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	actor := version.NewActor("node-1", "0123456789abcdef")
	key := []byte("ae-00012345")
	val := make([]byte, 100)
	for i := range val {
		val[i] = byte(rng.Uint32())
	}
	o := &version.Object{Context: version.VV{{Actor: actor, Counter: 12345}},
		Siblings: []version.Sibling{{Dot: version.Dot{Actor: actor, Counter: 12345}, Value: val, Timestamp: 1 << 60}}}
	enc := version.Encode(o)
	b.Run("decode+LeafHash", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d, err := version.Decode(slices.Clone(enc))
			if err != nil {
				b.Fatal(err)
			}
			_ = LeafHash(key, d)
		}
	})
	b.Run("LeafHashEncoded", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := LeafHashEncoded(key, enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestScanPartitionRaw: the raw scan the build reads sees exactly what
// ScanPartition sees, key by key, in the same order, with the stored
// encodings; a segment range and an early stop work; a closed store
// answers store.ErrClosed.
func TestScanPartitionRaw(t *testing.T) {
	const q = 4
	st, err := store.Open(store.Options{Dir: t.TempDir(), NodeID: "n1", Partitions: q, Segments: 64,
		Sync: store.SyncNone, CacheSize: 8 << 20, MemTableSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		k := []byte(fmt.Sprintf("k%d", i))
		req := store.PutRequest{Key: k, Value: []byte(fmt.Sprint(i))}
		switch i % 5 {
		case 1:
			req.Tombstone, req.SupersedeLocal = true, true
		case 2:
			if _, err := st.Put(req); err != nil { // a second sibling follows
				t.Fatal(err)
			}
		}
		if _, err := st.Put(req); err != nil {
			t.Fatal(err)
		}
	}
	type seen struct {
		key string
		seg uint32
		obj *version.Object
	}
	for p := range ring.Partition(q) {
		var want, got []seen
		if err := st.ScanPartition(p, 0, 64, func(e store.Entry) bool {
			want = append(want, seen{string(e.Key), e.Segment, e.Object})
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if err := st.ScanPartitionRaw(p, func(key []byte, seg uint32, enc []byte) bool {
			o, err := version.Decode(slices.Clone(enc))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, seen{string(key), seg, o})
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) || len(got) == 0 {
			t.Fatalf("partition %d: raw scan saw %d keys, ScanPartition %d", p, len(got), len(want))
		}
		for i := range got {
			g, w := got[i], want[i]
			if g.key != w.key || g.seg != w.seg || !version.Equal(g.obj, w.obj) || !sameValues(g.obj, w.obj) {
				t.Fatalf("partition %d entry %d: raw %q seg %d %s, ScanPartition %q seg %d %s", p, i, g.key, g.seg, describe(g.obj), w.key, w.seg, describe(w.obj))
			}
		}
		// A segment range, stopped after 3 keys.
		var some []string
		if err := st.ScanSegmentsRaw(p, 16, 48, func(key []byte, seg uint32, _ []byte) bool {
			if seg < 16 || seg >= 48 {
				t.Fatalf("segment %d outside [16, 48)", seg)
			}
			some = append(some, string(key))
			return len(some) < 3
		}); err != nil {
			t.Fatal(err)
		}
		if len(some) != 3 {
			t.Fatalf("partition %d: stopped scan saw %d keys, want 3", p, len(some))
		}
	}
	_ = st.Close()
	if err := st.ScanPartitionRaw(0, func([]byte, uint32, []byte) bool { return true }); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("scan of a closed store: %v", err)
	}
}
