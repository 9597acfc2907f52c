package resp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

const (
	// readBufSize is each connection's bufio.Reader size in bytes. It also
	// bounds an inline command and a header line, as Redis's 64 KiB
	// PROTO_INLINE_MAX_SIZE does.
	readBufSize = 64 << 10

	// chunkSize is the size in bytes of the blocks arguments are copied
	// into. A block is never reused, so a Backend may keep its arguments;
	// one allocation serves hundreds of small commands.
	chunkSize = 16 << 10

	// smallArg is the largest argument, in bytes, carved from a chunk;
	// larger ones get an allocation of their own, so a chunk wastes at
	// most a quarter of itself.
	smallArg = chunkSize / 4

	// bigBulkStart is the first allocation in bytes for a bulk string too
	// large for the read buffer; it grows by doubling as bytes arrive, so a
	// header that announces megabytes and sends nothing costs no more.
	bigBulkStart = 64 << 10

	// sliceHeader is the size in bytes of one []byte header, for the
	// allocation accounting of the argument list.
	sliceHeader = 24
)

// protocolError is a request that cannot be parsed. The connection answers
// "-ERR Protocol error: " and the message, then closes: framing is lost.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "resp: protocol error: " + e.msg }

func protoErrorf(format string, args ...any) error {
	return &protocolError{msg: fmt.Sprintf(format, args...)}
}

// emptyArg is the argument of a zero-length bulk string or quoted "": never
// nil, and with no capacity so an append cannot write through it.
var emptyArg = []byte{}

// parser reads requests (RESP arrays of bulk strings, or inline commands)
// from a bufio.Reader. Header lines are parsed in place in the reader's
// buffer; argument bytes are copied once, into chunks the parser never
// reuses. It is used by one goroutine.
type parser struct {
	r          *bufio.Reader
	maxBulk    int // bytes in one bulk string
	maxArgs    int // elements in one array
	maxRequest int // bytes of one request on the wire
	// unauth is set while the connection has not authenticated: the
	// limits are then the pre-auth ones, and their errors say so, as
	// Redis' do.
	unauth bool

	// args is the current request's arguments; reused across requests
	// (the headers, not the bytes they point to).
	args [][]byte
	// chunk is the unused tail of the current argument block.
	chunk []byte
	// scratch assembles one inline argument (quotes and escapes).
	scratch []byte
	// n is the bytes of the current request consumed so far.
	n int
	// mid is true while a request has begun but is not complete: the
	// connection then applies the stall timeout, not the idle one.
	mid bool
	// requests counts the requests begun, so the connection can tell one
	// request's stall deadline from the next one's.
	requests uint64
	// allocated counts the bytes this parser has allocated, so tests can
	// check that allocation follows the input, never what it announces.
	allocated int64
}

func newParser(r *bufio.Reader, maxBulk, maxArgs, maxRequest int) *parser {
	return &parser{r: r, maxBulk: maxBulk, maxArgs: maxArgs, maxRequest: maxRequest}
}

// next returns the next non-empty request. The returned slice is valid
// until the next call; the byte slices it holds are never reused. Errors:
// io.EOF at a request boundary, io.ErrUnexpectedEOF inside one, a
// *protocolError, or the reader's error.
func (p *parser) next() ([][]byte, error) {
	if cap(p.args) > 4096 {
		p.args = nil // do not keep a huge request's argument list per connection
	}
	for {
		p.args = p.args[:0]
		p.n = 0
		// Waiting for a request's first byte is idleness; the connection's
		// reader looks at mid to pick its deadline.
		p.mid = p.r.Buffered() > 0
		b, err := p.r.Peek(1)
		if err != nil {
			return nil, err
		}
		p.mid = true
		p.requests++
		if b[0] == '*' {
			err = p.multibulk()
		} else {
			err = p.inline()
		}
		if err != nil {
			return nil, err
		}
		p.mid = false
		if len(p.args) > 0 {
			return p.args, nil
		}
		// "*0", "*-1" and blank inline lines are no command, as in Redis.
	}
}

// line reads one header line ending in CRLF and returns it without the
// CRLF. It is a slice of the read buffer, valid until the next read.
func (p *parser) line(what string) ([]byte, error) {
	b, err := p.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, protoErrorf("too big %s string", what)
		}
		return nil, unexpected(err)
	}
	p.n += len(b)
	if len(b) < 2 || b[len(b)-2] != '\r' {
		return nil, protoErrorf("%s line not terminated by CRLF", what)
	}
	return b[:len(b)-2], nil
}

// unexpected turns an EOF inside a request into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// multibulk reads "*<n>\r\n" and n bulk strings.
func (p *parser) multibulk() error {
	hdr, err := p.line("mbulk count")
	if err != nil {
		return err
	}
	n, ok := parseInt(hdr[1:])
	if !ok {
		return protoErrorf("invalid multibulk length")
	}
	if n > int64(p.maxArgs) {
		if p.unauth {
			return protoErrorf("unauthenticated multibulk length")
		}
		return protoErrorf("invalid multibulk length: %d arguments exceed the limit of %d", n, p.maxArgs)
	}
	for i := int64(0); i < n; i++ {
		hdr, err := p.line("bulk count")
		if err != nil {
			return err
		}
		if len(hdr) == 0 || hdr[0] != '$' {
			got := byte('\r')
			if len(hdr) > 0 {
				got = hdr[0]
			}
			return protoErrorf("expected '$', got '%c'", got)
		}
		l, ok := parseInt(hdr[1:])
		switch {
		case !ok || l < 0:
			return protoErrorf("invalid bulk length")
		case l > int64(p.maxBulk) && p.unauth:
			return protoErrorf("unauthenticated bulk length")
		case l > int64(p.maxBulk):
			return protoErrorf("invalid bulk length: %d bytes exceed the limit of %d", l, p.maxBulk)
		case int64(p.n)+l+2 > int64(p.maxRequest):
			return protoErrorf("request exceeds the limit of %d bytes", p.maxRequest)
		}
		arg, err := p.bulk(int(l))
		if err != nil {
			return err
		}
		p.push(arg)
	}
	return nil
}

// bulk reads l bytes and the CRLF after them.
func (p *parser) bulk(l int) ([]byte, error) {
	var arg []byte
	if l+2 <= readBufSize {
		b, err := p.r.Peek(l + 2)
		if err != nil {
			return nil, unexpected(err)
		}
		if b[l] != '\r' || b[l+1] != '\n' {
			return nil, protoErrorf("bulk string not terminated by CRLF")
		}
		arg = p.alloc(l)
		copy(arg, b)
		_, _ = p.r.Discard(l + 2) // cannot fail: the bytes are buffered
	} else {
		// Larger than the read buffer: read in place, growing as bytes
		// arrive. bufio reads straight into arg once its buffer is empty.
		arg = make([]byte, 0, min(l, bigBulkStart))
		p.allocated += int64(cap(arg))
		for len(arg) < l {
			if len(arg) == cap(arg) {
				grown := make([]byte, len(arg), min(2*cap(arg), l))
				p.allocated += int64(cap(grown))
				copy(grown, arg)
				arg = grown
			}
			m, err := p.r.Read(arg[len(arg):cap(arg)])
			arg = arg[:len(arg)+m]
			if err != nil && len(arg) < l {
				return nil, unexpected(err)
			}
		}
		crlf, err := p.r.Peek(2)
		if err != nil {
			return nil, unexpected(err)
		}
		if crlf[0] != '\r' || crlf[1] != '\n' {
			return nil, protoErrorf("bulk string not terminated by CRLF")
		}
		_, _ = p.r.Discard(2)
		arg = arg[:l:l]
	}
	p.n += l + 2
	return arg, nil
}

// alloc returns l bytes for an argument, carved from the current chunk
// when small. The slice's capacity is its length, so appending to it
// cannot overwrite a neighbour.
func (p *parser) alloc(l int) []byte {
	switch {
	case l == 0:
		return emptyArg
	case l > smallArg:
		p.allocated += int64(l)
		return make([]byte, l)
	case l > len(p.chunk):
		p.chunk = make([]byte, chunkSize)
		p.allocated += chunkSize
	}
	b := p.chunk[:l:l]
	p.chunk = p.chunk[l:]
	return b
}

// push appends an argument, growing the list by doubling (counted).
func (p *parser) push(arg []byte) {
	if len(p.args) == cap(p.args) {
		grown := make([][]byte, len(p.args), max(8, 2*cap(p.args)))
		p.allocated += int64(cap(grown)) * sliceHeader
		copy(grown, p.args)
		p.args = grown
	}
	p.args = append(p.args, arg)
}

// inline reads one line of space-separated words, with Redis's quoting
// (sdssplitargs): "double quotes" with \n \r \t \b \a \\ \" and \xHH
// escapes, 'single quotes' with \', and a closing quote that must be
// followed by a space or the end of the line. The line may end in LF or
// CRLF; a NUL byte ends it, as in Redis's C string.
func (p *parser) inline() error {
	b, err := p.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return protoErrorf("too big inline request")
		}
		return unexpected(err)
	}
	p.n += len(b)
	if p.n > p.maxRequest {
		return protoErrorf("request exceeds the limit of %d bytes", p.maxRequest)
	}
	for i, c := range b {
		if c == 0 {
			b = b[:i]
			break
		}
	}
	at := func(i int) byte {
		if i < len(b) {
			return b[i]
		}
		return 0
	}
	i := 0
	for {
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i >= len(b) {
			return nil
		}
		if len(p.args) >= p.maxArgs && p.unauth {
			return protoErrorf("unauthenticated multibulk length")
		}
		if len(p.args) >= p.maxArgs {
			return protoErrorf("invalid multibulk length: more than %d arguments", p.maxArgs)
		}
		cur := p.scratch[:0]
		inq, insq := false, false
		for done := false; !done; {
			c := at(i)
			switch {
			case inq:
				switch {
				case c == '\\' && at(i+1) == 'x' && isHex(at(i+2)) && isHex(at(i+3)):
					cur = append(cur, unhex(at(i+2))<<4|unhex(at(i+3)))
					i += 3
				case c == '\\' && at(i+1) != 0:
					i++
					switch e := at(i); e {
					case 'n':
						cur = append(cur, '\n')
					case 'r':
						cur = append(cur, '\r')
					case 't':
						cur = append(cur, '\t')
					case 'b':
						cur = append(cur, '\b')
					case 'a':
						cur = append(cur, '\a')
					default:
						cur = append(cur, e)
					}
				case c == '"':
					if n := at(i + 1); n != 0 && !isSpace(n) {
						return protoErrorf("unbalanced quotes in request")
					}
					done = true
				case c == 0:
					return protoErrorf("unbalanced quotes in request")
				default:
					cur = append(cur, c)
				}
			case insq:
				switch {
				case c == '\\' && at(i+1) == '\'':
					i++
					cur = append(cur, '\'')
				case c == '\'':
					if n := at(i + 1); n != 0 && !isSpace(n) {
						return protoErrorf("unbalanced quotes in request")
					}
					done = true
				case c == 0:
					return protoErrorf("unbalanced quotes in request")
				default:
					cur = append(cur, c)
				}
			default:
				switch c {
				case ' ', '\n', '\r', '\t', 0:
					done = true
				case '"':
					inq = true
				case '\'':
					insq = true
				default:
					cur = append(cur, c)
				}
			}
			if i < len(b) {
				i++
			}
		}
		if cap(cur) > cap(p.scratch) {
			p.allocated += int64(cap(cur))
		}
		p.scratch = cur
		if len(cur) > p.maxBulk {
			if p.unauth {
				return protoErrorf("unauthenticated bulk length")
			}
			return protoErrorf("invalid bulk length: %d bytes exceed the limit of %d", len(cur), p.maxBulk)
		}
		arg := p.alloc(len(cur))
		copy(arg, cur)
		p.push(arg)
	}
}

// isSpace is C's isspace in the "C" locale.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// parseInt parses a decimal integer as Redis's string2ll does: an
// optional '-', no '+', no spaces, no leading zeros (except "0" itself).
// It accepts at most 18 digits, so it cannot overflow; every length mnemo
// accepts is far shorter.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 || (b[0] == '0' && (len(b) > 1 || neg)) {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}
