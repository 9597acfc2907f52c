package proto

import (
	"bytes"
	"errors"
	"maps"
	"math"
	"reflect"
	"slices"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"

	"github.com/mnemo-kv/mnemo/internal/wire"
)

// The ref types have the messages' fields and tags but none of their
// methods, so wire.Marshal and wire.Unmarshal take them through msgpack v5
// reflection: what nodes before the hand-written codecs send and read.
type (
	refReplicaPut           ReplicaPut
	refReplicaPutReply      ReplicaPutReply
	refReplicaPutBatch      ReplicaPutBatch
	refReplicaPutBatchReply ReplicaPutBatchReply
	refReplicaGet           ReplicaGet
	refReplicaGetBatch      ReplicaGetBatch
	refReplicaGetReply      ReplicaGetReply
	refReplicaGetBatchReply ReplicaGetBatchReply
)

// message is a hand-coded message type.
type message interface {
	wire.MsgpackAppender
	wire.MsgpackDecoder
}

// codecCase is one message type: a generator of values, and decoders of
// bytes into a new value by the hand-written code and by reflection.
type codecCase struct {
	name string
	gen  *rapid.Generator[message]
	fast func(b []byte) (any, error)
	ref  func(b []byte) (any, error)
	// asRef views a value of the type as its ref type.
	asRef func(m message) any
}

// newCase builds the codecCase of T; toRef views a *T as its ref type.
func newCase[T any](name string, gen *rapid.Generator[*T], toRef func(*T) any) codecCase {
	return codecCase{
		name: name,
		gen:  rapid.Map(gen, func(m *T) message { return any(m).(message) }),
		fast: func(b []byte) (any, error) {
			var v T
			err := any(&v).(wire.MsgpackDecoder).DecodeMsgpack(b)
			return v, err
		},
		ref: func(b []byte) (any, error) {
			var v T
			err := wire.Unmarshal(b, toRef(&v))
			return v, err
		},
		asRef: func(m message) any { return toRef(any(m).(*T)) },
	}
}

// genBytes draws nil, empty, short and (rarely) long slices, across the
// bin8, bin16 and bin32 length boundaries.
func genBytes() *rapid.Generator[[]byte] {
	return rapid.OneOf(
		rapid.Just([]byte(nil)),
		rapid.Just([]byte{}),
		rapid.SliceOfN(rapid.Byte(), 1, 40),
		rapid.SliceOfN(rapid.Byte(), 250, 300),
		rapid.Custom(func(t *rapid.T) []byte {
			return make([]byte, rapid.IntRange(65530, 65540).Draw(t, "n"))
		}),
	)
}

func genString() *rapid.Generator[string] {
	return rapid.OneOf(rapid.Just(""), rapid.StringN(1, 40, -1), rapid.StringN(250, 300, -1))
}

func genReplicaPut(hints bool) *rapid.Generator[*ReplicaPut] {
	return rapid.Custom(func(t *rapid.T) *ReplicaPut {
		m := &ReplicaPut{Key: genBytes().Draw(t, "key"), Object: genBytes().Draw(t, "object")}
		if hints {
			m.HintFor = genString().Draw(t, "hint")
		}
		return m
	})
}

func genReplicaGetReply() *rapid.Generator[*ReplicaGetReply] {
	return rapid.Custom(func(t *rapid.T) *ReplicaGetReply {
		return &ReplicaGetReply{
			Found:    rapid.Bool().Draw(t, "found"),
			Object:   genBytes().Draw(t, "object"),
			Digested: rapid.Bool().Draw(t, "digested"),
			Digest:   rapid.OneOf(rapid.Just[uint64](0), rapid.Uint64()).Draw(t, "digest"),
		}
	})
}

// genSlice draws nil, empty, or up to 20 elements (past fixarray's 15).
func genSlice[T any](elem *rapid.Generator[T]) *rapid.Generator[[]T] {
	return rapid.OneOf(rapid.Just([]T(nil)), rapid.Just([]T{}), rapid.SliceOfN(elem, 1, 20))
}

func deref[T any](g *rapid.Generator[*T]) *rapid.Generator[T] {
	return rapid.Map(g, func(p *T) T { return *p })
}

var codecCases = []codecCase{
	newCase("ReplicaPut", genReplicaPut(true), func(m *ReplicaPut) any { return (*refReplicaPut)(m) }),
	newCase("ReplicaPutReply", rapid.Custom(func(t *rapid.T) *ReplicaPutReply {
		return &ReplicaPutReply{Changed: rapid.Bool().Draw(t, "changed")}
	}), func(m *ReplicaPutReply) any { return (*refReplicaPutReply)(m) }),
	newCase("ReplicaPutBatch", rapid.Custom(func(t *rapid.T) *ReplicaPutBatch {
		return &ReplicaPutBatch{Items: genSlice(deref(genReplicaPut(true))).Draw(t, "items")}
	}), func(m *ReplicaPutBatch) any { return (*refReplicaPutBatch)(m) }),
	newCase("ReplicaPutBatchReply", rapid.Custom(func(t *rapid.T) *ReplicaPutBatchReply {
		return &ReplicaPutBatchReply{Changed: rapid.OneOf(rapid.IntRange(-300, 70000), rapid.Int()).Draw(t, "changed")}
	}), func(m *ReplicaPutBatchReply) any { return (*refReplicaPutBatchReply)(m) }),
	newCase("ReplicaGet", rapid.Custom(func(t *rapid.T) *ReplicaGet {
		return &ReplicaGet{Key: genBytes().Draw(t, "key"), Digest: rapid.Bool().Draw(t, "digest")}
	}), func(m *ReplicaGet) any { return (*refReplicaGet)(m) }),
	newCase("ReplicaGetBatch", rapid.Custom(func(t *rapid.T) *ReplicaGetBatch {
		return &ReplicaGetBatch{Keys: genSlice(genBytes()).Draw(t, "keys"), Digest: rapid.Bool().Draw(t, "digest")}
	}), func(m *ReplicaGetBatch) any { return (*refReplicaGetBatch)(m) }),
	newCase("ReplicaGetReply", genReplicaGetReply(), func(m *ReplicaGetReply) any { return (*refReplicaGetReply)(m) }),
	newCase("ReplicaGetBatchReply", rapid.Custom(func(t *rapid.T) *ReplicaGetBatchReply {
		return &ReplicaGetBatchReply{Items: genSlice(deref(genReplicaGetReply())).Draw(t, "items")}
	}), func(m *ReplicaGetBatchReply) any { return (*refReplicaGetBatchReply)(m) }),
}

// TestCodecMatchesReflection: for random values of every replica message,
// the hand-written encoding is byte for byte msgpack v5's (so old nodes
// read it), MsgpackSize is its length, and it decodes to what msgpack v5
// decodes it to.
func TestCodecMatchesReflection(t *testing.T) {
	for _, tc := range codecCases {
		t.Run(tc.name, rapid.MakeCheck(func(t *rapid.T) {
			m := tc.gen.Draw(t, "m")
			got := m.AppendMsgpack(nil)
			want, err := wire.Marshal(tc.asRef(m))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("hand-written encoding\n%x\nmsgpack v5\n%x", got, want)
			}
			if m.MsgpackSize() != len(got) {
				t.Fatalf("MsgpackSize %d, encoding %d bytes", m.MsgpackSize(), len(got))
			}
			if viaWire, err := wire.Marshal(m); err != nil || !bytes.Equal(viaWire, got) {
				t.Fatalf("wire.Marshal: %x, %v; want %x", viaWire, err, got)
			}
			checkDecode(t, tc, got)
		}))
	}
}

// TestCodecDecodesVariants: what msgpack v5 accepts besides the canonical
// encoding decodes to the same value: keys reordered, unknown keys with
// nested values, str for bin, integers in wider encodings. The variants are
// built as map[string]any and encoded by msgpack v5.
func TestCodecDecodesVariants(t *testing.T) {
	for _, tc := range codecCases {
		t.Run(tc.name, rapid.MakeCheck(func(t *rapid.T) {
			m := tc.gen.Draw(t, "m")
			canonical := m.AppendMsgpack(nil)
			var tree any
			if err := msgpack.Unmarshal(canonical, &tree); err != nil {
				t.Fatal(err)
			}
			variant, err := msgpack.Marshal(perturb(t, tree, 0))
			if err != nil {
				t.Fatal(err)
			}
			want, err := tc.fast(canonical)
			if err != nil {
				t.Fatal(err)
			}
			got := checkDecode(t, tc, variant)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("variant %x decodes to %+v, canonical %x to %+v", variant, got, canonical, want)
			}
		}))
	}
}

// checkDecode decodes b by hand and by reflection, fails unless both
// succeed with equal values, and returns the value.
func checkDecode(t interface{ Fatalf(string, ...any) }, tc codecCase, b []byte) any {
	got, err := tc.fast(b)
	if err != nil {
		t.Fatalf("hand-written decoder: %v on %x", err, b)
	}
	want, err := tc.ref(b)
	if err != nil {
		t.Fatalf("msgpack v5 rejects %x (%v), the hand-written decoder took it as %+v", b, err, got)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%x: hand-written decoder %+v, msgpack v5 %+v", b, got, want)
	}
	return got
}

// perturb returns v (a msgpack v5 decoding into any) re-encodable in a
// different but equivalent way: maps gain unknown keys and are re-created
// (Go's map order is random, so keys come out in another order), []byte
// may become string and string []byte, integers wider types.
func perturb(t *rapid.T, v any, depth int) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) { // draws in a fixed order
			out[k] = perturb(t, v[k], depth+1)
		}
		for range rapid.IntRange(0, 3).Draw(t, "unknown") {
			out[rapid.StringMatching(`x[a-z]{0,3}`).Draw(t, "key")] = unknownValue(t, depth)
		}
		return out
	case []any:
		for i := range v {
			v[i] = perturb(t, v[i], depth+1)
		}
		return v
	case []byte:
		if rapid.Bool().Draw(t, "as str") {
			return string(v)
		}
		return v
	case string:
		if rapid.Bool().Draw(t, "as bin") {
			return []byte(v)
		}
		return v
	case bool, nil:
		return v
	}
	n := reflect.ValueOf(v)
	if n.CanInt() {
		return widen(t, n.Int())
	}
	if n.CanUint() {
		u := n.Uint()
		if u > math.MaxInt64 {
			return u
		}
		return widen(t, int64(u))
	}
	t.Fatalf("unexpected %T in a decoded message", v)
	return nil
}

// widen returns n as a random Go integer type that holds it: msgpack v5
// encodes int8-int64 and uint8-uint64 in their own width.
func widen(t *rapid.T, n int64) any {
	var options []any
	if n >= math.MinInt8 && n <= math.MaxInt8 {
		options = append(options, int8(n))
	}
	if n >= math.MinInt16 && n <= math.MaxInt16 {
		options = append(options, int16(n))
	}
	if n >= math.MinInt32 && n <= math.MaxInt32 {
		options = append(options, int32(n))
	}
	options = append(options, n)
	if n >= 0 {
		options = append(options, uint64(n))
		if n <= math.MaxUint32 {
			options = append(options, uint32(n))
		}
		if n <= math.MaxUint16 {
			options = append(options, uint16(n))
		}
		if n <= math.MaxUint8 {
			options = append(options, uint8(n))
		}
	}
	return rapid.SampledFrom(options).Draw(t, "width")
}

// unknownValue draws a value of a field from a future release.
func unknownValue(t *rapid.T, depth int) any {
	kinds := 7
	if depth > 3 {
		kinds = 5 // no more nesting
	}
	switch rapid.IntRange(0, kinds-1).Draw(t, "kind") {
	case 0:
		return nil
	case 1:
		return rapid.Int64().Draw(t, "int")
	case 2:
		return rapid.Float64().Draw(t, "float")
	case 3:
		return rapid.String().Draw(t, "str")
	case 4:
		return &msgpack.RawMessage{0xd6, 0x01, 1, 2, 3, 4} // fixext4
	case 5:
		return []any{unknownValue(t, depth+1), unknownValue(t, depth+1)}
	default:
		return map[string]any{"y": unknownValue(t, depth+1)}
	}
}

// TestCodecRejectsMalformed: truncations, trailing bytes and wrong types
// fail with ErrMalformed, as wire.Unmarshal promises.
func TestCodecRejectsMalformed(t *testing.T) {
	good := (&ReplicaPut{Key: []byte("key"), Object: []byte("object"), HintFor: "n2"}).Encode()
	var bad [][]byte
	for i := range len(good) {
		bad = append(bad, good[:i])
	}
	bad = append(bad,
		append(bytes.Clone(good), 0xc0),     // trailing
		[]byte{0x81, 0xa1, 'k', 0xc3},       // bool for []byte
		[]byte{0x81, 0xa1, 'k', 0xc4, 0x05}, // bin longer than the input
		[]byte{0x8f, 0xa1, 'k'},             // map longer than the input
		[]byte{0x81, 0x01, 0xc0},            // int key
		[]byte{0x81, 0xa1, 'x', 0xc1},       // unknown key with code 0xc1
		[]byte{0x91, 0xc4, 0x00},            // array for the struct
		nested(64))                          // nesting past maxDepth
	for _, b := range bad {
		var m ReplicaPut
		if err := wire.Unmarshal(b, &m); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("%x: error %v, want ErrMalformed", b, err)
		}
	}
	if _, err := codecCases[0].fast(nested(63)); err != nil {
		t.Errorf("nesting at the limit: %v", err)
	}
	for _, b := range [][]byte{
		{0x81, 0xa1, 'c', 0xa1, 'x'},                    // str for bool
		{0x81, 0xa1, 'c', 0xcb, 0, 0, 0, 0, 0, 0, 0, 0}, // float for bool
	} {
		var m ReplicaPutReply
		if err := wire.Unmarshal(b, &m); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("%x: error %v, want ErrMalformed", b, err)
		}
	}
}

// nested returns a ReplicaPut whose unknown field "x" holds arrays nested
// n deep (the map around them makes n+1 containers).
func nested(n int) []byte {
	b := append([]byte{0x81, 0xa1, 'x'}, bytes.Repeat([]byte{0x91}, n)...)
	return append(b, 0xc0)
}

// FuzzDecodeReplica: on any bytes, the hand-written decoders (data[0]
// picks the message type) never panic, and whatever they accept msgpack v5
// reflection accepts too, decoding it to the same value. The converse is
// not required: see the deliberate differences in codec.go.
func FuzzDecodeReplica(f *testing.F) {
	seeds := []message{
		&ReplicaPut{Key: []byte("key"), Object: []byte("object"), HintFor: "n2"},
		&ReplicaPutReply{Changed: true},
		&ReplicaPutBatch{Items: []ReplicaPut{{Key: []byte("a"), Object: []byte{1}}, {Key: []byte("b")}}},
		&ReplicaPutBatchReply{Changed: 300},
		&ReplicaGet{Key: []byte("key"), Digest: true},
		&ReplicaGetBatch{Keys: [][]byte{[]byte("a"), nil, {}}, Digest: true},
		&ReplicaGetReply{Found: true, Object: []byte("object"), Digested: true, Digest: math.MaxUint64},
		&ReplicaGetBatchReply{Items: []ReplicaGetReply{{Found: true, Object: []byte{1}}, {Digested: true, Digest: 7}}},
	}
	for i, m := range seeds {
		f.Add(append([]byte{byte(i)}, m.AppendMsgpack(nil)...))
		// The same with an unknown key of nested values in front.
		b := m.AppendMsgpack(nil)
		b[0]++ // one more entry in the fixmap
		unknown := []byte{0xa1, 'x', 0x92, 0x81, 0xa1, 'y', 0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0xd6, 1, 1, 2, 3, 4}
		f.Add(slices.Concat([]byte{byte(i)}, b[:1], unknown, b[1:]))
	}
	f.Add([]byte{0, 0xc0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		tc := codecCases[int(data[0])%len(codecCases)]
		b := data[1:]
		if _, err := tc.fast(b); err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		checkDecode(t, tc, b)
	})
}
