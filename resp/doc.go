// Package resp serves the Redis protocol (RESP2, and RESP3 after HELLO 3)
// on top of a mnemo node, so that redis-cli, redis-benchmark and Redis
// client libraries work against mnemo unchanged (docs/design.md, "Surfaces").
//
// The server knows nothing about replication: it parses commands, calls a
// Backend (the node's quorum coordinator) and encodes the answers. The
// caller builds a Server with NewServer, calls Serve on one or more
// listeners, and Close to stop; Close returns once every goroutine the
// server started has ended, so the Backend must return soon after the
// context it is given is cancelled.
//
// # Commands
//
// Data (each call goes to the Backend with the connection's quorum):
//
//	GET key                 the last-write-wins winner when there are siblings; nil if absent
//	SET key value [NX|XX] [GET] [KEEPTTL]
//	                        overwrites every version the versioning replica holds, as Redis
//	                        does. NX, XX and GET read first and then write: they are not atomic
//	                        against other clients (mnemo has no compare-and-set). EX, PX, EXAT
//	                        and PXAT are refused: mnemo does not support expiry. KEEPTTL is
//	                        accepted and does nothing, since no key has a TTL.
//	DEL key [key ...]       (and UNLINK) the number of keys that existed
//	EXISTS key [key ...]    the number of keys that exist, counting repeats as Redis does
//	MGET key [key ...]      values or nils, in order
//	MSET key value [key value ...]
//	                        not atomic: a failure after some keys were written leaves them
//
// Connection and introspection: PING [msg], ECHO msg, QUIT, SELECT 0 (other
// databases are refused: mnemo has one keyspace), HELLO [2|3 [AUTH user
// pass] [SETNAME name]], AUTH [user] password, ACL WHOAMI, CLIENT
// SETNAME|GETNAME|SETINFO|ID|INFO, COMMAND [COUNT|LIST|INFO name...|DOCS
// name...], CONFIG GET pattern [pattern ...] (read-only figures such as
// save "" and appendonly "no", enough for redis-benchmark and redis-cli),
// and INFO [section ...]: the server's Server, Clients and Stats sections
// (connections, commands, errors) with the Backend's fields of the same
// name appended, then the Backend's own sections (replication, keyspace,
// ...). Anything else is answered as Redis answers an unknown command:
// -ERR unknown command 'X', with args beginning with: ...
//
// # Users
//
// Without Config.Users the port is open, as Redis with its nopass default
// user: "AUTH default <anything>" succeeds and ACL WHOAMI says default.
// With it (internal/acl: the node's --resp-users file), a connection must
// authenticate before anything but AUTH, HELLO ... AUTH and QUIT, with
// Redis 7's replies:
//
//	-NOAUTH Authentication required.
//	-WRONGPASS invalid username-password pair or user is disabled.
//	-NOPERM this user has no permissions to run the 'set' command
//	-NOPERM this user has no permissions to access one of the keys used as arguments
//
// "AUTH password" is user default. A failed AUTH keeps the connection's
// user (if any), is counted (mnemo_resp_auth_failures_total, INFO's
// acl_access_denied_auth) and waits before its reply: 100ms, doubling with
// each failure on the connection up to 5s. Over TLS, a client certificate
// verified against the server's CAs whose URI SAN is
// mnemo://client/<name> authenticates as user <name>, if it exists, with
// no AUTH; the server takes TLS as a listener (tls.NewListener or
// internal/security's wrapper) and reads the identity from a connection
// that has ConnectionState.
//
// Before authentication a request may hold at most PreAuthMaxArgs (10)
// arguments of at most PreAuthMaxBulk (16 KiB) bytes each; a bigger one is
// answered "-ERR Protocol error: unauthenticated multibulk length" (or
// "bulk length") and the connection closed, as Redis does against
// CVE-2021-32675. Replies before authentication are written once 16 are
// waiting, so a client that pipelines without reading gets no growing
// output buffer. A connection that has not authenticated
// Config.AuthTimeout (10s) after it was accepted is closed, so
// unauthenticated clients cannot hold the MaxConns slots, nor keep
// guessing on one connection for long.
//
// # Quorum per connection
//
//	MNEMO.QUORUM [N n] [R r] [W w]
//	MNEMO.QUORUM DEFAULT
//
// sets the replica count N, read quorum R and write quorum W that this
// connection's later commands pass to the Backend, and replies OK. A value
// of 0 means the node's default (the node's --n, --r, --w); DEFAULT resets
// all three to 0. Without arguments it replies the current values as
// n, r, w pairs (a flat array in RESP2, a map in RESP3), 0 still meaning
// the node's default. Commands already pipelined before it keep the quorum
// they were read with. Values must be in [0, 16] and R, W at most N when N
// is set; the node checks the rest (R or W above its default N) when the
// command runs.
//
// # Errors
//
// A Backend error becomes "-ERR " and its text as it is (a wire.Error
// relayed from another node is sent as its message). An error that
// implements RESPError picks its whole reply line instead, error code
// included: the node's quorum errors send "-ERR quorum failed: put
// acknowledged by 1 of 3 replicas asked, 2 needed", without the "node: "
// their Go text starts with. A Backend panic is answered with
// "-ERR internal error in '<cmd>': ..." and logged; the server goes on.
//
// # Protocol, limits and pipelining
//
// Requests are RESP arrays of bulk strings, or inline commands (a line of
// words, with Redis's quoting) as typed into telnet. A malformed request,
// a bulk string over Config.MaxBulk, an array over Config.MaxArgs or a
// request over Config.MaxRequest bytes gets one "-ERR Protocol error: ..."
// reply, after the replies to the commands before it, and the connection
// is closed: framing is lost, so nothing after it can be trusted.
//
// Each connection has one reader goroutine with a 64 KiB bufio.Reader and
// one 32 KiB bufio.Writer. Replies go out in request order and are flushed
// only when the reader is about to wait for more input, so a pipeline of
// commands read in one system call is answered in one write.
//
// Pipelined data commands run concurrently when the Backend is slow: each
// connection keeps a moving average of its commands' Backend time, and
// above 50µs (a replicated write waiting for replicas and fsync) every
// command that has more input buffered behind it starts on its own
// goroutine, at most Config.PipelineConcurrency at once, while the last
// one of a batch runs on the reader goroutine. Below it (an in-memory
// Backend, a cached read) they run one after another on the reader
// goroutine, which measured about 1.5x faster than a goroutine per
// command. A command waits for every earlier in-flight command of its
// connection that touches one of its keys when either of them writes, so
// a pipeline behaves as if run in order (SET k 1; SET k 2; GET k reads 2),
// as in Redis. Connection commands (PING, INFO, MNEMO.QUORUM...) run on
// the reader goroutine when read.
//
// Arguments are copied out of the read buffer into 16 KiB chunks that are
// never reused (large ones get their own allocation), so a Backend may keep
// the key and value slices it is given. They share backing arrays with
// other arguments: a Backend that keeps many small ones for long should
// copy them.
//
// # Timeouts
//
// A connection idle for Config.IdleTimeout (0: never, as Redis's timeout 0)
// is closed silently. A request whose first byte has arrived must be
// complete within Config.StallTimeout, and a client must accept reply bytes
// within Config.WriteTimeout, or the connection is closed.
package resp
