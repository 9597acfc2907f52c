package wire

import (
	"errors"
	"fmt"
	"strconv"
)

var (
	// ErrConnClosed is wrapped by the error of every call that was pending,
	// or started, on a connection that broke or was closed. The request may
	// or may not have been served.
	ErrConnClosed = errors.New("wire: connection closed")

	// ErrNotSent is wrapped by errors of calls that certainly never reached
	// the server (no connection could be made), so a caller may retry them
	// elsewhere without risking a second application.
	ErrNotSent = errors.New("wire: request not sent")

	// ErrPoolClosed is returned by Pool.Call after Pool.Close.
	ErrPoolClosed = errors.New("wire: pool closed")

	// errReservedKind is returned for a request of kind 0.
	errReservedKind = errors.New("wire: kind 0 is reserved")
)

// Code classifies an Error for the caller. It is a wire enum: only append,
// never renumber or reuse. 0 is never sent; a received 0 reads as
// CodeInternal.
type Code uint16

// Error codes. The node maps its errors to these and the client maps them
// back. Wire enum: only append.
const (
	// CodeInternal is a server-side failure, including a handler panic.
	CodeInternal Code = iota + 1
	// CodeBadRequest is a request that could not be decoded or is invalid.
	CodeBadRequest
	// CodeUnknownKind is a request kind the server does not serve.
	CodeUnknownKind
	// CodeTooLarge is a request or response over a size limit.
	CodeTooLarge
	// CodeNotFound is a missing key or object.
	CodeNotFound
	// CodeQuorum is a read or write that did not reach its R or W; Data may
	// carry the counts.
	CodeQuorum
	// CodeTimeout is a server-side deadline that expired.
	CodeTimeout
	// CodeUnavailable is a server that cannot serve now (starting, leaving,
	// shutting down).
	CodeUnavailable
	// CodeOverloaded is a server that shed the request; retry with backoff.
	CodeOverloaded
	// CodeForbidden is a request kind the connection's peer may not send
	// (a client certificate calling a peer kind).
	CodeForbidden
)

var codeNames = [...]string{
	CodeInternal:    "internal",
	CodeBadRequest:  "bad request",
	CodeUnknownKind: "unknown kind",
	CodeTooLarge:    "too large",
	CodeNotFound:    "not found",
	CodeQuorum:      "quorum",
	CodeTimeout:     "timeout",
	CodeUnavailable: "unavailable",
	CodeOverloaded:  "overloaded",
	CodeForbidden:   "forbidden",
}

func (c Code) String() string {
	if int(c) < len(codeNames) && codeNames[c] != "" {
		return codeNames[c]
	}
	return "code " + strconv.Itoa(int(c))
}

// Error is what travels in an error response: a code the caller can act on,
// a message for people, and optional msgpack detail (for example the quorum
// counts). The short msgpack keys keep error frames small; fields may be
// appended.
type Error struct {
	Code Code   `msgpack:"c"`
	Msg  string `msgpack:"m,omitempty"`
	Data []byte `msgpack:"d,omitempty"`
}

// Errorf returns an Error with the given code and formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return "wire: " + e.Code.String()
	}
	return "wire: " + e.Code.String() + ": " + e.Msg
}

// Is reports whether target is an *Error with the same code and either the
// same message or none, so errors.Is(err, &wire.Error{Code: wire.CodeNotFound})
// matches any not-found error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Code == e.Code && (t.Msg == "" || t.Msg == e.Msg)
}

// CodeOf returns the Code of the first *Error in err's chain, or 0 if there
// is none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// toError converts a handler's error into what is sent: the *Error in its
// chain as is, or CodeInternal with its text.
func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Msg: err.Error()}
}

// decodeError turns an error response's payload back into an *Error. A
// payload that does not decode still yields an *Error, so the caller always
// gets a typed failure.
func decodeError(payload []byte) *Error {
	e := new(Error)
	if err := Unmarshal(payload, e); err != nil {
		return &Error{Code: CodeInternal, Msg: "undecodable error response: " + err.Error()}
	}
	if e.Code == 0 {
		e.Code = CodeInternal
	}
	return e
}
