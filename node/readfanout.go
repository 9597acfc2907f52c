package node

// How many replicas a quorum read asks, and which (Cassandra 4's reads):
// in steady state R of them, the data replica and R-1 for digests; every
// one while a replica of the key is suspect, and for a sample of reads,
// since a read repairs only the replicas it asked.

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mnemo-kv/mnemo/ring"
)

// fanoutReason is why a read asked the replicas it asked; the label of
// mnemo_read_fanout_total. Every reason but fanoutQuorum asks every target.
type fanoutReason uint8

const (
	// fanoutQuorum: R targets, the steady state.
	fanoutQuorum fanoutReason = iota
	// fanoutPlan: a target stands in for a home replica (sloppy quorum)
	// or a home replica has no live node at all.
	fanoutPlan
	// fanoutR: R needs every target anyway.
	fanoutR
	// fanoutHints: this node holds hints for a target.
	fanoutHints
	// fanoutRejoin: a target joined or rejoined lately (rejoinWindow).
	fanoutRejoin
	// fanoutSample: one of the ReadRepairChance share of reads.
	fanoutSample
	nFanoutReasons
)

// String is the reason's label value.
func (r fanoutReason) String() string {
	return [...]string{"steady", "plan", "r", "hints", "rejoin", "sample"}[r]
}

// retryReason is why a read asked one more target: a replica answered
// with an error, or those asked were slow (ReadRetryAfter).
type retryReason uint8

const (
	retryError retryReason = iota
	retrySlow
	nRetryReasons
)

func (r retryReason) String() string { return [...]string{"error", "slow"}[r] }

// readFanout decides whether a read on plan pl asks every target or R of
// them. It asks every target (today's behaviour before quorum fan-out,
// and what read repair needs to reach every replica) when a target is
// suspect: the plan is not all home replicas (a stand-in holds what a dead
// replica missed, or a home replica is unreachable), this node holds hints
// for a target (it missed writes that are not delivered yet), or a target
// joined or rejoined lately (it may miss what it was down for until
// anti-entropy has compared it). Otherwise it samples ReadRepairChance of
// the reads that repair. All checks are lock-free: atomic loads and map
// lookups, and a random number only for the sample.
func (n *Node) readFanout(pl replicaPlan, r int, repair bool) fanoutReason {
	if pl.unreachable() > 0 {
		return fanoutPlan
	}
	for _, t := range pl.targets {
		if !t.home() {
			return fanoutPlan
		}
	}
	if r >= len(pl.targets) {
		return fanoutR
	}
	for _, t := range pl.targets {
		if t.id == n.self {
			continue
		}
		if n.handoff != nil && n.handoff.HasHints(t.id) {
			return fanoutHints
		}
		if n.rejoinedLately(t.id) {
			return fanoutRejoin
		}
	}
	if c := n.cfg.ReadRepairChance; repair && c > 0 && (c >= 1 || rand.Float64() < c) {
		return fanoutSample
	}
	return fanoutQuorum
}

// readOrder appends to dst the order in which a read asks its n targets
// (indexes into the plan's targets): first data, the one that sends the
// data (this node when it is a target, else the first target), then the
// others from a place given by the key's hash h, in plan order, wrapping.
// A read asks the first R (the data replica and R-1 for digests), and
// the next ones when it must replace a replica.
//
// The digest replicas are chosen by the key, not at random: the plan (the
// preference list) is the same at every node, so every coordinator of a
// key that is not itself the first in its rotation asks the same replica
// for its digest. Each replica then serves digests for about R-1 in N of
// its keys rather than for all of them, a smaller working set for its
// version cache, and over many keys the rotation spreads digest reads
// evenly across the replicas. The rotation uses h's low bits; the
// partition is its top bits, so keys of one partition still rotate.
func readOrder(dst []uint8, n, data int, h uint64) []uint8 {
	dst = append(dst, uint8(data))
	rot := int(h % uint64(n))
	for k := range n {
		if i := (rot + k) % n; i != data {
			dst = append(dst, uint8(i))
		}
	}
	return dst
}

// readBatch is GetMany's reads in the order it awaits them. Awaiting one
// read at a time would otherwise retry each later read only when its turn
// comes, one round trip after another: when one read retries, the later
// ones that need it retry with it (sweep).
type readBatch struct {
	gs []*readGather
}

// sweep gives every read after g in the batch the retry g just made: a
// replacement for each replica that answered with an error (always, when
// too few are left for R), and when slow a speculative read for those
// still waiting for an answer that have not had as many retries as g.
// Like askNext, it runs on the coordinator's goroutine.
func (b *readBatch) sweep(g *readGather, slow bool) {
	n := g.n
	for _, h := range b.gs[g.batchAt+1:] {
		st := h.state()
		if h.asked-st.failed < h.r {
			for h.asked-st.failed < h.r && h.askNext(st.hasData) {
				n.metrics.readRetries[retryError].Inc()
			}
			continue
		}
		if slow && h.retries < g.retries && st.pending > 0 && h.askNext(st.hasData) {
			h.retries++
			n.metrics.readRetries[retrySlow].Inc()
		}
	}
}

// rejoinWindow is how long after a peer was seen joining or rejoining
// reads that involve it ask every replica, so that read repair reaches it
// from wherever they are coordinated (docs/design.md, T0-T5), whatever
// else caught it up meanwhile. With anti-entropy on: two AEIntervals,
// and longer while this node's anti-entropy still has rejoin exchanges
// with the peer queued or running (AntiEntropy.Rejoining). A rejoin
// triggers exchanges of every shared partition at once, retried for up to
// one Interval while the peer's trees are built; the periodic round
// compares each pair within the next, so after two Intervals with no
// rejoin work left every partition shared with the peer was compared
// since it came back. With anti-entropy off nothing but hints (read asks
// every replica while they are held) and reads repair the peer: the
// window is then the hint window, the longest a node may have been away
// and still be brought back by hints alone.
func (n *Node) rejoinWindow() time.Duration {
	if n.ae != nil {
		return 2 * n.cfg.AEInterval
	}
	return n.cfg.HintWindow
}

// rejoins records when peers were seen joining or rejoining, for
// rejoinedLately.
type rejoins struct {
	// mu serializes the writers of at.
	mu sync.Mutex
	// at maps a peer to when it was last seen alive after having been
	// away, or first seen since this node started. Copy on write, so
	// readers take no lock; a peer is dropped once it is past its window,
	// so in steady state the map is empty and a read does not even read
	// the clock.
	at atomic.Pointer[map[ring.NodeID]seen]
}

// seen is one peer's entry in rejoins: when, and whether it was only the
// first sight of a peer since this node started (first).
type seen struct {
	at    time.Time
	first bool
}

// firstSightGrace is how long a peer first seen since this node started
// stays suspect at least, while anti-entropy's rejoin exchanges with it
// are being queued (they then keep it suspect: AntiEntropy.Rejoining).
const firstSightGrace = 10 * time.Second

// noteRejoin records that gossip saw id alive after a death or a restart:
// it may miss what was written while it was away.
func (n *Node) noteRejoin(id ring.NodeID) { n.noteSeen(id, false) }

// noteFirstSight records that gossip saw id for the first time since this
// node started. Such a peer was not away as far as this node knows; this
// node may have been. A peer that was away before this node started is
// still caught: this node holds its hints (hints survive restarts), and
// anti-entropy compares every partition with it at once, during which it
// stays suspect. So with anti-entropy on it is suspect only for
// firstSightGrace and while those exchanges last, not for the whole
// window: when a cluster starts together, reads ask R replicas once the
// first exchanges are done, not two anti-entropy intervals later. With
// anti-entropy off it gets the whole window.
func (n *Node) noteFirstSight(id ring.NodeID) { n.noteSeen(id, n.ae != nil) }

func (n *Node) noteSeen(id ring.NodeID, first bool) {
	if id == n.self {
		return
	}
	n.rejoins.mu.Lock()
	defer n.rejoins.mu.Unlock()
	m := map[ring.NodeID]seen{}
	if cur := n.rejoins.at.Load(); cur != nil {
		for k, v := range *cur {
			m[k] = v
		}
	}
	if old, ok := m[id]; ok && !old.first && first && time.Since(old.at) < n.rejoinWindow() {
		return // a rejoin's window is not shortened by a later sighting
	}
	m[id] = seen{at: time.Now(), first: first}
	n.rejoins.at.Store(&m)
}

// rejoinedLately reports whether id was seen joining or rejoining within
// its window, or anti-entropy still has rejoin work with it.
func (n *Node) rejoinedLately(id ring.NodeID) bool {
	m := n.rejoins.at.Load()
	if m == nil {
		return false
	}
	e, ok := (*m)[id]
	if !ok {
		return false
	}
	window := n.rejoinWindow()
	if e.first {
		window = firstSightGrace
	}
	if time.Since(e.at) < window || (n.ae != nil && n.ae.Rejoining(id)) {
		return true
	}
	n.forgetRejoin(id, e.at)
	return false
}

// forgetRejoin drops id's entry if it is still the one seen at at.
func (n *Node) forgetRejoin(id ring.NodeID, at time.Time) {
	n.rejoins.mu.Lock()
	defer n.rejoins.mu.Unlock()
	cur := n.rejoins.at.Load()
	if cur == nil || !(*cur)[id].at.Equal(at) {
		return
	}
	if len(*cur) == 1 {
		n.rejoins.at.Store(nil)
		return
	}
	m := make(map[ring.NodeID]seen, len(*cur)-1)
	for k, v := range *cur {
		if k != id {
			m[k] = v
		}
	}
	n.rejoins.at.Store(&m)
}
