package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// ErrMalformed is wrapped by every error Unmarshal returns for bytes that are
// not a valid encoding of the target; the node answers them with
// CodeBadRequest.
var ErrMalformed = errors.New("wire: malformed msgpack")

const (
	// maxDepth bounds the nesting of arrays and maps Unmarshal accepts. Node
	// messages nest a handful of levels; the bound keeps a hostile
	// "[[[[..." from recursing the decoder off the end of the stack, which
	// is fatal, not a recoverable panic.
	maxDepth = 64

	// maxPooledBuf is the largest encode buffer, in bytes, returned to the
	// pool; bigger ones are left to the GC so one large message does not pin
	// its buffer for the life of the process.
	maxPooledBuf = 64 << 10
)

// encoder is a msgpack encoder bound to its own output buffer, pooled.
type encoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

var encPool = sync.Pool{New: func() any {
	e := new(encoder)
	e.enc = msgpack.NewEncoder(&e.buf)
	return e
}}

// Marshal returns the msgpack encoding of v in a new slice that the caller
// owns. Structs encode as maps keyed by field name (or `msgpack:"name"` tag),
// so fields can be appended without breaking older readers. A
// MsgpackAppender encodes itself, into one allocation of its exact size.
func Marshal(v any) ([]byte, error) {
	if a, ok := v.(MsgpackAppender); ok {
		return a.AppendMsgpack(make([]byte, 0, a.MsgpackSize())), nil
	}
	e := encPool.Get().(*encoder)
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		putEncoder(e)
		return nil, fmt.Errorf("wire: encode %T: %w", v, err)
	}
	out := bytes.Clone(e.buf.Bytes())
	putEncoder(e)
	return out, nil
}

func putEncoder(e *encoder) {
	if e.buf.Cap() <= maxPooledBuf {
		encPool.Put(e)
	}
}

// decoder is a msgpack decoder reading from its own bytes.Reader, pooled.
// bytes.Reader is an io.ByteScanner, so msgpack adds no bufio layer.
type decoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

var decPool = sync.Pool{New: func() any {
	d := new(decoder)
	d.dec = msgpack.NewDecoder(&d.r)
	return d
}}

// Unmarshal decodes the msgpack value in b into v, which must be a non-nil
// pointer. b must hold exactly one value. Decoded []byte and string fields
// are copies, so v never aliases b, except for a MsgpackDecoder: it decodes
// itself, and its []byte fields may alias b (each type says so).
//
// Unmarshal never panics, whatever b holds. Every error wraps ErrMalformed.
// Memory is bounded by len(b) times the largest element type of the slices
// and maps reachable from v (see the package doc for why).
func Unmarshal(b []byte, v any) (err error) {
	if d, ok := v.(MsgpackDecoder); ok {
		if err := d.DecodeMsgpack(b); err != nil {
			return fmt.Errorf("decode %T: %w", v, err)
		}
		return nil
	}
	if err := checkMsgpack(b); err != nil {
		return err
	}
	d := decPool.Get().(*decoder)
	d.r.Reset(b)
	defer func() {
		if r := recover(); r != nil {
			// The decoder's state is unknown after a panic: drop it.
			err = fmt.Errorf("%w: decode %T: panic: %v", ErrMalformed, v, r)
			return
		}
		d.r.Reset(nil)
		decPool.Put(d)
	}()
	if err := d.dec.Decode(v); err != nil {
		return fmt.Errorf("%w: decode %T: %w", ErrMalformed, v, err)
	}
	return nil
}

// checkMsgpack walks exactly one msgpack value in b without decoding or
// allocating it. It rejects a string, binary or extension longer than the
// bytes left, an array or map with more elements than bytes left (every
// element takes at least one), nesting deeper than maxDepth, the never-used
// code 0xc1, truncation and trailing bytes. Once it passes, no length the
// decoder reads can exceed len(b).
func checkMsgpack(b []byte) error {
	i, err := skipValue(b, 0, 0)
	if err != nil {
		return err
	}
	if i != len(b) {
		return fmt.Errorf("%w: %d trailing bytes after the value", ErrMalformed, len(b)-i)
	}
	return nil
}

// skipValue walks the one msgpack value that starts at b[i], as
// checkMsgpack describes, and returns the index just past it. open is how
// many containers enclose the value: with them, nesting may not exceed
// maxDepth.
func skipValue(b []byte, i, open int) (int, error) {
	// stack[d] is how many values are still to come in the container that
	// encloses depth d; left is the same for the current one. The value
	// itself is a container of one at depth open.
	var stack [maxDepth]uint64
	depth := open
	left := uint64(1)
	for {
		for left == 0 {
			if depth == open {
				return i, nil
			}
			depth--
			left = stack[depth]
		}
		left--
		if i >= len(b) {
			return 0, fmt.Errorf("%w: truncated at byte %d", ErrMalformed, i)
		}
		at := i
		c := b[i]
		i++

		var (
			skip  uint64 // bytes of content to step over
			elems uint64 // values inside a container being opened
			sized int    // width of a big-endian length that follows c
			ext   bool   // an extension: one type byte precedes the content
		)
		switch {
		case c <= 0x7f || c >= 0xe0: // positive and negative fixint
		case c <= 0x8f: // fixmap: key and value per entry
			elems = 2 * uint64(c&0x0f)
		case c <= 0x9f: // fixarray
			elems = uint64(c & 0x0f)
		case c <= 0xbf: // fixstr
			skip = uint64(c & 0x1f)
		default:
			switch c {
			case 0xc0, 0xc2, 0xc3: // nil, false, true
			case 0xc1:
				return 0, fmt.Errorf("%w: invalid code 0xc1 at byte %d", ErrMalformed, at)
			case 0xc4, 0xd9: // bin8, str8
				sized = 1
			case 0xc5, 0xda: // bin16, str16
				sized = 2
			case 0xc6, 0xdb: // bin32, str32
				sized = 4
			case 0xc7: // ext8
				sized, ext = 1, true
			case 0xc8: // ext16
				sized, ext = 2, true
			case 0xc9: // ext32
				sized, ext = 4, true
			case 0xcc, 0xd0: // uint8, int8
				skip = 1
			case 0xcd, 0xd1: // uint16, int16
				skip = 2
			case 0xca, 0xce, 0xd2: // float32, uint32, int32
				skip = 4
			case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
				skip = 8
			case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16 plus type
				skip = 1 + 1<<(c-0xd4)
			case 0xdc, 0xdd, 0xde, 0xdf: // array16, array32, map16, map32
				w := 2
				if c&1 == 1 {
					w = 4
				}
				n, err := readLen(b, i, w)
				if err != nil {
					return 0, err
				}
				i += w
				elems = n
				if c >= 0xde {
					elems *= 2
				}
			}
		}
		if sized > 0 {
			n, err := readLen(b, i, sized)
			if err != nil {
				return 0, err
			}
			i += sized
			skip = n
			if ext {
				skip++
			}
		}
		rest := uint64(len(b) - i)
		if skip > rest {
			return 0, fmt.Errorf("%w: value at byte %d declares %d bytes, %d remain", ErrMalformed, at, skip, rest)
		}
		i += int(skip)
		if elems > 0 {
			if elems > rest {
				return 0, fmt.Errorf("%w: container at byte %d declares %d values, %d bytes remain", ErrMalformed, at, elems, rest)
			}
			if depth >= maxDepth {
				return 0, fmt.Errorf("%w: nesting deeper than %d at byte %d", ErrMalformed, maxDepth, at)
			}
			stack[depth] = left
			depth++
			left = elems
		}
	}
}

// readLen reads a big-endian length of w bytes (1, 2 or 4) at b[i:].
func readLen(b []byte, i, w int) (uint64, error) {
	if len(b)-i < w {
		return 0, fmt.Errorf("%w: truncated length at byte %d", ErrMalformed, i)
	}
	switch w {
	case 1:
		return uint64(b[i]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(b[i:])), nil
	default:
		return uint64(binary.BigEndian.Uint32(b[i:])), nil
	}
}
