package transfer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/ratelimit"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
	"github.com/mnemo-kv/mnemo/version"
)

// ErrClosed is what Handle answers (as wire.CodeUnavailable) after Close.
var ErrClosed = errors.New("transfer: closed")

// Event says a node gained or lost a partition: Kind is "gained" (Peers:
// the nodes it pulls from) or "lost" (Peers: its owners once changes
// complete). Seq numbers a node's events from 1 in each process.
type Event = proto.OwnershipEvent

// Pull is a pull in progress, for status.
type Pull struct {
	Partition ring.Partition `json:"partition"`
	Source    string         `json:"source"`
	Keys      int64          `json:"keys"`
	Started   time.Time      `json:"started"`
}

// Stats are a Transfer's figures.
type Stats struct {
	// PartitionsHeld counts the partitions this node holds (owns now or
	// will own), PartitionsSyncing those of them not yet complete.
	PartitionsHeld, PartitionsSyncing int
	// KeysReceived and BytesReceived count what pulls received in this
	// process (bytes of scan replies).
	KeysReceived, BytesReceived int64
	// Pulls are the pulls in progress, by partition.
	Pulls []Pull
	// Events are the last (up to) 20 ownership events.
	Events []Event
}

// statsEvents is how many of the last events Stats reports.
const statsEvents = 20

// Transfer runs ownership transfer for one node. Safe for concurrent use.
type Transfer struct {
	cfg      Config
	st       *store.Store
	cl       Cluster
	self     ring.NodeID
	log      zerolog.Logger
	throttle Throttle
	wake     chan struct{} // capacity 1: the loop has something to check

	// ctx is cancelled by Close; the loop, its calls and long polls run
	// under it.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts the loop, the leave timer and the Handle calls in
	// progress, so that after Close nothing touches the store. NB: wg.Add
	// is called under mu after checking mu.closed (or from the loop, which
	// holds a count), so none races with Close's Wait.
	wg        sync.WaitGroup
	closeOnce sync.Once

	keysMetric, bytesMetric prometheus.Counter

	mu struct {
		sync.Mutex
		closed, started bool
		owned           []bool // partitions held at the last ring seen
		synced          []bool // partitions held completely
		// pulling is the progress of pulls in flight, for status.
		pulling map[ring.Partition]*Pull
		// keys and bytes received by pulls, all time in this process.
		keys, bytes int64
		events      []Event       // the last MaxEvents
		seq         uint64        // of the last event
		eventCh     chan struct{} // closed and replaced on each event
		left        bool          // this node marked itself removed
	}
}

// New makes a Transfer and loads its persisted state; it starts nothing
// (see Start). The caller must Close it.
func New(cfg Config) (*Transfer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	t := &Transfer{
		cfg:      cfg,
		st:       cfg.Store,
		cl:       cfg.Cluster,
		self:     cfg.Cluster.Self(),
		log:      cfg.Logger,
		throttle: cfg.Throttle,
		wake:     make(chan struct{}, 1),
	}
	if t.throttle == nil {
		t.throttle = ratelimit.New(float64(cfg.Rate))
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	q := t.st.Partitions()
	t.mu.owned = make([]bool, q)
	t.mu.synced = make([]bool, q)
	t.mu.pulling = map[ring.Partition]*Pull{}
	t.mu.eventCh = make(chan struct{})
	if _, err := t.load(); err != nil {
		t.cancel()
		return nil, fmt.Errorf("transfer: load state: %w", err)
	}
	t.keysMetric = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mnemo_transfer_keys_received_total", Help: "Keys received by ownership transfer (joins, leaves, removals).",
	})
	t.bytesMetric = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mnemo_transfer_bytes_received_total", Help: "Bytes received by ownership transfer.",
	})
	if r := cfg.Registerer; r != nil {
		if err := r.Register(t.keysMetric); err != nil {
			t.cancel()
			return nil, fmt.Errorf("transfer: register metrics: %w", err)
		}
		if err := r.Register(t.bytesMetric); err != nil {
			r.Unregister(t.keysMetric)
			t.cancel()
			return nil, fmt.Errorf("transfer: register metrics: %w", err)
		}
	}
	return t, nil
}

// Start starts the transfer loop. Call it once the node is in gossip (its
// view holds what it learnt of the cluster so far); a second call, or one
// after Close, does nothing.
func (t *Transfer) Start() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.closed || t.mu.started {
		return
	}
	t.mu.started = true
	t.wg.Add(1)
	go t.run()
}

// Close stops the loop, waits for it and for the Handle calls in progress,
// and unregisters the metrics; after it, the Transfer does not touch the
// store. Idempotent; every call waits.
func (t *Transfer) Close() error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.mu.closed = true
		t.mu.Unlock()
		t.cancel()
		t.wg.Wait()
		if r := t.cfg.Registerer; r != nil {
			r.Unregister(t.keysMetric)
			r.Unregister(t.bytesMetric)
		}
	})
	t.wg.Wait()
	return nil
}

// enter counts a Handle call in wg; false after Close.
func (t *Transfer) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

// Signal wakes the loop: the ring changed. It never blocks.
func (t *Transfer) Signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// NodeRejoined wakes the loop: a holder it waits for may be back.
func (t *Transfer) NodeRejoined(ring.NodeID) { t.Signal() }

// run is the transfer loop, counted in wg.
func (t *Transfer) run() {
	defer t.wg.Done()
	tick := time.NewTicker(t.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-t.wake:
		case <-tick.C:
		}
		if err := t.step(t.ctx); err != nil && t.ctx.Err() == nil {
			t.log.Warn().Err(err).Msg("ownership transfer step")
		}
	}
}

// want returns, for a view, the partitions this node should hold: those
// it is a home replica of now or once changes complete.
func (t *Transfer) want(v View) []bool {
	want := make([]bool, t.st.Partitions())
	for _, p := range v.Ring.Owned(t.self, t.cfg.N) {
		want[p] = true
	}
	for _, p := range v.Future.Owned(t.self, t.cfg.N) {
		want[p] = true
	}
	return want
}

// step does one round: auto-remove, note gains and losses, pull what is
// missing, become active, drop what others now hold, finish leaving.
func (t *Transfer) step(ctx context.Context) error {
	v := t.cl.View()
	self, ok := v.Members[t.self]
	if !ok || self.Status == ring.Removed {
		return nil
	}
	t.autoRemove(v)
	if self.Status == ring.Joining && !t.cl.Joined() {
		return nil // not in touch with the cluster yet: nothing to decide
	}
	want := t.want(v)
	t.mu.Lock()
	for p := range want {
		part := ring.Partition(p)
		switch {
		case want[p] && !t.mu.owned[p]:
			t.mu.owned[p] = true
			sources := t.othersHold(v, part)
			t.mu.synced[p] = sources == nil // nobody else to pull from: a new partition
			t.eventLocked("gained", part, sources)
		case !want[p] && t.mu.owned[p]:
			t.mu.owned[p] = false
			t.eventLocked("lost", part, v.Future.Home(part, t.cfg.N))
		}
	}
	err := t.saveLocked()
	var toPull []ring.Partition
	for p := range want {
		if want[p] && !t.mu.synced[p] {
			toPull = append(toPull, ring.Partition(p))
		}
	}
	t.mu.Unlock()
	if err != nil {
		return err
	}

	var errs []error
	for _, p := range toPull {
		if ctx.Err() != nil {
			return nil
		}
		if err := t.pull(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}

	if self.Status == ring.Joining && t.allSynced(v.Future.Owned(t.self, t.cfg.N)) {
		t.cl.SetSelfStatus(ring.Active)
		t.log.Info().Msg("every partition this node will own is here: now active")
	}
	if err := t.dropLost(ctx, v, want); err != nil {
		errs = append(errs, err)
	}
	if self.Status == ring.Leaving {
		if err := t.finishLeave(ctx, v); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// othersHold lists the nodes other than this one that hold partition p
// now (its home replicas in the current ring), the sources of a pull.
func (t *Transfer) othersHold(v View, p ring.Partition) []ring.NodeID {
	var out []ring.NodeID
	for _, id := range v.Ring.Home(p, t.cfg.N) {
		if id != t.self {
			out = append(out, id)
		}
	}
	return out
}

func (t *Transfer) allSynced(parts []ring.Partition) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range parts {
		if !t.mu.synced[p] {
			return false
		}
	}
	return true
}

// eventLocked records an ownership event and wakes the long polls; t.mu
// must be held.
func (t *Transfer) eventLocked(kind string, p ring.Partition, peers []ring.NodeID) {
	t.mu.seq++
	ev := Event{Seq: t.mu.seq, Node: string(t.self), Kind: kind, Partition: uint32(p), UnixMs: t.cfg.Now().UnixMilli()}
	for _, id := range peers {
		ev.Peers = append(ev.Peers, string(id))
	}
	t.mu.events = append(t.mu.events, ev)
	if len(t.mu.events) > MaxEvents {
		t.mu.events = t.mu.events[len(t.mu.events)-MaxEvents:]
	}
	close(t.mu.eventCh)
	t.mu.eventCh = make(chan struct{})
	from := "from"
	if kind == "lost" {
		from = "to"
	}
	t.log.Info().Str("event", kind).Uint32("partition", uint32(p)).Strs(from, ev.Peers).Msg("partition ownership changed")
}

// othersSynced asks each node whether it holds each of its partitions
// completely. A node that is down counts as not synced.
func (t *Transfer) othersSynced(ctx context.Context, byNode map[ring.NodeID][]ring.Partition) (bool, error) {
	for id, parts := range byNode {
		if id == t.self {
			if !t.allSynced(parts) {
				return false, nil
			}
			continue
		}
		if !t.cl.Alive(id) {
			return false, nil
		}
		ok, err := t.askSynced(ctx, id, parts)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// dropLost deletes the data of partitions this node no longer holds, once
// every node that owns them now or will own them holds them completely.
func (t *Transfer) dropLost(ctx context.Context, v View, want []bool) error {
	for p := range want {
		if want[p] {
			continue
		}
		part := ring.Partition(p)
		if c := t.st.PartitionCounts(part); c.Live+c.Tombstones == 0 {
			continue
		}
		ok, err := t.othersSynced(ctx, dropAskers(v, part, t.cfg.N))
		if err != nil || !ok {
			continue // try again next round
		}
		var keys [][]byte
		t.st.ScanPartition(part, 0, uint32(t.st.Segments()), func(e store.Entry) bool {
			keys = append(keys, e.Key)
			return true
		})
		dropped := 0
		for _, k := range keys {
			// A key that gained a hint since is kept by the hint log.
			if del, err := t.st.DeleteIf(k, func(*version.Object) bool { return true }); err == nil && del {
				dropped++
			}
		}
		if dropped > 0 {
			t.log.Info().Uint32("partition", uint32(p)).Int("keys", dropped).Msg("dropped a partition its new owners hold")
		}
	}
	return nil
}

// dropAskers is whom a node asks before it drops partition p: its home
// replicas now and once changes complete.
func dropAskers(v View, p ring.Partition, n int) map[ring.NodeID][]ring.Partition {
	byNode := map[ring.NodeID][]ring.Partition{}
	for _, id := range v.Ring.Home(p, n) {
		byNode[id] = append(byNode[id], p)
	}
	for _, id := range v.Future.Home(p, n) {
		if !slices.Contains(byNode[id], p) {
			byNode[id] = append(byNode[id], p)
		}
	}
	return byNode
}

// leaveAskers is whom a leaving node asks before it marks itself removed:
// each partition it owns now, at each of its owners once changes complete.
func leaveAskers(v View, self ring.NodeID, n int) map[ring.NodeID][]ring.Partition {
	byNode := map[ring.NodeID][]ring.Partition{}
	for _, p := range v.Ring.Owned(self, n) {
		for _, id := range v.Future.Home(p, n) {
			byNode[id] = append(byNode[id], p)
		}
	}
	return byNode
}

// finishLeave completes a decommission: once every partition this node
// owns is synced at its new owners, mark this node removed and, after
// LeaveGrace, leave.
func (t *Transfer) finishLeave(ctx context.Context, v View) error {
	ok, err := t.othersSynced(ctx, leaveAskers(v, t.self, t.cfg.N))
	if err != nil || !ok {
		return err
	}
	t.mu.Lock()
	if t.mu.left {
		t.mu.Unlock()
		return nil
	}
	t.mu.left = true
	t.mu.Unlock()
	t.log.Info().Msg("every partition is at its new owners: leaving the ring")
	t.cl.SetSelfStatus(ring.Removed)
	// Give the ring change a moment to spread before going quiet; the
	// others also learn it from push/pull. NB: the loop holds a wg count,
	// so this Add cannot race with Close's Wait.
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		tm := time.NewTimer(t.cfg.LeaveGrace)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-t.ctx.Done():
			return
		}
		t.cl.Leave()
	}()
	return nil
}

// autoRemove takes out members gossip has seen dead for longer than
// AutoRemoveAfter. Only the live member with the lowest id acts, so one
// node decides.
func (t *Transfer) autoRemove(v View) {
	after := t.cfg.AutoRemoveAfter
	if after <= 0 {
		return
	}
	ids := make([]ring.NodeID, 0, len(v.Members))
	for id := range v.Members {
		if t.cl.Alive(id) && id < t.self {
			return // someone else decides
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	now := t.cfg.Now()
	for _, id := range ids {
		if v.Members[id].Status == ring.Removed || t.cl.Alive(id) {
			continue
		}
		since, dead := t.cl.DeadSince(id)
		if !dead || now.Sub(since) <= after {
			continue
		}
		t.log.Warn().Str("member", string(id)).Dur("dead_for", now.Sub(since)).Msg("auto-remove: dead longer than auto-remove-after")
		if err := t.cl.Remove(id); err != nil {
			t.log.Warn().Err(err).Str("member", string(id)).Msg("auto-remove")
		}
	}
}

// Stats returns the transfer figures.
func (t *Transfer) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	var s Stats
	for p := range t.mu.owned {
		if t.mu.owned[p] {
			s.PartitionsHeld++
			if !t.mu.synced[p] {
				s.PartitionsSyncing++
			}
		}
	}
	s.KeysReceived, s.BytesReceived = t.mu.keys, t.mu.bytes
	for _, p := range t.mu.pulling {
		s.Pulls = append(s.Pulls, *p)
	}
	slices.SortFunc(s.Pulls, func(a, b Pull) int { return int(a.Partition) - int(b.Partition) })
	if len(t.mu.events) > 0 {
		s.Events = slices.Clone(t.mu.events[max(0, len(t.mu.events)-statsEvents):])
	}
	return s
}

// Synced reports whether this node holds partition p, completely.
func (t *Transfer) Synced(p ring.Partition) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return int(p) < len(t.mu.synced) && t.mu.synced[p] && t.mu.owned[p]
}
