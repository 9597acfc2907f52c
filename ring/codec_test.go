package ring

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

// genWireState draws a State that Encode accepts, with arbitrary strings
// (invalid UTF-8 and maximum lengths included) and arbitrary versions.
func genWireState() *rapid.Generator[State] {
	str := rapid.OneOf(
		rapid.StringN(0, 12, MaxFieldLen),
		rapid.Map(rapid.SliceOfN(rapid.Byte(), 0, 12), func(b []byte) string { return string(b) }),
		rapid.Just(strings.Repeat("x", MaxFieldLen)),
	)
	return rapid.Custom(func(t *rapid.T) State {
		q := rapid.SampledFrom([]int{0, 1, 256, MaxPartitions}).Draw(t, "q")
		s := NewState(q)
		for range rapid.IntRange(0, 8).Draw(t, "members") {
			id := NodeID(str.Filter(func(s string) bool { return s != "" }).Draw(t, "id"))
			s.Members[id] = Member{
				ID:         id,
				Zone:       str.Draw(t, "zone"),
				Status:     Status(rapid.IntRange(1, 255).Draw(t, "status")),
				RPCAddr:    str.Draw(t, "rpc"),
				HTTPAddr:   str.Draw(t, "http"),
				GossipAddr: str.Draw(t, "gossip"),
				RESPAddr:   str.Draw(t, "resp"),
				Security:   rapid.SampledFrom([]uint8{0, 0, 1, 2, 255}).Draw(t, "security"),
				Version:    rapid.Uint64().Draw(t, "version"),
			}
		}
		return s
	})
}

func TestEncodeRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genWireState().Draw(t, "s")
		b, err := s.Encode()
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		got, err := DecodeState(b)
		if err != nil {
			t.Fatalf("DecodeState(Encode(s)): %v", err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Fatalf("DecodeState(Encode(s)) = %+v, want %+v", got, s)
		}
		// Canonical: the same state, built in another order, encodes to
		// the same bytes.
		again := NewState(s.Partitions)
		for _, m := range s.WithStatus() {
			again.Members[m.ID] = m
		}
		b2, err := again.Encode()
		if err != nil || !bytes.Equal(b, b2) || s.Digest() != again.Digest() {
			t.Fatalf("encoding is not canonical: %x vs %x (%v)", b, b2, err)
		}
	})
}

func TestEncodeMergedStatesAgree(t *testing.T) {
	// Two nodes that merged the same states in different orders send the
	// same bytes and compute the same digest.
	rapid.Check(t, func(t *rapid.T) {
		a, b := genState(16).Draw(t, "a"), genState(16).Draw(t, "b")
		ab, ba := merged(t, a, b), merged(t, b, a)
		x, err1 := ab.Encode()
		y, err2 := ba.Encode()
		if err1 != nil || err2 != nil || !bytes.Equal(x, y) || ab.Digest() != ba.Digest() {
			t.Fatalf("a⊔b and b⊔a encode differently: %x / %x (%v, %v)", x, y, err1, err2)
		}
	})
}

func TestDigest(t *testing.T) {
	s := NewState(256)
	s.Update(Member{ID: "a", Status: Active})
	d0 := s.Digest()
	c := s.Clone()
	if c.Digest() != d0 {
		t.Error("clone has a different digest")
	}
	for name, f := range map[string]func(*State){
		"status":     func(s *State) { s.Update(Member{ID: "a", Status: Leaving}) },
		"member":     func(s *State) { s.Update(Member{ID: "b", Status: Active}) },
		"partitions": func(s *State) { s.Partitions = 512 },
	} {
		c := s.Clone()
		f(&c)
		if c.Digest() == d0 {
			t.Errorf("changing %s kept the digest", name)
		}
	}
}

// raw encodes v with msgpack's reflection encoder, to build inputs that
// Encode would never produce.
func raw(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func member(kv ...any) map[string]any {
	m := map[string]any{"id": "a", "st": 2, "v": 1}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(m, kv[i].(string))
			continue
		}
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func TestDecodeState(t *testing.T) {
	deep := bytes.Repeat([]byte{0x91}, 100000) // [[[[... 100000 levels
	deep = append(deep, 0x01)
	tests := []struct {
		name string
		in   []byte
		ok   bool
		want State // when ok
	}{
		{"empty input", nil, false, State{}},
		{"nil", []byte{0xc0}, false, State{}},
		{"not a map", []byte{0x01}, false, State{}},
		{"empty map", []byte{0x80}, true, State{Members: map[NodeID]Member{}}},
		{"minimal", raw(t, map[string]any{"q": 256, "m": []any{member()}}), true,
			State{Partitions: 256, Members: map[NodeID]Member{"a": {ID: "a", Status: Active, Version: 1}}}},
		{"unknown keys are skipped", raw(t, map[string]any{"q": 8, "future": map[string]any{"x": []any{1, "y"}},
			"m": []any{member("new", []any{[]any{1}})}}), true,
			State{Partitions: 8, Members: map[NodeID]Member{"a": {ID: "a", Status: Active, Version: 1}}}},
		{"unknown status is kept", raw(t, map[string]any{"m": []any{member("st", 9)}}), true,
			State{Members: map[NodeID]Member{"a": {ID: "a", Status: 9, Version: 1}}}},
		{"q=0 means not known yet", raw(t, map[string]any{"q": 0}), true, State{Members: map[NodeID]Member{}}},
		{"q not a power of two", raw(t, map[string]any{"q": 12}), false, State{}},
		{"q too large", raw(t, map[string]any{"q": 1 << 17}), false, State{}},
		{"q negative", raw(t, map[string]any{"q": -256}), false, State{}},
		{"q huge", raw(t, map[string]any{"q": uint64(1) << 63}), false, State{}},
		{"q a string", raw(t, map[string]any{"q": "256"}), false, State{}},
		{"empty id", raw(t, map[string]any{"m": []any{member("id", "")}}), false, State{}},
		{"missing id", raw(t, map[string]any{"m": []any{member("id", nil)}}), false, State{}},
		{"zero status", raw(t, map[string]any{"m": []any{member("st", 0)}}), false, State{}},
		{"status out of range", raw(t, map[string]any{"m": []any{member("st", 256)}}), false, State{}},
		{"duplicate id", raw(t, map[string]any{"m": []any{member(), member()}}), false, State{}},
		{"id at the limit", raw(t, map[string]any{"m": []any{member("id", strings.Repeat("i", MaxFieldLen))}}), true,
			State{Members: map[NodeID]Member{NodeID(strings.Repeat("i", MaxFieldLen)): {ID: NodeID(strings.Repeat("i", MaxFieldLen)), Status: Active, Version: 1}}}},
		{"id over the limit", raw(t, map[string]any{"m": []any{member("id", strings.Repeat("i", MaxFieldLen+1))}}), false, State{}},
		{"address over the limit", raw(t, map[string]any{"m": []any{member("rpc", strings.Repeat("h", MaxFieldLen+1))}}), false, State{}},
		{"too many members claimed", []byte{0x81, 0xa1, 'm', 0xdd, 0x00, 0x00, 0x10, 0x01}, false, State{}},
		{"huge member count claimed", []byte{0x81, 0xa1, 'm', 0xdd, 0xff, 0xff, 0xff, 0xff}, false, State{}},
		{"huge map claimed", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}, false, State{}},
		{"huge string claimed", []byte{0x81, 0xdb, 0xff, 0xff, 0xff, 0xff}, false, State{}},
		{"deeply nested unknown field", append([]byte{0x81, 0xa1, 'x'}, deep...), false, State{}},
		{"trailing bytes", append(raw(t, map[string]any{"q": 8}), 0x00), false, State{}},
		{"truncated", raw(t, map[string]any{"q": 8, "m": []any{member()}})[:10], false, State{}},
		{"too large", make([]byte, MaxEncodedSize+1), false, State{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeState(tc.in)
			if tc.ok {
				if err != nil {
					t.Fatalf("DecodeState: %v", err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("DecodeState = %+v, want %+v", got, tc.want)
				}
				return
			}
			if !errors.Is(err, ErrMalformedState) {
				t.Fatalf("DecodeState = %+v, %v; want ErrMalformedState", got, err)
			}
			if !strings.HasPrefix(err.Error(), "ring: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestDecodeMaxMembers(t *testing.T) {
	s := NewState(256)
	for i := range MaxMembers {
		id := NodeID(fmt.Sprintf("node-%04d", i))
		s.Members[id] = Member{ID: id, Status: Active, RPCAddr: "10.0.0.1:7000", Version: uint64(i)}
	}
	b, err := s.Encode()
	if err != nil {
		t.Fatalf("Encode %d members: %v", MaxMembers, err)
	}
	if got, err := DecodeState(b); err != nil || len(got.Members) != MaxMembers {
		t.Fatalf("DecodeState of %d members: %d, %v", MaxMembers, len(got.Members), err)
	}
	s.Members["one-too-many"] = Member{ID: "one-too-many", Status: Active}
	if _, err := s.Encode(); !errors.Is(err, ErrMalformedState) {
		t.Fatalf("Encode of %d members = %v, want ErrMalformedState", len(s.Members), err)
	}
}

func TestEncodeRejectsWhatDecodeWould(t *testing.T) {
	for name, s := range map[string]State{
		"bad q":          {Partitions: 12},
		"key mismatch":   {Members: map[NodeID]Member{"a": {ID: "b", Status: Active}}},
		"empty id":       {Members: map[NodeID]Member{"": {Status: Active}}},
		"zero status":    {Members: map[NodeID]Member{"a": {ID: "a"}}},
		"long zone":      {Members: map[NodeID]Member{"a": {ID: "a", Status: Active, Zone: strings.Repeat("z", MaxFieldLen+1)}}},
		"long resp addr": {Members: map[NodeID]Member{"a": {ID: "a", Status: Active, RESPAddr: strings.Repeat("r", MaxFieldLen+1)}}},
	} {
		if _, err := s.Encode(); !errors.Is(err, ErrMalformedState) {
			t.Errorf("%s: Encode = %v, want ErrMalformedState", name, err)
		}
	}
}

func TestStateAsMsgpackField(t *testing.T) {
	// gossip/ may embed a State in a larger message.
	type envelope struct {
		From  string `msgpack:"from"`
		State State  `msgpack:"state"`
	}
	s := NewState(64)
	s.Update(Member{ID: "a", Zone: "z1", Status: Active, RPCAddr: "h:1"})
	b, err := msgpack.Marshal(envelope{From: "a", State: s})
	if err != nil {
		t.Fatal(err)
	}
	var got envelope
	if err := msgpack.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.From != "a" || !reflect.DeepEqual(got.State, s) {
		t.Fatalf("round trip through an envelope: %+v", got)
	}
	bad := envelope{State: State{Partitions: 3}}
	if _, err := msgpack.Marshal(bad); !errors.Is(err, ErrMalformedState) {
		t.Fatalf("Marshal of a bad State = %v, want ErrMalformedState", err)
	}
}

func TestDecodeStateNeverPanics(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var in []byte
		if rapid.Bool().Draw(t, "mutate") {
			// Start from a valid encoding and corrupt it, to get past
			// the first checks.
			b, err := genWireState().Draw(t, "s").Encode()
			if err != nil {
				t.Fatal(err)
			}
			for range rapid.IntRange(1, 4).Draw(t, "flips") {
				if len(b) == 0 {
					break
				}
				i := rapid.IntRange(0, len(b)-1).Draw(t, "at")
				b[i] = rapid.Byte().Draw(t, "byte")
			}
			in = b[:rapid.IntRange(0, len(b)).Draw(t, "cut")]
		} else {
			in = rapid.SliceOfN(rapid.Byte(), 0, 64).Draw(t, "bytes")
		}
		checkDecode(t, in)
	})
}

// checkDecode decodes in and, if that succeeds, checks that the result
// re-encodes canonically: Decode(Encode(Decode(in))) == Decode(in). t is a
// *testing.T or a *rapid.T.
func checkDecode(t interface{ Fatalf(string, ...any) }, in []byte) {
	s, err := DecodeState(in)
	if err != nil {
		if !errors.Is(err, ErrMalformedState) {
			t.Fatalf("DecodeState error %v does not wrap ErrMalformedState", err)
		}
		return
	}
	b, err := s.Encode()
	if err != nil {
		t.Fatalf("decoded state does not encode: %v", err)
	}
	s2, err := DecodeState(b)
	if err != nil || !reflect.DeepEqual(s, s2) {
		t.Fatalf("re-decode: %+v, %v; want %+v", s2, err, s)
	}
	b2, err := s2.Encode()
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("re-encode is not canonical")
	}
}

// FuzzDecodeState: go test -fuzz=FuzzDecodeState ./ring
func FuzzDecodeState(f *testing.F) {
	s := NewState(256)
	s.Update(Member{ID: "node-1", Zone: "z1", Status: Active, RPCAddr: "10.0.0.1:7000", HTTPAddr: "10.0.0.1:8000",
		GossipAddr: "10.0.0.1:7946", RESPAddr: "10.0.0.1:6379"})
	s.Update(Member{ID: "node-2", Status: Leaving, Version: 41})
	s.Update(Member{ID: "node-3", Status: Removed})
	for _, st := range []State{s, NewState(0), NewState(1)} {
		b, err := st.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, b := range [][]byte{
		nil, {0x80}, {0xc0}, {0x81, 0xa1, 'q', 0x0c},
		{0x81, 0xa1, 'm', 0xdd, 0xff, 0xff, 0xff, 0xff},
		{0x81, 0xa1, 'x', 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x01},
		{0x81, 0xa1, 'm', 0x91, 0x83, 0xa2, 'i', 'd', 0xa1, 'a', 0xa2, 's', 't', 0x02, 0xa1, 'v', 0x01},
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkDecode(t, in)
	})
}
