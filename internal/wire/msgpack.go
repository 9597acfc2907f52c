package wire

import (
	"encoding/binary"
	"fmt"
	"math"
)

// MsgpackAppender is a message with a hand-written encoding, which Marshal
// uses instead of reflection. The encoding must be byte for byte what
// msgpack v5 produces for the type, so that nodes of either kind read it.
type MsgpackAppender interface {
	// MsgpackSize returns the exact length of the encoding, so that
	// Marshal allocates its result once.
	MsgpackSize() int
	// AppendMsgpack appends the encoding to dst and returns the result.
	AppendMsgpack(dst []byte) []byte
}

// MsgpackDecoder is a message with a hand-written decoder, which Unmarshal
// uses instead of reflection. DecodeMsgpack must accept what msgpack v5
// accepts for the type in practice, decode it to the same value, and
// return errors wrapping ErrMalformed.
type MsgpackDecoder interface {
	DecodeMsgpack(b []byte) error
}

// Encoded sizes in bytes of the fixed-width values.
const (
	SizeNil    = 1
	SizeBool   = 1
	SizeUint64 = 9 // AppendUint64 always writes 0xcf and 8 bytes
)

// AppendMapHeader appends the header of a map of n entries, as msgpack v5
// encodes it (fixmap below 16).
func AppendMapHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
}

// AppendArrayHeader appends the header of an array of n elements.
func AppendArrayHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
}

// SizeHeader returns the length of a map or array header of n entries.
func SizeHeader(n int) int {
	switch {
	case n < 16:
		return 1
	case n <= math.MaxUint16:
		return 3
	}
	return 5
}

// AppendStr appends s as a msgpack str (fixstr below 32 bytes, then str8).
func AppendStr(b []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n < 256:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

// SizeStr returns the length of AppendStr(nil, s).
func SizeStr(s string) int {
	switch n := len(s); {
	case n < 32:
		return 1 + n
	case n < 256:
		return 2 + n
	case n <= math.MaxUint16:
		return 3 + n
	default:
		return 5 + n
	}
}

// AppendBin appends v as a msgpack bin, or nil when v is nil, as msgpack
// v5 encodes a []byte (an empty non-nil slice is an empty bin).
func AppendBin(b, v []byte) []byte {
	switch n := len(v); {
	case v == nil:
		return AppendNil(b)
	case n < 256:
		b = append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
	}
	return append(b, v...)
}

// SizeBin returns the length of AppendBin(nil, v).
func SizeBin(v []byte) int {
	switch n := len(v); {
	case v == nil:
		return SizeNil
	case n < 256:
		return 2 + n
	case n <= math.MaxUint16:
		return 3 + n
	default:
		return 5 + n
	}
}

// AppendNil appends nil, as msgpack v5 encodes a nil slice.
func AppendNil(b []byte) []byte { return append(b, 0xc0) }

// AppendBool appends true or false.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

// AppendInt appends n in the fewest bytes, as msgpack v5 encodes an int
// (not int64, which it writes in 9 bytes without UseCompactInts).
func AppendInt(b []byte, n int64) []byte {
	switch {
	case n >= 0:
		return appendUint(b, uint64(n))
	case n >= -32:
		return append(b, byte(n))
	case n >= math.MinInt8:
		return append(b, 0xd0, byte(n))
	case n >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(n))
	case n >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(n))
}

func appendUint(b []byte, n uint64) []byte {
	switch {
	case n <= math.MaxInt8:
		return append(b, byte(n))
	case n <= math.MaxUint8:
		return append(b, 0xcc, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), n)
}

// SizeInt returns the length of AppendInt(nil, n).
func SizeInt(n int64) int {
	switch {
	case n >= -32 && n <= math.MaxInt8:
		return 1
	case n >= math.MinInt8 && n <= math.MaxUint8:
		return 2
	case n >= math.MinInt16 && n <= math.MaxUint16:
		return 3
	case n >= math.MinInt32 && n <= math.MaxUint32:
		return 5
	}
	return 9
}

// AppendUint64 appends n as uint64 in 9 bytes, as msgpack v5 encodes a
// uint64 field without UseCompactInts (which Marshal does not set).
func AppendUint64(b []byte, n uint64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xcf), n)
}

// Reader reads msgpack values from a byte slice, without allocating, for
// MsgpackDecoder implementations. Its first error sticks: later reads
// return zero values, so a decoder checks Err once, at the end, and its
// loops stay bounded because every length is checked against the bytes
// left before it is returned.
//
// The []byte values it returns alias the slice it reads (capacity clipped,
// so appending to one cannot overwrite what follows it).
type Reader struct {
	b   []byte
	off int
	err error
}

// NewReader returns a Reader of b.
func NewReader(b []byte) Reader { return Reader{b: b} }

// Err returns the first error, which wraps ErrMalformed.
func (r *Reader) Err() error { return r.err }

// Done returns the first error, or an error if bytes are left unread.
func (r *Reader) Done() error {
	if r.err == nil && r.off != len(r.b) {
		r.fail("%d trailing bytes after the value", len(r.b)-r.off)
	}
	return r.err
}

func (r *Reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
		r.off = len(r.b)
	}
}

// code returns the next code byte, or false at the end (or after an error).
func (r *Reader) code() (byte, bool) {
	if r.off >= len(r.b) {
		r.fail("truncated at byte %d", r.off)
		return 0, false
	}
	c := r.b[r.off]
	r.off++
	return c, true
}

// uintN reads a big-endian unsigned integer of w bytes (1, 2, 4 or 8).
func (r *Reader) uintN(w int) uint64 {
	if len(r.b)-r.off < w {
		r.fail("truncated at byte %d", r.off)
		return 0
	}
	p := r.b[r.off:]
	r.off += w
	switch w {
	case 1:
		return uint64(p[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(p))
	case 4:
		return uint64(binary.BigEndian.Uint32(p))
	}
	return binary.BigEndian.Uint64(p)
}

// header reads a map (entries 2) or array (entries 1) header and returns
// its count, or -1 for nil. The count is at most the bytes left divided by
// entries, since each value takes at least one byte: a decoder may size a
// slice by it.
func (r *Reader) header(fix, c16 byte, entries int, what string) int {
	at := r.off
	c, ok := r.code()
	if !ok {
		return 0
	}
	var n uint64
	switch {
	case c == 0xc0:
		return -1
	case c&0xf0 == fix:
		n = uint64(c & 0x0f)
	case c == c16:
		n = r.uintN(2)
	case c == c16+1:
		n = r.uintN(4)
	default:
		r.fail("code 0x%02x at byte %d is not a %s", c, at, what)
		return 0
	}
	if left := uint64(len(r.b) - r.off); n*uint64(entries) > left {
		r.fail("%s at byte %d declares %d entries, %d bytes remain", what, at, n, left)
		return 0
	}
	return int(n)
}

// MapHeader reads a map header and returns its number of entries, or -1
// for nil (which msgpack v5 decodes as a zero struct).
func (r *Reader) MapHeader() int { return r.header(0x80, 0xde, 2, "map") }

// ArrayHeader reads an array header and returns its number of elements, or
// -1 for nil.
func (r *Reader) ArrayHeader() int { return r.header(0x90, 0xdc, 1, "array") }

// Bytes reads a bin or str (msgpack v5 accepts either for a []byte) and
// returns it aliasing the input, or nil for nil. An empty value is empty
// but not nil, as msgpack v5 decodes it.
func (r *Reader) Bytes() []byte {
	at := r.off
	c, ok := r.code()
	if !ok {
		return nil
	}
	var n uint64
	switch {
	case c == 0xc0:
		return nil
	case c&0xe0 == 0xa0:
		n = uint64(c & 0x1f)
	case c == 0xc4 || c == 0xd9:
		n = r.uintN(1)
	case c == 0xc5 || c == 0xda:
		n = r.uintN(2)
	case c == 0xc6 || c == 0xdb:
		n = r.uintN(4)
	default:
		r.fail("code 0x%02x at byte %d is not a str or bin", c, at)
		return nil
	}
	if left := uint64(len(r.b) - r.off); n > left {
		r.fail("str or bin at byte %d declares %d bytes, %d remain", at, n, left)
		return nil
	}
	end := r.off + int(n)
	v := r.b[r.off:end:end]
	r.off = end
	return v
}

// String reads a str or bin (or nil, as "") into a new string.
func (r *Reader) String() string { return string(r.Bytes()) }

// Bool reads true, false or nil (as false).
func (r *Reader) Bool() bool {
	at := r.off
	c, ok := r.code()
	switch {
	case !ok:
		return false
	case c == 0xc3:
		return true
	case c == 0xc2 || c == 0xc0:
		return false
	}
	r.fail("code 0x%02x at byte %d is not a bool", c, at)
	return false
}

// Int reads an integer of any msgpack width, or nil as 0, and converts it
// to int64 as msgpack v5 does (a uint64 above MaxInt64 wraps).
func (r *Reader) Int() int64 { return int64(r.integer()) }

// Uint reads an integer of any msgpack width, or nil as 0, and converts it
// to uint64 as msgpack v5 does (a negative one wraps).
func (r *Reader) Uint() uint64 { return r.integer() }

// integer reads an integer as its 64-bit two's complement pattern: signed
// widths sign-extend, unsigned ones zero-extend.
func (r *Reader) integer() uint64 {
	at := r.off
	c, ok := r.code()
	switch {
	case !ok:
		return 0
	case c <= 0x7f || c >= 0xe0:
		return uint64(int64(int8(c)))
	}
	switch c {
	case 0xc0:
		return 0
	case 0xcc:
		return r.uintN(1)
	case 0xcd:
		return r.uintN(2)
	case 0xce:
		return r.uintN(4)
	case 0xcf, 0xd3:
		return r.uintN(8)
	case 0xd0:
		return uint64(int64(int8(r.uintN(1))))
	case 0xd1:
		return uint64(int64(int16(r.uintN(2))))
	case 0xd2:
		return uint64(int64(int32(r.uintN(4))))
	}
	r.fail("code 0x%02x at byte %d is not an integer", c, at)
	return 0
}

// Skip steps over one value of any type, such as a field this version does
// not know. open is how many maps and arrays enclose the value, so that
// nesting is bounded by maxDepth in all, as Unmarshal bounds it.
func (r *Reader) Skip(open int) {
	if r.err != nil {
		return
	}
	next, err := skipValue(r.b, r.off, open)
	if err != nil {
		r.err, r.off = err, len(r.b)
		return
	}
	r.off = next
}

// ResizeSlice returns s with n elements, reusing its array as msgpack v5
// does when it decodes into a slice: elements already there keep their
// values for the decoder to decode into, and an empty array gives an empty
// slice, not nil. n must already be bounded by the input's length (see
// Reader.ArrayHeader).
func ResizeSlice[T any](s []T, n int) []T {
	switch {
	case n == 0 && s == nil:
		return []T{}
	case cap(s) >= n:
		return s[:n]
	}
	return append(s[:cap(s)], make([]T, n-cap(s))...)
}
