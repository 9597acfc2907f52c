package gossip

import (
	"bytes"
	"testing"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	for _, e := range []envelope{
		{bootID: 1},
		{bootID: ^uint64(0), leaving: true, meta: []byte("rpc=127.0.0.1:7000")},
		{bootID: 42, meta: bytes.Repeat([]byte{0xff}, MaxMetaSize)},
	} {
		b := e.encode()
		if len(b) != metaHeaderLen+len(e.meta) {
			t.Fatalf("encode(%+v) is %d bytes, want %d", e, len(b), metaHeaderLen+len(e.meta))
		}
		got, err := decodeEnvelope(b)
		if err != nil {
			t.Fatalf("decodeEnvelope(encode(%+v)): %v", e, err)
		}
		if got.bootID != e.bootID || got.leaving != e.leaving || !bytes.Equal(got.meta, e.meta) {
			t.Fatalf("round trip: got %+v, want %+v", got, e)
		}
	}
	if max := (envelope{meta: make([]byte, MaxMetaSize)}).encode(); len(max) != 512 {
		t.Fatalf("largest envelope is %d bytes, want memberlist's 512", len(max))
	}
}

func TestDecodeEnvelopeRejectsBadMeta(t *testing.T) {
	for name, b := range map[string][]byte{
		"nil":             nil,
		"short":           {metaVersion1, 0, 1, 2},
		"unknown version": append([]byte{9}, make([]byte, 20)...),
		"plain user meta": []byte("rpc=127.0.0.1:7000"), // a peer that does not wrap its meta
	} {
		if _, err := decodeEnvelope(b); err == nil {
			t.Errorf("%s: decodeEnvelope(%q) = nil error, want one", name, b)
		}
	}
	// Unknown flag bits are ignored: a newer peer may set them.
	b := envelope{bootID: 7}.encode()
	b[1] |= 0x80
	if e, err := decodeEnvelope(b); err != nil || e.bootID != 7 || e.leaving {
		t.Fatalf("unknown flag: got %+v, %v", e, err)
	}
}

func TestStateMsgRoundTrip(t *testing.T) {
	state := bytes.Repeat([]byte("s"), 3000)
	b := encodeStateMsg("node-1", state)
	from, got, err := decodeStateMsg(b)
	if err != nil || from != "node-1" || !bytes.Equal(got, state) {
		t.Fatalf("decodeStateMsg: %q, %d bytes, %v", from, len(got), err)
	}
	for name, bad := range map[string][]byte{
		"empty":          nil,
		"unknown kind":   {2, 0},
		"no length":      {msgKindState},
		"truncated id":   {msgKindState, 5, 'a'},
		"id too long":    append([]byte{msgKindState, 0x80, 0x02}, make([]byte, 300)...),
		"bad uvarint":    {msgKindState, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"length wraps":   {msgKindState, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		"just truncated": encodeStateMsg("abcdef", nil)[:5],
	} {
		if _, _, err := decodeStateMsg(bad); err == nil {
			t.Errorf("%s: decodeStateMsg(%x) = nil error, want one", name, bad)
		}
	}
}

func TestPushPullRoundTrip(t *testing.T) {
	got, err := decodePushPull(encodePushPull([]byte("ring")))
	if err != nil || string(got) != "ring" {
		t.Fatalf("decodePushPull: %q, %v", got, err)
	}
	if got, err := decodePushPull(encodePushPull(nil)); err != nil || len(got) != 0 {
		t.Fatalf("empty state: %q, %v", got, err)
	}
	for _, bad := range [][]byte{nil, {}, {2, 'x'}} {
		if _, err := decodePushPull(bad); err == nil {
			t.Errorf("decodePushPull(%x) = nil error, want one", bad)
		}
	}
}

// The decoders take bytes from any peer: they must return an error, never
// panic, and accept what the encoders produce.

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add(envelope{bootID: 3, leaving: true, meta: []byte("m")}.encode())
	f.Add([]byte{})
	f.Add([]byte{metaVersion1})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEnvelope(b)
		if err != nil {
			return
		}
		if again, err := decodeEnvelope(e.encode()); err != nil || again.bootID != e.bootID || !bytes.Equal(again.meta, e.meta) {
			t.Fatalf("re-encode of %x: %+v, %v", b, again, err)
		}
	})
}

func FuzzDecodeStateMsg(f *testing.F) {
	f.Add(encodeStateMsg("n1", []byte("state")))
	f.Add([]byte{msgKindState, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		from, state, err := decodeStateMsg(b)
		if err != nil {
			return
		}
		if len(from) > maxNodeIDLen {
			t.Fatalf("accepted a %d-byte sender id", len(from))
		}
		// Not byte-equal: a peer may send a non-minimal uvarint length.
		from2, state2, err := decodeStateMsg(encodeStateMsg(from, state))
		if err != nil || from2 != from || !bytes.Equal(state2, state) {
			t.Fatalf("re-encode of %x decodes as %q %x, %v", b, from2, state2, err)
		}
	})
}

func FuzzDecodePushPull(f *testing.F) {
	f.Add(encodePushPull([]byte("state")))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodePushPull(b)
	})
}
