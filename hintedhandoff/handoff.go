package hintedhandoff

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/ratelimit"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
	"github.com/mnemo-kv/mnemo/version"
)

// Kind is a request kind of hinted handoff on the node's RPC port. Its
// values are the numbers on the wire (internal/proto's handoff range,
// 100-119); the node's RPC layer carries them as they are.
type Kind uint16

// Request kinds. Wire enum: only append, within proto's handoff range.
const (
	// KindHintBatch delivers hints to their target: hintBatch ->
	// hintBatchReply, sent once the merged batch is durable.
	KindHintBatch = Kind(proto.KindHandoffBase) + 0
)

const (
	// stripeBits sets the number of hint lock stripes (1024). A stripe is
	// picked by the user key's hash, so every target's hint for one key
	// shares it.
	stripeBits = 10
	nStripes   = 1 << stripeBits

	// maxPasses bounds the passes of one replay: a pass after the first
	// runs only when hints changed while their batch was in flight.
	maxPasses = 4

	// dropParallel is how many fallback copies are dropped at once after a
	// batch: each store.DeleteIf syncs on its own, and concurrent ones share
	// Pebble's group commit.
	dropParallel = 64
)

// Handoff is one node's hint log and its replay. Safe for concurrent use.
type Handoff struct {
	cfg    Config
	st     *store.Store
	cl     Cluster
	self   ring.NodeID
	log    zerolog.Logger
	bucket *ratelimit.Bucket

	// stripes serialize every change to the hints of one user key: Add's
	// read-merge-write, the compare-and-delete after a delivery or an
	// expiry, and a fallback's check that no other hint for the key remains
	// before it drops its copy. NB: lock order is stripes (ascending), then
	// mu; never the reverse.
	stripes [nStripes]sync.Mutex

	// ctx is cancelled by Close; replays and calls run under it.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts the scheduler, the sweeper, the replays and the Add and
	// Handle calls in progress, so that after Close nothing touches the
	// store. NB: wg.Add is called under mu after checking mu.closed, so
	// none races with Close's Wait.
	wg        sync.WaitGroup
	wake      chan struct{} // capacity 1: the scheduler has something to do
	closeOnce sync.Once

	mu struct {
		sync.Mutex
		closed bool
		// pending counts hints per target; targets with none are absent.
		// NB: a target entering or leaving it must call publishHinted.
		pending map[ring.NodeID]int64
		// running holds the targets being replayed now.
		running map[ring.NodeID]bool
		// wanted holds the targets to replay when a slot is free.
		wanted map[ring.NodeID]bool
		// last is the most recent finished replay.
		last LastReplay
		// rejected holds, per target, the hints it refused as invalid
		// (aux key -> hash of the value refused), so that they are not
		// resent until they change, expire or the target rejoins.
		rejected map[ring.NodeID]map[string]uint64
	}

	// hinted is the set of targets in mu.pending, published anew (under
	// mu) whenever a target enters or leaves it, so that HasHints, which
	// every read's coordinator asks, takes no lock.
	hinted atomic.Pointer[map[ring.NodeID]struct{}]

	n struct {
		replayed, expired, batches, bytesSent atomic.Uint64
		superseded, rejected, failures        atomic.Uint64
		copiesDropped                         atomic.Uint64
	}
	metrics *collector
}

// New starts a Handoff: it counts the hints already stored (one scan of
// the hints keyspace), then starts the periodic replay check and the expiry
// sweep. The caller must Close it.
func New(cfg Config) (*Handoff, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	h := &Handoff{
		cfg:    cfg,
		st:     cfg.Store,
		cl:     cfg.Cluster,
		self:   cfg.Cluster.Self(),
		log:    cfg.Logger.With().Str("component", "hintedhandoff").Logger(),
		bucket: ratelimit.NewWithBurst(float64(cfg.Rate), float64(cfg.BatchSize)),
		wake:   make(chan struct{}, 1),
	}
	h.mu.pending = map[ring.NodeID]int64{}
	h.mu.running = map[ring.NodeID]bool{}
	h.mu.wanted = map[ring.NodeID]bool{}
	h.mu.rejected = map[ring.NodeID]map[string]uint64{}
	bad := 0
	err := h.st.AuxScan(store.AuxHints, nil, func(k, _ []byte) bool {
		if t, _, ok := splitHintKey(k); ok {
			h.mu.pending[t]++
		} else {
			bad++
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("hintedhandoff: count hints: %w", err)
	}
	if bad > 0 {
		h.log.Warn().Int("keys", bad).Msg("ignoring hint keys without a target")
	}
	h.publishHinted()
	if cfg.Registerer != nil {
		h.metrics = newCollector(h)
		if err := cfg.Registerer.Register(h.metrics); err != nil {
			return nil, fmt.Errorf("hintedhandoff: register metrics: %w", err)
		}
	}
	if n, targets := h.stored(), len(h.mu.pending); n > 0 {
		h.log.Info().Int64("hints", n).Int("targets", targets).Msg("hints found at start")
		h.wantPending() // replay at once to the targets already alive
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.wg.Add(2)
	go h.scheduler()
	go h.sweeper()
	return h, nil
}

// Kinds are the request kinds Handle serves.
func (h *Handoff) Kinds() []Kind { return []Kind{KindHintBatch} }

// Close stops the replays and the background loops and waits for them. A
// batch in flight is abandoned; its hints stay for the next start. It is
// idempotent; every call waits.
func (h *Handoff) Close() error {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.mu.closed = true
		h.mu.Unlock()
		h.cancel()
		if h.metrics != nil {
			h.cfg.Registerer.Unregister(h.metrics)
		}
	})
	h.wg.Wait()
	return nil
}

func (h *Handoff) now() int64 { return h.cfg.Now().UnixNano() }

func (h *Handoff) stripe(key []byte) int { return int(ring.KeyHash(key) >> (64 - stripeBits)) }

// Add records that this node holds obj for key on behalf of the dead home
// replica forID. It merges obj into an existing hint for (forID, key) and
// returns once the hint is durable (per the store's sync mode). An empty
// object, or a hint for this node itself, is a no-op. It returns ErrClosed
// after Close, ErrBadTarget (wrapped) for an unusable id, and the store's
// key errors.
//
// obj should be the object as this node stores it after the write (what
// store.Merge or store.Put returned), not only the incoming one: then the
// hint covers the whole local copy, and after delivery the copy can be
// dropped (see the package doc).
func (h *Handoff) Add(forID ring.NodeID, key []byte, obj *version.Object) error {
	if err := checkTarget(forID); err != nil {
		return err
	}
	if err := h.st.CheckKey(key); err != nil {
		return fmt.Errorf("hintedhandoff: %w", err)
	}
	if obj.IsEmpty() || forID == h.self {
		return nil
	}
	if !h.enter() {
		return ErrClosed
	}
	defer h.wg.Done()
	hk := hintKey(forID, key)
	mu := &h.stripes[h.stripe(key)]
	mu.Lock()
	defer mu.Unlock()
	created := h.now()
	old, err := h.st.AuxGet(store.AuxHints, hk)
	fresh := errors.Is(err, store.ErrNotFound)
	switch {
	case fresh:
	case err != nil:
		return fmt.Errorf("hintedhandoff: add: %w", err)
	default:
		oldCreated, oldObj, err := decodeHint(old)
		if err != nil {
			// Replace it: the new object is all we can still deliver.
			h.log.Error().Err(err).Str("target", string(forID)).Bytes("key", key).Msg("overwriting corrupt hint")
			break
		}
		merged := version.Merge(oldObj, obj)
		if version.Equal(merged, oldObj) {
			return nil // already hinted
		}
		obj = merged
		// The hint keeps its first write's time, unless it had already
		// expired (the sweep had not got to it): then the new write starts
		// a new window rather than being dropped with the old ones.
		if oldCreated > created-int64(h.cfg.Window) {
			created = oldCreated
		}
	}
	if err := h.st.AuxSet(store.AuxHints, hk, encodeHint(created, obj)); err != nil {
		return fmt.Errorf("hintedhandoff: add: %w", err)
	}
	h.mu.Lock()
	if fresh {
		if h.mu.pending[forID]++; h.mu.pending[forID] == 1 {
			h.publishHinted()
		}
	}
	delete(h.mu.rejected[forID], string(hk)) // changed: worth another try
	h.mu.Unlock()
	return nil
}

// NodeRejoined tells the handoff that gossip sees id alive again: its hints,
// if any, are replayed soon, including those it refused before (it may have
// restarted with other limits). It does not block.
func (h *Handoff) NodeRejoined(id ring.NodeID) {
	h.mu.Lock()
	delete(h.mu.rejected, id)
	want := !h.mu.closed && h.mu.pending[id] > 0 && id != h.self
	if want {
		h.mu.wanted[id] = true
	}
	h.mu.Unlock()
	if want {
		h.signal()
	}
}

// enter registers a call that Close must wait for (h.wg.Done when it
// ends), or reports false once Close has begun.
func (h *Handoff) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mu.closed {
		return false
	}
	h.wg.Add(1)
	return true
}

// signal wakes the scheduler without blocking.
func (h *Handoff) signal() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// wantPending marks every target with hints as wanted; the scheduler
// replays the alive ones.
func (h *Handoff) wantPending() {
	h.mu.Lock()
	for t := range h.mu.pending {
		h.mu.wanted[t] = true
	}
	h.mu.Unlock()
	h.signal()
}

// scheduler starts replays: when woken (a rejoin, a finished replay) and
// every CheckInterval for all targets with hints.
func (h *Handoff) scheduler() {
	defer h.wg.Done()
	tick := time.NewTicker(h.cfg.CheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-tick.C:
			h.wantPending()
		case <-h.wake:
			h.schedule()
		}
	}
}

// schedule starts a replay for each wanted, alive target that has none
// running, up to MaxReplays at once. Dead targets are forgotten: a rejoin or
// the periodic check asks again.
func (h *Handoff) schedule() {
	h.mu.Lock()
	var cands []ring.NodeID
	for t := range h.mu.wanted {
		if !h.mu.running[t] {
			cands = append(cands, t)
		}
	}
	h.mu.Unlock()
	slices.Sort(cands) // a stable order, so no target starves behind the limit
	alive := make(map[ring.NodeID]bool, len(cands))
	for _, t := range cands {
		alive[t] = h.cl.Alive(t) // outside mu: Cluster is the caller's code
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range cands {
		switch {
		case h.mu.closed:
			return
		case !alive[t] || h.mu.pending[t] <= int64(len(h.mu.rejected[t])):
			// Dead, or nothing it would accept.
			delete(h.mu.wanted, t)
		case len(h.mu.running) < h.cfg.MaxReplays && !h.mu.running[t]:
			delete(h.mu.wanted, t)
			h.mu.running[t] = true
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				h.replay(t)
				h.mu.Lock()
				delete(h.mu.running, t)
				h.mu.Unlock()
				h.signal() // a slot is free; t may be wanted again
			}()
		}
	}
}

// sweeper drops expired hints every SweepInterval.
func (h *Handoff) sweeper() {
	defer h.wg.Done()
	tick := time.NewTicker(h.cfg.SweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-tick.C:
			n, err := h.sweep()
			switch {
			case err != nil && h.ctx.Err() == nil:
				h.log.Error().Err(err).Int("expired", n).Msg("hint sweep")
			case n > 0:
				h.log.Info().Int("expired", n).Dur("window", h.cfg.Window).Msgf("dropped %d expired hints", n)
			}
		}
	}
}

// sweep drops every expired or unreadable hint and returns how many.
func (h *Handoff) sweep() (int, error) {
	cutoff := h.now() - int64(h.cfg.Window)
	var batch []held
	total := 0
	var ferr error
	flush := func() bool {
		n, err := h.removeUnchanged(batch)
		h.n.expired.Add(uint64(n))
		total += n
		batch = nil
		ferr = err
		return err == nil
	}
	err := h.st.AuxScan(store.AuxHints, nil, func(k, v []byte) bool {
		if h.ctx.Err() != nil {
			ferr = ErrClosed
			return false
		}
		t, key, ok := splitHintKey(k)
		if !ok {
			return true
		}
		created, _, err := decodeHint(v)
		if err == nil && created > cutoff {
			return true
		}
		if err != nil {
			h.log.Error().Err(err).Str("target", string(t)).Bytes("key", key).Msg("dropping unreadable hint")
		}
		batch = append(batch, held{target: t, hk: k, key: key, val: v})
		return len(batch) < h.cfg.BatchSize || flush()
	})
	if err == nil && ferr == nil && len(batch) > 0 {
		flush()
	}
	return total, errors.Join(err, ferr)
}

// held is one hint as read from the store.
type held struct {
	target ring.NodeID
	hk     []byte          // the aux key
	key    []byte          // the user key (aliases hk)
	val    []byte          // the stored value as read
	obj    *version.Object // decoded object (aliases val); nil when not needed
}

// removeUnchanged deletes, in one durable batch, every hint whose stored
// value still equals what was read, and returns how many it deleted. A hint
// that changed since (a write was merged into it) or is gone is left alone.
// Keys must be unique per target.
func (h *Handoff) removeUnchanged(items []held) (int, error) {
	n, _, _, err := h.removeUnchangedMask(items)
	return n, err
}

// removeUnchangedMask is removeUnchanged that also says which items it
// deleted and how many it kept because they changed.
func (h *Handoff) removeUnchangedMask(items []held) (n int, removed []bool, changed int, err error) {
	if len(items) == 0 {
		return 0, nil, 0, nil
	}
	stripes := make([]int, len(items))
	for i, it := range items {
		stripes[i] = h.stripe(it.key)
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, s := range stripes {
		h.stripes[s].Lock()
	}
	defer func() {
		for _, s := range stripes {
			h.stripes[s].Unlock()
		}
	}()
	removed = make([]bool, len(items))
	b := h.st.NewAuxBatch()
	for i, it := range items {
		cur, err := h.st.AuxGet(store.AuxHints, it.hk)
		if errors.Is(err, store.ErrNotFound) {
			continue // removed meanwhile (the sweep)
		}
		if err != nil {
			b.Close()
			return 0, nil, 0, fmt.Errorf("hintedhandoff: read hint: %w", err)
		}
		if bytes.Equal(cur, it.val) {
			b.Delete(store.AuxHints, it.hk)
			removed[i] = true
		} else {
			changed++
		}
	}
	if b.Len() == 0 {
		b.Close()
		return 0, removed, changed, nil
	}
	// NB: Commit closes the batch; closing it again would release it twice.
	if err := b.Commit(); err != nil {
		return 0, nil, 0, fmt.Errorf("hintedhandoff: delete hints: %w", err)
	}
	h.mu.Lock()
	gone := false // a target's last hint went
	for i, it := range items {
		if removed[i] {
			n++
			if h.mu.pending[it.target]--; h.mu.pending[it.target] <= 0 {
				delete(h.mu.pending, it.target)
				gone = true
			}
			if r := h.mu.rejected[it.target]; r != nil {
				delete(r, string(it.hk))
				if len(r) == 0 {
					delete(h.mu.rejected, it.target)
				}
			}
		}
	}
	if gone {
		h.publishHinted()
	}
	h.mu.Unlock()
	return n, removed, changed, nil
}

// dropCopies deletes this node's copy of each delivered key it is not a
// home replica of, with up to dropParallel workers, and waits for them.
func (h *Handoff) dropCopies(target ring.NodeID, delivered []held) {
	var todo []held
	for _, it := range delivered {
		if !h.cl.IsHome(it.key, h.self) {
			todo = append(todo, it)
		}
	}
	var g errgroup.Group
	g.SetLimit(dropParallel)
	for _, it := range todo {
		g.Go(func() error {
			h.dropCopy(target, it)
			return nil
		})
	}
	_ = g.Wait() // dropCopy logs its own failures
}

// dropCopy deletes this fallback's copy of it.key once it was delivered to
// target, unless another target's hint for the key remains or the stored
// object holds something the delivered one does not (a newer write).
func (h *Handoff) dropCopy(target ring.NodeID, it held) {
	mu := &h.stripes[h.stripe(it.key)]
	mu.Lock()
	defer mu.Unlock()
	h.mu.Lock()
	others := make([]ring.NodeID, 0, len(h.mu.pending))
	for t := range h.mu.pending {
		if t != target {
			others = append(others, t)
		}
	}
	h.mu.Unlock()
	for _, t := range others {
		_, err := h.st.AuxGet(store.AuxHints, hintKey(t, it.key))
		if err == nil {
			return // still held for t: the copy goes when t has it
		}
		if !errors.Is(err, store.ErrNotFound) {
			h.log.Error().Err(err).Bytes("key", it.key).Msg("checking other hints before dropping a copy")
			return
		}
	}
	deleted, err := h.st.DeleteIf(it.key, func(cur *version.Object) bool {
		return version.Descends(it.obj, cur)
	})
	if err != nil {
		if h.ctx.Err() == nil {
			h.log.Error().Err(err).Bytes("key", it.key).Msg("dropping fallback copy")
		}
		return
	}
	if deleted {
		h.n.copiesDropped.Add(1)
	}
}

// HasHints reports whether this node holds any hint for id. It takes no
// lock (one atomic load and a map lookup), so a read's coordinator can ask
// it for every replica of every read: it asks every replica while one of
// them is still owed hints (node/coordinator.go). It follows Stats' Pending:
// true from the Add that stores the first hint for id until the delivery
// or expiry that removes the last.
func (h *Handoff) HasHints(id ring.NodeID) bool {
	m := h.hinted.Load()
	if m == nil {
		return false
	}
	_, ok := (*m)[id]
	return ok
}

// publishHinted publishes the targets of mu.pending for HasHints. The
// caller holds mu (or is New, before anyone else can see h); it is called
// only when a target enters or leaves pending, not per hint.
func (h *Handoff) publishHinted() {
	m := make(map[ring.NodeID]struct{}, len(h.mu.pending))
	for t := range h.mu.pending {
		m[t] = struct{}{}
	}
	h.hinted.Store(&m)
}

// stored is the number of hints held, all targets.
func (h *Handoff) stored() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var n int64
	for _, c := range h.mu.pending {
		n += c
	}
	return n
}

// LastReplay describes the most recent finished replay.
type LastReplay struct {
	Target   ring.NodeID
	Start    time.Time     // wall clock at the start
	Duration time.Duration // whole replay, all passes
	Replayed int           // objects delivered and acknowledged
	Expired  int           // hints dropped unsent
	Err      string        // what stopped it early; empty when it finished
}

// Stats are the handoff's figures. Counters run since New.
type Stats struct {
	// Stored is the number of hints held now, all targets.
	Stored int64
	// Pending is the number of hints held now per target; targets with
	// none are absent.
	Pending map[ring.NodeID]int64
	// Replayed counts hinted objects delivered to and acknowledged by their
	// target.
	Replayed uint64
	// Expired counts hints dropped unsent: past the window (or unreadable).
	Expired uint64
	// Batches counts acknowledged batches; BytesSent their payload bytes.
	Batches   uint64
	BytesSent uint64
	// Superseded counts delivered hints kept because a newer write was
	// merged into them while their batch was in flight.
	Superseded uint64
	// Rejected counts hints their target refused as invalid; they stay
	// until they expire.
	Rejected uint64
	// Failures counts replays stopped by an error (target unreachable,
	// timeout); their hints wait for the next trigger.
	Failures uint64
	// CopiesDropped counts fallback copies deleted after delivery.
	CopiesDropped uint64
	// Replaying is the number of replays running now.
	Replaying int
	// Last is the most recent finished replay (zero before the first).
	Last LastReplay
}

// Stats returns the current figures without touching the store.
func (h *Handoff) Stats() Stats {
	s := Stats{
		Replayed:      h.n.replayed.Load(),
		Expired:       h.n.expired.Load(),
		Batches:       h.n.batches.Load(),
		BytesSent:     h.n.bytesSent.Load(),
		Superseded:    h.n.superseded.Load(),
		Rejected:      h.n.rejected.Load(),
		Failures:      h.n.failures.Load(),
		CopiesDropped: h.n.copiesDropped.Load(),
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s.Pending = make(map[ring.NodeID]int64, len(h.mu.pending))
	for t, n := range h.mu.pending {
		s.Pending[t] = n
		s.Stored += n
	}
	s.Replaying = len(h.mu.running)
	s.Last = h.mu.last
	return s
}

// collector exports Stats as Prometheus metrics, read at scrape time from
// the same counters, plus a histogram of replay durations.
type collector struct {
	h        *Handoff
	duration prometheus.Histogram
}

var (
	descStored = prometheus.NewDesc("mnemo_hints_stored",
		"Hints this node holds for dead home replicas, all targets.", nil, nil)
	descPending = prometheus.NewDesc("mnemo_hints_pending",
		"Hints this node holds, by target node.", []string{"target"}, nil)
	descReplaying = prometheus.NewDesc("mnemo_hints_replays_active",
		"Hint replays running now.", nil, nil)
	counterDescs = []struct {
		d *prometheus.Desc
		v func(*Stats) uint64
	}{
		{prometheus.NewDesc("mnemo_hints_replayed_total", "Hinted objects delivered to and acknowledged by their target.", nil, nil),
			func(s *Stats) uint64 { return s.Replayed }},
		{prometheus.NewDesc("mnemo_hints_expired_total", "Hints dropped unsent after the hint window.", nil, nil),
			func(s *Stats) uint64 { return s.Expired }},
		{prometheus.NewDesc("mnemo_hints_batches_total", "Hint batches acknowledged by their target.", nil, nil),
			func(s *Stats) uint64 { return s.Batches }},
		{prometheus.NewDesc("mnemo_hints_sent_bytes_total", "Payload bytes of acknowledged hint batches.", nil, nil),
			func(s *Stats) uint64 { return s.BytesSent }},
		{prometheus.NewDesc("mnemo_hints_superseded_total", "Delivered hints kept because a newer write joined them in flight.", nil, nil),
			func(s *Stats) uint64 { return s.Superseded }},
		{prometheus.NewDesc("mnemo_hints_rejected_total", "Hints their target refused as invalid.", nil, nil),
			func(s *Stats) uint64 { return s.Rejected }},
		{prometheus.NewDesc("mnemo_hints_replay_failures_total", "Hint replays stopped by an error before the end.", nil, nil),
			func(s *Stats) uint64 { return s.Failures }},
		{prometheus.NewDesc("mnemo_hints_copies_dropped_total", "Fallback copies deleted after their hint was delivered.", nil, nil),
			func(s *Stats) uint64 { return s.CopiesDropped }},
	}
)

func newCollector(h *Handoff) *collector {
	return &collector{h: h, duration: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "mnemo_hints_replay_duration_seconds",
		Help:    "Duration of hint replays to one target.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10), // 1ms .. 4.4min
	})}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descStored
	ch <- descPending
	ch <- descReplaying
	for _, cd := range counterDescs {
		ch <- cd.d
	}
	c.duration.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.h.Stats()
	ch <- prometheus.MustNewConstMetric(descStored, prometheus.GaugeValue, float64(s.Stored))
	for t, n := range s.Pending {
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(n), string(t))
	}
	ch <- prometheus.MustNewConstMetric(descReplaying, prometheus.GaugeValue, float64(s.Replaying))
	for _, cd := range counterDescs {
		ch <- prometheus.MustNewConstMetric(cd.d, prometheus.CounterValue, float64(cd.v(&s)))
	}
	c.duration.Collect(ch)
}
