package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// fuzzMaxFrame is the frame limit FuzzReadFrame reads under.
const fuzzMaxFrame = 1 << 20

// FuzzReadFrame: on any bytes the frame reader never panics, reports every
// bad size as ErrFrameSize, allocates at most about twice what it was given
// (never the declared length), and what it parses re-encodes to the bytes
// it consumed.
func FuzzReadFrame(f *testing.F) {
	f.Add(AppendFrame(nil, Header{ID: 1, Kind: 2}, []byte("payload")))
	f.Add(AppendFrame(AppendFrame(nil, Header{ID: 1, Kind: 2}, nil), Header{ID: 2, Kind: 3, Flags: FlagResponse | FlagError}, []byte{0x81, 0xa1, 'c', 1}))
	f.Add(rawHeader(fuzzMaxFrame, 1, 1, 0))
	f.Add(rawHeader(fuzzMaxFrame+1, 1, 1, 0))
	f.Add(rawHeader(11, 1, 1, 0))
	f.Add(append(rawHeader(200_000, 1, 1, 0), make([]byte, 70_000)...))
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(data), 4096)
		var frames []struct {
			h Header
			p []byte
		}
		var err error
		alloc := allocatedBy(func() {
			for {
				var h Header
				var p []byte
				h, p, err = ReadFrame(br, fuzzMaxFrame)
				if err != nil {
					return
				}
				frames = append(frames, struct {
					h Header
					p []byte
				}{h, p})
			}
		})
		if bound := uint64(2*len(data)+readChunk) + 64<<10; alloc > bound {
			t.Fatalf("allocated %d bytes reading %d, bound %d", alloc, len(data), bound)
		}
		if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, ErrFrameSize) {
			t.Fatalf("unexpected error %v", err)
		}
		var again []byte
		for _, fr := range frames {
			again = AppendFrame(again, fr.h, fr.p)
		}
		consumed := bytes.Clone(data[:len(again)])
		for off := 0; off < len(consumed); {
			consumed[off+15] = 0 // reserved: ignored on read, zero on write
			off += 4 + int(uint32(consumed[off])<<24|uint32(consumed[off+1])<<16|uint32(consumed[off+2])<<8|uint32(consumed[off+3]))
		}
		if !bytes.Equal(again, consumed) {
			t.Fatalf("re-encoding the parsed frames differs from the input")
		}
	})
}

// FuzzUnmarshal: decoding arbitrary bytes into a message-shaped struct never
// panics, fails only with ErrMalformed, and allocates in proportion to the
// input, however large the lengths it declares.
func FuzzUnmarshal(f *testing.F) {
	full, err := Marshal(&sampleMsg{
		Key: []byte("k"), Name: "n", Tags: []string{"a"}, Values: [][]byte{[]byte("v")},
		Meta: map[string]string{"a": "b"}, Clock: map[string]uint64{"n1": 1},
		Sibs: []sampleSibling{{Value: []byte("x"), Dot: sampleDot{"n1", 2}}},
		Next: &sampleMsg{Name: "inner"}, Extra: map[string]any{"x": []any{1, "y", nil}},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(full)
	f.Add([]byte{0x81, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff})         // Sibs: array32 of 4G
	f.Add([]byte{0x81, 0xa1, 'k', 0xc6, 0xff, 0xff, 0xff, 0xff})         // Key: bin32 of 4 GiB
	f.Add([]byte{0x81, 0xa1, 'm', 0xdf, 0x00, 0x10, 0x00, 0x00})         // Meta: map32 of 1M
	f.Add([]byte{0x81, 0xa1, 'e', 0x81, 0xa1, 'x', 0xc9, 0, 0, 0, 9, 1}) // Extra: ext32
	f.Add(append([]byte{0x81, 0xa2, 'n', 'x'}, bytes.Repeat([]byte{0x81, 0xa2, 'n', 'x'}, 200)...))
	f.Add([]byte{0xc1})
	f.Fuzz(func(t *testing.T, data []byte) {
		var m sampleMsg
		var err error
		alloc := allocatedBy(func() { err = Unmarshal(data, &m) })
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v does not wrap ErrMalformed", err)
		}
		// The largest element preallocated per declared element is a
		// sampleSibling or a map entry: well under 256 bytes.
		if bound := uint64(256*len(data)) + 1<<20; alloc > bound {
			t.Fatalf("allocated %d bytes decoding %d, bound %d", alloc, len(data), bound)
		}
	})
}
