package wire

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Pool keeps ClientConfig.ConnsPerAddr multiplexed connections per address,
// dialed lazily on first use and redialed on the next call after one breaks
// or goes idle. It is safe for concurrent use.
type Pool struct {
	cfg ClientConfig
	now func() time.Time // the clock for idle checks; tests replace it

	// ctx is cancelled by Close, aborting dials in progress.
	ctx    context.Context
	cancel context.CancelFunc

	closed    atomic.Bool
	closeOnce sync.Once

	// wg counts dials in progress and closes of dropped connections, so
	// Close can wait for them. NB: Add is only called by track, under mu
	// while peers is non-nil, and Close sets peers to nil under mu before
	// it waits, so no Add can race with the Wait.
	wg sync.WaitGroup

	// mu guards peers (nil once closed). Each slot has its own lock.
	mu    sync.Mutex
	peers map[string]*peer
}

// peer is the set of connections to one address.
type peer struct {
	next    atomic.Uint32 // round-robin cursor over slots
	removed atomic.Bool   // set by CloseAddr: slots must not be refilled
	slots   []slot
}

// slot holds at most one connection, or the dial that will fill it.
type slot struct {
	mu      sync.Mutex
	conn    *Conn
	dialing *dialAttempt // non-nil while a dial for this slot is running
}

// dialAttempt lets callers that find a dial in progress wait for its result
// instead of dialing again.
type dialAttempt struct {
	done chan struct{} // closed when conn and err are set
	conn *Conn
	err  error
}

// NewPool returns an empty pool. Invalid config fields take their defaults;
// call cfg.Validate first to report them.
func NewPool(cfg ClientConfig) *Pool {
	p := &Pool{cfg: cfg.withDefaults(), now: time.Now, peers: make(map[string]*peer)}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p
}

// Call sends one request to addr over a pooled connection; see Conn.Call for
// what it returns. A failure to connect wraps ErrNotSent and the dial error
// (prefixed "wire: "); after Close it returns ErrPoolClosed. Call never
// retries: a call that failed with ErrConnClosed may have been served.
func (p *Pool) Call(ctx context.Context, addr string, kind Kind, payload []byte) (Kind, []byte, error) {
	c, err := p.conn(ctx, addr)
	if err != nil {
		if errors.Is(err, ErrPoolClosed) {
			return 0, nil, err
		}
		return 0, nil, fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	return c.Call(ctx, kind, payload)
}

// Go sends one request to addr over a pooled connection without waiting;
// see Conn.Go. A failure to connect reaches done (on the caller's
// goroutine) wrapping ErrNotSent, as Call's does; after Close, done gets
// ErrPoolClosed. Dialing, when a connection must be made first, blocks
// the caller for at most the dial timeout.
func (p *Pool) Go(addr string, kind Kind, payload []byte, timeout time.Duration, done Done) {
	c, err := p.conn(p.ctx, addr)
	if err != nil {
		if !errors.Is(err, ErrPoolClosed) {
			err = fmt.Errorf("%w: %w", ErrNotSent, err)
		}
		done(0, nil, err)
		return
	}
	c.Go(kind, payload, timeout, done)
}

// CloseAddr closes the pool's connections to addr, failing their pending
// calls with ErrConnClosed; the next call to addr dials afresh. The node
// calls it when gossip declares a peer dead, since a peer that vanished
// without closing its sockets is otherwise only noticed by callers' timeouts.
func (p *Pool) CloseAddr(addr string) {
	p.mu.Lock()
	pr := p.peers[addr]
	delete(p.peers, addr)
	p.mu.Unlock()
	if pr != nil {
		pr.removed.Store(true)
		p.closeSlots(pr)
	}
}

// Close closes every connection, failing their pending calls with
// ErrConnClosed, aborts dials in progress and waits for every goroutine the
// pool's connections started. It is idempotent; every call waits.
func (p *Pool) Close() error {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		p.cancel()
		p.mu.Lock()
		peers := p.peers
		p.peers = nil
		p.mu.Unlock()
		for _, pr := range peers {
			p.closeSlots(pr)
		}
		p.wg.Wait()
	})
	return nil
}

// closeSlots empties pr's slots and closes their connections.
func (p *Pool) closeSlots(pr *peer) {
	for i := range pr.slots {
		s := &pr.slots[i]
		s.mu.Lock()
		c := s.conn
		s.conn = nil
		s.mu.Unlock()
		if c != nil {
			_ = c.Close()
		}
	}
}

// conn returns a live connection to addr, dialing one if its slot is empty,
// broken or idle.
func (p *Pool) conn(ctx context.Context, addr string) (*Conn, error) {
	p.mu.Lock()
	if p.peers == nil {
		p.mu.Unlock()
		return nil, ErrPoolClosed
	}
	pr := p.peers[addr]
	if pr == nil {
		pr = &peer{slots: make([]slot, p.cfg.ConnsPerAddr)}
		p.peers[addr] = pr
	}
	p.mu.Unlock()

	s := &pr.slots[pr.next.Add(1)%uint32(len(pr.slots))]
	now := p.now().UnixNano()
	s.mu.Lock()
	if c := s.conn; c != nil {
		if c.Err() == nil && !c.idle(now-int64(p.cfg.IdleTimeout)) {
			// Stored under the slot lock, so a concurrent caller cannot
			// retire c as idle between the check and this handout.
			c.lastUsed.Store(now)
			s.mu.Unlock()
			return c, nil
		}
		if !p.track() {
			// Closing: Close (or CloseAddr) empties this slot itself.
			s.mu.Unlock()
			return nil, ErrPoolClosed
		}
		// Broken or idle: drop it. Close waits for its goroutines, which
		// for a broken conn have already ended or are ending.
		s.conn = nil
		defer func() {
			_ = c.Close()
			p.wg.Done()
		}()
	}
	if pr.removed.Load() {
		s.mu.Unlock()
		return nil, p.goneErr(addr)
	}
	if a := s.dialing; a != nil {
		s.mu.Unlock()
		select {
		case <-a.done:
			return a.conn, a.err
		case <-ctx.Done():
			return nil, fmt.Errorf("wire: waiting for dial to %s: %w", addr, ctx.Err())
		}
	}
	if !p.track() {
		s.mu.Unlock()
		return nil, ErrPoolClosed
	}
	defer p.wg.Done()
	a := &dialAttempt{done: make(chan struct{})}
	s.dialing = a
	s.mu.Unlock()

	a.conn, a.err = p.dial(ctx, addr)

	s.mu.Lock()
	s.dialing = nil
	// NB: Close and CloseAddr mark the pool or peer gone before they empty
	// the slots under their locks, so a conn dialed concurrently is either
	// seen and closed by them or sees gone here.
	if a.err == nil && (p.closed.Load() || pr.removed.Load()) {
		_ = a.conn.Close()
		a.conn, a.err = nil, p.goneErr(addr)
	}
	if a.err == nil {
		a.conn.lastUsed.Store(p.now().UnixNano())
		s.conn = a.conn
	}
	close(a.done)
	s.mu.Unlock()
	return a.conn, a.err
}

// track registers work that Close must wait for (p.wg.Done when it ends),
// or reports false if the pool is closed.
func (p *Pool) track() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.peers == nil {
		return false
	}
	p.wg.Add(1)
	return true
}

// goneErr is the error for a call that raced with Close or CloseAddr.
func (p *Pool) goneErr(addr string) error {
	if p.closed.Load() {
		return ErrPoolClosed
	}
	return fmt.Errorf("%w: connections to %s closed by CloseAddr", ErrConnClosed, addr)
}

// dial connects to addr, aborting if ctx ends or the pool closes.
func (p *Pool) dial(ctx context.Context, addr string) (*Conn, error) {
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(p.ctx, cancel)
	defer stop()
	c, err := Dial(dctx, addr, p.cfg)
	if err != nil && p.closed.Load() {
		return nil, ErrPoolClosed
	}
	return c, err
}
