package resp

import (
	"errors"
	"strconv"

	"github.com/mnemo-kv/mnemo/internal/wire"
)

// Reply encoders. Each appends one RESP value to b and returns it; proto
// is the connection's protocol version (2 or 3) where they differ.

func appendSimple(b []byte, s string) []byte {
	b = append(b, '+')
	b = append(b, s...)
	return append(b, '\r', '\n')
}

func appendOK(b []byte) []byte { return append(b, "+OK\r\n"...) }

// appendError appends an error reply. line is the text after '-', error
// code first ("ERR ..."); CR and LF in it become spaces, since they would
// end the reply early.
func appendError(b []byte, line string) []byte {
	b = append(b, '-')
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return append(b, '\r', '\n')
}

func appendInt(b []byte, n int64) []byte {
	b = append(b, ':')
	b = strconv.AppendInt(b, n, 10)
	return append(b, '\r', '\n')
}

func appendBulk(b, v []byte) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(v)), 10)
	b = append(b, '\r', '\n')
	b = append(b, v...)
	return append(b, '\r', '\n')
}

func appendBulkString(b []byte, s string) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, '\r', '\n')
	b = append(b, s...)
	return append(b, '\r', '\n')
}

// appendNull appends the nil reply: a null bulk string in RESP2, the null
// type in RESP3.
func appendNull(b []byte, proto int) []byte {
	if proto == 3 {
		return append(b, '_', '\r', '\n')
	}
	return append(b, "$-1\r\n"...)
}

func appendArray(b []byte, n int) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

// appendMap appends the header of a map of n pairs: a RESP3 map, or a
// flat array of 2n elements in RESP2 (as Redis does).
func appendMap(b []byte, n, proto int) []byte {
	if proto == 3 {
		b = append(b, '%')
		b = strconv.AppendInt(b, int64(n), 10)
		return append(b, '\r', '\n')
	}
	return appendArray(b, 2*n)
}

// RESPError is implemented by Backend errors that choose their own reply
// line: the text after '-', error code first (for example "ERR quorum
// failed: get answered by 1 of 3 replicas asked, 2 needed"). Other errors
// are sent as "ERR " and their text as it is.
type RESPError interface {
	RESPError() string
}

// errorLine turns a Backend error into the text of an error reply.
func errorLine(err error) string {
	var re RESPError
	if errors.As(err, &re) {
		return re.RESPError()
	}
	msg := err.Error()
	// A wire error relayed from another node carries the original message:
	// drop the transport's "wire: <code>: " wrapping.
	var we *wire.Error
	if errors.As(err, &we) && we.Msg != "" {
		msg = we.Msg
	}
	return "ERR " + msg
}
