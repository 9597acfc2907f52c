package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
	"github.com/mnemo-kv/mnemo/version"
)

// PutMany coordinates several puts together, as a Redis pipeline of SETs
// arrives: the ones this node versions (it is a home replica of their
// keys) are written here in one Pebble batch, and each replica gets one
// ReplicaPutBatch with all of its objects, merged there in one batch too.
// So a pipeline of k puts costs this node one commit and one fsync, and
// each replica one request, instead of k of each. Every put keeps Put's
// semantics (docs/design.md: versioned by a home replica, acknowledged once W
// replicas hold it durably, hints for replicas that do not answer), and
// its result is what Put would have returned: replies[i] or errs[i].
// Puts that must be forwarded to a home replica go through Put, each on its
// own goroutine.
func (n *Node) PutMany(ctx context.Context, reqs []*proto.PutRequest) (replies []*proto.PutReply, errs []error) {
	n.markForeground()
	replies = make([]*proto.PutReply, len(reqs))
	errs = make([]error, len(reqs))
	v := n.view.Load()

	type item struct {
		i       int
		req     *proto.PutRequest
		p       ring.Partition
		nrep, w int
	}
	items := make([]item, 0, len(reqs))
	sreqs := make([]store.PutRequest, 0, len(reqs))
	var wg sync.WaitGroup
	for i, req := range reqs {
		nrep, w, err := n.checkPut(req)
		if err != nil {
			errs[i] = err
			continue
		}
		p := v.ring.PartitionForKey(req.Key)
		home := v.ring.Home(p, nrep)
		if len(home) == 0 || (!req.Forwarded && !slices.Contains(home, n.self)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				replies[i], errs[i] = n.Put(ctx, req)
			}()
			continue
		}
		vv, _ := version.DecodeVV(req.Context) // checked by checkPut
		mode := n.mode(req.Mode)
		items = append(items, item{i: i, req: req, p: p, nrep: nrep, w: w})
		sreqs = append(sreqs, store.PutRequest{
			Key: req.Key, Value: req.Value, Tombstone: req.Delete, Context: vv,
			SupersedeLocal: mode == proto.ModeLWW || req.Overwrite || (req.Delete && len(vv) == 0),
		})
	}
	defer wg.Wait()
	if len(items) == 0 {
		return replies, errs
	}
	objs, encs, durable, err := n.store.PutMany(sreqs)
	if err != nil {
		for _, it := range items {
			errs[it.i] = err
		}
		return replies, errs
	}

	// Plan each put and group its replica copies by target.
	type group struct {
		id      ring.NodeID
		pending bool  // a joining node: its acks do not count
		items   []int // indexes into items
		puts    []proto.ReplicaPut
	}
	var groups []*group
	groupOf := func(id ring.NodeID, pending bool) *group {
		for _, g := range groups {
			if g.id == id && g.pending == pending {
				return g
			}
		}
		g := &group{id: id, pending: pending, items: make([]int, 0, len(items)), puts: make([]proto.ReplicaPut, 0, len(items))}
		groups = append(groups, g)
		return g
	}
	acks := make([]int, len(items))
	asked := make([]int, len(items))
	local := make([]bool, len(items))
	unreachable := make([]int, len(items))
	// results gets one answer per group and per hinted copy.
	type answer struct {
		items []int // indexes into items
		count bool  // the acks count toward W
		err   error
	}
	var single []func(chan<- answer) // hinted copies, sent one by one
	for k, it := range items {
		obj := objs[k]
		pl := n.plan(v, it.p, it.nrep, it.req.Strict, true)
		unreachable[k] = pl.unreachable()
		for _, h := range pl.missing {
			n.storeHint(h, it.req.Key, obj)
		}
		enc := encs[k]
		for _, t := range pl.targets {
			if !t.pending {
				asked[k]++
			}
			if t.id == n.self {
				if t.hintFor != "" {
					n.storeHint(t.hintFor, it.req.Key, obj)
				}
				local[k] = local[k] || !t.pending
				continue
			}
			if t.hintFor != "" {
				single = append(single, func(done chan<- answer) {
					ack := make(chan ackResult, 1)
					n.replicate(v, t, it.req.Key, obj, enc, nil, ack)
					// replicate answers on the reader goroutine; relay it
					// without blocking there.
					go func() { r := <-ack; done <- answer{items: []int{k}, count: true, err: r.err} }()
				})
				continue
			}
			g := groupOf(t.id, t.pending)
			g.items = append(g.items, k)
			g.puts = append(g.puts, proto.ReplicaPut{Key: it.req.Key, Object: enc})
		}
	}
	results := make(chan answer, len(groups)+len(single))
	var last *group
	var body []byte
	for _, g := range groups {
		// Replicas that take the same puts (all of them, when every node
		// holds every key) share one encoding; the pool copies it into
		// each frame.
		if last == nil || !slices.Equal(last.items, g.items) {
			body = (&proto.ReplicaPutBatch{Items: g.puts}).Encode()
		}
		last = g
		n.pool.Go(v.members[g.id].RPCAddr, proto.KindReplicaPutBatch, body, n.cfg.Timeout, func(_ wire.Kind, _ []byte, err error) {
			if err != nil {
				n.log.Debug().Err(err).Str("peer", string(g.id)).Int("puts", len(g.items)).Msg("replicate batch")
				var we *wire.Error
				if !errors.As(err, &we) || we.Code == wire.CodeUnavailable || we.Code == wire.CodeTimeout {
					// NB: not on the connection's reader goroutine: hints
					// are disk writes.
					n.wg.Add(1)
					go func() {
						defer n.wg.Done()
						for _, k := range g.items {
							n.storeHint(g.id, items[k].req.Key, objs[k])
						}
					}()
				}
			}
			results <- answer{items: g.items, count: !g.pending, err: err}
		})
	}
	for _, send := range single {
		send(results)
	}

	// The replicas are writing meanwhile: this node's fsync overlaps theirs.
	if err := durable(); err != nil {
		for _, it := range items {
			errs[it.i] = err
		}
		return replies, errs
	}
	short := 0 // puts still below W
	for k, it := range items {
		if local[k] {
			acks[k]++
		}
		if acks[k] < it.w {
			short++
		}
	}
	lastErr := make([]error, len(items))
	timedOut := false
	if short > 0 {
		timer := requestTimer(n.timeout(0))
		defer releaseTimer(timer)
	wait:
		for got := 0; got < cap(results) && short > 0; got++ {
			select {
			case a := <-results:
				for _, k := range a.items {
					if a.err != nil {
						lastErr[k] = fmt.Errorf("replica: %w", a.err)
						continue
					}
					if a.count {
						acks[k]++
						if acks[k] == items[k].w {
							short--
						}
					}
				}
			case <-timer.C:
				timedOut = true
				break wait
			case <-ctx.Done():
				timedOut = true
				break wait
			}
		}
	}
	for k, it := range items {
		if acks[k] >= it.w {
			replies[it.i] = &proto.PutReply{Context: version.EncodeVV(objs[k].Context), Acks: acks[k]}
			continue
		}
		if !timedOut {
			n.metrics.quorumFailures.WithLabelValues(opName(it.req)).Inc()
		}
		errs[it.i] = &QuorumError{Op: opName(it.req), Acked: acks[k], Asked: asked[k], Needed: it.w, Timeout: timedOut,
			Unreachable: unreachable[k], Cause: lastErr[k]}
	}
	return replies, errs
}

// checkPut validates a put's key, value, quorum and context, and resolves
// its N and W.
func (n *Node) checkPut(req *proto.PutRequest) (nrep, w int, err error) {
	if err := n.store.CheckKey(req.Key); err != nil {
		return 0, 0, err
	}
	if !req.Delete {
		if err := n.store.CheckValue(req.Value); err != nil {
			return 0, 0, err
		}
	}
	if nrep, w, err = n.quorum(req.N, req.W, n.cfg.W, "w"); err != nil {
		return 0, 0, err
	}
	if _, err := version.DecodeVV(req.Context); err != nil {
		return 0, 0, wire.Errorf(wire.CodeBadRequest, "bad context: %v", err)
	}
	return nrep, w, nil
}

// handleReplicaPutBatch merges a coordinator's batch of objects in one
// write and acknowledges them all once it is durable.
func (n *Node) handleReplicaPutBatch(ctx context.Context, payload []byte) (any, error) {
	n.markForeground()
	var req proto.ReplicaPutBatch
	if err := req.DecodeMsgpack(payload); err != nil {
		return nil, malformed(err)
	}
	items := make([]store.KeyObject, len(req.Items))
	for i, it := range req.Items {
		if it.HintFor != "" {
			return nil, wire.Errorf(wire.CodeBadRequest, "item %d: a batch carries no hints", i)
		}
		obj, err := version.Decode(it.Object)
		if err != nil {
			return nil, wire.Errorf(wire.CodeBadRequest, "item %d: %v", i, err)
		}
		for _, s := range obj.Siblings {
			if err := n.store.CheckValue(s.Value); err != nil {
				return nil, err
			}
		}
		items[i] = store.KeyObject{Key: it.Key, Object: obj}
	}
	changed, err := n.store.MergeMany(items)
	if err != nil {
		return nil, err
	}
	return &proto.ReplicaPutBatchReply{Changed: changed}, nil
}

// GetMany coordinates several reads together, as a Redis pipeline of GETs
// arrives: each replica gets one ReplicaGetBatch with the digests it is
// asked for, answered from its version cache, and this node reads its own
// copies. Every read keeps Get's semantics (R replicas asked, or all when
// one is suspect; R answers, a digest that differs read again whole, a
// failed or slow replica replaced, read repair afterwards), and its result
// is what Get would have returned. A replica replaced is asked with a
// ReplicaGet of its own. Reads this node holds no copy for, and local
// reads, go through Get.
func (n *Node) GetMany(ctx context.Context, reqs []*proto.GetRequest) (replies []*proto.GetReply, errs []error) {
	n.markForeground()
	replies = make([]*proto.GetReply, len(reqs))
	errs = make([]error, len(reqs))
	v := n.view.Load()
	type read struct {
		i int
		g *readGather
	}
	var reads []read
	var wg sync.WaitGroup
	defer wg.Wait()
	type group struct {
		id   ring.NodeID
		t    []target
		gs   []*readGather
		keys [][]byte
	}
	var groups []*group
	for i, req := range reqs {
		if err := n.store.CheckKey(req.Key); err != nil {
			errs[i] = err
			continue
		}
		nrep, r, err := n.quorum(req.N, req.R, n.cfg.R, "r")
		if err != nil {
			errs[i] = err
			continue
		}
		var g *readGather
		if !req.Local {
			if g, err = n.newRead(v, req, nrep, r); err != nil {
				errs[i] = err
				continue
			}
		}
		if g == nil || g.selfAt < 0 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				replies[i], errs[i] = n.Get(ctx, req)
			}()
			continue
		}
		reads = append(reads, read{i, g})
		for _, k := range g.order[:g.asked] {
			if int(k) == g.selfAt {
				continue
			}
			t := g.targets[k]
			var gr *group
			for _, x := range groups {
				if x.id == t.id {
					gr = x
				}
			}
			if gr == nil {
				gr = &group{id: t.id}
				groups = append(groups, gr)
			}
			gr.t = append(gr.t, t)
			gr.gs = append(gr.gs, g)
			gr.keys = append(gr.keys, req.Key)
		}
	}
	for _, gr := range groups {
		fail := func(err error) {
			for k, g := range gr.gs {
				g.add(readResult{t: gr.t[k], err: err, digestReq: true})
			}
		}
		body := (&proto.ReplicaGetBatch{Keys: gr.keys, Digest: true}).Encode()
		n.pool.Go(v.members[gr.id].RPCAddr, proto.KindReplicaGetBatch, body, n.cfg.Timeout+n.cfg.ReadRepairWait,
			func(_ wire.Kind, resp []byte, err error) {
				if err != nil {
					fail(err)
					return
				}
				var rep proto.ReplicaGetBatchReply
				if err := rep.DecodeMsgpack(resp); err != nil || len(rep.Items) != len(gr.gs) {
					fail(fmt.Errorf("node: batch read reply from %s: %d items for %d keys (%v)", gr.id, len(rep.Items), len(gr.gs), err))
					return
				}
				for k, g := range gr.gs {
					g.add(replyResult(gr.t[k], true, &rep.Items[k]))
				}
			})
	}
	if len(reads) == 0 {
		return replies, errs
	}
	// The reads are awaited one after another; their retries are timed
	// from here, and each one's retries are made for the later ones too
	// (readBatch.sweep).
	b := &readBatch{gs: make([]*readGather, len(reads))}
	began := time.Now()
	for k, rd := range reads {
		rd.g.readLocal()
		rd.g.began, rd.g.batch, rd.g.batchAt = began, b, k
		b.gs[k] = rd.g
	}
	for _, rd := range reads {
		req := reqs[rd.i]
		replies[rd.i], errs[rd.i] = rd.g.await(ctx, n.mode(req.Mode), req)
	}
	return replies, errs
}

// handleReplicaGetBatch answers each key of a batch read, whole or digest.
func (n *Node) handleReplicaGetBatch(ctx context.Context, payload []byte) (any, error) {
	n.markForeground()
	var req proto.ReplicaGetBatch
	if err := req.DecodeMsgpack(payload); err != nil {
		return nil, malformed(err)
	}
	rep := &proto.ReplicaGetBatchReply{Items: make([]proto.ReplicaGetReply, len(req.Keys))}
	for i, k := range req.Keys {
		if err := n.store.CheckKey(k); err != nil {
			return nil, wire.Errorf(wire.CodeBadRequest, "key %d: %v", i, err)
		}
		it, err := n.replicaGet(k, req.Digest)
		if err != nil {
			return nil, err
		}
		rep.Items[i] = *it
	}
	return rep, nil
}
