package version

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

const (
	a = Actor("a#1")
	b = Actor("b#1")
	c = Actor("c#1")
)

func dots(o *Object) []string {
	var out []string
	for _, s := range o.Siblings {
		out = append(out, fmt.Sprintf("%s:%d", s.Dot.Actor, s.Dot.Counter))
	}
	return out
}

func TestVVJoinCoversDescends(t *testing.T) {
	v := VV{{a, 2}, {c, 1}}
	o := VV{{a, 1}, {b, 3}}
	j := v.Join(o)
	if want := (VV{{a, 2}, {b, 3}, {c, 1}}); !j.Equal(want) {
		t.Fatalf("join = %v, want %v", j, want)
	}
	for _, tc := range []struct {
		d    Dot
		want bool
	}{
		{Dot{a, 1}, true}, {Dot{a, 2}, true}, {Dot{a, 3}, false},
		{Dot{b, 1}, false}, {Dot{c, 1}, true},
	} {
		if got := v.Covers(tc.d); got != tc.want {
			t.Errorf("%v covers %v = %v, want %v", v, tc.d, got, tc.want)
		}
	}
	if !j.Descends(v) || !j.Descends(o) || v.Descends(o) || o.Descends(v) {
		t.Errorf("descends wrong for %v %v %v", v, o, j)
	}
	if !j.Valid() || (VV{{b, 1}, {a, 1}}).Valid() || (VV{{a, 0}}).Valid() {
		t.Error("Valid wrong")
	}
}

// Reference: Riak 2.0 DVV semantics. Each row is a scenario on one key with
// three replicas a, b, c; the final siblings are checked.
func TestUpdateAndMerge(t *testing.T) {
	// Two blind writes at two replicas are concurrent: two siblings.
	x, _ := Update(nil, nil, a, []byte("x"), false, 1)
	y, _ := Update(nil, nil, b, []byte("y"), false, 2)
	m := Merge(x, y)
	if got := dots(m); !slices.Equal(got, []string{"a#1:1", "b#1:1"}) {
		t.Fatalf("blind writes: %v", got)
	}
	// A write with the merged context supersedes both.
	z, d := Update(m, m.Context, c, []byte("z"), false, 3)
	if d != (Dot{c, 1}) || !slices.Equal(dots(z), []string{"c#1:1"}) {
		t.Fatalf("write with context: dot %v siblings %v", d, dots(z))
	}
	// Replicas that still hold x or y drop them when z arrives.
	if got := dots(Merge(x, z)); !slices.Equal(got, []string{"c#1:1"}) {
		t.Fatalf("x+z: %v", got)
	}
	// A blind write at a on top of x keeps x: a write without context
	// supersedes nothing.
	x2, d2 := Update(x, nil, a, []byte("x2"), false, 4)
	if d2 != (Dot{a, 2}) || !slices.Equal(dots(x2), []string{"a#1:1", "a#1:2"}) {
		t.Fatalf("blind rewrite: %v %v", d2, dots(x2))
	}
	// A write with x's context (read before x2 arrived) supersedes x only.
	w, _ := Update(x2, x.Context, a, []byte("w"), false, 5)
	if got := dots(w); !slices.Equal(got, []string{"a#1:2", "a#1:3"}) {
		t.Fatalf("partial supersede: %v", got)
	}
	// A delete with the context of what was read leaves one tombstone.
	del, _ := Update(w, w.Context, b, nil, true, 6)
	if !del.Deleted() || len(del.Siblings) != 1 || !del.Siblings[0].Tombstone {
		t.Fatalf("delete: %+v", del)
	}
	if !Merge(w, del).Deleted() {
		t.Fatal("delete lost in merge")
	}
}

func TestWinner(t *testing.T) {
	x, _ := Update(nil, nil, a, []byte("x"), false, 10)
	y, _ := Update(nil, nil, b, []byte("y"), false, 10) // same timestamp: higher actor wins
	z, _ := Update(nil, nil, c, []byte("z"), false, 9)
	m := Merge(Merge(x, y), z)
	w, ok := m.Winner()
	if !ok || string(w.Value) != "y" {
		t.Fatalf("winner = %q", w.Value)
	}
	if _, ok := (&Object{}).Winner(); ok {
		t.Fatal("empty object has a winner")
	}
}

// history drives a random run of puts and merges on one key across a few
// replicas, like the cluster does, and returns every state it produced.
func history(t *rapid.T) []*Object {
	nrep := rapid.IntRange(2, 4).Draw(t, "replicas")
	reps := make([]*Object, nrep)
	actors := make([]Actor, nrep)
	for i := range actors {
		actors[i] = Actor(fmt.Sprintf("n%d#e", i))
	}
	pool := []*Object{{}}
	steps := rapid.IntRange(1, 30).Draw(t, "steps")
	for s := 0; s < steps; s++ {
		i := rapid.IntRange(0, nrep-1).Draw(t, "replica")
		if rapid.Bool().Draw(t, "put") {
			var ctx VV
			if rapid.Bool().Draw(t, "withContext") {
				ctx = pool[rapid.IntRange(0, len(pool)-1).Draw(t, "read")].Context
			}
			tomb := rapid.IntRange(0, 5).Draw(t, "tomb") == 0
			reps[i], _ = Update(reps[i], ctx, actors[i], []byte(fmt.Sprint("v", s)), tomb, int64(rapid.IntRange(0, 5).Draw(t, "ts")))
		} else {
			j := rapid.IntRange(0, nrep-1).Draw(t, "from")
			reps[i] = Merge(reps[i], reps[j])
		}
		pool = append(pool, reps[i])
	}
	return pool
}

func pick(t *rapid.T, pool []*Object, name string) *Object {
	return pool[rapid.IntRange(0, len(pool)-1).Draw(t, name)]
}

// sameObject compares objects including values, as a user would.
func sameObject(x, y *Object) bool {
	if !Equal(x, y) {
		return false
	}
	for i := range x.Siblings {
		if !bytes.Equal(x.Siblings[i].Value, y.Siblings[i].Value) || x.Siblings[i].Timestamp != y.Siblings[i].Timestamp {
			return false
		}
	}
	return true
}

func TestMergeLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pool := history(t)
		x, y, z := pick(t, pool, "x"), pick(t, pool, "y"), pick(t, pool, "z")
		if !sameObject(Merge(x, y), Merge(y, x)) {
			t.Fatalf("not commutative: %v vs %v", dots(Merge(x, y)), dots(Merge(y, x)))
		}
		if !sameObject(Merge(x, Merge(y, z)), Merge(Merge(x, y), z)) {
			t.Fatal("not associative")
		}
		if !sameObject(Merge(x, x), x) {
			t.Fatal("not idempotent")
		}
		m := Merge(x, y)
		if !Descends(m, x) || !Descends(m, y) {
			t.Fatal("merge does not descend its inputs")
		}
	})
}

// A put with the context of a read supersedes exactly what was read: every
// sibling the reader saw is gone everywhere once the write has spread, and
// every sibling the reader did not see survives.
func TestPutWithContextSupersedesExactlyWhatWasRead(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pool := history(t)
		read := pick(t, pool, "read")
		// The versioning replica's current state: the join of some states,
		// which always includes what the replica itself versioned before.
		cur := Merge(pick(t, pool, "cur1"), pick(t, pool, "cur2"))
		w, dot := Update(cur, read.Context, "writer#e", []byte("new"), false, 9)
		for _, s := range read.Siblings {
			if slices.ContainsFunc(w.Siblings, func(o Sibling) bool { return o.Dot == s.Dot }) {
				t.Fatalf("read sibling %v survived the write", s.Dot)
			}
		}
		for _, s := range cur.Siblings {
			if !read.Context.Covers(s.Dot) && !slices.ContainsFunc(w.Siblings, func(o Sibling) bool { return o.Dot == s.Dot }) {
				t.Fatalf("unseen sibling %v was superseded", s.Dot)
			}
		}
		// Spread: merging with any state keeps the new write and never
		// brings back what was read.
		other := pick(t, pool, "other")
		m := Merge(other, w)
		if !slices.ContainsFunc(m.Siblings, func(o Sibling) bool { return o.Dot == dot }) {
			t.Fatal("new write lost in merge")
		}
		for _, s := range read.Siblings {
			if slices.ContainsFunc(m.Siblings, func(o Sibling) bool { return o.Dot == s.Dot }) {
				t.Fatalf("read sibling %v came back after merge", s.Dot)
			}
		}
	})
}

func TestCodecRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		for _, o := range history(t) {
			if enc := Encode(o); len(enc) != EncodedSize(o) || cap(enc) != len(enc) {
				t.Fatalf("encoded %d bytes (cap %d), size said %d", len(enc), cap(enc), EncodedSize(o))
			}
			got, err := Decode(Encode(o))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !sameObject(got, o) {
				t.Fatalf("round trip changed %v to %v", dots(o), dots(got))
			}
			v, err := DecodeVV(EncodeVV(o.Context))
			if err != nil || !v.Equal(o.Context) {
				t.Fatalf("vv round trip: %v %v", v, err)
			}
		}
	})
}

// EncodedSize is exact at every boundary of msgpack's integer, string,
// binary and array forms.
func TestEncodedSizeExact(t *testing.T) {
	counters := []uint64{0, 127, 128, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<64 - 1}
	stamps := []int64{0, 127, 128, -1, -32, -33, 1 << 40, -1 << 40}
	lens := []int{0, 31, 32, 255, 256, 65535, 65536}
	for i, c := range counters {
		for j, ts := range stamps {
			n := lens[(i+j)%len(lens)]
			actor := Actor(strings.Repeat("a", min(n, MaxActorLen)))
			o := &Object{
				Context:  VV{{Actor: actor, Counter: c}},
				Siblings: []Sibling{{Dot: Dot{Actor: actor, Counter: c}, Value: make([]byte, n), Timestamp: ts, Tombstone: i%2 == 0}},
			}
			if enc := Encode(o); len(enc) != EncodedSize(o) {
				t.Fatalf("counter %d, timestamp %d, %d bytes: encoded %d, size said %d", c, ts, n, len(enc), EncodedSize(o))
			}
		}
	}
	for _, o := range []*Object{nil, {}} {
		if enc := Encode(o); len(enc) != EncodedSize(o) {
			t.Fatalf("empty object: encoded %d, size said %d", len(enc), EncodedSize(o))
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good := Encode(func() *Object { o, _ := Update(nil, nil, a, []byte("hello"), false, -5); return o }())
	for name, in := range map[string][]byte{
		"empty":     nil,
		"truncated": good[:len(good)-1],
		"trailing":  append(slices.Clone(good), 0),
		"huge bin":  {0x92, 0x92, 0xa1, 'a', 1, 0x91, 0x95, 0xa1, 'a', 1, 0xc6, 0xff, 0xff, 0xff, 0xff},
		"huge arr":  {0x92, 0xdd, 0xff, 0xff, 0xff, 0xff},
		"dot out":   {0x92, 0x90, 0x91, 0x95, 0xa1, 'a', 1, 0xc4, 0, 0xc2, 0},
		"not array": {0xc0},
	} {
		if _, err := Decode(in); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

func FuzzDecode(f *testing.F) {
	o1, _ := Update(nil, nil, a, []byte("v"), false, 1)
	o2, _ := Update(o1, nil, b, nil, true, -1)
	f.Add(Encode(o1))
	f.Add(Encode(o2))
	f.Add(EncodeVV(o2.Context))
	f.Fuzz(func(t *testing.T, in []byte) {
		o, err := Decode(in)
		if err == nil {
			// Anything accepted re-encodes to the same bytes' meaning.
			o2, err := Decode(Encode(o))
			if err != nil || !sameObject(o, o2) {
				t.Fatalf("accepted input does not round trip: %v", err)
			}
		}
		_, _ = DecodeVV(in)
	})
}

func benchObject(nsib int) *Object {
	var o *Object
	for i := 0; i < nsib; i++ {
		o, _ = Update(o, nil, Actor(fmt.Sprintf("node-%d#0123456789abcdef", i%3)), bytes.Repeat([]byte("x"), 100), false, int64(i))
	}
	return o
}

func BenchmarkEncode(b *testing.B) {
	o := benchObject(1)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendEncode(buf[:0], o)
	}
}

func BenchmarkDecode(b *testing.B) {
	enc := Encode(benchObject(1))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMerge(b *testing.B) {
	for _, n := range []int{1, 3} {
		x := benchObject(n)
		y, _ := Update(x, nil, "node-9#0123456789abcdef", []byte("y"), false, 99)
		b.Run(fmt.Sprintf("siblings=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Merge(x, y)
			}
		})
	}
}

func BenchmarkUpdate(b *testing.B) {
	o := benchObject(1)
	v := bytes.Repeat([]byte("y"), 100)
	b.ReportAllocs()
	for b.Loop() {
		Update(o, o.Context, "node-0#0123456789abcdef", v, false, 1)
	}
}
