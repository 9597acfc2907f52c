package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
)

// rawHeader builds a header with an arbitrary length field.
func rawHeader(length uint32, id uint64, kind Kind, flags Flags) []byte {
	b := make([]byte, HeaderSize)
	binary.BigEndian.PutUint32(b[0:], length)
	binary.BigEndian.PutUint64(b[4:], id)
	binary.BigEndian.PutUint16(b[12:], uint16(kind))
	b[14] = byte(flags)
	return b
}

func TestFrameLayout(t *testing.T) {
	got := AppendFrame(nil, Header{ID: 0x0102030405060708, Kind: 0x0a0b, Flags: FlagResponse | FlagError}, []byte("hi"))
	want := []byte{
		0, 0, 0, 14, // length: 12 header bytes after it + 2 payload
		1, 2, 3, 4, 5, 6, 7, 8, // id
		0x0a, 0x0b, // kind
		3, // flags
		0, // reserved
		'h', 'i',
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendFrame = % x\nwant          % x", got, want)
	}
}

func TestReadFrame(t *testing.T) {
	const limit = 1 << 10
	ok := AppendFrame(nil, Header{ID: 7, Kind: 3}, []byte("payload"))
	empty := AppendFrame(nil, Header{ID: 8, Kind: 4, Flags: FlagResponse}, nil)
	reserved := append([]byte(nil), ok...)
	reserved[15] = 0xff // ignored on receive

	tests := []struct {
		name    string
		in      []byte
		want    Header
		payload string
		err     error  // errors.Is target
		msg     string // exact error text, when set
	}{
		{name: "frame", in: ok, want: Header{ID: 7, Kind: 3}, payload: "payload"},
		{name: "empty payload", in: empty, want: Header{ID: 8, Kind: 4, Flags: FlagResponse}},
		{name: "reserved byte ignored", in: reserved, want: Header{ID: 7, Kind: 3}, payload: "payload"},
		{name: "clean EOF", in: nil, err: io.EOF},
		{name: "EOF inside length", in: ok[:3], err: io.ErrUnexpectedEOF},
		{name: "EOF inside header", in: ok[:10], err: io.ErrUnexpectedEOF},
		{name: "EOF inside payload", in: ok[:len(ok)-1], err: io.ErrUnexpectedEOF},
		{
			name: "over limit", in: rawHeader(9999999, 1, 1, 0), err: ErrFrameSize,
			msg: "wire: frame of 9999999 bytes exceeds limit 1024",
		},
		{name: "one over limit", in: rawHeader(limit+1, 1, 1, 0), err: ErrFrameSize},
		{
			name: "under header", in: rawHeader(11, 1, 1, 0), err: ErrFrameSize,
			msg: "wire: frame of 11 bytes is shorter than its 12-byte header",
		},
		{name: "zero length", in: rawHeader(0, 1, 1, 0), err: ErrFrameSize},
		{name: "max length", in: rawHeader(0xffffffff, 1, 1, 0), err: ErrFrameSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, p, err := ReadFrame(bufio.NewReader(bytes.NewReader(tt.in)), limit)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				if tt.msg != "" && err.Error() != tt.msg {
					t.Fatalf("err = %q, want %q", err, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h != tt.want || string(p) != tt.payload {
				t.Fatalf("got %+v %q, want %+v %q", h, p, tt.want, tt.payload)
			}
		})
	}
}

// TestReadFrameLargeGrows reads a payload bigger than readChunk through a
// small reader buffer, exercising the grow-as-it-arrives path.
func TestReadFrameLargeGrows(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 300_000/16)
	in := AppendFrame(nil, Header{ID: 1, Kind: 2}, payload)
	in = AppendFrame(in, Header{ID: 2, Kind: 2}, []byte("next"))
	br := bufio.NewReaderSize(bytes.NewReader(in), 64)
	h, p, err := ReadFrame(br, DefaultMaxFrame)
	if err != nil || h.ID != 1 || !bytes.Equal(p, payload) {
		t.Fatalf("first frame: %+v len %d err %v", h, len(p), err)
	}
	if cap(p) != len(p) {
		t.Errorf("payload cap %d, want exactly %d", cap(p), len(p))
	}
	h, p, err = ReadFrame(br, DefaultMaxFrame)
	if err != nil || h.ID != 2 || string(p) != "next" {
		t.Fatalf("second frame: %+v %q %v", h, p, err)
	}
}

// TestReadFrameLyingHeaderAllocation checks that a header claiming the
// maximum frame with a few bytes behind it costs about what was sent, not
// the claim.
func TestReadFrameLyingHeaderAllocation(t *testing.T) {
	in := append(rawHeader(DefaultMaxFrame, 1, 1, 0), make([]byte, 100)...)
	br := bufio.NewReader(bytes.NewReader(in))
	alloc := allocatedBy(func() {
		if _, _, err := ReadFrame(br, DefaultMaxFrame); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("err = %v, want io.ErrUnexpectedEOF", err)
		}
	})
	if limit := uint64(2 * readChunk); alloc > limit {
		t.Fatalf("allocated %d bytes for a %d-byte input, want <= %d", alloc, len(in), limit)
	}
}

// allocatedBy returns the bytes allocated on the heap while f ran.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
