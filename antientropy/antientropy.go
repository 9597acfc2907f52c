package antientropy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/mnemo-kv/mnemo/internal/ratelimit"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
)

// ErrClosed is returned by ExchangeNow after Close.
var ErrClosed = errors.New("antientropy: closed")

// Cluster is what anti-entropy needs from the node: who it is, who is
// alive, who the home replicas of a partition are, and a way to call a
// peer. All methods must be safe for concurrent use.
type Cluster interface {
	// Self is this node's id.
	Self() ring.NodeID
	// Alive reports whether a node is alive as far as gossip knows.
	Alive(id ring.NodeID) bool
	// Replicas returns the home replicas of partition p in the current
	// ring; this node may or may not be one.
	Replicas(p ring.Partition) []ring.NodeID
	// Call sends one request to a peer and returns its reply payload, or
	// an error (a *wire.Error for an error reply).
	Call(ctx context.Context, to ring.NodeID, kind Kind, payload []byte) ([]byte, error)
}

// Config configures anti-entropy. Zero fields take the defaults of
// DefaultConfig.
type Config struct {
	// Store is the node's store. Required.
	Store *store.Store
	// Trees are the store's Observer (store.Options.Observer), of the same
	// shape as the store, which keeps LeafHash (store.Options.Digest).
	// Required. New builds them from the store's summary.
	Trees *Trees
	// Cluster is the node. Required.
	Cluster Cluster
	// Interval is how often each partition is exchanged with each of its
	// other home replicas (--ae-interval). Default 1 min.
	Interval time.Duration
	// Rate bounds the anti-entropy bytes this node sends, in bytes per
	// second (--ae-rate), with bursts of up to Rate/8 (at least 256 KiB).
	// Negative: unlimited. Default 64 MiB/s.
	Rate int64
	// RetryDelay is how soon partitions a rejoin asked to exchange are
	// tried again when the peer's tree was not built yet or the call
	// failed. Such retries stop after Interval, when the periodic rounds
	// take over. Default 500 ms (at most Interval).
	RetryDelay time.Duration
	// FollowUp is how long after a rejoin this node checks the partitions
	// another replica was designated to repair with the rejoined peer: a
	// root comparison if it did, a repair if it could not. The delay runs
	// from the last time this node's own exchanges with the peer found
	// trees not built yet, since nobody can repair before they are.
	// Default 5 s (at most Interval).
	FollowUp time.Duration
	// CallTimeout bounds each request of an exchange, so a peer that
	// stops answering cannot hold the scheduler. Default 30 s.
	CallTimeout time.Duration
	// CPUShare bounds the share of one CPU that anti-entropy's own work
	// takes on this node: the verification of the trees, the scans of
	// differing segments, encoding and merging objects, in both roles. It
	// is measured in wall time, so anti-entropy backs off further when the
	// machine is busy and foreground requests keep priority; whatever the
	// share, that work runs on one goroutine at a time (see pace.go).
	// It applies while Busy reports foreground work. Negative: unbounded.
	// Default DefaultCPUShare.
	CPUShare float64
	// Busy reports whether the node is serving foreground requests (client
	// reads and writes, as coordinator or replica). While it does not,
	// anti-entropy's work is not held to CPUShare: nobody is waiting for
	// the CPU. Nil: always busy.
	Busy func() bool
	// Caller, when set, names the node a request's connection is
	// authenticated as (its TLS certificate), or false when it is not: a
	// request whose From is another node is then refused, so a node
	// cannot run exchanges in another's name. Nil: From is trusted.
	Caller func(ctx context.Context) (ring.NodeID, bool)
	// Logger receives one line per partition exchange that repaired
	// anything, and errors. The zero Logger discards them.
	Logger zerolog.Logger
	// Registerer, when set, receives the mnemo_ae_* metrics.
	Registerer prometheus.Registerer
	// Now is the clock for schedules and statistics. Default time.Now.
	Now func() time.Time
}

// Defaults.
const (
	DefaultInterval    = time.Minute
	DefaultRate        = 64 << 20
	DefaultRetryDelay  = 500 * time.Millisecond
	DefaultFollowUp    = 5 * time.Second
	DefaultCallTimeout = 30 * time.Second
	// DefaultCPUShare: in make bench, a node repairing 100k keys under a
	// light client load raised the clients' p99 1.5x at 0.1 of a core
	// (repair done in 155 s) and 2.5-3.8x at 0.25 (53 s). An idle node
	// repairs unpaced.
	DefaultCPUShare = 0.1
)

// DefaultConfig returns the defaults; set Store, Trees and Cluster.
func DefaultConfig() Config {
	return Config{Interval: DefaultInterval, Rate: DefaultRate, RetryDelay: DefaultRetryDelay,
		FollowUp: DefaultFollowUp, CallTimeout: DefaultCallTimeout, CPUShare: DefaultCPUShare, Now: time.Now}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Interval == 0 {
		c.Interval = d.Interval
	}
	if c.Rate == 0 {
		c.Rate = d.Rate
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = min(d.RetryDelay, c.Interval)
	}
	if c.FollowUp == 0 {
		c.FollowUp = min(d.FollowUp, c.Interval)
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = d.CallTimeout
	}
	if c.CPUShare == 0 {
		c.CPUShare = d.CPUShare
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	return c
}

// Validate reports every bad field at once.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("antientropy: Store is required"))
	}
	if c.Trees == nil {
		errs = append(errs, errors.New("antientropy: Trees is required"))
	}
	if c.Cluster == nil {
		errs = append(errs, errors.New("antientropy: Cluster is required"))
	}
	if c.Store != nil && c.Trees != nil &&
		(c.Store.Partitions() != c.Trees.Partitions() || c.Store.Segments() != c.Trees.Segments()) {
		errs = append(errs, fmt.Errorf("antientropy: trees of %d partitions x %d segments do not fit a store of %d x %d",
			c.Trees.Partitions(), c.Trees.Segments(), c.Store.Partitions(), c.Store.Segments()))
	}
	if c.Interval < 0 {
		errs = append(errs, fmt.Errorf("antientropy: Interval %v is negative", c.Interval))
	}
	if c.RetryDelay < 0 {
		errs = append(errs, fmt.Errorf("antientropy: RetryDelay %v is negative", c.RetryDelay))
	}
	if c.FollowUp < 0 {
		errs = append(errs, fmt.Errorf("antientropy: FollowUp %v is negative", c.FollowUp))
	}
	if c.CallTimeout < 0 {
		errs = append(errs, fmt.Errorf("antientropy: CallTimeout %v is negative", c.CallTimeout))
	}
	if math.IsNaN(c.CPUShare) || math.IsInf(c.CPUShare, 0) {
		errs = append(errs, fmt.Errorf("antientropy: CPUShare %v is not a number", c.CPUShare))
	}
	return errors.Join(errs...)
}

// pairKey names one partition shared with one peer.
type pairKey struct {
	p    ring.Partition
	peer ring.NodeID
}

// pairState is what is known of one partition shared with one peer.
type pairState struct {
	last   time.Time // last exchange of the pair, in either role
	inSync time.Time // last time their roots were seen equal
	synced bool      // whether the last comparison found them equal
}

// AntiEntropy runs Merkle-tree exchanges between home replicas: a
// scheduler (rejoin triggers, periodic rounds) on the initiating side and
// Handle on the responding side. Safe for concurrent use.
type AntiEntropy struct {
	cfg   Config
	log   zerolog.Logger
	st    *store.Store
	trees *Trees
	cl    Cluster
	lim   *ratelimit.Bucket
	pace  *pacer // bounds the CPU of the build and of exchanges
	met   *metrics
	start time.Time
	// replyCap bounds the object bytes of one keys reply (maxReplyObjects;
	// tests lower it to exercise cut replies).
	replyCap int
	// leaseTTL is how long a repair lease lasts without a renewal
	// (DefaultLeaseTTL; tests lower it).
	leaseTTL time.Duration
	// rejoinPending is the scheduler's count of partitions queued by
	// rejoin triggers and not compared yet (Stats.RejoinPending).
	rejoinPending atomic.Int64
	// rejoining is the set of peers with such partitions (Rejoining),
	// published by the scheduler when it changes; nil: none.
	rejoining atomic.Pointer[map[ring.NodeID]struct{}]
	// verified is 0 until the trees were verified against the data, then
	// 1 + the number of partitions found wrong (Stats.TreesVerified).
	verified atomic.Int64

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the scheduler and the build
	kick   chan struct{}  // wakes the scheduler (capacity 1)
	closed atomic.Bool
	once   sync.Once

	// mu guards rejoined, pairs and leases.
	mu struct {
		sync.Mutex
		// rejoined holds rejoin triggers not yet taken by the scheduler.
		rejoined []ring.NodeID
		pairs    map[pairKey]*pairState
		// leases are the repair leases, by partition (see lease.go).
		leases map[ring.Partition]*lease
	}

	stats struct {
		exchanges, repairs, failures atomic.Uint64
		keysSent, keysReceived       atomic.Uint64
		keysChanged                  atomic.Uint64
		bytesSent, bytesReceived     atomic.Uint64
	}
}

// New validates cfg, starts building the trees in the background and
// starts the scheduler. The caller must Close it (before closing the
// store).
func New(cfg Config) (*AntiEntropy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	a := &AntiEntropy{
		cfg:      cfg,
		log:      cfg.Logger.With().Str("component", "antientropy").Logger(),
		st:       cfg.Store,
		trees:    cfg.Trees,
		cl:       cfg.Cluster,
		lim:      newLimiter(cfg.Rate),
		pace:     newPacer(cfg.CPUShare, cfg.Busy),
		start:    cfg.Now(),
		replyCap: maxReplyObjects,
		leaseTTL: DefaultLeaseTTL,
		kick:     make(chan struct{}, 1),
	}
	a.mu.pairs = map[pairKey]*pairState{}
	a.mu.leases = map[ring.Partition]*lease{}
	if cfg.Registerer != nil {
		m, err := newMetrics(a, cfg.Registerer)
		if err != nil {
			return nil, err
		}
		a.met = m
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.wg.Add(2)
	go a.build()
	go a.run()
	return a, nil
}

// build builds the trees from the store's summary and wakes the
// scheduler for retries; one Interval later it verifies them against the
// data, paced (the one full scan of a node's data anti-entropy makes,
// kept out of the minutes after a restart, when the node catches up).
func (a *AntiEntropy) build() {
	defer a.wg.Done()
	t0 := time.Now()
	if err := a.trees.Build(a.ctx, a.st); err != nil {
		if a.ctx.Err() == nil && !errors.Is(err, store.ErrClosed) {
			a.log.Error().Err(err).Msg("building merkle trees")
		}
		return
	}
	a.log.Info().Int("partitions", a.trees.Partitions()).Dur("took", time.Since(t0)).Msg("merkle trees built")
	a.wake()

	wait := time.NewTimer(a.cfg.Interval)
	defer wait.Stop()
	select {
	case <-a.ctx.Done():
		return
	case <-wait.C:
	}
	t0 = time.Now()
	wrong, err := a.trees.verify(a.ctx, a.st, a.pace)
	switch {
	case err != nil:
		if a.ctx.Err() == nil && !errors.Is(err, store.ErrClosed) {
			a.log.Error().Err(err).Msg("verifying merkle trees")
		}
	case wrong > 0:
		a.log.Error().Int("wrong", wrong).Dur("took", time.Since(t0)).Msg("merkle trees verified: partitions kept wrong were corrected")
	default:
		a.log.Info().Int("partitions", a.trees.Partitions()).Dur("took", time.Since(t0)).Msg("merkle trees verified")
	}
	a.verified.Store(int64(wrong) + 1)
}

// Kinds lists the request kinds Handle serves; the node routes them here.
func (a *AntiEntropy) Kinds() []Kind {
	return []Kind{KindRoots, KindSegments, KindKeys, KindPush}
}

// Trees returns the trees.
func (a *AntiEntropy) Trees() *Trees { return a.trees }

// Root returns partition p's root hash, and false while its tree is not
// built.
func (a *AntiEntropy) Root(p ring.Partition) (uint64, bool) { return a.trees.Root(p) }

// Roots returns the root hash of every built partition.
func (a *AntiEntropy) Roots() map[ring.Partition]uint64 { return a.trees.Roots() }

// NodeRejoined asks for an immediate exchange of every partition shared
// with id (a peer seen alive again after a death or a restart). It does not
// block. Each such partition is exchanged by one replica only, the first
// alive home replica other than id in the ring's order, so that a node
// missing data is not sent it by every other replica; the others check
// their partitions with id FollowUp after the trees are built (a root
// comparison, when the designated replica did its work, and a repair when
// it could not). Repair leases (lease.go) keep any two exchanges from
// repairing one partition of a node at once.
func (a *AntiEntropy) NodeRejoined(id ring.NodeID) {
	if id == a.cl.Self() || a.closed.Load() {
		return
	}
	a.mu.Lock()
	a.mu.rejoined = append(a.mu.rejoined, id)
	a.mu.Unlock()
	a.wake()
}

func (a *AntiEntropy) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Close stops the scheduler and the build and waits for them; an
// exchange in flight is cancelled. Idempotent. Handle answers
// CodeUnavailable afterwards.
func (a *AntiEntropy) Close() error {
	a.once.Do(func() {
		a.closed.Store(true)
		a.cancel()
		a.wg.Wait()
	})
	return nil
}

// urgent is a rejoin trigger being served: partitions to exchange with a
// peer as soon as possible, and those left to their designated repairer,
// checked once it has had FollowUp to do its work.
type urgent struct {
	parts map[ring.Partition]bool
	since time.Time
	later map[ring.Partition]bool
	// laterAt is when later is due: FollowUp after the trigger, pushed
	// back while this node's exchanges with the peer find trees not built
	// (the designated repairer cannot have started either).
	laterAt time.Time
}

// run is the scheduler: rejoin triggers first, then periodic rounds.
func (a *AntiEntropy) run() {
	defer a.wg.Done()
	tick := max(a.cfg.Interval/8, time.Millisecond)
	urgents := map[ring.NodeID]*urgent{}
	timer := time.NewTimer(tick)
	defer timer.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-a.kick:
		case <-timer.C:
		}
		a.takeRejoins(urgents)
		a.countPending(urgents)
		a.runUrgent(urgents)
		a.countPending(urgents)
		a.runPeriodic()
		next := tick
		if len(urgents) > 0 {
			next = min(next, a.cfg.RetryDelay)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// takeRejoins turns pending rejoin triggers into urgent exchanges for the
// partitions this node is designated to repair, and postpones the rest.
func (a *AntiEntropy) takeRejoins(urgents map[ring.NodeID]*urgent) {
	a.mu.Lock()
	ids := a.mu.rejoined
	a.mu.rejoined = nil
	// Until countPending recounts, the triggers taken still count as
	// pending (Stats must not see a moment with none).
	a.rejoinPending.Add(int64(len(ids)))
	a.mu.Unlock()
	now := a.cfg.Now()
	for _, id := range ids {
		u := urgents[id]
		if u == nil {
			u = &urgent{parts: map[ring.Partition]bool{}}
			urgents[id] = u
		}
		u.since = now
		if u.later == nil {
			u.later = map[ring.Partition]bool{}
		}
		u.laterAt = now.Add(a.cfg.FollowUp)
		for _, p := range a.shared(id) {
			if a.designated(p, id) {
				u.parts[p] = true
			} else {
				// NB: the designated repairer may itself be cut off from
				// the peer; check after it had time to act, which costs
				// a root comparison when it did.
				u.later[p] = true
			}
		}
		a.log.Info().Str("peer", string(id)).Int("partitions", len(u.parts)).Int("postponed", len(u.later)).
			Msg("peer rejoined: exchanging shared partitions")
	}
}

// runUrgent exchanges the partitions of rejoin triggers; those that could
// not be compared (the peer's tree not built yet, a failed call) stay for a
// retry until Interval has passed or the peer dies.
func (a *AntiEntropy) runUrgent(urgents map[ring.NodeID]*urgent) {
	peers := make([]ring.NodeID, 0, len(urgents))
	for id := range urgents {
		peers = append(peers, id)
	}
	slices.Sort(peers)
	for _, id := range peers {
		if a.ctx.Err() != nil {
			return
		}
		u := urgents[id]
		if !a.cl.Alive(id) || a.cfg.Now().Sub(u.since) > a.cfg.Interval {
			delete(urgents, id)
			continue
		}
		if len(u.later) > 0 && !a.cfg.Now().Before(u.laterAt) {
			for p := range u.later {
				u.parts[p] = true
			}
			clear(u.later)
		}
		if len(u.parts) == 0 {
			continue // only follow-ups, not due yet
		}
		parts := make([]ring.Partition, 0, len(u.parts))
		for p := range u.parts {
			parts = append(parts, p)
		}
		res, err := a.ExchangeNow(a.ctx, id, parts)
		for _, p := range res.Done {
			delete(u.parts, p)
		}
		if len(res.NotReady) > len(res.Busy) && len(u.later) > 0 {
			// Trees still building (the peer's, after its restart, or
			// ours): the follow-ups wait for the designated repairers,
			// who could not start either.
			if at := a.cfg.Now().Add(a.cfg.FollowUp); at.After(u.laterAt) {
				u.laterAt = at
			}
		}
		if err != nil && a.ctx.Err() == nil {
			a.log.Warn().Err(err).Str("peer", string(id)).Msg("exchange after rejoin failed; will retry")
		}
		if len(u.parts) == 0 && len(u.later) == 0 {
			delete(urgents, id)
		}
	}
}

// countPending publishes how many partitions rejoin triggers still queue,
// and for which peers (Rejoining).
func (a *AntiEntropy) countPending(urgents map[ring.NodeID]*urgent) {
	n := 0
	var ids map[ring.NodeID]struct{}
	for id, u := range urgents {
		if k := len(u.parts) + len(u.later); k > 0 {
			n += k
			if ids == nil {
				ids = map[ring.NodeID]struct{}{}
			}
			ids[id] = struct{}{}
		}
	}
	a.rejoinPending.Store(int64(n))
	cur := a.rejoining.Load()
	switch {
	case ids == nil && cur != nil:
		a.rejoining.Store(nil)
	case ids != nil && (cur == nil || !maps.Equal(ids, *cur)):
		a.rejoining.Store(&ids)
	}
}

// Rejoining reports whether this node still has exchanges queued or
// running with id because id rejoined (as designated repairer, or a
// follow-up not done yet): until they are done, this node does not know
// that id holds what it missed. A trigger the scheduler has not taken yet
// does not count (the caller records the rejoin itself). It takes no lock:
// the node's read coordinator asks it per read (node/coordinator.go).
func (a *AntiEntropy) Rejoining(id ring.NodeID) bool {
	m := a.rejoining.Load()
	if m == nil {
		return false
	}
	_, ok := (*m)[id]
	return ok
}

// runPeriodic exchanges every shared partition whose pair is due: once per
// Interval when this node has the lower id, and after two Intervals
// otherwise (only if the other side has not been exchanging, say because
// it is overloaded or runs without anti-entropy). Either side's exchange
// counts for both, so each pair is exchanged about once per Interval, not
// twice.
func (a *AntiEntropy) runPeriodic() {
	now := a.cfg.Now()
	self := a.cl.Self()
	due := map[ring.NodeID][]ring.Partition{}
	a.mu.Lock()
	for p := range a.trees.Partitions() {
		part := ring.Partition(p)
		reps := a.cl.Replicas(part)
		if !slices.Contains(reps, self) {
			continue
		}
		for _, peer := range reps {
			if peer == self {
				continue
			}
			last := a.start
			if ps := a.mu.pairs[pairKey{part, peer}]; ps != nil && !ps.last.IsZero() {
				last = ps.last
			}
			period := a.cfg.Interval
			if peer < self {
				period *= 2
			}
			if now.Sub(last) >= period {
				due[peer] = append(due[peer], part)
			}
		}
	}
	a.mu.Unlock()
	peers := make([]ring.NodeID, 0, len(due))
	for id := range due {
		peers = append(peers, id)
	}
	slices.Sort(peers)
	for _, id := range peers {
		if a.ctx.Err() != nil {
			return
		}
		parts := due[id]
		if !a.cl.Alive(id) {
			continue
		}
		res, err := a.ExchangeNow(a.ctx, id, parts)
		if err != nil && a.ctx.Err() == nil {
			a.log.Warn().Err(err).Str("peer", string(id)).Int("partitions", len(parts)).Msg("periodic exchange failed")
		}
		// Whatever happened, the pair waits for the next round: a dead or
		// failing peer is not retried at every tick. Only partitions
		// another exchange was repairing (busy) are tried at the next
		// tick: a root comparison, most likely equal by then.
		a.mu.Lock()
		t := a.cfg.Now()
		for _, p := range parts {
			if slices.Contains(res.Busy, p) {
				continue
			}
			ps := a.pair(p, id)
			if ps.last.Before(t) {
				ps.last = t
			}
		}
		a.mu.Unlock()
	}
}

// shared returns the partitions of which both this node and peer are home
// replicas, in order.
func (a *AntiEntropy) shared(peer ring.NodeID) []ring.Partition {
	self := a.cl.Self()
	var out []ring.Partition
	for p := range a.trees.Partitions() {
		reps := a.cl.Replicas(ring.Partition(p))
		if slices.Contains(reps, self) && slices.Contains(reps, peer) {
			out = append(out, ring.Partition(p))
		}
	}
	return out
}

// designated reports whether this node is the one to repair partition p
// on a rejoined peer: the first alive home replica other than the peer.
func (a *AntiEntropy) designated(p ring.Partition, peer ring.NodeID) bool {
	for _, id := range a.cl.Replicas(p) {
		if id == peer || !a.cl.Alive(id) {
			continue
		}
		return id == a.cl.Self()
	}
	return false
}

// pair returns the state of (p, peer), creating it; mu must be held.
func (a *AntiEntropy) pair(p ring.Partition, peer ring.NodeID) *pairState {
	k := pairKey{p, peer}
	ps := a.mu.pairs[k]
	if ps == nil {
		ps = &pairState{}
		a.mu.pairs[k] = ps
	}
	return ps
}

// noteCompared records a comparison of p's roots with peer.
func (a *AntiEntropy) noteCompared(p ring.Partition, peer ring.NodeID, equal bool) {
	now := a.cfg.Now()
	a.mu.Lock()
	ps := a.pair(p, peer)
	ps.last = now
	ps.synced = equal
	if equal {
		ps.inSync = now
	}
	a.mu.Unlock()
}

// Stats are anti-entropy's figures since New.
type Stats struct {
	// Exchanges counts partition exchanges this node initiated and
	// completed (roots compared, and repaired if they differed).
	Exchanges uint64
	// Repairs counts those that found different roots and exchanged keys.
	Repairs uint64
	// Failures counts exchanges (ExchangeNow calls) that failed.
	Failures uint64
	// KeysSent and KeysReceived count objects sent to and received from
	// peers, in either role; an object travels only when the other side
	// lacks it or holds another version.
	KeysSent, KeysReceived uint64
	// KeysChanged counts received objects that changed this node's store.
	KeysChanged uint64
	// BytesSent and BytesReceived count anti-entropy messages in either
	// role, as sent on the network (compressed payloads plus the wire's
	// 16-byte frame headers).
	BytesSent, BytesReceived uint64
	// TreesBuilt is the number of partitions whose tree is built, of
	// Partitions.
	TreesBuilt, Partitions int
	// TreesVerified is whether the trees were checked against the data
	// (one Interval after start-up), and TreesWrong how many partitions
	// that check found kept wrong and corrected (0 but for a bug).
	TreesVerified bool
	TreesWrong    int
	// RejoinPending counts the partitions rejoin triggers have queued for
	// an exchange (as designated repairer or follow-up) and that were not
	// compared yet; a trigger the scheduler has not taken yet counts one.
	RejoinPending int
	// Pairs is, per partition shared with a peer and compared at least
	// once, the last comparison's outcome, sorted by partition then peer.
	Pairs []PairStats
}

// PairStats is what is known of one partition shared with one peer.
type PairStats struct {
	Partition ring.Partition
	Peer      ring.NodeID
	// LastExchange is when the pair was last exchanged, in either role.
	LastExchange time.Time
	// LastInSync is when their roots were last seen equal (zero: never).
	LastInSync time.Time
	// InSync is whether the last comparison found equal roots.
	InSync bool
}

// Stats returns a snapshot of the figures.
func (a *AntiEntropy) Stats() Stats {
	s := Stats{
		Exchanges:     a.stats.exchanges.Load(),
		Repairs:       a.stats.repairs.Load(),
		Failures:      a.stats.failures.Load(),
		KeysSent:      a.stats.keysSent.Load(),
		KeysReceived:  a.stats.keysReceived.Load(),
		KeysChanged:   a.stats.keysChanged.Load(),
		BytesSent:     a.stats.bytesSent.Load(),
		BytesReceived: a.stats.bytesReceived.Load(),
		TreesBuilt:    a.trees.BuiltCount(),
		Partitions:    a.trees.Partitions(),
	}
	if v := a.verified.Load(); v > 0 {
		s.TreesVerified, s.TreesWrong = true, int(v-1)
	}
	a.mu.Lock()
	s.RejoinPending = int(a.rejoinPending.Load()) + len(a.mu.rejoined)
	for k, ps := range a.mu.pairs {
		if ps.last.IsZero() && ps.inSync.IsZero() {
			continue
		}
		s.Pairs = append(s.Pairs, PairStats{Partition: k.p, Peer: k.peer, LastExchange: ps.last, LastInSync: ps.inSync, InSync: ps.synced})
	}
	a.mu.Unlock()
	slices.SortFunc(s.Pairs, func(x, y PairStats) int {
		if x.Partition != y.Partition {
			return int(x.Partition) - int(y.Partition)
		}
		switch {
		case x.Peer < y.Peer:
			return -1
		case x.Peer > y.Peer:
			return 1
		}
		return 0
	})
	return s
}

// partitionsInSync counts partitions whose every comparison with a peer
// last found equal roots (partitions never compared are not counted).
func (a *AntiEntropy) partitionsInSync() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	state := map[ring.Partition]bool{}
	for k, ps := range a.mu.pairs {
		if ps.last.IsZero() {
			continue
		}
		ok, seen := state[k.p]
		state[k.p] = ps.synced && (ok || !seen)
	}
	n := 0
	for _, ok := range state {
		if ok {
			n++
		}
	}
	return n
}

// countBytes records message bytes (payload plus frame header).
func (a *AntiEntropy) countBytes(sent, received int) {
	if sent > 0 {
		a.stats.bytesSent.Add(uint64(sent + frameHeader))
		a.met.addBytes("sent", sent+frameHeader)
	}
	if received > 0 {
		a.stats.bytesReceived.Add(uint64(received + frameHeader))
		a.met.addBytes("received", received+frameHeader)
	}
}

func (a *AntiEntropy) countKeys(sent, received, changed int) {
	a.stats.keysSent.Add(uint64(sent))
	a.stats.keysReceived.Add(uint64(received))
	a.stats.keysChanged.Add(uint64(changed))
	a.met.addKeys(sent, received)
}

// metrics are the Prometheus series; a nil *metrics records nothing.
type metrics struct {
	exchanges *prometheus.CounterVec
	keys      *prometheus.CounterVec
	bytes     *prometheus.CounterVec
}

func newMetrics(a *AntiEntropy, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mnemo_ae_exchanges_total",
			Help: "Partition exchanges this node initiated, by result (in_sync, repaired, not_ready, busy: another exchange was repairing it, failed).",
		}, []string{"result"}),
		keys: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mnemo_ae_keys_repaired_total",
			Help: "Objects anti-entropy sent to or received from peers because one side lacked them or held another version.",
		}, []string{"direction"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mnemo_ae_bytes_total",
			Help: "Anti-entropy message bytes on the network (payload and frame header), by direction.",
		}, []string{"direction"}),
	}
	cs := []prometheus.Collector{
		m.exchanges, m.keys, m.bytes,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mnemo_ae_partitions_in_sync",
			Help: "Partitions whose last comparison with every other home replica found equal Merkle roots.",
		}, func() float64 { return float64(a.partitionsInSync()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mnemo_ae_trees_built",
			Help: "Partitions whose Merkle tree is built (the rest are skipped by exchanges).",
		}, func() float64 { return float64(a.trees.BuiltCount()) }),
	}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, r := range cs[:i] {
				reg.Unregister(r)
			}
			return nil, fmt.Errorf("antientropy: register metrics: %w", err)
		}
	}
	// Make the labelled series visible at zero.
	for _, r := range []string{"in_sync", "repaired", "not_ready", "busy", "failed"} {
		m.exchanges.WithLabelValues(r)
	}
	for _, d := range []string{"sent", "received"} {
		m.keys.WithLabelValues(d)
		m.bytes.WithLabelValues(d)
	}
	return m, nil
}

func (m *metrics) addBytes(dir string, n int) {
	if m != nil {
		m.bytes.WithLabelValues(dir).Add(float64(n))
	}
}

func (m *metrics) addKeys(sent, received int) {
	if m == nil {
		return
	}
	if sent > 0 {
		m.keys.WithLabelValues("sent").Add(float64(sent))
	}
	if received > 0 {
		m.keys.WithLabelValues("received").Add(float64(received))
	}
}

func (m *metrics) exchange(result string, n int) {
	if m != nil && n > 0 {
		m.exchanges.WithLabelValues(result).Add(float64(n))
	}
}

// newLimiter bounds the bytes this node sends: rate bytes per second, bursts
// of rate/8 (at least 256 KiB); nil (no limit) for rate < 0.
func newLimiter(rate int64) *ratelimit.Bucket {
	if rate < 0 {
		return nil
	}
	return ratelimit.NewWithBurst(float64(rate), max(float64(rate)/8, 256<<10))
}
