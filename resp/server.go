package resp

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/mnemo-kv/mnemo/internal/netutil"
)

// rejectTimeout bounds, in time, writing the "max clients" reply to a
// connection refused for MaxConns.
const rejectTimeout = time.Second

// Server serves the Redis protocol on any number of listeners. It is safe
// for concurrent use.
type Server struct {
	cfg     Config
	b       Backend
	log     zerolog.Logger
	started time.Time

	// acc accepts and tracks the connections (it takes its lock when a
	// connection opens or closes and for INFO and metrics, never per
	// command); its Context is the parent of every connection's context.
	acc *netutil.Acceptor[*conn]
	// ctx is acc.Context(): cancelled by Close once connections are closed.
	ctx context.Context

	// retired holds the command counts of closed connections, by command
	// index (see commandTable); live ones count their own. NB: guarded by
	// acc's lock: read and written only in acc's Forget and Conns.
	retired []uint64

	// nextID numbers connections (CLIENT ID, HELLO).
	nextID atomic.Int64

	stats struct {
		connsAccepted  atomic.Uint64 // connections served in total
		connsRejected  atomic.Uint64 // refused for MaxConns
		protocolErrors atomic.Uint64 // malformed or oversized requests
		stalls         atomic.Uint64 // connections closed mid-request by StallTimeout
		writeTimeouts  atomic.Uint64 // connections closed by WriteTimeout
		errorReplies   atomic.Uint64 // error replies sent (commands and protocol)
		panics         atomic.Uint64 // command panics recovered
		authFailures   atomic.Uint64 // failed AUTH and HELLO AUTH
		authTimeouts   atomic.Uint64 // connections closed by AuthTimeout
		deniedCommands atomic.Uint64 // NOPERM for a command (or NOAUTH)
		deniedKeys     atomic.Uint64 // NOPERM for a key
	}
}

// NewServer returns a server that answers with b. Invalid config fields
// take their defaults; call cfg.Validate first to report them. If
// cfg.Registerer is set, the server's metrics are registered there.
func NewServer(cfg Config, b Backend) *Server {
	s := &Server{cfg: cfg.withDefaults(), b: b, log: cfg.Logger, started: time.Now()}
	s.retired = make([]uint64, len(commandTable)+1)
	s.acc = netutil.NewAcceptor(netutil.AcceptorConfig[*conn]{
		Name:      "resp",
		Logger:    cfg.Logger,
		Open:      s.openConn,
		CloseConn: func(c *conn) { _ = c.nc.Close() },
		Forget:    s.forgetConn,
		MaxConns:  s.cfg.MaxConns,
		Reject:    s.reject,
	})
	s.ctx = s.acc.Context()
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(&collector{s: s}); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				s.log.Warn().Err(err).Msg("resp: metrics not registered")
			} else {
				s.log.Warn().Msg("resp: metrics already registered by another server; this one's are not exported")
			}
		}
	}
	return s
}

// Serve accepts connections on l and serves each on its own goroutine
// until Close, then returns nil. It closes l when it returns. Serve may be
// called for several listeners; after Close it closes l and returns nil at
// once. Temporary accept failures (such as running out of file
// descriptors) are logged and retried with backoff. l may be any
// net.Listener (a TLS one).
func (s *Server) Serve(l net.Listener) error { return s.acc.Serve(l) }

// openConn prepares the connection nc; the returned serve runs it.
func (s *Server) openConn(nc net.Conn) (*conn, func()) {
	c := newConn(s, nc)
	s.stats.connsAccepted.Add(1)
	return c, c.serve
}

// reject refuses nc at MaxConns, bounded by rejectTimeout.
func (s *Server) reject(nc net.Conn) {
	s.stats.connsRejected.Add(1)
	s.stats.errorReplies.Add(1)
	_ = nc.SetWriteDeadline(time.Now().Add(rejectTimeout))
	_, _ = nc.Write([]byte("-ERR max number of clients reached\r\n"))
}

// forgetConn keeps the counts of a connection that has ended (under acc's
// lock).
func (s *Server) forgetConn(c *conn) {
	for i := range c.counts {
		s.retired[i] += c.counts[i].Load()
	}
}

// Close stops the server: it closes every listener and connection, cancels
// the context of every Backend call in flight, and returns when every
// goroutine the server started has ended. Close is idempotent; every call
// waits.
func (s *Server) Close() error {
	s.acc.Close()
	return nil
}

// Stats are a server's counters since NewServer.
type Stats struct {
	ConnsOpen      int    // connections being served now
	ConnsAccepted  uint64 // connections served in total
	ConnsRejected  uint64 // connections refused at MaxConns
	Commands       uint64 // commands processed, including unknown ones
	ProtocolErrors uint64 // malformed or oversized requests (each closed its connection)
	Stalls         uint64 // connections closed mid-request after StallTimeout
	WriteTimeouts  uint64 // connections closed for not reading replies within WriteTimeout
	ErrorReplies   uint64 // error replies sent
	Panics         uint64 // command panics recovered
	AuthFailures   uint64 // failed AUTH and HELLO AUTH (wrong password, unknown or disabled user)
	AuthTimeouts   uint64 // connections closed for not authenticating within AuthTimeout
	DeniedCommands uint64 // commands refused with NOAUTH or NOPERM for the command
	DeniedKeys     uint64 // commands refused with NOPERM for a key
}

// Stats returns the server's counters. They are read one by one, not as a
// snapshot.
func (s *Server) Stats() Stats {
	counts, open := s.commandCounts()
	var total uint64
	for _, n := range counts {
		total += n
	}
	return Stats{
		ConnsOpen:      open,
		ConnsAccepted:  s.stats.connsAccepted.Load(),
		ConnsRejected:  s.stats.connsRejected.Load(),
		Commands:       total,
		ProtocolErrors: s.stats.protocolErrors.Load(),
		Stalls:         s.stats.stalls.Load(),
		WriteTimeouts:  s.stats.writeTimeouts.Load(),
		ErrorReplies:   s.stats.errorReplies.Load(),
		Panics:         s.stats.panics.Load(),
		AuthFailures:   s.stats.authFailures.Load(),
		AuthTimeouts:   s.stats.authTimeouts.Load(),
		DeniedCommands: s.stats.deniedCommands.Load(),
		DeniedKeys:     s.stats.deniedKeys.Load(),
	}
}

// commandCounts sums the command counts of closed and open connections,
// by command index, and returns the number of open connections.
func (s *Server) commandCounts() (counts []uint64, open int) {
	s.acc.Conns(func(conns map[*conn]struct{}) {
		counts = append([]uint64(nil), s.retired...)
		for c := range conns {
			for i := range c.counts {
				counts[i] += c.counts[i].Load()
			}
		}
		open = len(conns)
	})
	return counts, open
}

// newConn prepares a connection; serve runs it.
func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, id: s.nextID.Add(1), proto: 2}
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	c.counts = make([]atomic.Uint64, len(commandTable)+1)
	c.r = bufio.NewReaderSize(connIO{c}, readBufSize)
	c.w = bufio.NewWriterSize(connIO{c}, writeBufSize)
	c.p = newParser(c.r, s.cfg.MaxBulk, s.cfg.MaxArgs, s.cfg.MaxRequest)
	if s.cfg.Users != nil {
		c.authBy = time.Now().Add(s.cfg.AuthTimeout)
		c.p.maxBulk, c.p.maxArgs, c.p.unauth = min(PreAuthMaxBulk, s.cfg.MaxBulk), min(PreAuthMaxArgs, s.cfg.MaxArgs), true
	}
	return c
}
