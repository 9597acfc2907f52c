package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mnemo-kv/mnemo/antientropy"
	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
	"github.com/mnemo-kv/mnemo/version"
)

// QuorumError is a read or write that did not hear from enough replicas.
type QuorumError struct {
	Op      string // "get", "put" or "delete"
	Acked   int    // replicas that answered (acknowledged a write, replied to a read)
	Asked   int    // replicas the request was sent to
	Needed  int    // R or W
	Timeout bool   // the deadline ended the wait
	// Unreachable is how many home replicas had no live node to stand in
	// for them (dead, and no live fallback or a strict request).
	Unreachable int
	// Cause is the last error a replica answered with, if any.
	Cause error
}

func (e *QuorumError) Error() string { return "node: " + e.describe() }

// RESPError is the error reply the RESP port sends for e (resp.RESPError).
func (e *QuorumError) RESPError() string { return "ERR " + e.describe() }

// describe says what failed, for the node's errors and for clients (the
// wire error's message, which the client prefixes with its own name).
func (e *QuorumError) describe() string {
	verb := "acknowledged"
	if e.Op == "get" {
		verb = "answered"
	}
	msg := fmt.Sprintf("%s %s by %d of %d replicas asked, %d needed", e.Op, verb, e.Acked, e.Asked, e.Needed)
	if e.Unreachable > 0 {
		msg += fmt.Sprintf(" (%d home replicas unreachable)", e.Unreachable)
	}
	if e.Cause != nil {
		msg += fmt.Sprintf("; last replica error: %v", e.Cause)
	}
	if e.Timeout {
		return "timed out: " + msg
	}
	return "quorum failed: " + msg
}

// target is one replica a request goes to: a home replica, or a fallback
// standing in for the dead home replica HintFor (sloppy quorum).
type target struct {
	id      ring.NodeID
	hintFor ring.NodeID
	// pending marks a joining node that will own the partition: it gets
	// writes so it misses nothing while it pulls the rest, but its acks do
	// not count toward W.
	pending bool
}

func (t target) home() bool { return t.hintFor == "" && !t.pending }

// plan picks the replicas for a request on partition p: each live home
// replica, and for each dead one the next live fallback in preference order
// unless strict. This node, when it is a fallback, stands in first: it may
// already hold the object (it versioned it). missing lists the home
// replicas with no stand-in: dead, with no live fallback left (a small
// cluster) or a strict request. The coordinator keeps hints for those
// itself, as Cassandra does; such hints do not count toward W.
//
// Writes (forWrite) also go to the partition's future home replicas that
// are joining (pending targets).
func (n *Node) plan(v *view, p ring.Partition, nrep int, strict, forWrite bool) (pl replicaPlan) {
	var buf [8]ring.NodeID
	pref := v.ring.AppendPreferenceList(buf[:0], p, nrep)
	home := pref[:min(nrep, len(pref))]
	pl.short = nrep - len(home)
	pl.targets = make([]target, 0, len(home)+1)
	var spare []ring.NodeID
	if !strict && len(pref) > len(home) {
		for _, id := range pref[len(home):] {
			if n.alive(id) {
				spare = append(spare, id)
			}
		}
		if i := slices.Index(spare, n.self); i > 0 {
			spare = append(append([]ring.NodeID{n.self}, spare[:i]...), spare[i+1:]...)
		}
	}
	for _, h := range home {
		switch {
		case n.alive(h):
			pl.targets = append(pl.targets, target{id: h})
		case len(spare) > 0:
			pl.targets = append(pl.targets, target{id: spare[0], hintFor: h})
			spare = spare[1:]
		default:
			pl.missing = append(pl.missing, h)
		}
	}
	if forWrite && v.future != nil {
		for _, f := range v.future.Home(p, nrep) {
			if !slices.Contains(home, f) && n.alive(f) && !slices.ContainsFunc(pl.targets, func(t target) bool { return t.id == f }) {
				pl.targets = append(pl.targets, target{id: f, pending: true})
			}
		}
	}
	return pl
}

// replicaPlan is where a request goes.
type replicaPlan struct {
	targets []target
	// missing are home replicas with no live stand-in.
	missing []ring.NodeID
	// short is how many replicas the ring is too small to hold (N > nodes).
	short int
}

// unreachable counts the replicas a request cannot reach at all.
func (pl replicaPlan) unreachable() int { return len(pl.missing) + pl.short }

// quorum resolves a request's N and R or W against the node defaults.
func (n *Node) quorum(reqN, reqQ, defQ int, name string) (nrep, q int, err error) {
	nrep, q = n.cfg.N, defQ
	if reqN != 0 {
		nrep = reqN
	}
	if reqQ != 0 {
		q = reqQ
	}
	if nrep < 1 || nrep > 16 {
		return 0, 0, wire.Errorf(wire.CodeBadRequest, "n=%d must be in [1, 16]", nrep)
	}
	if q < 1 || q > nrep {
		return 0, 0, wire.Errorf(wire.CodeBadRequest, "%s=%d must be in [1, n=%d]", name, q, nrep)
	}
	return nrep, q, nil
}

func (n *Node) withTimeout(ctx context.Context, ms int64) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, n.timeout(ms))
}

// timeout is a request's time bound: its own, or the node's default.
func (n *Node) timeout(ms int64) time.Duration {
	if ms > 0 {
		return time.Duration(ms) * time.Millisecond
	}
	return n.cfg.Timeout
}

// timerPool holds stopped timers for requestTimer.
var timerPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// requestTimer returns a timer that fires when a request's time is up;
// give it back with releaseTimer. A coordinator waits on it beside its
// caller's context instead of deriving a context with a deadline: that
// context's timer and its registration in the parent (a RESP or RPC
// connection's context, shared by every request on it) were 4% of a
// coordinator's CPU per write. NB: since Go 1.23 a stopped timer's channel
// holds no stale tick, so a pooled timer is safe to reuse.
func requestTimer(d time.Duration) *time.Timer {
	t := timerPool.Get().(*time.Timer)
	t.Reset(d)
	return t
}

func releaseTimer(t *time.Timer) {
	t.Stop()
	timerPool.Put(t)
}

func (n *Node) mode(m proto.Mode) proto.Mode {
	if m == proto.ModeDefault {
		return n.cfg.Conflicts
	}
	return m
}

func (n *Node) handlePut(ctx context.Context, payload []byte) (any, error) {
	var req proto.PutRequest
	if err := decode(payload, &req); err != nil {
		return nil, err
	}
	op := "put"
	if req.Delete {
		op = "delete"
	}
	start := time.Now()
	reply, err := n.Put(ctx, &req)
	n.metrics.observe(op, start, err)
	return reply, err
}

// Put coordinates a write: it forwards to a home replica unless this node
// is one, versions the write there, sends the new object to the other
// replicas and returns once W of them (this one included) have it durably.
func (n *Node) Put(ctx context.Context, req *proto.PutRequest) (*proto.PutReply, error) {
	n.markForeground()
	if err := n.store.CheckKey(req.Key); err != nil {
		return nil, err
	}
	if !req.Delete {
		if err := n.store.CheckValue(req.Value); err != nil {
			return nil, err
		}
	}
	nrep, w, err := n.quorum(req.N, req.W, n.cfg.W, "w")
	if err != nil {
		return nil, err
	}
	vv, err := version.DecodeVV(req.Context)
	if err != nil {
		return nil, wire.Errorf(wire.CodeBadRequest, "bad context: %v", err)
	}
	v := n.view.Load()
	p := v.ring.PartitionForKey(req.Key)
	home := v.ring.Home(p, nrep)
	if len(home) == 0 {
		return nil, wire.Errorf(wire.CodeUnavailable, "the ring has no members yet")
	}
	if !req.Forwarded && !slices.Contains(home, n.self) {
		ctx, cancel := n.withTimeout(ctx, req.TimeoutMs)
		defer cancel()
		// Puts are versioned by a home replica: hand it to the first live one.
		fwd := *req
		fwd.Forwarded = true
		body, err := wire.Marshal(&fwd)
		if err != nil {
			return nil, err
		}
		for _, h := range home {
			if !n.alive(h) {
				continue
			}
			addr := v.members[h].RPCAddr
			_, resp, err := n.pool.Call(ctx, addr, proto.KindCoordPut, body)
			if err == nil {
				var reply proto.PutReply
				if err := wire.Unmarshal(resp, &reply); err != nil {
					return nil, fmt.Errorf("node: reply from %s: %w", h, err)
				}
				return &reply, nil
			}
			if !errors.Is(err, wire.ErrNotSent) {
				// The home replica answered, time is up, or the request may
				// have reached it: trying another home replica could apply
				// the write twice, as two versions a later overwrite would
				// not both cover. Say so rather than guess.
				var we *wire.Error
				if errors.As(err, &we) || ctx.Err() != nil {
					return nil, err
				}
				return nil, wire.Errorf(wire.CodeUnavailable, "forward to home replica %s failed after sending (the write may or may not apply): %v", h, err)
			}
			n.log.Debug().Err(err).Str("peer", string(h)).Msg("forward not sent; trying the next home replica")
		}
		if req.Strict {
			return nil, &QuorumError{Op: opName(req), Asked: 0, Needed: w, Unreachable: len(home)}
		}
		// No home replica reachable: version here and let sloppy quorum
		// place the copies.
	}
	return n.coordinatePut(ctx, v, p, nrep, w, req, vv)
}

func opName(req *proto.PutRequest) string {
	if req.Delete {
		return "delete"
	}
	return "put"
}

// coordinatePut versions the write locally and replicates it.
func (n *Node) coordinatePut(ctx context.Context, v *view, p ring.Partition, nrep, w int, req *proto.PutRequest, vv version.VV) (*proto.PutReply, error) {
	mode := n.mode(req.Mode)
	obj, enc, durable, err := n.store.PutPipelined(store.PutRequest{
		Key:            req.Key,
		Value:          req.Value,
		Tombstone:      req.Delete,
		Context:        vv,
		SupersedeLocal: mode == proto.ModeLWW || req.Overwrite || (req.Delete && len(vv) == 0),
	})
	if err != nil {
		return nil, err
	}
	reply := &proto.PutReply{Context: version.EncodeVV(obj.Context)}
	pl := n.plan(v, p, nrep, req.Strict, true)
	targets := pl.targets
	for _, h := range pl.missing {
		n.storeHint(h, req.Key, obj)
	}

	acks, asked := 0, 0
	var lastErr error
	results := make(chan ackResult, len(targets))
	sent := 0
	local := false
	var body []byte
	for _, t := range targets {
		if !t.pending {
			asked++
		}
		if t.id == n.self {
			// A non-home coordinator holds its copy for a dead home replica.
			if t.hintFor != "" {
				n.storeHint(t.hintFor, req.Key, obj)
			}
			local = local || !t.pending
			continue
		}
		if body == nil {
			body = (&proto.ReplicaPut{Key: req.Key, Object: enc}).Encode()
		}
		sent++
		n.replicate(v, t, req.Key, obj, enc, body, results)
	}
	// The replicas are writing meanwhile: this node's fsync overlaps theirs.
	if err := durable(); err != nil {
		return nil, err
	}
	if local {
		acks++
	}
	if acks >= w {
		reply.Acks = acks
		return reply, nil
	}
	timer := requestTimer(n.timeout(req.TimeoutMs))
	defer releaseTimer(timer)
	for got := 0; got < sent; got++ {
		select {
		case res := <-results:
			if res.err != nil {
				lastErr = fmt.Errorf("%s: %w", res.t.id, res.err)
			}
			if res.err == nil && !res.t.pending {
				acks++
				if acks >= w {
					reply.Acks = acks
					return reply, nil
				}
			}
		case <-timer.C:
			return nil, &QuorumError{Op: opName(req), Acked: acks, Asked: asked, Needed: w, Timeout: true, Unreachable: pl.unreachable(), Cause: lastErr}
		case <-ctx.Done():
			return nil, &QuorumError{Op: opName(req), Acked: acks, Asked: asked, Needed: w, Timeout: true, Unreachable: pl.unreachable(), Cause: lastErr}
		}
	}
	n.metrics.quorumFailures.WithLabelValues(opName(req)).Inc()
	return nil, &QuorumError{Op: opName(req), Acked: acks, Asked: asked, Needed: w, Unreachable: pl.unreachable(), Cause: lastErr}
}

// ackResult is one replica's answer to a replicated write.
type ackResult struct {
	t   target
	err error
}

// replicate sends an object to one replica without waiting; the result
// goes to done (buffered by the caller for every target). The send
// outlives the request: a write acknowledged at W still reaches every
// replica it can. body is the encoded ReplicaPut for a target with no
// hint; a fallback gets its own. The call costs no goroutine, context or
// timer (wire.Pool.Go): the connection's reader hands the answer over.
//
// A replica that does not acknowledge (it timed out, is paused, or its
// connection broke) leaves a hint here, as in Cassandra: the failure
// detector may not have declared it dead, so no fallback stood in, and
// without the hint only anti-entropy's next round would bring it the write.
func (n *Node) replicate(v *view, t target, key []byte, obj *version.Object, enc, body []byte, done chan<- ackResult) {
	if t.hintFor != "" {
		body = (&proto.ReplicaPut{Key: key, Object: enc, HintFor: string(t.hintFor)}).Encode()
	}
	n.pool.Go(v.members[t.id].RPCAddr, proto.KindReplicaPut, body, n.cfg.Timeout, func(_ wire.Kind, _ []byte, err error) {
		if err != nil {
			n.log.Debug().Err(err).Str("peer", string(t.id)).Msg("replicate")
			var we *wire.Error
			if !errors.As(err, &we) || we.Code == wire.CodeUnavailable || we.Code == wire.CodeTimeout {
				owner := t.id
				if t.hintFor != "" {
					owner = t.hintFor // a fallback failed: the hint is for the home replica
				}
				// NB: not on the connection's reader goroutine: a hint is
				// a disk write.
				n.wg.Add(1)
				go func() {
					defer n.wg.Done()
					n.storeHint(owner, key, obj)
				}()
			}
		}
		done <- ackResult{t, err}
	})
}

// storeHint keeps a hint that this node holds key's object for a home
// replica that is dead or did not acknowledge. Hinted handoff replays it
// when gossip sees that replica alive (hintedhandoff); until then the copy
// is found by reads that go to fallbacks, and anti-entropy repairs the home
// replica if the hint expires. A disk write: not for a connection's reader.
func (n *Node) storeHint(forID ring.NodeID, key []byte, obj *version.Object) {
	if n.hints != nil {
		if err := n.hints.Add(forID, key, obj); err != nil {
			n.log.Error().Err(err).Str("for", string(forID)).Msg("store hint")
		}
	}
}

func (n *Node) handleGet(ctx context.Context, payload []byte) (any, error) {
	var req proto.GetRequest
	if err := decode(payload, &req); err != nil {
		return nil, err
	}
	start := time.Now()
	reply, err := n.Get(ctx, &req)
	op := "get"
	if req.Local {
		op = "get_local"
	}
	n.metrics.observe(op, start, err)
	return reply, err
}

// readResult is one replica's answer to a read: its object, or for a
// digest read its digest.
type readResult struct {
	t   target
	obj *version.Object // nil: the replica holds nothing
	err error
	// digestReq: the request was a digest read; digested: the answer is
	// digest (a replica that does not know digest reads answers whole).
	digestReq, digested bool
	digest              uint64
}

// Get coordinates a read: it asks R replicas (every replica while one is
// suspect, and for a sample of reads; see readFanout), answers once R have
// replied with their merge, and repairs stale replicas afterwards. One
// replica (this node when it is one) sends its copy whole, the others a
// digest of their versions (Cassandra's digest reads), which they serve
// from the store's version cache without reading Pebble; a digest that
// matches no whole copy is read again whole before it counts toward R, so
// the answer is the merge of R replicas' copies as if each had been read
// whole. A replica that answers with an error is replaced by the next at
// once, and one that is slow after ReadRetryAfter (a speculative retry).
func (n *Node) Get(ctx context.Context, req *proto.GetRequest) (*proto.GetReply, error) {
	n.markForeground()
	if err := n.store.CheckKey(req.Key); err != nil {
		return nil, err
	}
	mode := n.mode(req.Mode)
	if req.Local {
		obj, err := n.store.Get(req.Key)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		return getReply(obj, mode, 1, req.Tombstones), nil
	}
	nrep, r, err := n.quorum(req.N, req.R, n.cfg.R, "r")
	if err != nil {
		return nil, err
	}
	v := n.view.Load()
	g, err := n.newRead(v, req, nrep, r)
	if err != nil {
		return nil, err
	}
	// The first of the order sends the data: this node when it is a
	// replica, else the first target.
	for k, i := range g.order[:g.asked] {
		if int(i) != g.selfAt {
			g.read(g.targets[i], k > 0)
		}
	}
	g.readLocal()
	return g.await(ctx, mode, req)
}

// newRead plans a read and prepares its gather: which targets it asks, in
// what order, and how many at first (g.asked, R or all). The caller sends
// the first g.asked reads of g.order (read, or a batch; the first whole,
// the others digests) and the local one (readLocal), then awaits the
// answers.
func (n *Node) newRead(v *view, req *proto.GetRequest, nrep, r int) (*readGather, error) {
	p := v.ring.PartitionForKey(req.Key)
	pl := n.plan(v, p, nrep, req.Strict, false)
	targets := pl.targets
	if len(targets) == 0 {
		return nil, &QuorumError{Op: "get", Needed: r, Unreachable: pl.unreachable()}
	}
	full := (&proto.ReplicaGet{Key: req.Key}).Encode()
	digest := (&proto.ReplicaGet{Key: req.Key, Digest: true}).Encode()
	g := &readGather{n: n, v: v, key: req.Key, targets: targets, r: r, signal: make(chan struct{}, 1), got: make([]readResult, 0, len(targets)),
		repair: n.cfg.ReadRepair && !req.NoRepair, full: full, digest: digest, unreachable: pl.unreachable(),
		selfAt: slices.IndexFunc(targets, func(t target) bool { return t.id == n.self })}
	data := max(g.selfAt, 0)
	g.order = readOrder(g.orderBuf[:0], len(targets), data, ring.KeyHash(req.Key))
	reason := n.readFanout(pl, r, g.repair)
	n.metrics.readFanout[reason].Inc()
	g.asked = len(targets)
	if reason == fanoutQuorum {
		g.asked = r
	}
	g.pending, g.dataOut = g.asked, 1
	return g, nil
}

// readLocal reads this node's copy whole, if it is a target.
func (g *readGather) readLocal() {
	if g.selfAt < 0 {
		return
	}
	obj, err := g.n.store.Get(g.key)
	if errors.Is(err, store.ErrNotFound) {
		err = nil
	}
	g.add(readResult{t: g.targets[g.selfAt], obj: obj, err: err})
}

// await takes the answers as they come until R agree or time is up, and
// hands the rest to the gather (read repair). It asks the next target of
// the order at once when a replica answers with an error and too few are
// left to make R, and when those asked have not all answered after
// ReadRetryAfter (again every ReadRetryAfter, while targets are left).
// The wait costs no goroutine, and one pooled timer that serves both the
// retries and the request's time bound.
func (g *readGather) await(ctx context.Context, mode proto.Mode, req *proto.GetRequest) (*proto.GetReply, error) {
	n, r := g.n, g.r
	ok, seen := 0, 0
	var merged *version.Object
	var lastErr error
	var batch, unverified []readResult
	var digests []uint64 // of the data answers so far
	var st gatherState
	var timer *time.Timer
	var deadline time.Time
	// sent counts the reads sent since st was taken, whole the whole ones
	// among them: st does not count them yet.
	var sent, whole int
	// verify counts a digest answer that matches a data answer; one that
	// does not is read again, whole, and counts when that comes.
	verify := func(res readResult) {
		if slices.Contains(digests, res.digest) {
			ok++
			return
		}
		g.more(res.t, false)
		sent++
		whole++
	}
	for {
		batch, seen, st = g.since(batch[:0], seen)
		sent, whole = 0, 0
		for _, res := range batch {
			switch {
			case res.err != nil:
				lastErr = fmt.Errorf("%s: %w", res.t.id, res.err)
			case res.digested && len(digests) == 0:
				unverified = append(unverified, res)
			case res.digested:
				verify(res)
			default:
				ok++
				merged = version.Merge(merged, res.obj)
				digests = append(digests, antientropy.LeafHash(g.key, res.obj))
				for _, u := range unverified {
					verify(u)
				}
				unverified = unverified[:0]
			}
		}
		if ok >= r {
			break
		}
		// Fail fast: replicas that answered with an error are replaced
		// by the next targets, so that R can still answer.
		lost := false
		for g.asked-st.failed < r && g.askNext(len(digests) > 0) {
			n.metrics.readRetries[retryError].Inc()
			sent++
			if len(digests) == 0 {
				whole++
			}
			lost = true
		}
		if lost && g.batch != nil {
			g.batch.sweep(g, false)
		}
		if st.dataOut+whole == 0 && len(digests) == 0 {
			// Every data read failed: read the digest answers whole.
			for _, u := range unverified {
				g.more(u.t, false)
				sent++
			}
			unverified = unverified[:0]
		}
		if st.pending+sent == 0 {
			break // every answer is in, and R is out of reach
		}
		if timer == nil {
			now := time.Now()
			deadline = now.Add(n.timeout(req.TimeoutMs))
			if g.began.IsZero() {
				g.began = now
			}
			timer = requestTimer(g.nextWake(now, deadline))
			defer releaseTimer(timer)
		}
		select {
		case <-g.signal:
			continue
		case <-timer.C:
			if now := time.Now(); now.Before(deadline) {
				// Speculative retry: those asked have not all answered.
				if g.askNext(len(digests) > 0) {
					g.retries++
					n.metrics.readRetries[retrySlow].Inc()
					if g.batch != nil {
						g.batch.sweep(g, true)
					}
				}
				timer.Reset(g.nextWake(now, deadline))
				continue
			}
		case <-ctx.Done():
		}
		n.metrics.quorumFailures.WithLabelValues("get").Inc()
		g.handOff()
		return nil, &QuorumError{Op: "get", Acked: ok, Asked: g.asked, Needed: r, Timeout: true, Unreachable: g.unreachable, Cause: lastErr}
	}
	g.handOff()
	if ok < r {
		n.metrics.quorumFailures.WithLabelValues("get").Inc()
		return nil, &QuorumError{Op: "get", Acked: ok, Asked: g.asked, Needed: r, Unreachable: g.unreachable, Cause: lastErr}
	}
	return getReply(merged, mode, ok, req.Tombstones), nil
}

// nextWake is how long await waits from now for the next event: the next
// speculative retry, while there is a target left to ask and retries are
// on, or the deadline.
func (g *readGather) nextWake(now, deadline time.Time) time.Duration {
	if d := g.n.cfg.ReadRetryAfter; d > 0 && g.asked < len(g.order) {
		if at := g.began.Add(time.Duration(g.retries+1) * d); at.Before(deadline) {
			return at.Sub(now)
		}
	}
	return deadline.Sub(now)
}

// askNext asks the next target of the order not asked yet, for a digest
// when a data answer is in (have), else whole, and reports whether one was
// left. Only the coordinator calls it, before handOff.
func (g *readGather) askNext(have bool) bool {
	if g.asked == len(g.order) {
		return false
	}
	t := g.targets[g.order[g.asked]]
	g.asked++
	g.more(t, have)
	return true
}

// replicaGetResult decodes one replica's answer to a ReplicaGet.
func replicaGetResult(t target, digestReq bool, resp []byte, err error) readResult {
	if err != nil {
		return readResult{t: t, err: err, digestReq: digestReq}
	}
	var rep proto.ReplicaGetReply
	if err := rep.DecodeMsgpack(resp); err != nil {
		return readResult{t: t, err: err, digestReq: digestReq}
	}
	return replyResult(t, digestReq, &rep)
}

// replyResult turns one replica's decoded answer into a readResult.
func replyResult(t target, digestReq bool, rep *proto.ReplicaGetReply) readResult {
	switch {
	case !rep.Found:
		// Absence is known exactly, digest read or not: no need to
		// compare it with anything.
		return readResult{t: t, digestReq: digestReq}
	case rep.Digested:
		return readResult{t: t, digestReq: digestReq, digested: true, digest: rep.Digest}
	}
	obj, err := version.Decode(rep.Object)
	return readResult{t: t, obj: obj, err: err, digestReq: digestReq}
}

// readGather collects the replicas' answers to one read. The coordinator
// takes them as they come until it can answer; the answers after that
// (up to the replica reads' timeout, Timeout+ReadRepairWait) belong to the
// gather, and the last of them decides on read repair. So a read costs no
// goroutine of its own: a repair goroutine starts only when a replica is
// found stale.
type readGather struct {
	n       *Node
	v       *view
	key     []byte
	targets []target
	r       int  // R
	repair  bool // read repair is on for this read
	// full and digest are the encoded ReplicaGet, whole and digest.
	full, digest []byte
	// selfAt is this node's index in targets, or -1; unreachable counts
	// the home replicas the plan could not cover.
	selfAt, unreachable int
	// signal is sent to (without blocking) when an answer arrives.
	signal chan struct{}

	// order lists the targets (indexes) in the order the read asks them
	// (readOrder); orderBuf holds it (at most 16 replicas).
	order    []uint8
	orderBuf [16]uint8
	// asked is how many of order were asked; retries counts the
	// speculative retries; began is when the first reads went out (zero:
	// at await's first wait). Only the coordinator's goroutine uses them.
	asked, retries int
	began          time.Time
	// batch is GetMany's batch this read is part of (nil for Get), batchAt
	// its place there.
	batch   *readBatch
	batchAt int

	mu sync.Mutex
	// got are the answers so far, in arrival order; pending counts those
	// still out, dataOut the whole reads among them.
	got              []readResult
	pending, dataOut int
	// failed counts the answers that were errors (a replica lost: each
	// replica answers one read, or a digest and then the whole copy);
	// hasData is set once a data answer came.
	failed  int
	hasData bool
	// handed is set once the coordinator has stopped waiting.
	handed bool
}

// gatherState is a snapshot of a gather's counters.
type gatherState struct {
	pending, dataOut, failed int
	hasData                  bool
}

// add records one replica's answer; it runs on a connection's reader
// goroutine, or the coordinator's for the local read.
func (g *readGather) add(res readResult) {
	g.mu.Lock()
	g.got = append(g.got, res)
	g.pending--
	if !res.digestReq {
		g.dataOut--
	}
	if res.err != nil {
		g.failed++
	} else if !res.digested {
		g.hasData = true
	}
	last := g.handed && g.pending == 0
	g.mu.Unlock()
	if last {
		g.finish()
		return
	}
	select {
	case g.signal <- struct{}{}:
	default:
	}
}

// read sends one replica read, whole or a digest; its answer comes to add.
// The replica reads outlive the request by ReadRepairWait so that slow
// replicas can still be repaired. pending (and dataOut) must count it
// already.
func (g *readGather) read(t target, digest bool) {
	body := g.full
	if digest {
		body = g.digest
	}
	n := g.n
	n.pool.Go(g.v.members[t.id].RPCAddr, proto.KindReplicaGet, body, n.cfg.Timeout+n.cfg.ReadRepairWait,
		func(_ wire.Kind, resp []byte, err error) { g.add(replicaGetResult(t, digest, resp, err)) })
}

// more sends one more read after the first ones: a digest answer read
// again whole, or a target asked in place of one that failed or is slow.
func (g *readGather) more(t target, digest bool) {
	g.mu.Lock()
	g.pending++
	if !digest {
		g.dataOut++
	}
	g.mu.Unlock()
	g.read(t, digest)
}

// state returns the gather's counters.
func (g *readGather) state() gatherState {
	g.mu.Lock()
	defer g.mu.Unlock()
	return gatherState{pending: g.pending, dataOut: g.dataOut, failed: g.failed, hasData: g.hasData}
}

// since appends the answers after the first seen to dst, and returns the
// counters as of them.
func (g *readGather) since(dst []readResult, seen int) ([]readResult, int, gatherState) {
	g.mu.Lock()
	dst = append(dst, g.got[seen:]...)
	seen = len(g.got)
	st := gatherState{pending: g.pending, dataOut: g.dataOut, failed: g.failed, hasData: g.hasData}
	g.mu.Unlock()
	return dst, seen, st
}

// handOff ends the coordinator's wait: whoever sees the last answer
// finishes the read.
func (g *readGather) handOff() {
	g.mu.Lock()
	g.handed = true
	last := g.pending == 0
	g.mu.Unlock()
	if last {
		g.finish()
	}
}

// finish merges every answer and sends the merged object to each home
// replica that was stale or missing it, on a goroutine of its own, if any
// is. A digest answer stands for the data answer it matches; a replica
// whose digest matches none is read whole first (Cassandra's digest
// mismatch), so its versions join the merge. Repairs merge on arrival;
// they never create a version.
func (g *readGather) finish() {
	if !g.repair || g.agree() {
		return
	}
	type data struct {
		obj    *version.Object
		digest uint64
	}
	var datas []data
	whole := map[ring.NodeID]bool{} // replicas that answered with data
	var merged *version.Object
	for _, res := range g.got {
		if res.err == nil && !res.digested {
			merged = version.Merge(merged, res.obj)
			datas = append(datas, data{res.obj, antientropy.LeafHash(g.key, res.obj)})
			whole[res.t.id] = true
		}
	}
	// objs is each replica's copy as far as it is known, answered the
	// home replicas among them, once each.
	var unknown, answered []target
	objs := map[ring.NodeID]*version.Object{}
	known := func(t target, o *version.Object) {
		if _, dup := objs[t.id]; dup {
			return
		}
		objs[t.id] = o
		if t.home() {
			answered = append(answered, t)
		}
	}
	for _, res := range g.got {
		switch {
		case res.err != nil:
		case !res.digested:
			known(res.t, res.obj)
		case whole[res.t.id]:
			// Read again whole: that answer stands.
		default:
			if i := slices.IndexFunc(datas, func(d data) bool { return d.digest == res.digest }); i >= 0 {
				known(res.t, datas[i].obj)
			} else if !slices.ContainsFunc(unknown, func(u target) bool { return u.id == res.t.id }) {
				unknown = append(unknown, res.t)
			}
		}
	}
	stale := func() []target {
		var out []target
		for _, t := range answered {
			if !version.Equal(objs[t.id], merged) {
				out = append(out, t)
			}
		}
		return out
	}
	if len(unknown) == 0 {
		if merged.IsEmpty() {
			return
		}
		if st := stale(); len(st) > 0 {
			n := g.n
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				n.readRepair(g.v, g.key, merged, st)
			}()
		}
		return
	}
	n := g.n
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for _, t := range unknown {
			ctx, cancel := context.WithTimeout(n.bg, n.cfg.Timeout)
			_, resp, err := n.pool.Call(ctx, g.v.members[t.id].RPCAddr, proto.KindReplicaGet, g.full)
			cancel()
			res := replicaGetResult(t, false, resp, err)
			if res.err != nil {
				continue
			}
			merged = version.Merge(merged, res.obj)
			known(t, res.obj)
		}
		if st := stale(); len(st) > 0 && !merged.IsEmpty() {
			n.readRepair(g.v, g.key, merged, st)
		}
	}()
}

// agree reports whether every answer that came carries the same versions
// (a digest, or the digest of a data answer, that is the same for all): then
// no replica that answered is stale, and finish has nothing to merge or
// repair. It is the common case, and it allocates nothing, where the
// general path builds maps and merges every data answer again.
func (g *readGather) agree() bool {
	var first uint64
	seen := false
	for _, res := range g.got {
		if res.err != nil {
			continue
		}
		h := res.digest
		if !res.digested {
			h = antientropy.LeafHash(g.key, res.obj)
		}
		if seen && h != first {
			return false
		}
		first, seen = h, true
	}
	return true
}

// readRepair sends merged to each stale home replica.
func (n *Node) readRepair(v *view, key []byte, merged *version.Object, stale []target) {
	var body []byte
	for _, t := range stale {
		if t.id == n.self {
			if _, changed, err := n.store.Merge(key, merged); err == nil && changed {
				n.metrics.readRepairs.Inc()
			}
			continue
		}
		if body == nil {
			body = (&proto.ReplicaPut{Key: key, Object: version.Encode(merged)}).Encode()
		}
		ctx, cancel := context.WithTimeout(n.bg, n.cfg.Timeout)
		_, _, err := n.pool.Call(ctx, v.members[t.id].RPCAddr, proto.KindReplicaPut, body)
		cancel()
		if err == nil {
			n.metrics.readRepairs.Inc()
			n.log.Debug().Str("peer", string(t.id)).Bytes("key", key).Msg("read repair")
		}
	}
}

// getReply turns a (merged) object into what the client sees.
func getReply(obj *version.Object, mode proto.Mode, replies int, tombstones bool) *proto.GetReply {
	reply := &proto.GetReply{Replies: replies}
	if obj.IsEmpty() {
		return reply
	}
	reply.Context = version.EncodeVV(obj.Context)
	sib := func(s version.Sibling) proto.Sibling {
		return proto.Sibling{Value: s.Value, Tombstone: s.Tombstone, Timestamp: s.Timestamp, Actor: string(s.Dot.Actor), Counter: s.Dot.Counter}
	}
	if mode == proto.ModeLWW {
		if w, ok := obj.Winner(); ok && (!w.Tombstone || tombstones) {
			reply.Found = !w.Tombstone
			reply.Siblings = []proto.Sibling{sib(w)}
		}
		return reply
	}
	for _, s := range obj.Siblings {
		if !s.Tombstone {
			reply.Found = true
		}
		if !s.Tombstone || tombstones {
			reply.Siblings = append(reply.Siblings, sib(s))
		}
	}
	return reply
}

func (n *Node) handleReplicaPut(ctx context.Context, payload []byte) (any, error) {
	n.markForeground()
	var req proto.ReplicaPut
	if err := req.DecodeMsgpack(payload); err != nil {
		return nil, malformed(err)
	}
	obj, err := version.Decode(req.Object)
	if err != nil {
		return nil, wire.Errorf(wire.CodeBadRequest, "%v", err)
	}
	for _, s := range obj.Siblings {
		if err := n.store.CheckValue(s.Value); err != nil {
			return nil, err
		}
	}
	merged, changed, err := n.store.Merge(req.Key, obj)
	if err != nil {
		return nil, err
	}
	if req.HintFor != "" {
		// NB: hint what is now stored, not what arrived, so the hint
		// covers the whole local copy (which is dropped once delivered).
		n.storeHint(ring.NodeID(req.HintFor), req.Key, merged)
	}
	return &proto.ReplicaPutReply{Changed: changed}, nil
}

func (n *Node) handleReplicaGet(ctx context.Context, payload []byte) (any, error) {
	n.markForeground()
	var req proto.ReplicaGet
	if err := req.DecodeMsgpack(payload); err != nil {
		return nil, malformed(err)
	}
	return n.replicaGet(req.Key, req.Digest)
}

// replicaGet answers one replica read, whole or a digest.
func (n *Node) replicaGet(key []byte, digest bool) (*proto.ReplicaGetReply, error) {
	req := proto.ReplicaGet{Key: key, Digest: digest}
	if req.Digest {
		// Versions are enough for the digest, and the store keeps them
		// in memory for most keys.
		obj, err := n.store.Versions(req.Key)
		if errors.Is(err, store.ErrNotFound) {
			return &proto.ReplicaGetReply{Digested: true}, nil
		}
		if err != nil {
			return nil, err
		}
		return &proto.ReplicaGetReply{Found: true, Digested: true, Digest: antientropy.LeafHash(req.Key, obj)}, nil
	}
	obj, err := n.store.Get(req.Key)
	if errors.Is(err, store.ErrNotFound) {
		return &proto.ReplicaGetReply{}, nil
	}
	if err != nil {
		return nil, err
	}
	return &proto.ReplicaGetReply{Found: true, Object: version.Encode(obj)}, nil
}

// toWireError maps the node's and store's errors to wire codes.
func toWireError(err error) error {
	var we *wire.Error
	var qe *QuorumError
	switch {
	case errors.As(err, &we):
		return we
	case errors.As(err, &qe):
		code := wire.CodeQuorum
		if qe.Timeout {
			code = wire.CodeTimeout
		}
		data, _ := wire.Marshal(&proto.QuorumDetail{Op: qe.Op, Acked: qe.Acked, Asked: qe.Asked, Needed: qe.Needed})
		return &wire.Error{Code: code, Msg: qe.describe(), Data: data}
	case errors.Is(err, store.ErrKeyTooLarge), errors.Is(err, store.ErrValueTooLarge):
		return wire.Errorf(wire.CodeTooLarge, "%v", err)
	case errors.Is(err, store.ErrEmptyKey):
		return wire.Errorf(wire.CodeBadRequest, "%v", err)
	case errors.Is(err, store.ErrClosed), errors.Is(err, ErrClosed):
		return wire.Errorf(wire.CodeUnavailable, "%v", err)
	case errors.Is(err, context.DeadlineExceeded):
		return wire.Errorf(wire.CodeTimeout, "%v", err)
	}
	return wire.Errorf(wire.CodeInternal, "%v", err)
}

// foregroundWindow is how long after a client read or write (coordinated
// here, or served as a replica) the node counts as serving foreground
// requests, for anti-entropy's pacing.
const foregroundWindow = time.Second

// markForeground records that a foreground request is being served. The
// shared word is written at most every few milliseconds, not per request.
func (n *Node) markForeground() {
	now := time.Now().UnixNano()
	if now-n.lastForeground.Load() > int64(10*time.Millisecond) {
		n.lastForeground.Store(now)
	}
}

// busy reports whether a foreground request was served within
// foregroundWindow.
func (n *Node) busy() bool {
	return time.Now().UnixNano()-n.lastForeground.Load() < int64(foregroundWindow)
}
