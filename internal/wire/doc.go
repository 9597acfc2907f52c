// Package wire is mnemo's RPC transport: length-prefixed, multiplexed
// frames over TCP, msgpack bodies, and a pooled client. One port serves
// both clients and peers (docs/design.md, "Wire"); memberlist has its own.
//
// # Frames
//
// Every frame is a fixed 16-byte header followed by its payload:
//
//	offset size  field
//	0      4     length   uint32 BE: bytes after this field (12 + payload)
//	4      8     id       uint64 BE: request id; a response carries its request's
//	12     2     kind     uint16 BE: message type, owned by the caller
//	14     1     flags    bit0 response, bit1 error response; others zero
//	15     1     reserved zero on send, ignored on receive
//	16     ...   payload  msgpack body, or a msgpack Error for an error response
//
// A length below 12 or above the reader's limit (DefaultMaxFrame, 8 MiB)
// loses framing: the reader returns an error wrapping ErrFrameSize and the
// server answers once with an error frame of id 0, then closes the
// connection. Id 0 is never used by a request from this package's clients.
//
// Kind 0 is reserved as invalid; the node owns every other value. Kind and
// Code are wire enums: only append, never renumber or reuse a value, or a
// mixed-version cluster will misread its own messages.
//
// # Server
//
// Server reads frames on one goroutine per connection and runs each request's
// Handler on its own goroutine, at most ServerConfig.MaxInFlight at once per
// connection; beyond that it stops reading, so TCP pushes back on the sender.
// Kinds the server's Inline function names (quick handlers that never wait:
// the node's replica reads, and its writes without fsync) run on the reader
// itself, one at a time, saving two goroutine hand-offs each.
// Responses go to one writer goroutine per connection (clients' requests
// likewise) that writes whatever is queued into a bufio.Writer and flushes
// only when the queue is empty, after yielding once so that runnable
// senders can join the batch. On the 2-CPU benchmark machine that yield
// took 64 concurrent callers from 1.6 flushes per round trip to 0.16 and
// quadrupled throughput, at no cost to a lone caller's latency.
//
// Buffer ownership: each request payload is freshly allocated and belongs to
// the handler; it may keep it. The response slice a handler returns is handed
// to the server and must not be modified afterwards. Allocating per frame was
// chosen over pooling after measuring: a pooled buffer saves about 60 ns per
// request against a round trip of about 3.5 µs (under 2%), the client must
// allocate the response it returns anyway, and pooling on the server would
// make every handler that keeps a slice of its payload a use-after-free.
//
// # Client
//
// Conn is one multiplexed connection; Pool keeps ClientConfig.ConnsPerAddr of
// them per address, dialed lazily and redialed after failure. A Call costs
// no goroutine besides the caller's: the request is encoded into a pooled
// buffer (so Call never retains the caller's payload), queued to the
// connection's writer, and the reader goroutine hands the response back
// through a pooled one-slot channel matched by id. Go is a call that does
// not wait: the reader hands the response to a callback, and a sweeper per
// connection fails calls whose timeout passed, so a coordinator's call to
// each replica costs neither a goroutine, a channel nor a timer.
//
// Pool.CloseAddr drops an address's connections; the node calls it when
// gossip declares a peer dead, since a peer that vanished without closing
// its sockets is otherwise noticed only through callers' timeouts.
//
// Calls are never retried here: a request that failed with ErrConnClosed may
// or may not have run on the server. The caller (the node's coordinator, or
// the SDK for idempotent reads) decides.
//
// # Codec
//
// Marshal and Unmarshal wrap github.com/vmihailenco/msgpack/v5 with pooled
// encoders and decoders. Unmarshal first walks the raw bytes (checkMsgpack)
// and rejects any array, map, string, binary or extension that declares more
// elements or bytes than remain in the buffer, any nesting deeper than
// maxDepth, and trailing bytes. NB: msgpack v5.4.1 preallocates a slice of
// the declared length (its alloc limit is dead code for reflected slices, see
// decode_slice.go decodeSliceValue) and reads bin values into a buffer of the
// declared size, so without this walk a 6-byte input can ask for gigabytes.
// After it, allocation is bounded by len(b) times the largest element type
// reachable from the target, and nesting cannot exhaust the stack.
//
// Hot messages skip reflection: a type that implements MsgpackAppender and
// MsgpackDecoder (internal/proto's replica messages) encodes and decodes
// itself with the helpers in msgpack.go (AppendMapHeader, AppendBin, ...,
// and Reader), which write exactly what msgpack v5 writes, so nodes with
// and without the hand-written codecs interoperate. Reader checks every
// length against the bytes left and skips unknown values with the same
// walk as checkMsgpack, under the same maxDepth, so the bounds above hold
// for it too. Unlike reflection, a Reader returns []byte values that alias
// its input: that is safe for payloads, which are the receiver's to keep
// (see Buffer ownership), and saves a copy of every key and object.
package wire
