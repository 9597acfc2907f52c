package wire

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mnemo-kv/mnemo/internal/netutil"
)

const (
	// minMaxFrame is the smallest MaxFrame accepted, in bytes: room for any
	// error response.
	minMaxFrame = 1 << 10

	// readBufSize is each connection's bufio.Reader size in bytes.
	readBufSize = 32 << 10

	// maxErrorMsg bounds, in bytes, the message of an error response that
	// would not otherwise fit in a frame.
	maxErrorMsg = 256
)

// Handler serves one request. It runs on its own goroutine, at most
// ServerConfig.MaxInFlight at once per connection. ctx is cancelled when the
// connection closes or the server stops; Server.Close waits for every
// handler, so a handler must return soon after ctx ends. NB: while a
// connection is at MaxInFlight its reader is paused, so a peer that hangs
// up is noticed only when a handler returns or a response fails to send:
// handlers should bound their own time (the node uses the request timeout).
//
// payload is the handler's to keep. resp is handed to the server and must
// not be modified after the handler returns. respKind is sent as is (0
// included). If err is non-nil, resp is ignored and the client gets an error
// response: the *Error in err's chain as is, or CodeInternal with err's text.
// A panic is recovered, logged and answered with CodeInternal. A handler
// that does not serve kind should return an Error with CodeUnknownKind.
type Handler func(ctx context.Context, kind Kind, payload []byte) (respKind Kind, resp []byte, err error)

// ServerConfig tunes a Server. Zero fields take the defaults of
// DefaultServerConfig.
type ServerConfig struct {
	// MaxFrame bounds a frame's length field in bytes (12 + payload), for
	// requests read and responses written. Default DefaultMaxFrame (8 MiB);
	// at least 1 KiB.
	MaxFrame int
	// MaxInFlight bounds concurrent handlers per connection. At the bound
	// the connection's reader stops reading until a handler returns, so the
	// client sees TCP backpressure rather than unbounded queueing. Default
	// 256.
	MaxInFlight int
	// FrameTimeout is how long the rest of a frame may take once its first
	// byte has arrived; a peer that stalls mid-frame is disconnected.
	// Default 10s.
	FrameTimeout time.Duration
	// IdleTimeout closes a connection that has sent no frame for this long
	// while no handler is running on it. Default 5m.
	IdleTimeout time.Duration
	// WriteTimeout disconnects a peer that accepts no response bytes for
	// this long, so a client that stops reading cannot pin handlers.
	// Default 10s.
	WriteTimeout time.Duration
	// Inline, when set, names the kinds whose requests the connection's
	// reader runs itself instead of handing them to a handler goroutine:
	// handlers that are quick and never wait on another request (a
	// memtable read or write without an fsync). It saves two goroutine
	// hand-offs per request, and the requests of one connection run one
	// at a time, in order. NB: an inline handler that blocks stops the
	// connection's reading, as MaxInFlight does.
	Inline func(Kind) bool
	// Authorize, when set, vets each connection once its first frame has
	// been read (so a TLS handshake on a wrapped listener is done): an
	// error closes the connection, logged; otherwise allow, when non-nil,
	// is asked for each request's kind, and a kind it refuses is answered
	// with CodeForbidden. It runs on the connection's reader goroutine.
	Authorize func(nc net.Conn) (allow func(Kind) bool, err error)
	// Logger receives connection-level events (protocol errors, panics).
	// The zero Logger discards them.
	Logger zerolog.Logger
}

// DefaultServerConfig returns the defaults for a server on a LAN.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		MaxFrame:     DefaultMaxFrame,
		MaxInFlight:  256,
		FrameTimeout: 10 * time.Second,
		IdleTimeout:  5 * time.Minute,
		WriteTimeout: 10 * time.Second,
	}
}

// Validate reports every field that is set to an unusable value at once.
// Zero fields are fine: they take defaults.
func (c ServerConfig) Validate() error {
	var errs []error
	if c.MaxFrame != 0 && c.MaxFrame < minMaxFrame {
		errs = append(errs, fmt.Errorf("wire: MaxFrame %d is below %d bytes", c.MaxFrame, minMaxFrame))
	}
	if c.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("wire: MaxInFlight %d is negative", c.MaxInFlight))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"FrameTimeout", c.FrameTimeout}, {"IdleTimeout", c.IdleTimeout}, {"WriteTimeout", c.WriteTimeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("wire: %s %v is negative", d.name, d.v))
		}
	}
	return errors.Join(errs...)
}

// withDefaults replaces zero and invalid fields by their defaults.
func (c ServerConfig) withDefaults() ServerConfig {
	d := DefaultServerConfig()
	if c.MaxFrame < minMaxFrame {
		c.MaxFrame = d.MaxFrame
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = d.MaxInFlight
	}
	if c.FrameTimeout <= 0 {
		c.FrameTimeout = d.FrameTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	return c
}

// ServerStats are a server's counters since NewServer.
type ServerStats struct {
	ConnsOpen      int64  // connections being served now
	ConnsAccepted  uint64 // connections accepted in total
	FramesIn       uint64 // frames read
	FramesOut      uint64 // frames written (buffered for a flush)
	Flushes        uint64 // batches flushed to the socket; FramesOut/Flushes is the batching factor
	ProtocolErrors uint64 // bad sizes, stalls mid-frame, misdirected responses
	HandlerPanics  uint64 // handler panics recovered
}

// Server serves requests on any number of listeners. It is safe for
// concurrent use.
type Server struct {
	cfg ServerConfig
	h   Handler
	log zerolog.Logger

	// acc accepts and tracks the connections; its Context is the parent
	// of every connection's context.
	acc *netutil.Acceptor[*serverConn]
	// ctx is acc.Context(): cancelled by Close once connections are closed.
	ctx context.Context

	// work hands requests to idle handler goroutines; see dispatch.
	// workers counts those goroutines; Close waits for them after acc.
	work    chan job
	workers sync.WaitGroup

	stats struct {
		connsOpen     atomic.Int64
		connsAccepted atomic.Uint64
		framesIn      atomic.Uint64
		writerStats
		protocolErrors atomic.Uint64
		handlerPanics  atomic.Uint64
	}
}

// NewServer returns a server that answers requests with h. Invalid config
// fields take their defaults; call cfg.Validate first to report them.
func NewServer(cfg ServerConfig, h Handler) *Server {
	s := &Server{cfg: cfg.withDefaults(), h: h, log: cfg.Logger, work: make(chan job)}
	s.acc = netutil.NewAcceptor(netutil.AcceptorConfig[*serverConn]{
		Name:      "wire",
		Logger:    cfg.Logger,
		Open:      s.openConn,
		CloseConn: func(sc *serverConn) { _ = sc.nc.Close() },
	})
	s.ctx = s.acc.Context()
	return s
}

// Serve accepts connections on l and serves each on its own goroutines until
// Close, then returns nil. It closes l when it returns. Serve may be called
// for several listeners; after Close it closes l and returns nil at once.
// Temporary accept failures (such as running out of file descriptors) are
// logged and retried with backoff. l may be any net.Listener (a TLS one).
func (s *Server) Serve(l net.Listener) error { return s.acc.Serve(l) }

// connKey keys the connection in a handler's context.
type connKey struct{}

// ConnOf returns the connection a handler's request came on (nil outside
// a handler): its TLS state says who the peer is.
func ConnOf(ctx context.Context) net.Conn {
	c, _ := ctx.Value(connKey{}).(net.Conn)
	return c
}

// openConn prepares the connection nc and starts its writer; the returned
// serve runs its reader until it ends.
func (s *Server) openConn(nc net.Conn) (*serverConn, func()) {
	sc := &serverConn{
		s:   s,
		nc:  nc,
		br:  bufio.NewReaderSize(nc, readBufSize),
		sem: make(chan struct{}, s.cfg.MaxInFlight),
	}
	sc.ctx, sc.cancel = context.WithCancel(context.WithValue(s.ctx, connKey{}, nc))
	// A failed write ends the connection at once: closing nc stops the
	// reader, and cancelling ctx releases handlers even while the reader
	// is paused at MaxInFlight and would not notice.
	sc.w = newFrameWriter(nc, s.cfg.WriteTimeout, func(error) {
		_ = nc.Close()
		sc.cancel()
	}, &s.stats.writerStats)
	s.stats.connsAccepted.Add(1)
	s.stats.connsOpen.Add(1)
	go sc.w.run() // owned by sc.serve, which waits for w.done
	return sc, sc.serve
}

// Close stops the server: it closes every listener and connection, cancels
// every handler's context and returns when all goroutines the server started
// have ended. Calls in flight fail on the client with ErrConnClosed. Close is
// idempotent; every call waits.
func (s *Server) Close() error {
	// The Acceptor closes connections before it cancels handlers, so that
	// a handler returning early on ctx cannot get a response out: every
	// in-flight caller sees ErrConnClosed, never a half-done answer.
	s.acc.Close()
	// Every connection has ended, so no handler is running: idle workers
	// see ctx done and exit.
	s.workers.Wait()
	return nil
}

// Stats returns the server's counters. They are read one by one, not as a
// snapshot.
func (s *Server) Stats() ServerStats {
	return ServerStats{
		ConnsOpen:      s.stats.connsOpen.Load(),
		ConnsAccepted:  s.stats.connsAccepted.Load(),
		FramesIn:       s.stats.framesIn.Load(),
		FramesOut:      s.stats.framesOut.Load(),
		Flushes:        s.stats.flushes.Load(),
		ProtocolErrors: s.stats.protocolErrors.Load(),
		HandlerPanics:  s.stats.handlerPanics.Load(),
	}
}

// serverConn is one accepted connection: a reader goroutine (serve), a
// writer goroutine (w) and up to MaxInFlight handler goroutines.
type serverConn struct {
	s        *Server
	nc       net.Conn
	br       *bufio.Reader
	w        *frameWriter
	ctx      context.Context // handlers' context; cancelled when the conn ends
	cancel   context.CancelFunc
	sem      chan struct{} // one token per running handler
	handlers sync.WaitGroup
	// authorized is set once ServerConfig.Authorize has passed; allow is
	// what it returned. Reader goroutine only.
	authorized bool
	allow      func(Kind) bool
}

// errUnauthorized wraps an Authorize refusal.
var errUnauthorized = errors.New("wire: connection refused")

// errIdle ends a connection that sent nothing for IdleTimeout.
var errIdle = errors.New("wire: connection idle")

// serve reads requests until the connection ends, then tears it down: on a
// bad frame size it first queues one error frame with id 0.
func (sc *serverConn) serve() {
	s := sc.s

	err := sc.readLoop()
	sc.cancel()

	var fse *frameSizeError
	switch {
	case errors.As(err, &fse):
		s.stats.protocolErrors.Add(1)
		s.log.Warn().Err(err).Str("remote", sc.nc.RemoteAddr().String()).Msg("wire: closing connection")
		code := CodeTooLarge
		if fse.size < minFrameLen {
			code = CodeBadRequest
		}
		sc.w.send(errorFrame(0, 0, &Error{Code: code, Msg: err.Error()}, s.cfg.MaxFrame), s.ctx.Done())
	case errors.Is(err, errUnauthorized):
		s.log.Warn().Err(err).Str("remote", sc.nc.RemoteAddr().String()).Msg("wire: closing unauthorized connection")
	case errors.Is(err, os.ErrDeadlineExceeded):
		// Stalled mid-frame: idle connections end with errIdle instead.
		s.stats.protocolErrors.Add(1)
		s.log.Warn().Str("remote", sc.nc.RemoteAddr().String()).Dur("frame_timeout", s.cfg.FrameTimeout).
			Msg("wire: closing connection stalled mid-frame")
	case err == errIdle, err == io.EOF, s.ctx.Err() != nil, errors.Is(err, net.ErrClosed):
	default:
		s.log.Debug().Err(err).Str("remote", sc.nc.RemoteAddr().String()).Msg("wire: connection ended")
	}

	sc.w.close()
	<-sc.w.done
	_ = sc.nc.Close()
	sc.handlers.Wait()
	s.stats.connsOpen.Add(-1)
}

// readLoop reads frames and starts a handler for each request. It returns
// the error that ended the connection.
func (sc *serverConn) readLoop() error {
	s := sc.s
	for {
		// Waiting for a frame's first byte is idleness; once it has come,
		// the rest must follow within FrameTimeout. A frame that is already
		// buffered needs no deadline: reading it makes no syscall.
		if sc.br.Buffered() == 0 {
			_ = sc.nc.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
			if _, err := sc.br.Peek(1); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					if len(sc.sem) > 0 {
						continue // quiet, but a handler is still working for it
					}
					return errIdle
				}
				return err
			}
		}
		if !frameBuffered(sc.br) {
			_ = sc.nc.SetReadDeadline(time.Now().Add(s.cfg.FrameTimeout))
		}
		h, payload, err := ReadFrame(sc.br, s.cfg.MaxFrame)
		if err != nil {
			return err
		}
		s.stats.framesIn.Add(1)

		switch {
		case h.Flags&FlagResponse != 0:
			// Clients never serve requests, so a response is misdirected;
			// framing is intact, so drop it and carry on.
			s.stats.protocolErrors.Add(1)
			continue
		case h.Kind == 0:
			sc.w.send(errorFrame(h.ID, 0, &Error{Code: CodeBadRequest, Msg: errReservedKind.Error()}, s.cfg.MaxFrame), sc.ctx.Done())
			continue
		}
		if s.cfg.Authorize != nil {
			if !sc.authorized {
				allow, err := s.cfg.Authorize(sc.nc)
				if err != nil {
					return fmt.Errorf("%w: %w", errUnauthorized, err)
				}
				sc.authorized, sc.allow = true, allow
			}
			if sc.allow != nil && !sc.allow(h.Kind) {
				sc.w.send(errorFrame(h.ID, h.Kind, &Error{Code: CodeForbidden, Msg: fmt.Sprintf("request kind %d is not allowed to this peer", h.Kind)}, s.cfg.MaxFrame), sc.ctx.Done())
				continue
			}
		}

		if s.cfg.Inline != nil && s.cfg.Inline(h.Kind) {
			sc.respond(h, payload)
			continue
		}
		select {
		case sc.sem <- struct{}{}:
		case <-sc.ctx.Done():
			return sc.ctx.Err()
		}
		sc.handlers.Add(1)
		s.dispatch(job{sc, h, payload})
	}
}

// job is one request for a handler goroutine.
type job struct {
	sc      *serverConn
	h       Header
	payload []byte
}

// workerIdle is how long an idle handler goroutine waits for more work.
const workerIdle = 5 * time.Second

// dispatch runs a request on an idle handler goroutine, or a new one.
// Handler goroutines are reused because a new goroutine starts with a small
// stack that Pebble's read path then grows (copying it) on nearly every
// request: 8% of a node's CPU per put before reuse.
func (s *Server) dispatch(j job) {
	select {
	case s.work <- j:
	default:
		s.workers.Add(1)
		go s.worker(j)
	}
}

// worker runs j, then further jobs, until idle for workerIdle or the server
// closes.
func (s *Server) worker(j job) {
	defer s.workers.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		j.sc.handle(j.h, j.payload)
		j = job{}
		idle.Reset(workerIdle)
		select {
		case j = <-s.work:
		case <-idle.C:
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// handle runs the handler for one request on a handler goroutine and
// queues its response.
func (sc *serverConn) handle(h Header, payload []byte) {
	defer sc.handlers.Done()
	sc.respond(h, payload)
	<-sc.sem
}

// respond runs the handler for one request and queues its response.
func (sc *serverConn) respond(h Header, payload []byte) {
	maxFrame := sc.s.cfg.MaxFrame
	kind, resp, err := sc.call(h.Kind, payload)
	if err == nil && checkSize(len(resp), maxFrame) != nil {
		err = Errorf(CodeTooLarge, "response of %d bytes exceeds frame limit %d", len(resp), maxFrame)
	}
	f := outFrame{h: Header{ID: h.ID, Kind: kind, Flags: FlagResponse}, payload: resp}
	if err != nil {
		f = errorFrame(h.ID, h.Kind, toError(err), maxFrame)
	}
	// No cancel channel: the writer drains what is queued even when the
	// connection is closing, and send returns once the writer has exited.
	sc.w.send(f, nil)
}

// call runs the handler, turning a panic into CodeInternal.
func (sc *serverConn) call(kind Kind, payload []byte) (respKind Kind, resp []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			sc.s.stats.handlerPanics.Add(1)
			sc.s.log.Error().Str("panic", fmt.Sprint(r)).Uint16("kind", uint16(kind)).
				Bytes("stack", debug.Stack()).Msg("wire: handler panicked")
			respKind, resp, err = 0, nil, Errorf(CodeInternal, "handler panic: %v", r)
		}
	}()
	return sc.s.h(sc.ctx, kind, payload)
}

// errorFrame encodes e as the error response to request id. An Error too
// big for a frame is sent with its message cut to maxErrorMsg and no Data.
func errorFrame(id uint64, kind Kind, e *Error, maxFrame int) outFrame {
	b, err := Marshal(e)
	if err != nil || checkSize(len(b), maxFrame) != nil {
		msg := e.Msg
		if len(msg) > maxErrorMsg {
			msg = msg[:maxErrorMsg]
		}
		b, _ = Marshal(&Error{Code: e.Code, Msg: msg})
	}
	return outFrame{h: Header{ID: id, Kind: kind, Flags: FlagResponse | FlagError}, payload: b}
}
