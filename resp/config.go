package resp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/mnemo-kv/mnemo/internal/acl"
)

// Backend is what the server needs from the node. Its methods are called
// concurrently, from many connections and from the pipelined commands of
// one connection. ctx is cancelled when the client's connection ends or the
// server closes; Close waits for every call, so a Backend must return soon
// after. Key and value slices may be kept (see the package doc).
type Backend interface {
	// Get returns key's value: the last-write-wins winner when replicas
	// hold concurrent siblings. found is false for a key never written or
	// deleted. The server writes value to the client after Get returns
	// (a large one without copying it), so it must not be modified.
	Get(ctx context.Context, key []byte, q Quorum) (value []byte, found bool, err error)
	// Set writes key, superseding every version the versioning replica
	// holds (Redis SET semantics).
	Set(ctx context.Context, key, value []byte, q Quorum) error
	// Delete deletes key and reports whether it held a live value.
	Delete(ctx context.Context, key []byte, q Quorum) (existed bool, err error)
	// Info returns the node's figures for INFO, in the order they are
	// shown. It is called on the connection's reader goroutine, so it
	// should be cheap (no network round trips).
	Info() []InfoSection
}

// BatchSetter is a Backend that can write several keys at once. When the
// Backend implements it, a pipeline of plain SETs (no options) read in one
// go is handed over in one SetMany call instead of one Set each, so the
// node coordinates them together (one local write, one message per
// replica). SetMany must return one error (nil on success) per key, each
// what Set would have returned; keys may repeat, and a later SET of a key
// must win over an earlier one.
type BatchSetter interface {
	SetMany(ctx context.Context, keys, values [][]byte, q Quorum) []error
}

// BatchGetter is a Backend that can read several keys at once. When the
// Backend implements it, a pipeline of GETs read in one go is handed over
// in one GetMany call. GetMany returns, per key, what Get would have.
type BatchGetter interface {
	GetMany(ctx context.Context, keys [][]byte, q Quorum) (values [][]byte, found []bool, errs []error)
}

// maxBatch bounds the SETs or GETs one SetMany or GetMany call takes.
const maxBatch = 128

// Quorum is the replica count and quorums a command asks for. A zero
// field means the node's default.
type Quorum struct {
	N int // replicas
	R int // replies a read waits for
	W int // acknowledgements a write waits for
}

// maxQuorum bounds N, R and W in MNEMO.QUORUM (the node's own bound on N).
const maxQuorum = 16

// InfoSection is one "# Name" block of INFO. Sections whose names equal
// (case-insensitively) one the server writes itself (Server, Clients,
// Stats) are appended to it.
type InfoSection struct {
	Name   string // as shown after "# ", e.g. "Replication"
	Fields []InfoField
}

// InfoField is one "key:value" line of INFO. Neither may contain "\r" or
// "\n"; the key should not contain ":".
type InfoField struct {
	Key, Value string
}

// Config tunes a Server. Zero fields take the defaults of DefaultConfig.
type Config struct {
	// MaxBulk bounds one bulk string (a key or value) in bytes. Set it a
	// little above the node's max value size, so that a value just over
	// that limit gets the node's "value too large" reply rather than a
	// protocol error and a closed connection. Default 1 MiB + 64 KiB.
	MaxBulk int
	// MaxArgs bounds the elements of one request array. Default 1M.
	MaxArgs int
	// MaxRequest bounds one request in bytes as read from the wire
	// (headers and bulk strings), and so the memory a connection's
	// arguments can take. Also bounds the argument bytes of the commands
	// in flight on one connection. Default 32 MiB.
	MaxRequest int
	// MaxConns bounds open connections; beyond it a new client gets "-ERR
	// max number of clients reached" and is closed. Default 10000 (Redis's
	// maxclients).
	MaxConns int
	// PipelineConcurrency bounds the Backend calls in flight for one
	// connection's pipelined commands when the Backend is slow enough for
	// concurrency to pay (see the package doc); 1 always runs them one
	// after another on the reader goroutine. Default 32.
	PipelineConcurrency int
	// IdleTimeout closes a connection that has sent nothing for this long
	// while none of its commands is running. Zero (the default) never
	// does, as Redis's "timeout 0"; client libraries keep pooled
	// connections open for a long time.
	IdleTimeout time.Duration
	// AuthTimeout closes a connection that has not authenticated this
	// long after it was accepted (with Users set): an unauthenticated
	// client cannot hold one of MaxConns for ever, nor keep guessing on
	// one connection. Default 10s.
	AuthTimeout time.Duration
	// StallTimeout closes a connection whose request has begun to arrive
	// but is not complete after this long. Default 30s.
	StallTimeout time.Duration
	// WriteTimeout closes a connection that accepts no reply bytes for
	// this long (a client that pipelines without reading). Default 30s.
	WriteTimeout time.Duration
	// Logger receives connection-level events (protocol errors, stalls,
	// recovered panics). The zero Logger discards them.
	Logger zerolog.Logger
	// Users, if set, requires every connection to authenticate (AUTH,
	// HELLO ... AUTH, or a verified TLS client certificate naming a user)
	// and checks each command against the user's rules and key patterns;
	// until then a connection may send only small requests (PreAuthMaxArgs,
	// PreAuthMaxBulk). Nil (the default) serves everyone, as Redis' nopass
	// default user.
	Users *acl.Users
	// ClientIdentity, if set, returns the client name of a connection's
	// verified TLS client certificate (mnemo://client/<name>), after its
	// handshake; the server then authenticates the connection as that
	// user. Nil uses VerifiedClientName, which trusts only chains the
	// tls.Config itself verified (tls.Conn's VerifiedChains); a listener
	// that verifies certificates its own way supplies its own.
	ClientIdentity func(nc net.Conn) (name string, ok bool)
	// Registerer, if set, gets the server's metrics:
	// mnemo_resp_commands_total{cmd}, mnemo_resp_connections,
	// mnemo_resp_connections_total and mnemo_resp_protocol_errors_total.
	// Metrics already registered there (a second server) are shared.
	Registerer prometheus.Registerer
}

// Limits on a connection that has not authenticated yet (Config.Users
// set), as Redis' for CVE-2021-32675: a bigger request is a protocol error
// that closes the connection, so an unauthenticated client cannot make the
// server buffer much.
const (
	// PreAuthMaxArgs bounds the elements of one request before AUTH.
	PreAuthMaxArgs = 10
	// PreAuthMaxBulk bounds one bulk string, in bytes, before AUTH.
	PreAuthMaxBulk = 16 << 10
	// preAuthMaxPending bounds the replies an unauthenticated connection
	// has waiting; beyond it they are written before more is read, so a
	// client that pipelines without reading gets no growing output.
	preAuthMaxPending = 16
)

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		MaxBulk:             1<<20 + 64<<10,
		MaxArgs:             1 << 20,
		MaxRequest:          32 << 20,
		MaxConns:            10000,
		PipelineConcurrency: 32,
		StallTimeout:        30 * time.Second,
		AuthTimeout:         10 * time.Second,
		WriteTimeout:        30 * time.Second,
	}
}

// minMaxRequest is the smallest MaxRequest accepted: room for a command
// and a maximal bulk string's header.
const minMaxRequest = 1 << 10

// Validate reports every field set to an unusable value, at once. Zero
// fields are fine: they take defaults.
func (c Config) Validate() error {
	var errs []error
	neg := func(name string, v int) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("resp: %s %d is negative", name, v))
		}
	}
	neg("MaxBulk", c.MaxBulk)
	neg("MaxArgs", c.MaxArgs)
	neg("MaxConns", c.MaxConns)
	neg("PipelineConcurrency", c.PipelineConcurrency)
	if c.MaxRequest != 0 && c.MaxRequest < minMaxRequest {
		errs = append(errs, fmt.Errorf("resp: MaxRequest %d is below %d bytes", c.MaxRequest, minMaxRequest))
	}
	if c.MaxRequest != 0 && c.MaxBulk > c.MaxRequest {
		errs = append(errs, fmt.Errorf("resp: MaxBulk %d exceeds MaxRequest %d", c.MaxBulk, c.MaxRequest))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"IdleTimeout", c.IdleTimeout}, {"StallTimeout", c.StallTimeout}, {"AuthTimeout", c.AuthTimeout}, {"WriteTimeout", c.WriteTimeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("resp: %s %v is negative", d.name, d.v))
		}
	}
	return errors.Join(errs...)
}

// withDefaults replaces zero and invalid fields by their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxBulk <= 0 {
		c.MaxBulk = d.MaxBulk
	}
	if c.MaxArgs <= 0 {
		c.MaxArgs = d.MaxArgs
	}
	if c.MaxRequest < minMaxRequest {
		c.MaxRequest = max(d.MaxRequest, c.MaxBulk+minMaxRequest)
	}
	if c.MaxBulk > c.MaxRequest {
		c.MaxBulk = c.MaxRequest - minMaxRequest
	}
	if c.MaxConns <= 0 {
		c.MaxConns = d.MaxConns
	}
	if c.PipelineConcurrency <= 0 {
		c.PipelineConcurrency = d.PipelineConcurrency
	}
	if c.IdleTimeout < 0 {
		c.IdleTimeout = 0
	}
	if c.AuthTimeout <= 0 {
		c.AuthTimeout = d.AuthTimeout
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = d.StallTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	return c
}
