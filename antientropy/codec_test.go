package antientropy

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
	"github.com/mnemo-kv/mnemo/version"
)

func sampleObjects(n int) []store.KeyObject {
	objs := make([]store.KeyObject, n)
	for i := range objs {
		a := version.Actor("node-1#0123456789abcdef")
		o := &version.Object{
			Context:  version.VV{{Actor: a, Counter: uint64(i + 1)}},
			Siblings: []version.Sibling{{Dot: version.Dot{Actor: a, Counter: uint64(i + 1)}, Value: []byte(fmt.Sprintf("value %d", i)), Timestamp: 1700000000000000000 + int64(i)}},
		}
		if i%3 == 0 {
			o.Siblings[0].Tombstone, o.Siblings[0].Value = true, nil
		}
		objs[i] = store.KeyObject{Key: []byte(fmt.Sprintf("key-%d", i)), Object: o}
	}
	return objs
}

// sampleMessages returns one encoded message of each type, small and
// large (the large ones are compressed), for round trips and fuzz seeds.
func sampleMessages() map[string][]byte {
	roots := &rootsRequest{From: "node-1"}
	for p := range 256 {
		roots.Parts = append(roots.Parts, ring.Partition(p))
		roots.Roots = append(roots.Roots, uint64(p)*0x9e3779b97f4a7c15)
	}
	differ := []byte{0b101, 0, 0, 0x80}
	tags := make([]uint32, 3*32)
	for i := range tags {
		tags[i] = uint32(i*7919) & 0xffffff
	}
	objs := sampleObjects(40)
	return map[string][]byte{
		"roots request":         roots.encode(),
		"roots request small":   (&rootsRequest{From: "a", Parts: []ring.Partition{3, 9}, Roots: []uint64{1, 2}}).encode(),
		"roots reply":           (&rootsReply{Status: make([]byte, 300)}).encode(),
		"roots reply small":     (&rootsReply{Status: []byte{statusEqual, statusDiffer, statusNotReady}}).encode(),
		"segments request":      (&segmentsRequest{Salt: 77, Part: 5, Branches: roots.Roots[:32]}).encode(),
		"segments reply":        (&segmentsReply{Status: statusDiffer, Branches: 32, PerBranch: 32, Differ: differ, Tags: tags}).encode(),
		"segments reply equal":  (&segmentsReply{Status: statusEqual, Branches: 32, PerBranch: 32, Differ: make([]byte, 4)}).encode(),
		"keys request":          (&keysRequest{Salt: 5, Part: 2, Segs: []uint32{1, 2, 900}, Counts: []int{2, 0, 1}, Tags: []uint32{10, 20, 30}}).encode(),
		"keys reply":            (&keysReply{Status: statusDiffer, Truncated: true, NTags: 10, Wanted: []byte{0xff, 0x01}, Check: []byte{0x03, 0}, Objects: objs}).encode(),
		"keys reply empty":      (&keysReply{Status: statusDiffer}).encode(),
		"push request":          (&pushRequest{Part: 7, Check: []byte{1, 0, 0, 0, 0x80}, Objects: objs}).encode(),
		"push reply":            (&pushReply{Changed: 12, Objects: objs[:2]}).encode(),
		"push reply no objects": (&pushReply{Changed: 3}).encode(),
	}
}

// decodeAny runs the decoder for a sample's type.
func decodeAny(name string, b []byte) (any, error) {
	switch {
	case bytes.HasPrefix([]byte(name), []byte("roots request")):
		return decodeRootsRequest(b)
	case bytes.HasPrefix([]byte(name), []byte("roots reply")):
		return decodeRootsReply(b)
	case bytes.HasPrefix([]byte(name), []byte("segments request")):
		return decodeSegmentsRequest(b)
	case bytes.HasPrefix([]byte(name), []byte("segments reply")):
		return decodeSegmentsReply(b)
	case bytes.HasPrefix([]byte(name), []byte("keys request")):
		return decodeKeysRequest(b)
	case bytes.HasPrefix([]byte(name), []byte("keys reply")):
		return decodeKeysReply(b)
	case bytes.HasPrefix([]byte(name), []byte("push request")):
		return decodePushRequest(b)
	case bytes.HasPrefix([]byte(name), []byte("push reply")):
		return decodePushReply(b)
	}
	panic(name)
}

type encoder interface{ encode() []byte }

func TestCodecRoundTrip(t *testing.T) {
	for name, b := range sampleMessages() {
		t.Run(name, func(t *testing.T) {
			m, err := decodeAny(name, b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			again := m.(encoder).encode()
			if !bytes.Equal(again, b) {
				t.Fatalf("re-encoding differs: %d bytes, then %d", len(b), len(again))
			}
			m2, err := decodeAny(name, again)
			if err != nil || !reflect.DeepEqual(m, m2) {
				t.Fatalf("second decode: %v, equal %v", err, reflect.DeepEqual(m, m2))
			}
		})
	}
	// Big bodies are compressed, small ones not.
	msgs := sampleMessages()
	if msgs["push request"][0] != flagZstd || msgs["roots request small"][0] != flagRaw {
		t.Fatalf("flags: push %d, small roots %d", msgs["push request"][0], msgs["roots request small"][0])
	}
}

func TestDecodersReject(t *testing.T) {
	msgs := sampleMessages()
	for name, b := range msgs {
		t.Run(name, func(t *testing.T) {
			body, err := unseal(b)
			if err != nil {
				t.Fatal(err)
			}
			cases := map[string][]byte{
				"empty":          nil,
				"unknown flag":   append([]byte{7}, body...),
				"bad zstd":       {flagZstd, 1, 2, 3, 4},
				"trailing bytes": append(append([]byte{flagRaw}, body...), 0),
			}
			if len(body) > 0 {
				cases["truncated"] = append([]byte{flagRaw}, body[:len(body)-1]...)
			}
			for what, p := range cases {
				if _, err := decodeAny(name, p); wireCode(err) != wire.CodeBadRequest {
					t.Errorf("%s: %v, want a bad request", what, err)
				}
			}
		})
	}
	// Counts larger than the bytes present are refused before allocating.
	huge := []byte{flagRaw, 1, 'a', 0xff, 0xff, 0xff, 0xff, 0x0f}
	if _, err := decodeRootsRequest(huge); wireCode(err) != wire.CodeBadRequest {
		t.Fatalf("huge count: %v", err)
	}
	// Partitions must increase.
	bad := (&rootsRequest{From: "a", Parts: []ring.Partition{3, 3}, Roots: []uint64{1, 2}}).encode()
	if _, err := decodeRootsRequest(bad); wireCode(err) != wire.CodeBadRequest {
		t.Fatalf("repeated partition: %v", err)
	}
	// A zstd bomb is cut at maxBody.
	bomb := append([]byte{flagZstd}, zenc().EncodeAll(make([]byte, maxBody+1), nil)...)
	if _, err := unseal(bomb); wireCode(err) != wire.CodeBadRequest {
		t.Fatalf("zstd bomb: %v", err)
	}
}

// FuzzDecoders feeds every exchange message decoder arbitrary bytes,
// raw and zstd-wrapped: each must return a message or a bad-request
// error, never panic or allocate beyond its bounds.
func FuzzDecoders(f *testing.F) {
	for _, b := range sampleMessages() {
		f.Add(b)
		body, _ := unseal(b)
		f.Add(append([]byte{flagRaw}, body...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(p []byte) {
			for _, dec := range []func([]byte) (any, error){
				func(b []byte) (any, error) { return decodeRootsRequest(b) },
				func(b []byte) (any, error) { return decodeRootsReply(b) },
				func(b []byte) (any, error) { return decodeSegmentsRequest(b) },
				func(b []byte) (any, error) { return decodeSegmentsReply(b) },
				func(b []byte) (any, error) { return decodeKeysRequest(b) },
				func(b []byte) (any, error) { return decodeKeysReply(b) },
				func(b []byte) (any, error) { return decodePushRequest(b) },
				func(b []byte) (any, error) { return decodePushReply(b) },
			} {
				m, err := dec(p)
				if err != nil {
					if wireCode(err) != wire.CodeBadRequest {
						t.Fatalf("error %v is not a bad request", err)
					}
					continue
				}
				// What decodes re-encodes to something that decodes.
				if e, ok := m.(encoder); ok {
					if _, err := dec(e.encode()); err != nil {
						t.Fatalf("re-encoded %T does not decode: %v", m, err)
					}
				}
			}
		}
		check(data)
		if len(data) > 0 {
			check(append([]byte{flagZstd}, zenc().EncodeAll(data[1:], nil)...))
		}
	})
}
