package resp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/mnemo-kv/mnemo/internal/acl"
)

const (
	// writeBufSize is each connection's bufio.Writer size in bytes: room
	// for the replies to a large pipeline; a reply larger than what is
	// left goes to the socket directly.
	writeBufSize = 32 << 10

	// maxKeptReply is the largest reply buffer, in bytes, a slot keeps for
	// reuse; a bigger one (a large GET) is dropped after it is written.
	maxKeptReply = 64 << 10

	// maxKeyPairs bounds the key comparisons between two pipelined
	// commands; beyond it they are assumed to conflict (and run in order).
	maxKeyPairs = 4096
)

var (
	// spawnAbove is the Backend latency (the connection's moving average)
	// above which pipelined commands run concurrently. Below it a
	// goroutine per command costs more than it saves: against an
	// in-memory Backend, redis-benchmark -P 16 ran about 1.5x faster
	// sequentially; against a 3-node cluster with sync=always (writes
	// wait for fsync, a few ms) SET -P 16 ran 1.8x faster concurrently.
	// A variable so that benchmarks can force either way.
	spawnAbove = 50 * time.Microsecond
)

// errQuit ends a connection after QUIT's reply.
var errQuit = errors.New("resp: client quit")

// conn is one client connection. Everything but counts and the slots'
// async work belongs to its reader goroutine (serve).
type conn struct {
	s   *Server
	nc  net.Conn
	id  int64
	r   *bufio.Reader
	w   *bufio.Writer
	p   *parser
	ctx context.Context // Backend calls' context; cancelled when the conn ends
	// cancel ends ctx.
	cancel context.CancelFunc

	// counts is the commands processed, by command index (the last one is
	// unknown commands). Written by serve, read by INFO and metrics.
	counts []atomic.Uint64

	// Per-connection state set by commands.
	q     Quorum // MNEMO.QUORUM
	proto int    // 2 or 3 (HELLO)
	name  string // CLIENT SETNAME
	quit  bool   // QUIT was read: answer, flush and close

	// user is who the connection authenticated as (AUTH, HELLO AUTH or a
	// client certificate); nil before that. Unused without Config.Users.
	user *acl.User
	// authFails counts this connection's failed AUTHs since its last
	// success: each waits longer before its reply (authDelay).
	authFails int
	// authBy is when a connection that has not authenticated is closed
	// (Config.AuthTimeout after it was accepted).
	authBy time.Time
	// certChecked is set once the first read has returned, when a TLS
	// handshake (done by that read) has had its chance to name a user.
	certChecked bool

	// pending holds the replies not yet written, in request order. Slots
	// with async set are running on their own goroutine until done.
	pending []*slot
	// batch holds plain SETs that are in pending but not yet run, when
	// the Backend is a BatchSetter: they run together (runBatch) once the
	// requests already read are parsed, or before anything else runs or
	// is written.
	batch []*slot
	free  []*slot
	// running counts the async slots in pending.
	running int
	// inflight is the argument bytes held by pending slots.
	inflight int
	// latency is the moving average of this connection's data commands'
	// run time (1/8 weight per sample), which decides whether pipelined
	// commands run concurrently (spawnAbove).
	latency time.Duration

	// rdMode, rdDeadline and wrDeadline are the deadlines last set on nc,
	// so they are refreshed only when they change meaningfully; rdRequest
	// is the request (parser.requests) a stall deadline was set for.
	rdMode     int // 0: none set, 1: idle, 2: stall, 3: authenticate by authBy
	rdRequest  uint64
	rdDeadline time.Time
	wrDeadline time.Time
	// werr is the first failed write: the connection ends at once rather
	// than computing replies nobody will read.
	werr error
}

// slot is one command's reply in the pending queue. For a data command it
// also carries what the command runs with, captured when it was read, so
// that a later MNEMO.QUORUM or HELLO does not change it.
type slot struct {
	cmd   *command
	args  [][]byte
	q     Quorum
	proto int
	buf   []byte // the encoded reply
	// value, if set, is a large bulk string's bytes, written after buf and
	// followed by CRLF: it goes to the socket without being copied.
	value []byte
	size  int // argument bytes, for conn.inflight
	async bool
	done  chan struct{} // receives once when an async slot is done
	took  time.Duration // how long the command ran
}

// connIO is the connection as its bufio.Reader and Writer see it. Before
// every read from the socket it writes the replies of every command read
// so far and flushes them, so the replies to a pipeline go out in one
// write, and sets the read deadline; every write refreshes the write
// deadline.
type connIO struct{ c *conn }

func (x connIO) Read(b []byte) (int, error) {
	c := x.c
	// NB: flushPending runs the batched SETs before it writes their
	// replies, so a request cut across two reads cannot hold them.
	if err := c.flushPending(); err != nil {
		return 0, err
	}
	c.setReadDeadline()
	n, err := c.nc.Read(b)
	if !c.certChecked {
		c.certChecked = true
		if c.s.cfg.Users != nil && c.user == nil {
			c.certAuth()
		}
	}
	return n, err
}

func (x connIO) Write(b []byte) (int, error) {
	c := x.c
	d := c.s.cfg.WriteTimeout
	if now := time.Now(); c.wrDeadline.Sub(now) < d-d/8 {
		c.wrDeadline = now.Add(d)
		_ = c.nc.SetWriteDeadline(c.wrDeadline)
	}
	n, err := c.nc.Write(b)
	if err != nil && c.werr == nil {
		c.werr = err
	}
	return n, err
}

// setReadDeadline applies IdleTimeout between requests, refreshed while
// the connection is idle, and StallTimeout from the start of a request to
// its end: a client that trickles a request in a byte at a time is still
// cut off. It resets nc's deadline only when the mode or the request
// changes or an eighth of the idle timeout has passed, so most reads make
// no extra call.
func (c *conn) setReadDeadline() {
	if c.user == nil && c.s.cfg.Users != nil {
		// Until AUTH one deadline covers idling and stalling alike.
		if c.rdMode != 3 {
			c.rdMode = 3
			_ = c.nc.SetReadDeadline(c.authBy)
		}
		return
	}
	now := time.Now()
	if c.p.mid {
		if c.rdMode == 2 && c.rdRequest == c.p.requests {
			return // this request's deadline is set
		}
		c.rdMode, c.rdRequest, c.rdDeadline = 2, c.p.requests, now.Add(c.s.cfg.StallTimeout)
		_ = c.nc.SetReadDeadline(c.rdDeadline)
		return
	}
	d := c.s.cfg.IdleTimeout
	if d == 0 {
		if c.rdMode != 0 {
			_ = c.nc.SetReadDeadline(time.Time{})
			c.rdMode = 0
		}
		return
	}
	if c.rdMode != 1 || c.rdDeadline.Sub(now) < d-d/8 {
		c.rdMode, c.rdDeadline = 1, now.Add(d)
		_ = c.nc.SetReadDeadline(c.rdDeadline)
	}
}

// serve runs the connection until the client leaves, errs or QUITs, or the
// server closes.
func (c *conn) serve() {
	err := c.loop()
	c.finish(err)
}

// loop reads and dispatches requests until an error.
func (c *conn) loop() error {
	for {
		args, err := c.p.next()
		if err != nil {
			return err
		}
		c.dispatch(args)
		if c.werr != nil {
			return c.werr
		}
		if c.user == nil && c.s.cfg.Users != nil && len(c.pending) >= preAuthMaxPending {
			// Before AUTH, replies are written as they come rather than
			// piled up for a client that sends and does not read.
			if preAuthFlushed != nil {
				preAuthFlushed(cap(c.pending))
			}
			if err := c.flushPending(); err != nil {
				return err
			}
		}
		if c.quit {
			return errQuit
		}
	}
}

// finish answers what can still be answered, waits for every command
// still running, and closes the connection.
func (c *conn) finish(err error) {
	s := c.s
	var pe *protocolError
	switch {
	case c.werr != nil:
		if errors.Is(c.werr, os.ErrDeadlineExceeded) {
			s.stats.writeTimeouts.Add(1)
			s.log.Warn().Str("remote", c.remote()).Dur("write_timeout", s.cfg.WriteTimeout).
				Msg("resp: closing connection that does not read its replies")
		}
	case errors.As(err, &pe):
		s.stats.protocolErrors.Add(1)
		s.stats.errorReplies.Add(1)
		s.log.Debug().Err(err).Str("remote", c.remote()).Msg("resp: closing connection")
		c.drain(len(c.pending))
		c.w.Write(appendError(nil, "ERR Protocol error: "+pe.msg))
		_ = c.w.Flush()
	case err == errQuit:
		_ = c.flushPending()
	case errors.Is(err, os.ErrDeadlineExceeded) && c.user == nil && s.cfg.Users != nil:
		s.stats.authTimeouts.Add(1)
		s.log.Debug().Str("remote", c.remote()).Dur("auth_timeout", s.cfg.AuthTimeout).
			Msg("resp: closing connection that did not authenticate in time")
	case errors.Is(err, os.ErrDeadlineExceeded) && c.p.mid:
		s.stats.stalls.Add(1)
		s.log.Warn().Str("remote", c.remote()).Dur("stall_timeout", s.cfg.StallTimeout).
			Msg("resp: closing connection stalled mid-request")
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.log.Debug().Str("remote", c.remote()).Msg("resp: closing idle connection")
	case err == io.EOF, errors.Is(err, net.ErrClosed), s.ctx.Err() != nil:
	default:
		s.log.Debug().Err(err).Str("remote", c.remote()).Msg("resp: connection ended")
	}
	c.cancel()
	for _, sl := range c.pending {
		if sl.async {
			<-sl.done
		}
	}
	c.pending = nil
	_ = c.nc.Close()
}

// preAuthFlushed, when set (by tests, before any server runs), is told the
// capacity of an unauthenticated connection's reply queue each time it is
// flushed for reaching preAuthMaxPending.
var preAuthFlushed func(pendingCap int)

func (c *conn) remote() string {
	if a := c.nc.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

// flushPending writes every pending reply, waiting for running commands,
// and flushes. NB: it calls Flush even with nothing buffered, since that
// is how an earlier failed write (a large reply bufio wrote directly)
// surfaces.
func (c *conn) flushPending() error {
	c.drain(len(c.pending))
	return c.w.Flush()
}

// drain writes the first n pending replies to the writer, waiting for
// those still running. Write errors stick in the writer and surface at
// the next flush.
func (c *conn) drain(n int) {
	c.runBatch()
	if n == 0 {
		return
	}
	for _, sl := range c.pending[:n] {
		if sl.async {
			<-sl.done
			c.running--
			c.observe(sl.took)
		}
		_, _ = c.w.Write(sl.buf)
		if sl.value != nil {
			_, _ = c.w.Write(sl.value)
			_, _ = c.w.WriteString("\r\n")
		}
		c.inflight -= sl.size
		c.release(sl)
	}
	m := copy(c.pending, c.pending[n:])
	clear(c.pending[m:])
	c.pending = c.pending[:m]
}

// slot returns a free slot for cmd.
func (c *conn) slot(cmd *command) *slot {
	var sl *slot
	if n := len(c.free); n > 0 {
		sl = c.free[n-1]
		c.free = c.free[:n-1]
	} else {
		sl = &slot{done: make(chan struct{}, 1)}
	}
	sl.cmd = cmd
	sl.q = c.q
	sl.proto = c.proto
	sl.buf = sl.buf[:0]
	return sl
}

// release returns a written slot to the free list.
func (c *conn) release(sl *slot) {
	clear(sl.args)
	sl.args = sl.args[:0]
	if cap(sl.buf) > maxKeptReply {
		sl.buf = nil
	}
	sl.cmd, sl.value, sl.async, sl.size = nil, nil, false, 0
	c.free = append(c.free, sl)
}

// dispatch runs one command, or starts it, and queues its reply.
func (c *conn) dispatch(args [][]byte) {
	cmd := lookup(args[0])
	if cmd == nil {
		c.counts[len(commandTable)].Add(1)
		sl := c.slot(nil)
		sl.buf = appendError(sl.buf, unknownCommand(args))
		c.s.stats.errorReplies.Add(1)
		c.pending = append(c.pending, sl)
		return
	}
	c.counts[cmd.idx].Add(1)
	if !cmd.arityOK(len(args)) {
		sl := c.slot(cmd)
		sl.buf = appendError(sl.buf, "ERR wrong number of arguments for '"+cmd.name+"' command")
		c.s.stats.errorReplies.Add(1)
		c.pending = append(c.pending, sl)
		return
	}
	if c.s.cfg.Users != nil {
		if msg := c.denied(cmd, args); msg != "" {
			sl := c.slot(cmd)
			sl.buf = appendError(sl.buf, msg)
			c.s.stats.errorReplies.Add(1)
			c.pending = append(c.pending, sl)
			return
		}
	}
	if cmd.local != nil {
		sl := c.slot(cmd)
		c.runLocal(sl, args)
		c.pending = append(c.pending, sl)
		return
	}

	// A data command. It must not overtake an earlier one on the same key
	// when either writes, and the connection bounds what runs at once.
	if i := c.lastConflict(cmd, args); i >= 0 {
		c.drain(i + 1)
	}
	if c.batchable(cmd, args) {
		if len(c.batch) > 0 && (c.batch[0].cmd != cmd || c.batch[0].q != c.q) {
			c.runBatch() // GETs after SETs (or SETs after GETs) see them
		}
		c.addToBatch(cmd, args)
		return
	}
	c.runBatch() // the batched commands before this one run first
	size := 0
	for _, a := range args {
		size += len(a)
	}
	if c.inflight+size > c.s.cfg.MaxRequest {
		c.drain(len(c.pending))
	}
	for c.running >= c.s.cfg.PipelineConcurrency {
		c.drain(1)
	}
	sl := c.slot(cmd)
	sl.args = append(sl.args, args...)
	sl.size = size
	c.inflight += size
	c.pending = append(c.pending, sl)
	if c.s.cfg.PipelineConcurrency > 1 && c.latency >= spawnAbove && c.r.Buffered() > 0 {
		// More requests are already read and the Backend is slow: let
		// this one run while they are parsed and started.
		sl.async = true
		c.running++
		go c.runAsync(sl) // owned by c: drain and finish wait for sl.done
		return
	}
	// A fast Backend, or the last request of a batch: run it here (in the
	// latter case alongside the others).
	c.runData(sl)
	c.observe(sl.took)
}

// batchable reports whether a data command can be batched: a plain SET
// (no options) with the Backend a BatchSetter, or a GET with the Backend a
// BatchGetter. A batch holds one command at one quorum.
func (c *conn) batchable(cmd *command, args [][]byte) bool {
	switch {
	case cmd == cmdSetEntry && len(args) == 3:
		if _, ok := c.s.b.(BatchSetter); !ok {
			return false
		}
	case cmd == cmdGetEntry:
		if _, ok := c.s.b.(BatchGetter); !ok {
			return false
		}
	default:
		return false
	}
	return true
}

// addToBatch queues a plain SET in the batch; the batch runs when the
// requests already buffered have been read (the end of a pipeline), or
// when it is full.
func (c *conn) addToBatch(cmd *command, args [][]byte) {
	size := 0
	for _, a := range args {
		size += len(a)
	}
	if c.inflight+size > c.s.cfg.MaxRequest {
		c.drain(len(c.pending))
	}
	sl := c.slot(cmd)
	sl.args = append(sl.args, args...)
	sl.size = size
	c.inflight += size
	c.pending = append(c.pending, sl)
	c.batch = append(c.batch, sl)
	if len(c.batch) >= maxBatch || c.r.Buffered() == 0 {
		c.runBatch()
	}
}

// runBatch runs the batched SETs: one SetMany call for several, the
// usual path for one.
func (c *conn) runBatch() {
	b := c.batch
	switch len(b) {
	case 0:
		return
	case 1:
		c.runData(b[0])
		c.observe(b[0].took)
		c.batch = b[:0]
		return
	}
	start := time.Now()
	keys := make([][]byte, len(b))
	for i, sl := range b {
		keys[i] = sl.args[1]
	}
	if b[0].cmd == cmdGetEntry {
		values, found, errs := c.getMany(keys, b[0].q)
		for i, sl := range b {
			sl.buf = appendGet(sl.buf, sl, values[i], found[i], errs[i])
			if errs[i] != nil {
				c.s.stats.errorReplies.Add(1)
			}
		}
	} else {
		values := make([][]byte, len(b))
		for i, sl := range b {
			values[i] = sl.args[2]
		}
		errs := c.setMany(keys, values, b[0].q)
		for i, sl := range b {
			if err := errs[i]; err != nil {
				sl.buf = appendError(sl.buf, errorLine(err))
				c.s.stats.errorReplies.Add(1)
			} else {
				sl.buf = appendOK(sl.buf)
			}
		}
	}
	took := time.Since(start)
	for _, sl := range b {
		sl.took = took
	}
	c.observe(took)
	clear(b)
	c.batch = b[:0]
}

// setMany calls the Backend's SetMany, turning a panic (a Backend bug)
// into an error for every key, and a wrong count of errors into one too.
func (c *conn) setMany(keys, values [][]byte, q Quorum) (errs []error) {
	defer func() {
		r := recover()
		if r == nil && len(errs) == len(keys) {
			return
		}
		var err error
		if r != nil {
			c.s.stats.panics.Add(1)
			c.s.log.Error().Str("cmd", "set").Str("panic", fmt.Sprint(r)).Bytes("stack", debug.Stack()).Msg("resp: SetMany panicked")
			err = fmt.Errorf("internal error in 'set': %v", r)
		} else {
			err = fmt.Errorf("internal error in 'set': %d results for %d keys", len(errs), len(keys))
		}
		errs = make([]error, len(keys))
		for i := range errs {
			errs[i] = err
		}
	}()
	return c.s.b.(BatchSetter).SetMany(c.ctx, keys, values, q)
}

// getMany calls the Backend's GetMany, turning a panic or a wrong count
// of answers into an error for every key, as setMany does.
func (c *conn) getMany(keys [][]byte, q Quorum) (values [][]byte, found []bool, errs []error) {
	defer func() {
		r := recover()
		if r == nil && len(values) == len(keys) && len(found) == len(keys) && len(errs) == len(keys) {
			return
		}
		var err error
		if r != nil {
			c.s.stats.panics.Add(1)
			c.s.log.Error().Str("cmd", "get").Str("panic", fmt.Sprint(r)).Bytes("stack", debug.Stack()).Msg("resp: GetMany panicked")
			err = fmt.Errorf("internal error in 'get': %v", r)
		} else {
			err = fmt.Errorf("internal error in 'get': %d, %d, %d results for %d keys", len(values), len(found), len(errs), len(keys))
		}
		values, found, errs = make([][]byte, len(keys)), make([]bool, len(keys)), make([]error, len(keys))
		for i := range errs {
			errs[i] = err
		}
	}()
	return c.s.b.(BatchGetter).GetMany(c.ctx, keys, q)
}

// observe adds a data command's run time to the connection's average.
func (c *conn) observe(took time.Duration) {
	c.latency += (took - c.latency) / 8
}

// lastConflict returns the index in pending of the last running command
// that cmd must wait for, or -1.
func (c *conn) lastConflict(cmd *command, args [][]byte) int {
	if c.running == 0 {
		return -1
	}
	for i := len(c.pending) - 1; i >= 0; i-- {
		sl := c.pending[i]
		if !sl.async || (!sl.cmd.write && !cmd.write) {
			continue
		}
		if keysOverlap(sl.cmd, sl.args, cmd, args) {
			return i
		}
	}
	return -1
}

// keysOverlap reports whether two commands share a key, or have too many
// keys to compare cheaply.
func keysOverlap(a *command, aargs [][]byte, b *command, bargs [][]byte) bool {
	na, nb := a.keyCount(len(aargs)), b.keyCount(len(bargs))
	if na*nb > maxKeyPairs {
		return true
	}
	for i := a.first; i < len(aargs) && i <= a.lastKey(len(aargs)); i += a.step {
		for j := b.first; j < len(bargs) && j <= b.lastKey(len(bargs)); j += b.step {
			if string(aargs[i]) == string(bargs[j]) {
				return true
			}
		}
	}
	return false
}

func (c *conn) runAsync(sl *slot) {
	c.runData(sl)
	sl.done <- struct{}{}
}

// runData runs a data command with the Backend and encodes its reply. A
// panic (a Backend bug) is answered with an error, not a crash.
func (c *conn) runData(sl *slot) {
	start := time.Now()
	defer func() {
		sl.took = time.Since(start)
		if r := recover(); r != nil {
			c.recovered(sl, r)
		}
	}()
	sl.buf = sl.cmd.data(c.ctx, c.s.b, sl, sl.buf)
	if len(sl.buf) > 0 && sl.buf[0] == '-' {
		c.s.stats.errorReplies.Add(1)
	}
}

// runLocal runs a connection command on the reader goroutine.
func (c *conn) runLocal(sl *slot, args [][]byte) {
	defer func() {
		if r := recover(); r != nil {
			c.recovered(sl, r)
		}
	}()
	sl.buf = sl.cmd.local(c, args, sl.buf)
	if len(sl.buf) > 0 && sl.buf[0] == '-' {
		c.s.stats.errorReplies.Add(1)
	}
}

func (c *conn) recovered(sl *slot, r any) {
	c.s.stats.panics.Add(1)
	c.s.stats.errorReplies.Add(1)
	c.s.log.Error().Str("cmd", sl.cmd.name).Str("panic", fmt.Sprint(r)).Bytes("stack", debug.Stack()).
		Msg("resp: command panicked")
	sl.value = nil
	sl.buf = appendError(sl.buf[:0], "ERR internal error in '"+sl.cmd.name+"': "+fmt.Sprint(r))
}
