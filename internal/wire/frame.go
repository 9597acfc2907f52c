package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

const (
	// HeaderSize is the fixed size of a frame header in bytes, length field
	// included.
	HeaderSize = 16

	// minFrameLen is the smallest legal value of the length field: the 12
	// header bytes that follow it, with an empty payload.
	minFrameLen = HeaderSize - 4

	// DefaultMaxFrame is the default bound, in bytes, on a frame's length
	// field (12 header bytes plus the payload): 8 MiB.
	DefaultMaxFrame = 8 << 20

	// readChunk is the size, in bytes, up to which a payload buffer is
	// allocated in one go. Larger payloads grow by doubling as their bytes
	// arrive, so a header that lies about its length costs at most twice
	// what the peer actually sent, not the full limit.
	readChunk = 64 << 10
)

// Kind is a message type. The node defines the constants; wire reserves only
// 0 as invalid. It is a wire enum: only append.
type Kind uint16

// Flags is the frame header's flags byte.
type Flags uint8

// Flag bits. Wire enum: only append.
const (
	// FlagResponse marks a frame as the response to the request with the
	// same id.
	FlagResponse Flags = 1 << 0
	// FlagError marks a response whose payload is a msgpack Error.
	FlagError Flags = 1 << 1
)

// Header is a decoded frame header, less the length that ReadFrame turns into
// the payload's size.
type Header struct {
	ID    uint64
	Kind  Kind
	Flags Flags
}

// ErrFrameSize is wrapped by the error returned for a frame whose length
// field is below 12 or above the limit. Framing is lost after it: the
// connection must be closed.
var ErrFrameSize = errors.New("wire: bad frame size")

// frameSizeError names the offending size and the bound.
type frameSizeError struct {
	size  uint64 // the length field, or 12+payload for an outgoing frame
	limit int
}

func (e *frameSizeError) Error() string {
	if e.size < minFrameLen {
		return fmt.Sprintf("wire: frame of %d bytes is shorter than its %d-byte header", e.size, minFrameLen)
	}
	return fmt.Sprintf("wire: frame of %d bytes exceeds limit %d", e.size, e.limit)
}

func (e *frameSizeError) Is(target error) bool { return target == ErrFrameSize }

// putHeader writes h and the length field for a payload of n bytes into
// b[:HeaderSize].
func putHeader(b []byte, h Header, n int) {
	_ = b[HeaderSize-1]
	binary.BigEndian.PutUint32(b[0:4], uint32(minFrameLen+n))
	binary.BigEndian.PutUint64(b[4:12], h.ID)
	binary.BigEndian.PutUint16(b[12:14], uint16(h.Kind))
	b[14] = byte(h.Flags)
	b[15] = 0
}

// AppendFrame appends the frame for h and payload to dst. It does not check
// the size limit; the sender does.
func AppendFrame(dst []byte, h Header, payload []byte) []byte {
	var hdr [HeaderSize]byte
	putHeader(hdr[:], h, len(payload))
	dst = append(dst, hdr[:]...)
	return append(dst, payload...)
}

// checkSize returns a frameSizeError if a payload of n bytes does not fit in
// a frame of at most maxFrame bytes.
func checkSize(n, maxFrame int) error {
	if uint64(n)+minFrameLen > uint64(maxFrame) {
		return &frameSizeError{size: uint64(n) + minFrameLen, limit: maxFrame}
	}
	return nil
}

// ReadFrame reads one frame from br. A length field below 12 or above
// maxFrame returns an error wrapping ErrFrameSize, after reading only the
// four length bytes. The payload is newly allocated (nil when empty) and
// belongs to the caller. Any other error is br's, with io.ErrUnexpectedEOF
// for a frame cut short.
//
// Memory: at most twice the bytes actually received, plus readChunk, never
// the declared length up front.
func ReadFrame(br *bufio.Reader, maxFrame int) (Header, []byte, error) {
	// NB: Peek and Discard rather than io.ReadFull into a local array, which
	// would escape to the heap through the io.Reader interface.
	b, err := br.Peek(4)
	if err != nil {
		return Header{}, nil, unexpectedEOF(err, len(b))
	}
	length := binary.BigEndian.Uint32(b)
	if length < minFrameLen || uint64(length) > uint64(maxFrame) {
		return Header{}, nil, &frameSizeError{size: uint64(length), limit: maxFrame}
	}
	b, err = br.Peek(HeaderSize)
	if err != nil {
		return Header{}, nil, unexpectedEOF(err, 1)
	}
	h := Header{
		ID:    binary.BigEndian.Uint64(b[4:12]),
		Kind:  Kind(binary.BigEndian.Uint16(b[12:14])),
		Flags: Flags(b[14]),
	}
	_, _ = br.Discard(HeaderSize) // cannot fail: the bytes are buffered
	n := int(length) - minFrameLen
	if n == 0 {
		return h, nil, nil
	}
	payload, err := readPayload(br, n)
	if err != nil {
		return Header{}, nil, unexpectedEOF(err, 1)
	}
	return h, payload, nil
}

// readPayload reads exactly n bytes, allocating them in one piece when they
// are already buffered or small, and otherwise growing as they arrive.
func readPayload(br *bufio.Reader, n int) ([]byte, error) {
	if n <= readChunk || n <= br.Buffered() {
		p := make([]byte, n)
		_, err := io.ReadFull(br, p)
		return p, err
	}
	p := make([]byte, 0, readChunk)
	for len(p) < n {
		if len(p) == cap(p) {
			// Double by hand: append's growth rounding could overshoot n.
			grown := make([]byte, len(p), min(2*cap(p), n))
			copy(grown, p)
			p = grown
		}
		m, err := br.Read(p[len(p):min(cap(p), n)])
		p = p[:len(p)+m]
		if err != nil && len(p) < n {
			return nil, err
		}
	}
	return p, nil
}

// unexpectedEOF turns io.EOF after some bytes of a frame into
// io.ErrUnexpectedEOF; a clean EOF between frames stays io.EOF.
func unexpectedEOF(err error, got int) error {
	if err == io.EOF && got > 0 {
		return io.ErrUnexpectedEOF
	}
	return err
}

// frameBuffered reports whether br already holds a whole frame, so reading it
// cannot block and needs no deadline.
func frameBuffered(br *bufio.Reader) bool {
	n := br.Buffered()
	if n < HeaderSize {
		return false
	}
	b, _ := br.Peek(4)
	return uint64(n) >= 4+uint64(binary.BigEndian.Uint32(b))
}
