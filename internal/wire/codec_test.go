package wire

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

// sampleMsg is shaped like the node's messages: bytes, strings, slices,
// maps and nested structs. The fuzz test and the property test decode into
// it.
type sampleMsg struct {
	Key     []byte            `msgpack:"k"`
	Name    string            `msgpack:"n"`
	N, R, W uint8             `msgpack:",omitempty"`
	Seq     int64             `msgpack:"s"`
	Ratio   float64           `msgpack:"f"`
	Strict  bool              `msgpack:"b"`
	Tags    []string          `msgpack:"t"`
	Values  [][]byte          `msgpack:"v"`
	Meta    map[string]string `msgpack:"m"`
	Clock   map[string]uint64 `msgpack:"c"`
	Sibs    []sampleSibling   `msgpack:"x"`
	Arr     [4]uint32         `msgpack:"a"`
	Next    *sampleMsg        `msgpack:"nx"`
	Extra   map[string]any    `msgpack:"e"`
}

type sampleSibling struct {
	Value []byte    `msgpack:"v"`
	Dot   sampleDot `msgpack:"d"`
	Tomb  bool      `msgpack:"t"`
	TS    int64     `msgpack:"ts"`
}

type sampleDot struct {
	Actor   string `msgpack:"a"`
	Counter uint64 `msgpack:"c"`
}

func TestMarshalRoundTrip(t *testing.T) {
	in := sampleMsg{
		Key: []byte("user:42"), Name: "alice", N: 3, R: 2, W: 2, Seq: -7, Ratio: 0.5, Strict: true,
		Tags:   []string{"a", ""},
		Values: [][]byte{[]byte("v1"), {}},
		Meta:   map[string]string{"zone": "eu-1"},
		Clock:  map[string]uint64{"n1": 3, "n2": 1 << 40},
		Sibs:   []sampleSibling{{Value: []byte("x"), Dot: sampleDot{"n1", 3}, TS: 1700000000}},
		Arr:    [4]uint32{1, 2, 3, 4},
		Next:   &sampleMsg{Name: "nested"},
	}
	b, err := Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	var out sampleMsg
	if err := Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
	}
	// Decoded bytes are copies: scribbling on the input changes nothing.
	for i := range b {
		b[i] = 0
	}
	if string(out.Key) != "user:42" || out.Name != "alice" {
		t.Fatalf("decoded value aliases its input: %q %q", out.Key, out.Name)
	}
}

// TestMarshalUnmarshalProperty: whatever Marshal produces, the pre-decode
// walk accepts and Unmarshal restores.
func TestMarshalUnmarshalProperty(t *testing.T) {
	bytesGen := rapid.SliceOfN(rapid.Byte(), 0, 40)
	sib := rapid.Custom(func(t *rapid.T) sampleSibling {
		return sampleSibling{
			Value: bytesGen.Draw(t, "value"),
			Dot:   sampleDot{Actor: rapid.String().Draw(t, "actor"), Counter: rapid.Uint64().Draw(t, "counter")},
			Tomb:  rapid.Bool().Draw(t, "tomb"),
			TS:    rapid.Int64().Draw(t, "ts"),
		}
	})
	rapid.Check(t, func(t *rapid.T) {
		in := sampleMsg{
			Key:    bytesGen.Draw(t, "key"),
			Name:   rapid.String().Draw(t, "name"),
			N:      rapid.Uint8().Draw(t, "n"),
			Seq:    rapid.Int64().Draw(t, "seq"),
			Ratio:  rapid.Float64Range(-1e12, 1e12).Draw(t, "ratio"),
			Tags:   rapid.SliceOfN(rapid.String(), 0, 8).Draw(t, "tags"),
			Values: rapid.SliceOfN(bytesGen, 0, 8).Draw(t, "values"),
			Meta:   rapid.MapOfN(rapid.String(), rapid.String(), 0, 8).Draw(t, "meta"),
			Clock:  rapid.MapOfN(rapid.StringN(1, 8, 8), rapid.Uint64(), 0, 8).Draw(t, "clock"),
			Sibs:   rapid.SliceOfN(sib, 0, 5).Draw(t, "sibs"),
		}
		b, err := Marshal(&in)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkMsgpack(b); err != nil {
			t.Fatalf("walk rejects Marshal's output: %v\n% x", err, b)
		}
		var out sampleMsg
		if err := Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
		}
	})
}

func TestUnmarshalRejects(t *testing.T) {
	deep := append(bytes.Repeat([]byte{0x91}, 100_000), 0xc0)
	tests := []struct {
		name string
		in   []byte
		into any
		msg  string // substring of the error
	}{
		{"empty", nil, new(sampleMsg), "truncated at byte 0"},
		{"bin32 of 4 GiB in 5 bytes", []byte{0xc6, 0xff, 0xff, 0xff, 0xff}, new([]byte), "declares 4294967295 bytes"},
		{"str32 of 4 GiB", []byte{0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}, new(string), "declares 4294967295 bytes"},
		{"ext32 of 4 GiB", []byte{0xc9, 0xff, 0xff, 0xff, 0xff, 1}, new(any), "declares 4294967296 bytes"},
		{"array32 of 4G elements", []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0}, new([]sampleSibling), "declares 4294967295 values"},
		{"array16 longer than input", []byte{0xdc, 0x01, 0x00, 0xc0, 0xc0}, new([]any), "declares 256 values"},
		{"map32 of 4G entries", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa0, 0xa0}, new(map[string]string), "declares 8589934590 values"},
		{"fixmap longer than input", []byte{0x81, 0xa0}, new(map[string]string), "declares 2 values"},
		{"nesting", deep, new(any), "nesting deeper than 64"},
		{"trailing bytes", []byte{0xc0, 0xc0}, new(any), "1 trailing bytes"},
		{"never-used code", []byte{0xc1}, new(any), "invalid code 0xc1"},
		{"truncated int", []byte{0xcf, 1, 2}, new(uint64), "declares 8 bytes, 2 remain"},
		{"truncated length", []byte{0xda, 1}, new(string), "truncated length"},
		{"wrong type", []byte{0xa1, 'x'}, new(int), "decode *int"},
		{"array struct of wrong size", []byte{0x91, 0xc0}, new(sampleDot), "decode *wire.sampleDot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			alloc := allocatedBy(func() { err = Unmarshal(tt.in, tt.into) })
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %q, want it to contain %q", err, tt.msg)
			}
			if alloc > 64<<10 {
				t.Fatalf("allocated %d bytes rejecting a %d-byte input", alloc, len(tt.in))
			}
		})
	}
}

// TestMsgpackPreallocates records why Unmarshal walks its input first:
// msgpack itself sizes a slice by the declared length. Were this ever to
// report a small number, the package doc's NB could be revisited.
func TestMsgpackPreallocates(t *testing.T) {
	in := []byte{0xdd, 0x00, 0x01, 0x00, 0x00, 0xc0} // array32 of 64 Ki, one element present
	var out []sampleSibling
	alloc := allocatedBy(func() { _ = msgpack.Unmarshal(in, &out) })
	t.Logf("msgpack.Unmarshal of a %d-byte input allocated %d bytes", len(in), alloc)
	var err error
	alloc = allocatedBy(func() { err = Unmarshal(in, &out) })
	if !errors.Is(err, ErrMalformed) || alloc > 64<<10 {
		t.Fatalf("Unmarshal: err %v, allocated %d bytes", err, alloc)
	}
}

func TestErrorRoundTrip(t *testing.T) {
	in := &Error{Code: CodeQuorum, Msg: "1 of 2 acks", Data: []byte{0x82, 0xa1, 'r', 1, 0xa1, 'w', 2}}
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if out := decodeError(b); !reflect.DeepEqual(in, out) {
		t.Fatalf("got %+v, want %+v", out, in)
	}
	if got := decodeError([]byte{0xc1}); got.Code != CodeInternal {
		t.Fatalf("undecodable error payload: got %+v, want CodeInternal", got)
	}
	if got := in.Error(); got != "wire: quorum: 1 of 2 acks" {
		t.Fatalf("Error() = %q", got)
	}
	if !errors.Is(in, &Error{Code: CodeQuorum}) || errors.Is(in, &Error{Code: CodeNotFound}) {
		t.Fatal("errors.Is by code does not match")
	}
	if CodeOf(errors.Join(errors.New("x"), in)) != CodeQuorum || CodeOf(errors.New("x")) != 0 {
		t.Fatal("CodeOf")
	}
	if Code(999).String() != "code 999" || CodeOverloaded.String() != "overloaded" {
		t.Fatal("Code.String")
	}
}
