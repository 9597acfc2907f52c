package version

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Encoding: an Object is stored and sent as msgpack, written by hand for the
// hot path (no reflection, one allocation per encode, none per field on
// decode) and readable by any msgpack decoder:
//
//	[ context, siblings ]
//	context  = [ actor(str), counter(uint), actor, counter, ... ]
//	siblings = [ [ actor(str), counter(uint), value(bin), tombstone(bool), timestamp(int) ], ... ]
//
// Decoders bound every length by the bytes actually present and by the
// limits below, and never panic on any input (fuzzed in codec_test.go).

// Decoder limits.
const (
	MaxActorLen   = 256    // bytes of an actor id
	MaxVVEntries  = 4096   // actors in one context
	MaxSiblings   = 100000 // siblings in one object
	siblingFields = 5
)

// ErrMalformed is returned (wrapped) for input that is not a valid object.
var ErrMalformed = errors.New("version: malformed object")

// AppendEncode appends the encoding of o to buf.
func AppendEncode(buf []byte, o *Object) []byte {
	if o == nil {
		o = &Object{}
	}
	buf = appendArrayLen(buf, 2)
	buf = appendVV(buf, o.Context)
	buf = appendArrayLen(buf, len(o.Siblings))
	for _, s := range o.Siblings {
		buf = appendArrayLen(buf, siblingFields)
		buf = appendStr(buf, string(s.Dot.Actor))
		buf = appendUint(buf, s.Dot.Counter)
		buf = appendBin(buf, s.Value)
		buf = appendBool(buf, s.Tombstone)
		buf = appendInt(buf, s.Timestamp)
	}
	return buf
}

// Encode returns the encoding of o.
func Encode(o *Object) []byte {
	return AppendEncode(make([]byte, 0, EncodedSize(o)), o)
}

// EncodedSize is o's encoded size, exactly (Encode allocates no more;
// the buffers it returns are kept, by Pebble batches and caches).
func EncodedSize(o *Object) int {
	if o == nil {
		o = &Object{}
	}
	n := arrayLenSize(2) + arrayLenSize(2*len(o.Context)) + arrayLenSize(len(o.Siblings))
	for _, e := range o.Context {
		n += strSize(len(e.Actor)) + uintSize(e.Counter)
	}
	for _, s := range o.Siblings {
		n += arrayLenSize(siblingFields) + strSize(len(s.Dot.Actor)) + uintSize(s.Dot.Counter) +
			binSize(len(s.Value)) + 1 + intSize(s.Timestamp)
	}
	return n
}

// The sizes of what the append functions below write.

func arrayLenSize(n int) int {
	switch {
	case n < 16:
		return 1
	case n <= math.MaxUint16:
		return 3
	default:
		return 5
	}
}

func strSize(n int) int {
	switch {
	case n < 32:
		return 1 + n
	case n <= math.MaxUint8:
		return 2 + n
	case n <= math.MaxUint16:
		return 3 + n
	default:
		return 5 + n
	}
}

func binSize(n int) int {
	switch {
	case n <= math.MaxUint8:
		return 2 + n
	case n <= math.MaxUint16:
		return 3 + n
	default:
		return 5 + n
	}
}

func uintSize(v uint64) int {
	switch {
	case v < 128:
		return 1
	case v <= math.MaxUint8:
		return 2
	case v <= math.MaxUint16:
		return 3
	case v <= math.MaxUint32:
		return 5
	default:
		return 9
	}
}

func intSize(v int64) int {
	switch {
	case v >= 0:
		return uintSize(uint64(v))
	case v >= -32:
		return 1
	default:
		return 9
	}
}

// EncodeVV returns the encoding of a context alone (what clients hold).
func EncodeVV(v VV) []byte {
	return appendVV(nil, v)
}

// DecodeVV decodes a context produced by EncodeVV. An empty input is the
// empty context.
func DecodeVV(b []byte) (VV, error) {
	if len(b) == 0 {
		return nil, nil
	}
	r := reader{b: b}
	v, err := r.vv()
	if err == nil && r.off != len(b) {
		err = fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b)-r.off)
	}
	return v, err
}

// Decode decodes an object. The returned object's values alias b: callers
// that reuse b must copy it first.
func Decode(b []byte) (*Object, error) {
	r := reader{b: b}
	o, err := r.object()
	if err == nil && r.off != len(b) {
		err = fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b)-r.off)
	}
	if err != nil {
		return nil, err
	}
	return o, nil
}

func appendVV(buf []byte, v VV) []byte {
	buf = appendArrayLen(buf, 2*len(v))
	for _, e := range v {
		buf = appendStr(buf, string(e.Actor))
		buf = appendUint(buf, e.Counter)
	}
	return buf
}

func appendArrayLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
	}
}

func appendStr(b []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

func appendBin(b []byte, v []byte) []byte {
	switch n := len(v); {
	case n <= math.MaxUint8:
		b = append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
	}
	return append(b, v...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v < 128:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
	}
}

func appendInt(b []byte, v int64) []byte {
	if v >= 0 {
		return appendUint(b, uint64(v))
	}
	if v >= -32 {
		return append(b, byte(int8(v)))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
}

// reader decodes the subset of msgpack the object encoding uses.
type reader struct {
	b   []byte
	off int
}

func (r *reader) fail(what string) error {
	return fmt.Errorf("%w: bad %s at offset %d", ErrMalformed, what, r.off)
}

func (r *reader) byte1() (byte, bool) {
	if r.off >= len(r.b) {
		return 0, false
	}
	c := r.b[r.off]
	r.off++
	return c, true
}

// fixed reads n bytes of a big-endian length or integer.
func (r *reader) fixed(n int) (uint64, bool) {
	if len(r.b)-r.off < n {
		return 0, false
	}
	var v uint64
	for _, c := range r.b[r.off : r.off+n] {
		v = v<<8 | uint64(c)
	}
	r.off += n
	return v, true
}

// arrayLen reads an array header whose length must not exceed limit nor
// the bytes left (each element takes at least one byte).
func (r *reader) arrayLen(limit int) (int, error) {
	c, ok := r.byte1()
	var n uint64
	switch {
	case !ok:
	case c&0xf0 == 0x90:
		n = uint64(c & 0x0f)
	case c == 0xdc:
		n, ok = r.fixed(2)
	case c == 0xdd:
		n, ok = r.fixed(4)
	default:
		ok = false
	}
	if !ok || n > uint64(limit) || n > uint64(len(r.b)-r.off) {
		return 0, r.fail("array")
	}
	return int(n), nil
}

// raw reads a str or bin of at most limit bytes; the result aliases r.b.
func (r *reader) raw(limit int, str bool) ([]byte, error) {
	c, ok := r.byte1()
	var n uint64
	switch {
	case !ok:
	case str && c&0xe0 == 0xa0:
		n = uint64(c & 0x1f)
	case str && c == 0xd9, !str && c == 0xc4:
		n, ok = r.fixed(1)
	case str && c == 0xda, !str && c == 0xc5:
		n, ok = r.fixed(2)
	case str && c == 0xdb, !str && c == 0xc6:
		n, ok = r.fixed(4)
	default:
		ok = false
	}
	if !ok || n > uint64(limit) || n > uint64(len(r.b)-r.off) {
		if str {
			return nil, r.fail("string")
		}
		return nil, r.fail("bytes")
	}
	v := r.b[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return v, nil
}

func (r *reader) uint() (uint64, error) {
	c, ok := r.byte1()
	var v uint64
	switch {
	case !ok:
	case c < 0x80:
		v = uint64(c)
	case c == 0xcc:
		v, ok = r.fixed(1)
	case c == 0xcd:
		v, ok = r.fixed(2)
	case c == 0xce:
		v, ok = r.fixed(4)
	case c == 0xcf:
		v, ok = r.fixed(8)
	default:
		ok = false
	}
	if !ok {
		return 0, r.fail("uint")
	}
	return v, nil
}

func (r *reader) int() (int64, error) {
	if r.off < len(r.b) {
		switch c := r.b[r.off]; {
		case c >= 0xe0:
			r.off++
			return int64(int8(c)), nil
		case c == 0xd3:
			r.off++
			if v, ok := r.fixed(8); ok {
				return int64(v), nil
			}
			return 0, r.fail("int")
		}
	}
	v, err := r.uint()
	if err != nil || v > math.MaxInt64 {
		return 0, r.fail("int")
	}
	return int64(v), nil
}

func (r *reader) bool() (bool, error) {
	switch c, _ := r.byte1(); c {
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	}
	return false, r.fail("bool")
}

// dot reads an actor and a counter: a version vector entry or a
// sibling's dot. The actor aliases the input.
func (r *reader) dot() ([]byte, uint64, error) {
	a, err := r.raw(MaxActorLen, true)
	if err != nil {
		return nil, 0, err
	}
	c, err := r.uint()
	if err != nil {
		return nil, 0, err
	}
	return a, c, nil
}

func (r *reader) vv() (VV, error) {
	n, err := r.arrayLen(2 * MaxVVEntries)
	if err != nil || n%2 != 0 {
		return nil, r.fail("context")
	}
	if n == 0 {
		return nil, nil
	}
	v := make(VV, n/2)
	for i := range v {
		a, c, err := r.dot()
		if err != nil {
			return nil, err
		}
		v[i] = Entry{Actor(a), c}
	}
	if !v.Valid() {
		return nil, fmt.Errorf("%w: context not canonical", ErrMalformed)
	}
	return v, nil
}

func (r *reader) object() (*Object, error) {
	if n, err := r.arrayLen(2); err != nil || n != 2 {
		return nil, r.fail("object header")
	}
	ctx, err := r.vv()
	if err != nil {
		return nil, err
	}
	n, err := r.arrayLen(MaxSiblings)
	if err != nil {
		return nil, err
	}
	o := &Object{Context: ctx}
	if n > 0 {
		o.Siblings = make([]Sibling, n)
	}
	for i := range o.Siblings {
		s := &o.Siblings[i]
		if m, err := r.arrayLen(siblingFields); err != nil || m != siblingFields {
			return nil, r.fail("sibling")
		}
		a, c, err := r.dot()
		if err != nil {
			return nil, err
		}
		s.Dot = Dot{Actor: Actor(a), Counter: c}
		if s.Value, err = r.raw(math.MaxUint32, false); err != nil {
			return nil, err
		}
		if s.Tombstone, err = r.bool(); err != nil {
			return nil, err
		}
		if s.Timestamp, err = r.int(); err != nil {
			return nil, err
		}
		if s.Dot.Counter == 0 || s.Dot.Actor == "" || !ctx.Covers(s.Dot) {
			return nil, fmt.Errorf("%w: sibling dot %s:%d outside context", ErrMalformed, s.Dot.Actor, s.Dot.Counter)
		}
		if i > 0 && o.Siblings[i-1].Dot.compare(s.Dot) >= 0 {
			return nil, fmt.Errorf("%w: siblings not sorted", ErrMalformed)
		}
	}
	return o, nil
}
