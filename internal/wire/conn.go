package wire

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// ClientConfig tunes a Conn or a Pool. Zero fields take the defaults of
// DefaultClientConfig.
type ClientConfig struct {
	// MaxFrame bounds a frame's length field in bytes (12 + payload), for
	// requests sent and responses read. A response over it breaks the
	// connection. Default DefaultMaxFrame (8 MiB); at least 1 KiB.
	MaxFrame int
	// DialTimeout bounds connecting, on top of the caller's context.
	// Default 2s.
	DialTimeout time.Duration
	// ConnsPerAddr is how many connections a Pool keeps per address; calls
	// are spread over them round-robin. Default 2.
	ConnsPerAddr int
	// IdleTimeout retires a pooled connection that has not been used for
	// this long (and has no call pending): the next call redials instead.
	// Keep it below the server's IdleTimeout, so that the server never
	// closes a connection just as a request is sent on it. Default 4m
	// (servers default to 5m).
	IdleTimeout time.Duration
	// TLS, if set, says how to dial each address: the config to run a TLS
	// handshake with (within DialTimeout), or nil for plaintext. An error
	// fails the dial. A config without ServerName or InsecureSkipVerify
	// gets the address's host as ServerName. Nil: plaintext everywhere.
	TLS func(addr string) (*tls.Config, error)
	// LocalIP, if set, is the address connections are dialed from: a
	// node dials from the IP it advertises for RPC, which is what its
	// peers check a node certificate against. Nil: the system's choice.
	LocalIP net.IP
	// Logger receives connection-level events. The zero Logger discards
	// them.
	Logger zerolog.Logger
}

// DefaultClientConfig returns the defaults for a client on a LAN.
func DefaultClientConfig() ClientConfig {
	return ClientConfig{
		MaxFrame:     DefaultMaxFrame,
		DialTimeout:  2 * time.Second,
		ConnsPerAddr: 2,
		IdleTimeout:  4 * time.Minute,
	}
}

// Validate reports every field that is set to an unusable value at once.
// Zero fields are fine: they take defaults.
func (c ClientConfig) Validate() error {
	var errs []error
	if c.MaxFrame != 0 && c.MaxFrame < minMaxFrame {
		errs = append(errs, fmt.Errorf("wire: MaxFrame %d is below %d bytes", c.MaxFrame, minMaxFrame))
	}
	if c.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("wire: DialTimeout %v is negative", c.DialTimeout))
	}
	if c.ConnsPerAddr < 0 {
		errs = append(errs, fmt.Errorf("wire: ConnsPerAddr %d is negative", c.ConnsPerAddr))
	}
	if c.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("wire: IdleTimeout %v is negative", c.IdleTimeout))
	}
	return errors.Join(errs...)
}

// withDefaults replaces zero and invalid fields by their defaults.
func (c ClientConfig) withDefaults() ClientConfig {
	d := DefaultClientConfig()
	if c.MaxFrame < minMaxFrame {
		c.MaxFrame = d.MaxFrame
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.ConnsPerAddr <= 0 {
		c.ConnsPerAddr = d.ConnsPerAddr
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	return c
}

// pendingShards is how many independently locked maps hold a connection's
// pending calls, so concurrent callers and the reader rarely meet on a lock.
const pendingShards = 16

// pendingShard holds the calls whose id falls in it. Once closed, m is nil
// and nothing more may be added: the connection is down.
type pendingShard struct {
	mu     sync.Mutex
	closed bool
	m      map[uint64]*call
	_      [40]byte // pad to a 64-byte cache line
}

// call is one caller waiting for its response. It is pooled; exactly one
// party sends on ch: whoever removes the call from its shard (the reader with
// the response, or Conn.down with the failure). A caller that gives up and
// finds its call already removed must receive that send before reusing it.
type call struct {
	ch chan callResult // capacity 1, so the sender never blocks
	// fn, for a call made with Go, receives the result instead of ch; it
	// is called exactly once, by whoever removes the call from its shard.
	fn Done
	// kind and deadline (Unix nanoseconds) are a Go call's, for the
	// sweeper that fails it once the deadline passes.
	kind     Kind
	deadline int64
}

// Done receives the result of a call made with Conn.Go or Pool.Go: the
// response's kind and payload (the callee's to keep), or an error as
// Conn.Call returns them, with one difference: a call whose timeout passed
// fails with an error wrapping context.DeadlineExceeded. NB: it runs on the
// connection's reader goroutine (or the sweeper's, or the caller's when the
// call cannot be sent), so it must not block: hand slow work, such as a
// disk write, to another goroutine.
type Done func(kind Kind, payload []byte, err error)

// sweepEvery is how often a connection with Go calls pending looks for
// calls whose timeout passed. Timeouts are coarse by this much; in
// exchange a call costs no timer (context.WithTimeout per replica call,
// with its timer and its registration in the parent context, was 6% of a
// coordinator's CPU per replicated write).
const sweepEvery = 20 * time.Millisecond

type callResult struct {
	kind    Kind
	payload []byte
	err     error
}

var callPool = sync.Pool{New: func() any { return &call{ch: make(chan callResult, 1)} }}

// Conn is one multiplexed client connection: any number of concurrent
// calls share it, matched to their responses by id. It runs a reader and a
// writer goroutine. It is safe for concurrent use.
type Conn struct {
	cfg  ClientConfig
	addr string
	nc   net.Conn
	br   *bufio.Reader
	w    *frameWriter
	log  zerolog.Logger

	// nextID numbers requests from 1: id 0 is the server's "closing"
	// notice.
	nextID atomic.Uint64
	shards [pendingShards]pendingShard

	// lastUsed is when a Pool last handed the conn out, in Unix
	// nanoseconds by the Pool's clock; the Pool sets it before first use.
	lastUsed atomic.Int64

	// async counts Go calls pending; kick wakes the sweeper when it
	// leaves 0.
	async atomic.Int64
	kick  chan struct{}

	downOnce sync.Once
	done     chan struct{} // closed when the conn is down
	err      error         // why it went down; written before done is closed
	wg       sync.WaitGroup
}

// Dial connects to addr and returns a running Conn. cfg.DialTimeout bounds
// the attempt on top of ctx.
func Dial(ctx context.Context, addr string, cfg ClientConfig) (*Conn, error) {
	cfg = cfg.withDefaults()
	var tc *tls.Config
	if cfg.TLS != nil {
		var err error
		if tc, err = cfg.TLS(addr); err != nil {
			return nil, fmt.Errorf("wire: dial %s: %w", addr, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	if cfg.LocalIP != nil {
		d.LocalAddr = &net.TCPAddr{IP: cfg.LocalIP}
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("wire: %w", err)
	}
	if tc != nil {
		if tc.ServerName == "" && !tc.InsecureSkipVerify {
			tc = tc.Clone()
			tc.ServerName, _, _ = net.SplitHostPort(addr)
		}
		c := tls.Client(nc, tc)
		if err := c.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, fmt.Errorf("wire: TLS to %s: %w", addr, err)
		}
		nc = c
	}
	return newConn(nc, addr, cfg), nil
}

// NewConn runs the client protocol over an established connection, such as
// a TLS one. The Conn owns nc and closes it.
func NewConn(nc net.Conn, cfg ClientConfig) *Conn {
	return newConn(nc, nc.RemoteAddr().String(), cfg.withDefaults())
}

func newConn(nc net.Conn, addr string, cfg ClientConfig) *Conn {
	c := &Conn{
		cfg:  cfg,
		addr: addr,
		nc:   nc,
		br:   bufio.NewReaderSize(nc, readBufSize),
		log:  cfg.Logger,
		done: make(chan struct{}),
		kick: make(chan struct{}, 1),
	}
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]*call)
	}
	// No write deadline: a server that stops reading is pushing back, and
	// each caller's context bounds its own wait.
	c.w = newFrameWriter(nc, 0, c.down, nil)
	c.wg.Add(3)
	go func() {
		defer c.wg.Done()
		c.w.run()
	}()
	go c.readLoop()
	go c.sweep()
	return c
}

// Addr is the address the Conn was dialed to, or its peer's address.
func (c *Conn) Addr() string { return c.addr }

// Done is closed when the connection is down, broken or closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns nil while the connection is up, and afterwards why it went
// down, wrapping ErrConnClosed.
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Call sends one request and waits for its response or ctx's end.
//
// It returns the response's kind and payload (the caller's to keep), or: an
// *Error for an error response; an error wrapping ctx.Err() when ctx ends
// first (the id is forgotten and a late response dropped); an error wrapping
// ErrConnClosed if the connection breaks or is closed; an error wrapping
// ErrFrameSize if payload does not fit in cfg.MaxFrame. Call does not retain
// payload after it returns.
func (c *Conn) Call(ctx context.Context, kind Kind, payload []byte) (Kind, []byte, error) {
	if kind == 0 {
		return 0, nil, errReservedKind
	}
	if err := checkSize(len(payload), c.cfg.MaxFrame); err != nil {
		return 0, nil, err
	}
	if err := ctx.Err(); err != nil {
		return 0, nil, c.ctxErr(kind, err)
	}

	id := c.nextID.Add(1)
	cl := callPool.Get().(*call)
	sh := &c.shards[id%pendingShards]
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		callPool.Put(cl)
		return 0, nil, c.err
	}
	sh.m[id] = cl
	sh.mu.Unlock()

	// If the writer has exited, the conn is down and down has failed (or is
	// failing) the call: its result arrives on cl.ch below.
	if !c.w.send(outFrame{enc: encodeFrame(Header{ID: id, Kind: kind}, payload)}, ctx.Done()) && ctx.Err() != nil {
		return c.abandon(ctx, id, cl, kind)
	}
	select {
	case r := <-cl.ch:
		callPool.Put(cl)
		return r.kind, r.payload, r.err
	case <-ctx.Done():
		return c.abandon(ctx, id, cl, kind)
	}
}

// Go sends one request and returns without waiting: done receives the
// response, or the error, exactly once (see Done), at the latest about
// timeout after Go was called. It costs no goroutine, channel or timer:
// the reader goroutine hands the response to done. Go blocks only while
// the connection's write queue is full (TCP backpressure). Go does not
// retain payload after it returns.
func (c *Conn) Go(kind Kind, payload []byte, timeout time.Duration, done Done) {
	if kind == 0 {
		done(0, nil, errReservedKind)
		return
	}
	if err := checkSize(len(payload), c.cfg.MaxFrame); err != nil {
		done(0, nil, err)
		return
	}
	id := c.nextID.Add(1)
	cl := &call{fn: done, kind: kind, deadline: time.Now().Add(timeout).UnixNano()}
	sh := &c.shards[id%pendingShards]
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		done(0, nil, c.err)
		return
	}
	sh.m[id] = cl
	sh.mu.Unlock()
	if c.async.Add(1) == 1 {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	// If the writer has exited, the conn is down and down fails the call.
	c.w.send(outFrame{enc: encodeFrame(Header{ID: id, Kind: kind}, payload)}, nil)
}

// finish hands a result to the call's receiver. The caller has removed cl
// from its shard, so it is the only one to do so.
func (c *Conn) finish(cl *call, r callResult) {
	if cl.fn == nil {
		cl.ch <- r
		return
	}
	c.async.Add(-1)
	cl.fn(r.kind, r.payload, r.err)
}

// sweep is the sweeper goroutine: while Go calls are pending it fails
// those whose deadline passed, every sweepEvery.
func (c *Conn) sweep() {
	defer c.wg.Done()
	t := time.NewTimer(sweepEvery)
	defer t.Stop()
	var expired []*call
	for {
		if c.async.Load() == 0 {
			select {
			case <-c.kick:
			case <-c.done:
				return
			}
		}
		t.Reset(sweepEvery)
		select {
		case <-t.C:
		case <-c.done:
			return
		}
		now := time.Now().UnixNano()
		for i := range c.shards {
			sh := &c.shards[i]
			sh.mu.Lock()
			for id, cl := range sh.m {
				if cl.fn != nil && cl.deadline <= now {
					delete(sh.m, id)
					expired = append(expired, cl)
				}
			}
			sh.mu.Unlock()
		}
		for i, cl := range expired {
			c.finish(cl, callResult{err: c.ctxErr(cl.kind, context.DeadlineExceeded)})
			expired[i] = nil
		}
		expired = expired[:0]
	}
}

// abandon forgets call id after ctx ended. If the response (or the
// connection's failure) won the race, that result is returned instead.
func (c *Conn) abandon(ctx context.Context, id uint64, cl *call, kind Kind) (Kind, []byte, error) {
	sh := &c.shards[id%pendingShards]
	sh.mu.Lock()
	_, mine := sh.m[id]
	if mine {
		delete(sh.m, id)
	}
	sh.mu.Unlock()
	if !mine {
		r := <-cl.ch // sent, or about to be, by whoever took the call
		callPool.Put(cl)
		return r.kind, r.payload, r.err
	}
	callPool.Put(cl)
	return 0, nil, c.ctxErr(kind, ctx.Err())
}

func (c *Conn) ctxErr(kind Kind, err error) error {
	return fmt.Errorf("wire: call of kind %d to %s: %w", kind, c.addr, err)
}

// Close closes the connection, fails its pending calls with ErrConnClosed
// and waits for its goroutines. It is idempotent.
func (c *Conn) Close() error {
	c.down(nil)
	c.wg.Wait()
	return nil
}

// down marks the connection down for cause (nil: closed locally), closes
// the socket, stops the writer and fails every pending call. Only the first
// call has an effect.
func (c *Conn) down(cause error) {
	c.downOnce.Do(func() {
		c.err = ErrConnClosed
		if cause != nil {
			c.err = fmt.Errorf("%w: %w", ErrConnClosed, cause)
			c.log.Debug().Err(cause).Str("addr", c.addr).Msg("wire: connection down")
		}
		close(c.done)
		_ = c.nc.Close()
		c.w.close()
		for i := range c.shards {
			sh := &c.shards[i]
			sh.mu.Lock()
			sh.closed = true
			m := sh.m
			sh.m = nil
			sh.mu.Unlock()
			for _, cl := range m {
				c.finish(cl, callResult{err: c.err})
			}
		}
	})
}

// readLoop is the reader goroutine: it hands each response to its caller
// until the connection fails.
func (c *Conn) readLoop() {
	defer c.wg.Done()
	for {
		h, payload, err := ReadFrame(c.br, c.cfg.MaxFrame)
		if err != nil {
			c.down(err)
			return
		}
		if h.Flags&FlagResponse == 0 {
			c.down(fmt.Errorf("wire: server sent a request frame (id %d, kind %d)", h.ID, h.Kind))
			return
		}
		if h.ID == 0 {
			// The server's last word before it closes the connection.
			var cause error = errors.New("wire: unexpected response with id 0")
			if h.Flags&FlagError != 0 {
				cause = decodeError(payload)
			}
			c.down(cause)
			return
		}
		sh := &c.shards[h.ID%pendingShards]
		sh.mu.Lock()
		cl := sh.m[h.ID]
		if cl != nil {
			delete(sh.m, h.ID)
		}
		sh.mu.Unlock()
		if cl == nil {
			continue // its caller gave up: drop the late response
		}
		if h.Flags&FlagError != 0 {
			c.finish(cl, callResult{kind: h.Kind, err: decodeError(payload)})
		} else {
			c.finish(cl, callResult{kind: h.Kind, payload: payload})
		}
	}
}

// idle reports whether the conn has not been handed out since before
// cutoff (Unix nanoseconds) and has no call pending.
func (c *Conn) idle(cutoff int64) bool {
	if c.lastUsed.Load() >= cutoff {
		return false
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n := len(sh.m)
		sh.mu.Unlock()
		if n > 0 {
			return false
		}
	}
	return true
}
