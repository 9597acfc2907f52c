package node

// Ownership transfer: how data follows ring changes (Dynamo §4.9, adding
// and removing storage nodes).
//
// Every node compares the partitions it should hold (home replica in the
// current ring or in the future one) with those it held at the last ring
// it saw. A partition it gains is pulled, in throttled batches with a
// persisted cursor (so a restart resumes), from every live node that holds
// it now; only when all of them have been read is it marked synced. A
// joining node becomes active once every partition it will own is synced.
// A partition a node loses is dropped only after every node that now owns
// it reports it synced. A leaving node waits for the same before it marks
// itself removed and exits.
//
// State kept in the store's AuxTransfer keyspace:
//
//	"owned"                -> bitmap of partitions held at the last ring seen
//	"synced"               -> bitmap of partitions held completely
//	"cursor" | p | source  -> resume point of a pull of p from source
//	"status"               -> this node's own ring status, for restarts

import (
	"context"
	"encoding/binary"
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

// Transfer kinds. Wire enum: only append.
const (
	// kindTransferScan reads a batch of a partition: transferScan -> transferBatch.
	kindTransferScan = proto.KindTransferBase + iota
	// kindTransferSynced asks which partitions a node holds completely:
	// transferSyncedReq -> transferSyncedReply.
	kindTransferSynced
	// (KindTransferBase+2 is proto.KindOwnershipEvents.)
)

type transferScan struct {
	P        uint32 `msgpack:"p"`
	AfterSeg uint32 `msgpack:"s,omitempty"`
	After    []byte `msgpack:"a,omitempty"` // nil: from the start
	Started  bool   `msgpack:"st,omitempty"`
	MaxBytes int    `msgpack:"m"`
}

type transferItem struct {
	Key    []byte `msgpack:"k"`
	Seg    uint32 `msgpack:"s"`
	Object []byte `msgpack:"o"`
}

type transferBatch struct {
	Items []transferItem `msgpack:"i"`
	Done  bool           `msgpack:"d"`
}

type transferSyncedReq struct {
	Partitions []uint32 `msgpack:"p"`
}

type transferSyncedReply struct {
	Synced []bool `msgpack:"s"`
}

// ownership runs transfers for one node.
type ownership struct {
	n    *Node
	wake chan struct{}

	// mu guards everything below.
	mu     sync.Mutex
	owned  []bool // partitions held at the last ring seen
	synced []bool // partitions held completely
	// progress of pulls in flight, for status.
	pulling map[ring.Partition]*pullProgress
	keys    int64 // keys received by transfers, all time in this process
	bytes   int64
	events  []proto.OwnershipEvent // the last maxEvents
	seq     uint64                 // of the last event
	eventCh chan struct{}          // closed and replaced on each event
	left    bool                   // this node left the ring
}

type pullProgress struct {
	Partition ring.Partition `json:"partition"`
	Source    string         `json:"source"`
	Keys      int64          `json:"keys"`
	Started   time.Time      `json:"started"`
}

const maxEvents = 1000

func newOwnership(n *Node) *ownership {
	o := &ownership{
		n:       n,
		wake:    make(chan struct{}, 1),
		owned:   make([]bool, n.cfg.Partitions),
		synced:  make([]bool, n.cfg.Partitions),
		pulling: map[ring.Partition]*pullProgress{},
		eventCh: make(chan struct{}),
	}
	return o
}

func bitmap(b []bool) []byte {
	out := make([]byte, (len(b)+7)/8)
	for i, v := range b {
		if v {
			out[i/8] |= 1 << (i % 8)
		}
	}
	return out
}

func unbitmap(raw []byte, n int) []bool {
	out := make([]bool, n)
	for i := range out {
		if i/8 < len(raw) {
			out[i] = raw[i/8]&(1<<(i%8)) != 0
		}
	}
	return out
}

// load reads the persisted state. It reports whether there was any: a
// fresh data directory has none.
func (o *ownership) load() (bool, error) {
	st := o.n.store
	owned, err := st.AuxGet(store.AuxTransfer, []byte("owned"))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	synced, err := st.AuxGet(store.AuxTransfer, []byte("synced"))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	o.mu.Lock()
	o.owned = unbitmap(owned, o.n.cfg.Partitions)
	o.synced = unbitmap(synced, o.n.cfg.Partitions)
	o.mu.Unlock()
	return true, nil
}

// save persists owned and synced; o.mu must be held.
func (o *ownership) saveLocked() error {
	b := o.n.store.NewAuxBatch()
	b.Set(store.AuxTransfer, []byte("owned"), bitmap(o.owned))
	b.Set(store.AuxTransfer, []byte("synced"), bitmap(o.synced))
	return b.Commit()
}

// persistStatus records this node's ring status for its next start.
func (o *ownership) persistStatus(s ring.Status) error {
	return o.n.store.AuxSet(store.AuxTransfer, []byte("status"), []byte{byte(s)})
}

func (o *ownership) persistedStatus() (ring.Status, bool) {
	b, err := o.n.store.AuxGet(store.AuxTransfer, []byte("status"))
	if err != nil || len(b) != 1 {
		return 0, false
	}
	return ring.Status(b[0]), true
}

// adopted records that this node, on an empty directory, kept the place
// the ring gives it. With anti-entropy on, that refills it (the rejoin
// triggers an exchange of every shared partition), so there is nothing to
// pull; without, ownership transfer pulls every partition it owns.
func (o *ownership) adopted(s ring.Status) error {
	if err := o.persistStatus(s); err != nil {
		return err
	}
	if o.n.ae == nil {
		return nil
	}
	v := o.n.view.Load()
	o.mu.Lock()
	defer o.mu.Unlock()
	for p, w := range o.want(v) {
		o.owned[p], o.synced[p] = w, w
	}
	return o.saveLocked()
}

// signal wakes the loop (ring changed, or a peer came back).
func (o *ownership) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// run is the transfer loop, owned by the node's wait group.
func (o *ownership) run() {
	defer o.n.wg.Done()
	tick := time.NewTicker(o.n.cfg.TransferInterval)
	defer tick.Stop()
	for {
		select {
		case <-o.n.bg.Done():
			return
		case <-o.wake:
		case <-tick.C:
		}
		if err := o.step(o.n.bg); err != nil && o.n.bg.Err() == nil {
			o.n.log.Warn().Err(err).Msg("ownership transfer step")
		}
	}
}

// want returns, for a view, the partitions this node should hold.
func (o *ownership) want(v *view) []bool {
	want := make([]bool, v.state.Partitions)
	for _, p := range v.ring.Owned(o.n.self, o.n.cfg.N) {
		want[p] = true
	}
	for _, p := range v.future.Owned(o.n.self, o.n.cfg.N) {
		want[p] = true
	}
	return want
}

// step does one round: note gains and losses, pull what is missing,
// become active, drop what others now hold, finish leaving.
func (o *ownership) step(ctx context.Context) error {
	v := o.n.view.Load()
	self, ok := v.members[o.n.self]
	if !ok || self.Status == ring.Removed {
		return nil
	}
	o.autoRemove()
	if self.Status == ring.Joining && !o.n.joined() {
		return nil // not in touch with the cluster yet: nothing to decide
	}
	want := o.want(v)
	o.mu.Lock()
	for p := range want {
		part := ring.Partition(p)
		switch {
		case want[p] && !o.owned[p]:
			o.owned[p] = true
			o.synced[p] = o.othersHold(v, part) == nil // nobody else to pull from: a new partition
			o.eventLocked("gained", part, o.othersHold(v, part))
		case !want[p] && o.owned[p]:
			o.owned[p] = false
			o.eventLocked("lost", part, o.owners(v, part))
		}
	}
	err := o.saveLocked()
	var toPull []ring.Partition
	for p := range want {
		if want[p] && !o.synced[p] {
			toPull = append(toPull, ring.Partition(p))
		}
	}
	o.mu.Unlock()
	if err != nil {
		return err
	}

	var errs []error
	for _, p := range toPull {
		if ctx.Err() != nil {
			return nil
		}
		if err := o.pull(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}

	if self.Status == ring.Joining && o.allSynced(v.future.Owned(o.n.self, o.n.cfg.N)) {
		o.n.setSelfStatus(ring.Active)
		o.n.log.Info().Msg("every partition this node will own is here: now active")
	}
	if err := o.dropLost(ctx, v, want); err != nil {
		errs = append(errs, err)
	}
	if self.Status == ring.Leaving {
		if err := o.finishLeave(ctx, v); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// othersHold lists the live nodes other than this one that hold partition
// p now (current home replicas and joining ones), the sources of a pull.
func (o *ownership) othersHold(v *view, p ring.Partition) []ring.NodeID {
	var out []ring.NodeID
	for _, id := range v.ring.Home(p, o.n.cfg.N) {
		if id != o.n.self {
			out = append(out, id)
		}
	}
	return out
}

// owners lists the nodes that own p once changes complete.
func (o *ownership) owners(v *view, p ring.Partition) []ring.NodeID {
	return v.future.Home(p, o.n.cfg.N)
}

func (o *ownership) allSynced(parts []ring.Partition) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range parts {
		if !o.synced[p] {
			return false
		}
	}
	return true
}

func (o *ownership) eventLocked(kind string, p ring.Partition, peers []ring.NodeID) {
	o.seq++
	ev := proto.OwnershipEvent{Seq: o.seq, Node: string(o.n.self), Kind: kind, Partition: uint32(p), UnixMs: time.Now().UnixMilli()}
	for _, id := range peers {
		ev.Peers = append(ev.Peers, string(id))
	}
	o.events = append(o.events, ev)
	if len(o.events) > maxEvents {
		o.events = o.events[len(o.events)-maxEvents:]
	}
	close(o.eventCh)
	o.eventCh = make(chan struct{})
	from := "from"
	if kind == "lost" {
		from = "to"
	}
	o.n.log.Info().Str("event", kind).Uint32("partition", uint32(p)).Strs(from, ev.Peers).Msg("partition ownership changed")
}

func cursorKey(p ring.Partition, source ring.NodeID) []byte {
	k := binary.BigEndian.AppendUint32([]byte("cursor"), uint32(p))
	return append(k, source...)
}

// pull copies partition p from a node that holds it: one live holder when
// anti-entropy runs (it repairs whatever that holder lacked), else every
// holder, so that a pull from one stale replica never stands for the whole.
// It marks p synced when the sources were read to the end.
func (o *ownership) pull(ctx context.Context, p ring.Partition) error {
	o.mu.Lock()
	done := o.synced[p]
	o.mu.Unlock()
	if done {
		return nil // synced meanwhile (adopted: anti-entropy refills it)
	}
	v := o.n.view.Load()
	sources := o.othersHold(v, p)
	if o.n.ae != nil {
		// One live holder is enough: anti-entropy brings whatever it
		// lacked (reading every replica tripled the bytes of a join).
		i := slices.IndexFunc(sources, o.n.alive)
		if i < 0 && len(sources) > 0 {
			return fmt.Errorf("node: partition %d: every holder is down; waiting for one", p)
		}
		if i >= 0 {
			sources = sources[i : i+1]
		}
	}
	for _, src := range sources {
		if !o.n.alive(src) {
			return fmt.Errorf("node: partition %d: holder %s is down; waiting for it", p, src)
		}
	}
	start := time.Now()
	var total int64
	for _, src := range sources {
		n, err := o.pullFrom(ctx, v, p, src)
		total += n
		if err != nil {
			return fmt.Errorf("node: pull partition %d from %s: %w", p, src, err)
		}
	}
	o.mu.Lock()
	o.synced[p] = true
	err := o.saveLocked()
	o.mu.Unlock()
	b := o.n.store.NewAuxBatch()
	for _, src := range sources {
		b.Delete(store.AuxTransfer, cursorKey(p, src))
	}
	b.Commit()
	o.n.log.Debug().Uint32("partition", uint32(p)).Int64("keys", total).Dur("took", time.Since(start)).Msg("partition synced")
	return err
}

// pullFrom streams p from src into the store, resuming from a persisted
// cursor, throttled by the transfer rate.
func (o *ownership) pullFrom(ctx context.Context, v *view, p ring.Partition, src ring.NodeID) (int64, error) {
	req := transferScan{P: uint32(p), MaxBytes: 1 << 20}
	if c, err := o.n.store.AuxGet(store.AuxTransfer, cursorKey(p, src)); err == nil && len(c) >= 4 {
		req.AfterSeg, req.After, req.Started = binary.BigEndian.Uint32(c), c[4:], true
	}
	prog := &pullProgress{Partition: p, Source: string(src), Started: time.Now()}
	o.mu.Lock()
	o.pulling[p] = prog
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		delete(o.pulling, p)
		o.mu.Unlock()
	}()
	addr := v.members[src].RPCAddr
	var keys int64
	for {
		body, err := wire.Marshal(&req)
		if err != nil {
			return keys, err
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, resp, err := o.n.pool.Call(cctx, addr, kindTransferScan, body)
		cancel()
		if err != nil {
			return keys, err
		}
		var batch transferBatch
		if err := wire.Unmarshal(resp, &batch); err != nil {
			return keys, err
		}
		items := make([]store.KeyObject, 0, len(batch.Items))
		for _, it := range batch.Items {
			obj, err := version.Decode(it.Object)
			if err != nil {
				return keys, fmt.Errorf("bad object for %q: %w", it.Key, err)
			}
			items = append(items, store.KeyObject{Key: it.Key, Object: obj})
		}
		if _, err := o.n.store.MergeMany(items); err != nil {
			return keys, err
		}
		keys += int64(len(items))
		o.n.transferLimit.Wait(ctx, len(resp))
		o.mu.Lock()
		prog.Keys = keys
		o.keys += int64(len(items))
		o.bytes += int64(len(resp))
		o.mu.Unlock()
		o.n.metrics.transferKeys.Add(float64(len(items)))
		o.n.metrics.transferBytes.Add(float64(len(resp)))
		if len(batch.Items) > 0 {
			last := batch.Items[len(batch.Items)-1]
			req.AfterSeg, req.After, req.Started = last.Seg, last.Key, true
			cur := binary.BigEndian.AppendUint32(nil, last.Seg)
			if err := o.n.store.AuxSet(store.AuxTransfer, cursorKey(p, src), append(cur, last.Key...)); err != nil {
				return keys, err
			}
		}
		if batch.Done {
			return keys, nil
		}
		if ctx.Err() != nil {
			return keys, ctx.Err()
		}
	}
}

// handleScan serves a batch of a partition to a pulling node.
func (n *Node) handleTransferScan(ctx context.Context, payload []byte) (any, error) {
	var req transferScan
	if err := decode(payload, &req); err != nil {
		return nil, err
	}
	if int(req.P) >= n.cfg.Partitions {
		return nil, wire.Errorf(wire.CodeBadRequest, "partition %d out of range", req.P)
	}
	limit := min(max(req.MaxBytes, 64<<10), 4<<20)
	var cur *store.Cursor
	if req.Started {
		cur = &store.Cursor{Segment: req.AfterSeg, Key: req.After}
	}
	var batch transferBatch
	size := 0
	done := true
	err := n.store.ScanPartitionAfter(ring.Partition(req.P), cur, func(e store.Entry) bool {
		enc := version.Encode(e.Object)
		batch.Items = append(batch.Items, transferItem{Key: e.Key, Seg: e.Segment, Object: enc})
		size += len(enc) + len(e.Key) + 8
		if size >= limit {
			done = false
			return false
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	batch.Done = done
	return &batch, nil
}

func (n *Node) handleTransferSynced(ctx context.Context, payload []byte) (any, error) {
	var req transferSyncedReq
	if err := decode(payload, &req); err != nil {
		return nil, err
	}
	reply := transferSyncedReply{Synced: make([]bool, len(req.Partitions))}
	o := n.owner
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, p := range req.Partitions {
		reply.Synced[i] = int(p) < len(o.synced) && o.synced[p] && o.owned[p]
	}
	return &reply, nil
}

// othersSynced asks each node whether it holds each partition completely.
func (o *ownership) othersSynced(ctx context.Context, v *view, byNode map[ring.NodeID][]ring.Partition) (bool, error) {
	for id, parts := range byNode {
		if id == o.n.self {
			if !o.allSynced(parts) {
				return false, nil
			}
			continue
		}
		if !o.n.alive(id) {
			return false, nil
		}
		req := transferSyncedReq{}
		for _, p := range parts {
			req.Partitions = append(req.Partitions, uint32(p))
		}
		body, _ := wire.Marshal(&req)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, resp, err := o.n.pool.Call(cctx, v.members[id].RPCAddr, kindTransferSynced, body)
		cancel()
		if err != nil {
			return false, err
		}
		var reply transferSyncedReply
		if err := wire.Unmarshal(resp, &reply); err != nil {
			return false, err
		}
		if slices.Contains(reply.Synced, false) || len(reply.Synced) != len(parts) {
			return false, nil
		}
	}
	return true, nil
}

// dropLost deletes the data of partitions this node no longer owns, once
// every owner holds them completely.
func (o *ownership) dropLost(ctx context.Context, v *view, want []bool) error {
	for p := range want {
		if want[p] {
			continue
		}
		part := ring.Partition(p)
		if c := o.n.store.PartitionCounts(part); c.Live+c.Tombstones == 0 {
			continue
		}
		byNode := map[ring.NodeID][]ring.Partition{}
		for _, id := range v.ring.Home(part, o.n.cfg.N) {
			byNode[id] = append(byNode[id], part)
		}
		for _, id := range v.future.Home(part, o.n.cfg.N) {
			if !slices.Contains(byNode[id], part) {
				byNode[id] = append(byNode[id], part)
			}
		}
		ok, err := o.othersSynced(ctx, v, byNode)
		if err != nil || !ok {
			continue // try again next round
		}
		var keys [][]byte
		o.n.store.ScanPartition(part, 0, uint32(o.n.cfg.Segments), func(e store.Entry) bool {
			keys = append(keys, e.Key)
			return true
		})
		dropped := 0
		for _, k := range keys {
			// A key that gained a hint since is kept by the hint log.
			if del, err := o.n.store.DeleteIf(k, func(*version.Object) bool { return true }); err == nil && del {
				dropped++
			}
		}
		if dropped > 0 {
			o.n.log.Info().Uint32("partition", uint32(p)).Int("keys", dropped).Msg("dropped a partition its new owners hold")
		}
	}
	return nil
}

// finishLeave completes a decommission: once every partition this node
// held is synced at its new owners, mark this node removed and exit.
func (o *ownership) finishLeave(ctx context.Context, v *view) error {
	byNode := map[ring.NodeID][]ring.Partition{}
	for _, p := range v.ring.Owned(o.n.self, o.n.cfg.N) {
		for _, id := range v.future.Home(p, o.n.cfg.N) {
			byNode[id] = append(byNode[id], p)
		}
	}
	ok, err := o.othersSynced(ctx, v, byNode)
	if err != nil || !ok {
		return err
	}
	o.mu.Lock()
	if o.left {
		o.mu.Unlock()
		return nil
	}
	o.left = true
	o.mu.Unlock()
	o.n.log.Info().Msg("every partition is at its new owners: leaving the ring")
	o.n.setSelfStatus(ring.Removed)
	// Give the ring change a moment to spread before going quiet; the
	// others also learn it from push/pull.
	o.n.wg.Add(1)
	go func() {
		defer o.n.wg.Done()
		t := time.NewTimer(2 * time.Second)
		defer t.Stop()
		select {
		case <-t.C:
		case <-o.n.bg.Done():
			return
		}
		if g := o.n.gsp.Load(); g != nil {
			g.Leave(2 * time.Second)
		}
		select {
		case o.n.done <- ErrLeft:
		default:
		}
	}()
	return nil
}

// ErrLeft is sent on Done when the node has left the ring (mnemo leave).
var ErrLeft = errors.New("node: left the ring")

func (n *Node) handleOwnershipEvents(ctx context.Context, payload []byte) (any, error) {
	var req proto.EventsRequest
	if err := decode(payload, &req); err != nil {
		return nil, err
	}
	wait := time.Duration(min(max(req.WaitMs, 0), 60000)) * time.Millisecond
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	o := n.owner
	for {
		o.mu.Lock()
		var out []proto.OwnershipEvent
		for _, ev := range o.events {
			if ev.Seq > req.After {
				out = append(out, ev)
			}
		}
		next, ch := o.seq, o.eventCh
		o.mu.Unlock()
		if len(out) > 0 || wait == 0 {
			return &proto.EventsReply{Events: out, Next: next}, nil
		}
		select {
		case <-ch:
		case <-deadline.C:
			return &proto.EventsReply{Next: next}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-n.bg.Done():
			return nil, ErrClosed
		}
	}
}

func (n *Node) handleLeave(ctx context.Context, payload []byte) (any, error) {
	v := n.view.Load()
	if m := v.members[n.self]; m.Status != ring.Active && m.Status != ring.Leaving {
		return nil, wire.Errorf(wire.CodeBadRequest, "node %s is %s, not active: it cannot leave", n.self, m.Status)
	}
	if len(v.state.WithStatus(ring.Active)) <= 1 {
		return nil, wire.Errorf(wire.CodeBadRequest, "node %s is the last active member: there is nobody to hand its data to", n.self)
	}
	n.log.Info().Msg("leave requested: handing partitions to their new owners")
	n.setSelfStatus(ring.Leaving)
	n.owner.signal()
	return []byte{}, nil
}

func (n *Node) handleRemove(ctx context.Context, payload []byte) (any, error) {
	var req proto.RemoveRequest
	if err := decode(payload, &req); err != nil {
		return nil, err
	}
	id := ring.NodeID(req.ID)
	if id == n.self {
		return nil, wire.Errorf(wire.CodeBadRequest, "a node cannot remove itself; use mnemo leave")
	}
	if err := n.removeMember(id, req.Force); err != nil {
		return nil, err
	}
	return []byte{}, nil
}

// removeMember marks a dead member removed; the survivors then pull its
// partitions from the remaining replicas.
func (n *Node) removeMember(id ring.NodeID, force bool) error {
	n.stateMu.Lock()
	m, ok := n.state.Member(id)
	if !ok {
		n.stateMu.Unlock()
		return wire.Errorf(wire.CodeBadRequest, "no member %q in the ring", id)
	}
	if m.Status == ring.Removed {
		n.stateMu.Unlock()
		return nil
	}
	if n.alive(id) && !force {
		n.stateMu.Unlock()
		return wire.Errorf(wire.CodeBadRequest, "member %s is alive: use mnemo leave on it (or force)", id)
	}
	m.Status = ring.Removed
	n.state.Update(m)
	n.stateMu.Unlock()
	n.log.Warn().Str("member", string(id)).Msg("member removed from the ring; its partitions are re-replicated")
	n.publishView()
	if g := n.gsp.Load(); g != nil {
		g.BroadcastState()
	}
	return nil
}

// setSelfStatus changes this node's own ring entry and spreads it.
func (n *Node) setSelfStatus(s ring.Status) {
	n.stateMu.Lock()
	n.selfEntry.Status = s
	if cur, ok := n.state.Member(n.self); ok {
		n.selfEntry.Version = cur.Version
	}
	n.state.Update(n.selfEntry)
	n.stateMu.Unlock()
	if err := n.owner.persistStatus(s); err != nil {
		n.log.Error().Err(err).Msg("persist ring status")
	}
	n.publishView()
	if g := n.gsp.Load(); g != nil {
		g.BroadcastState()
	}
}

// autoRemove takes out members dead for longer than AutoRemoveAfter. Only
// the live member with the lowest id acts, so one node decides.
func (o *ownership) autoRemove() {
	after := o.n.cfg.AutoRemoveAfter
	g := o.n.gsp.Load()
	if after <= 0 || g == nil {
		return
	}
	v := o.n.view.Load()
	for id := range v.members {
		if o.n.alive(id) && id < o.n.self {
			return // someone else decides
		}
	}
	for _, m := range g.Members() {
		mem, ok := v.members[ring.NodeID(m.ID)]
		if !ok || mem.Status == ring.Removed || o.n.alive(mem.ID) {
			continue
		}
		if time.Since(m.Since) > after {
			o.n.log.Warn().Str("member", m.ID).Dur("dead_for", time.Since(m.Since)).Msg("auto-remove: dead longer than auto-remove-after")
			o.n.removeMember(mem.ID, false)
		}
	}
}

// stats adds transfer figures to NodeInfo.
func (o *ownership) stats(stats map[string]float64, detail map[string]any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	owned, synced := 0, 0
	for p := range o.owned {
		if o.owned[p] {
			owned++
			if o.synced[p] {
				synced++
			}
		}
	}
	stats["partitions_held"] = float64(owned)
	stats["partitions_syncing"] = float64(owned - synced)
	stats["transfer_keys_received"] = float64(o.keys)
	stats["transfer_bytes_received"] = float64(o.bytes)
	var pulls []pullProgress
	for _, p := range o.pulling {
		pulls = append(pulls, *p)
	}
	if len(pulls) > 0 {
		detail["transfers"] = pulls
	}
	if len(o.events) > 0 {
		detail["ownership_events"] = o.events[max(0, len(o.events)-20):]
	}
}
