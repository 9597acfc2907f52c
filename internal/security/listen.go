package security

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// tlsRecordHandshake is the first byte of every TLS ClientHello (a
// handshake record). No mnemo plaintext protocol starts with it: a wire
// frame would have to be over 350 MiB, and RESP and HTTP start with
// printable characters.
const tlsRecordHandshake = 0x16

// DefaultHandshakeTimeout bounds a connection's sniff and TLS handshake.
const DefaultHandshakeTimeout = 10 * time.Second

// ErrPlaintextRefused is the first Read's error on a plaintext connection
// to a port in Required mode (the connection is closed).
var ErrPlaintextRefused = errors.New("security: plaintext connection refused (security required: connect with TLS)")

// ListenerConfig tunes Wrap.
type ListenerConfig struct {
	// Mode is the port's mode: Disabled returns plaintext connections as
	// they are; Transitional tells TLS from plaintext by the first byte;
	// Required closes plaintext connections after that byte.
	Mode Mode
	// TLS is the server config; required unless Mode is Disabled.
	TLS *tls.Config
	// Plaintext counts plaintext connections accepted (nil: none), the
	// figure that says when Required is safe to set.
	Plaintext prometheus.Counter
	// Refused counts plaintext connections refused in Required mode and
	// failed handshakes (nil: none).
	Refused prometheus.Counter
	// HandshakeTimeout bounds the sniff and the handshake, on top of the
	// caller's own deadlines. Default DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
}

// WrapListener is Wrap with the usual fields: mode, server config and
// the plaintext counter.
func WrapListener(ln net.Listener, mode Mode, cfg *tls.Config, plaintext prometheus.Counter) net.Listener {
	return Wrap(ln, ListenerConfig{Mode: mode, TLS: cfg, Plaintext: plaintext})
}

// Wrap makes ln speak cfg.Mode. Accept returns at once; the sniff and the
// handshake happen on the connection's first Read or Write, on the
// server's connection goroutine, so a slow or silent client never holds
// up the accept loop and servers need no change. A conn that fails them
// returns the error from that Read or Write and is closed. Accepted conns
// are *Conn (or the raw conn when Disabled).
func Wrap(ln net.Listener, cfg ListenerConfig) net.Listener {
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.Mode != Disabled && cfg.TLS == nil {
		panic(fmt.Sprintf("security: Wrap in mode %v without a tls.Config", cfg.Mode))
	}
	return &listener{Listener: ln, cfg: cfg}
}

type listener struct {
	net.Listener
	cfg ListenerConfig
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if l.cfg.Mode == Disabled {
		inc(l.cfg.Plaintext)
		return c, nil
	}
	return &Conn{raw: c, l: l}, nil
}

func inc(c prometheus.Counter) {
	if c != nil {
		c.Inc()
	}
}

// Conn is a connection accepted by a wrapped listener: TLS or plaintext,
// decided by its first byte on first use. Safe for one reader and one
// writer at a time, as net.Conn.
type Conn struct {
	raw net.Conn
	l   *listener

	// ready is set once init has run; c and err are then fixed.
	ready atomic.Bool
	// mu serializes init (a Read and a Write may race to run it) and
	// guards the deadlines set before it ran.
	mu       sync.Mutex
	c        net.Conn // the *tls.Conn, or raw behind the sniffed byte
	tls      *tls.Conn
	err      error
	rdl, wdl time.Time
}

// init sniffs the first byte and runs the handshake, once.
func (c *Conn) init() error {
	if c.ready.Load() {
		return c.err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ready.Load() {
		return c.err
	}
	c.err = c.sniff()
	if c.err != nil {
		_ = c.raw.Close()
	}
	c.ready.Store(true)
	return c.err
}

func (c *Conn) sniff() error {
	cfg := c.l.cfg
	limit := time.Now().Add(cfg.HandshakeTimeout)
	rd, wd := earliest(limit, c.rdl), earliest(limit, c.wdl)
	_ = c.raw.SetReadDeadline(rd)
	_ = c.raw.SetWriteDeadline(wd)
	var first [1]byte
	if _, err := c.raw.Read(first[:]); err != nil {
		return err
	}
	pc := &prefixConn{Conn: c.raw, prefix: first[:]}
	if first[0] != tlsRecordHandshake {
		if !cfg.Mode.AcceptsPlaintext() {
			inc(cfg.Refused)
			return ErrPlaintextRefused
		}
		inc(cfg.Plaintext)
		c.c = pc
	} else {
		tc := tls.Server(pc, cfg.TLS)
		if err := tc.Handshake(); err != nil {
			inc(cfg.Refused)
			return fmt.Errorf("security: TLS handshake with %s: %w", c.raw.RemoteAddr(), err)
		}
		c.c, c.tls = tc, tc
	}
	// Back to the caller's deadlines.
	_ = c.raw.SetReadDeadline(c.rdl)
	_ = c.raw.SetWriteDeadline(c.wdl)
	return nil
}

// earliest is the earlier of a and b, b zero meaning none.
func earliest(a, b time.Time) time.Time {
	if !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// Read runs the sniff and handshake on first use, then reads.
func (c *Conn) Read(b []byte) (int, error) {
	if err := c.init(); err != nil {
		return 0, err
	}
	return c.c.Read(b)
}

// Write runs the sniff and handshake on first use, then writes.
func (c *Conn) Write(b []byte) (int, error) {
	if err := c.init(); err != nil {
		return 0, err
	}
	return c.c.Write(b)
}

// Close closes the connection (a TLS one with its close_notify).
func (c *Conn) Close() error {
	if c.ready.Load() && c.c != nil {
		return c.c.Close()
	}
	return c.raw.Close()
}

func (c *Conn) LocalAddr() net.Addr  { return c.raw.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rdl = t
	if c.ready.Load() {
		return c.raw.SetReadDeadline(t)
	}
	// Kept for sniff, which applies it with the handshake bound. NB: a
	// call while sniff runs waits for it (at most HandshakeTimeout).
	return nil
}

func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wdl = t
	if c.ready.Load() {
		return c.raw.SetWriteDeadline(t)
	}
	return nil
}

// TLS reports whether the connection speaks TLS; false before its first
// Read or Write.
func (c *Conn) TLS() bool { return c.ready.Load() && c.tls != nil }

// ConnectionState is the TLS state after the handshake, and false for a
// plaintext connection or before the first Read or Write.
func (c *Conn) ConnectionState() (tls.ConnectionState, bool) {
	if !c.TLS() {
		return tls.ConnectionState{}, false
	}
	return c.tls.ConnectionState(), true
}

// NetConn is the underlying TCP connection.
func (c *Conn) NetConn() net.Conn { return c.raw }

// prefixConn reads prefix before the rest of Conn.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}
