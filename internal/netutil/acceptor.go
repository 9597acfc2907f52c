// Package netutil holds the accept side shared by mnemo's servers
// (internal/wire's RPC server and resp's Redis server): the accept loop
// with its backoff on temporary errors, the set of listeners and
// connections being served, and a Close that ends them all and waits.
//
// The Acceptor knows nothing of the listener it is given: a TLS listener
// (tls.NewListener) or any other net.Listener wrapper serves the same way.
package netutil

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Accept failures that are not the listener closing are retried after a
// backoff doubling from minBackoff to maxBackoff.
const (
	minBackoff = 5 * time.Millisecond
	maxBackoff = time.Second
)

// AcceptorConfig configures an Acceptor for connections of type C.
type AcceptorConfig[C comparable] struct {
	// Name prefixes log messages and errors ("wire", "resp").
	Name string
	// Logger receives accept failures. The zero Logger discards them.
	Logger zerolog.Logger
	// Open turns an accepted connection into the server's connection and
	// the function that serves it until it ends. It runs with the
	// Acceptor's lock held, so it must only build (it may start goroutines
	// it owns through the connection, as wire's writer). Required.
	Open func(nc net.Conn) (c C, serve func())
	// CloseConn closes c when the Acceptor closes: it must make serve
	// return soon (closing the net.Conn does). Required.
	CloseConn func(c C)
	// Forget, when set, runs when c's serve has returned, with the lock
	// held, before c leaves the set: for figures kept of ended
	// connections.
	Forget func(c C)
	// MaxConns, when positive, bounds the connections served at once; a
	// connection over the bound is handed to Reject instead of Open.
	MaxConns int
	// Reject answers a connection refused for MaxConns, on a goroutine
	// the Acceptor owns, and must close nc and return soon (bound its
	// write with a deadline). Nil: nc is closed.
	Reject func(nc net.Conn)
}

// Acceptor runs the accept loops of one server: any number of listeners,
// one goroutine per connection, all owned by it. It is safe for
// concurrent use.
type Acceptor[C comparable] struct {
	cfg AcceptorConfig[C]

	// ctx is the parent of the server's per-connection contexts; Close
	// cancels it after closing the connections.
	ctx    context.Context
	cancel context.CancelFunc

	// wg counts Serve calls, connection goroutines and rejections; Close
	// waits for it. NB: wg.Add is done under mu after checking closed, so
	// it cannot race with Close's wg.Wait.
	wg sync.WaitGroup

	// mu guards the fields in it.
	mu struct {
		sync.Mutex
		closed    bool
		listeners map[net.Listener]struct{}
		conns     map[C]struct{}
	}
}

// NewAcceptor returns an Acceptor serving nothing yet.
func NewAcceptor[C comparable](cfg AcceptorConfig[C]) *Acceptor[C] {
	a := &Acceptor[C]{cfg: cfg}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.mu.listeners = make(map[net.Listener]struct{})
	a.mu.conns = make(map[C]struct{})
	return a
}

// Context is cancelled by Close, once every connection is closed.
func (a *Acceptor[C]) Context() context.Context { return a.ctx }

// Serve accepts connections on l and serves each on its own goroutine
// until Close, then returns nil. It closes l when it returns. Serve may be
// called for several listeners; after Close it closes l and returns nil at
// once. Temporary accept failures (such as running out of file
// descriptors) are logged and retried with backoff; a listener closed by
// someone else ends Serve with an error wrapping net.ErrClosed.
func (a *Acceptor[C]) Serve(l net.Listener) error {
	a.mu.Lock()
	if a.mu.closed {
		a.mu.Unlock()
		_ = l.Close()
		return nil
	}
	a.mu.listeners[l] = struct{}{}
	a.wg.Add(1)
	a.mu.Unlock()
	defer a.wg.Done()
	defer func() {
		a.mu.Lock()
		delete(a.mu.listeners, l)
		a.mu.Unlock()
		_ = l.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if a.Closed() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("%s: accept: %w", a.cfg.Name, err)
			}
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
			a.cfg.Logger.Warn().Err(err).Dur("retry_in", backoff).Msg(a.cfg.Name + ": accept failed")
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-a.ctx.Done():
				t.Stop()
				return nil
			}
			continue
		}
		backoff = 0
		if !a.start(nc) {
			_ = nc.Close()
			return nil
		}
	}
}

// start serves nc, or rejects it at MaxConns. It returns false if the
// Acceptor is closed.
func (a *Acceptor[C]) start(nc net.Conn) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mu.closed {
		return false
	}
	if a.cfg.MaxConns > 0 && len(a.mu.conns) >= a.cfg.MaxConns {
		a.wg.Add(1)
		go func() { // owned by a.wg; Reject must return soon
			defer a.wg.Done()
			if a.cfg.Reject != nil {
				a.cfg.Reject(nc)
			}
			_ = nc.Close()
		}()
		return true
	}
	c, serve := a.cfg.Open(nc)
	a.mu.conns[c] = struct{}{}
	a.wg.Add(1)
	go func() { // owned by a.wg; CloseConn ends it
		defer a.wg.Done()
		serve()
		a.mu.Lock()
		if a.cfg.Forget != nil {
			a.cfg.Forget(c)
		}
		delete(a.mu.conns, c)
		a.mu.Unlock()
	}()
	return true
}

// Closed reports whether Close has begun.
func (a *Acceptor[C]) Closed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mu.closed
}

// Conns calls f with the connections being served, under the Acceptor's
// lock (Open, Forget and Close wait meanwhile): f must not call the
// Acceptor.
func (a *Acceptor[C]) Conns(f func(conns map[C]struct{})) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f(a.mu.conns)
}

// Close stops accepting: it closes every listener, then every connection
// (CloseConn), cancels Context and returns when every goroutine the
// Acceptor started has ended. Close is idempotent; every call waits.
func (a *Acceptor[C]) Close() {
	a.mu.Lock()
	if !a.mu.closed {
		a.mu.closed = true
		for l := range a.mu.listeners {
			_ = l.Close()
		}
		for c := range a.mu.conns {
			a.cfg.CloseConn(c)
		}
		a.cancel()
	}
	a.mu.Unlock()
	a.wg.Wait()
}
