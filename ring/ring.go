package ring

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// ErrInvalidNodes is returned (wrapped) by New for an empty or duplicate
// node ID, or more than MaxMembers nodes.
var ErrInvalidNodes = errors.New("ring: invalid nodes")

// defaultCacheLimit bounds the cached score order of a Ring, in entries (2
// bytes each): 4 Mi entries is 8 MiB, enough for Q=256 with 4096 nodes or
// Q=4096 with 1024. Beyond it New caches nothing and each lookup scores the
// nodes afresh (one hash per node), which keeps New fast and small for
// extreme Q*n at some cost per lookup.
const defaultCacheLimit = 1 << 22

// stackNodes is how many nodes lookups handle with scratch space on the
// stack; larger rings allocate scratch per call.
const stackNodes = 64

// Node is a member of a Ring: its ID and its zone (failure domain; empty if
// zones are not used).
type Node struct {
	ID   NodeID
	Zone string
}

// Hasher scores a node for a partition. It must be deterministic and the
// same on every node, must not retain b, and must be safe for concurrent
// use. The default is xxhash64; tests inject one whose scores can be checked
// by hand.
type Hasher func(b []byte) uint64

// Option configures New.
type Option func(*options)

type options struct {
	hasher     Hasher
	cacheLimit int // see defaultCacheLimit
}

// WithHasher makes the ring score nodes with h instead of xxhash64. A nil h
// keeps the default. NB: every node of a cluster must use the same hasher.
func WithHasher(h Hasher) Option {
	return func(o *options) {
		if h != nil {
			o.hasher = h
		}
	}
}

// withCacheLimit overrides defaultCacheLimit; tests use 0 to exercise the
// uncached path.
func withCacheLimit(entries int) Option {
	return func(o *options) { o.cacheLimit = entries }
}

// Ring places partitions on a set of nodes by rendezvous hashing. It is
// immutable after New and safe for concurrent use.
type Ring struct {
	q      int
	hasher Hasher
	// nodes is sorted by ID; a node's index here is its rank in score ties.
	nodes []Node
	index map[NodeID]uint16 // ID -> index in nodes
	// zone[i] numbers the zone of nodes[i] in [0, zones); both are zero
	// values when no node has a zone (the ring is not zone-aware).
	zone  []uint16
	zones int
	maxID int // bytes of the longest ID, to size the hash input
	// order[p*len(nodes):(p+1)*len(nodes)] holds the node indices of
	// partition p by descending score, ties by ID. NB: shared by all
	// lookups; read only. Nil when Q*len(nodes) exceeds the cache limit.
	order []uint16
}

// New returns the ring of q partitions over nodes. The caller chooses the
// nodes (normally the Active and Leaving members); their order does not
// matter. It returns an error wrapping ErrInvalidPartitions for a bad q, or
// ErrInvalidNodes for an empty or duplicate ID or more than MaxMembers
// nodes. An empty ring is valid: every lookup on it returns nothing.
func New(q int, nodes []Node, opts ...Option) (*Ring, error) {
	if err := ValidPartitions(q); err != nil {
		return nil, err
	}
	if len(nodes) > MaxMembers {
		return nil, fmt.Errorf("%w: %d nodes, limit %d", ErrInvalidNodes, len(nodes), MaxMembers)
	}
	o := options{hasher: xxhash.Sum64, cacheLimit: defaultCacheLimit}
	for _, opt := range opts {
		opt(&o)
	}
	r := &Ring{
		q:      q,
		hasher: o.hasher,
		nodes:  slices.Clone(nodes),
		index:  make(map[NodeID]uint16, len(nodes)),
	}
	slices.SortFunc(r.nodes, func(a, b Node) int { return cmp.Compare(a.ID, b.ID) })
	zoneNum := make(map[string]uint16)
	zoned := false
	for i, n := range r.nodes {
		if n.ID == "" {
			return nil, fmt.Errorf("%w: empty node id", ErrInvalidNodes)
		}
		if _, dup := r.index[n.ID]; dup {
			return nil, fmt.Errorf("%w: duplicate node id %q", ErrInvalidNodes, n.ID)
		}
		r.index[n.ID] = uint16(i)
		r.maxID = max(r.maxID, len(n.ID))
		if _, ok := zoneNum[n.Zone]; !ok {
			zoneNum[n.Zone] = uint16(len(zoneNum))
		}
		zoned = zoned || n.Zone != ""
	}
	if zoned {
		// NB: in a zone-aware ring a node without a zone forms the zone "".
		r.zones = len(zoneNum)
		r.zone = make([]uint16, len(r.nodes))
		for i, n := range r.nodes {
			r.zone[i] = zoneNum[n.Zone]
		}
	}
	k := len(r.nodes)
	if k > 0 && q*k <= o.cacheLimit {
		r.order = make([]uint16, q*k)
		buf := make([]byte, r.maxID+4)
		scores := make([]scored, k)
		for p := range q {
			r.scoreOrder(Partition(p), buf, scores, r.order[p*k:(p+1)*k])
		}
	}
	return r, nil
}

// scored is one node's score for a partition during sorting.
type scored struct {
	score uint64
	idx   uint16
}

// compareScored orders by descending score, then by ascending node index,
// which is ascending ID since nodes is sorted.
func compareScored(a, b scored) int {
	if c := cmp.Compare(b.score, a.score); c != 0 {
		return c
	}
	return cmp.Compare(a.idx, b.idx)
}

// scoreOrder writes into out (len(nodes)) the node indices of partition p by
// descending score = hasher(nodeID || 4-byte big-endian p). buf (maxID+4
// bytes) and scores (len(nodes)) are scratch.
func (r *Ring) scoreOrder(p Partition, buf []byte, scores []scored, out []uint16) {
	for i, n := range r.nodes {
		l := copy(buf, n.ID)
		binary.BigEndian.PutUint32(buf[l:], uint32(p))
		scores[i] = scored{score: r.hasher(buf[:l+4]), idx: uint16(i)}
	}
	slices.SortFunc(scores, compareScored)
	for i, s := range scores {
		out[i] = s.idx
	}
}

// scratch is per-lookup working space, kept on the caller's stack for rings
// of up to stackNodes nodes.
type scratch struct {
	order, pref [stackNodes]uint16
	scores      [stackNodes]scored
	picked      [stackNodes]bool
	taken       [stackNodes]bool
}

// sized returns a[:k] if it fits, or a fresh slice of k.
func sized[T any](a []T, k int) []T {
	if k <= len(a) {
		return a[:k]
	}
	return make([]T, k)
}

// prefIndices returns the node indices of partition p's preference list for
// n home replicas. NB: the result may be the shared cache or s; read only,
// and only while s lives.
func (r *Ring) prefIndices(p Partition, n int, s *scratch) []uint16 {
	k := len(r.nodes)
	if k == 0 || int(p) >= r.q {
		return nil
	}
	var sorted []uint16
	if r.order != nil {
		sorted = r.order[int(p)*k : (int(p)+1)*k]
	} else {
		sorted = sized(s.order[:], k)
		// NB: the hasher is an unknown function, so buf escapes; this
		// path allocates, the cached one does not.
		buf := make([]byte, r.maxID+4)
		r.scoreOrder(p, buf, sized(s.scores[:], k), sorted)
	}
	if r.zones == 0 || n <= 0 {
		return sorted
	}

	// Zone-aware (Dynamo §4.6: replicas across data centres): walk in
	// score order taking a node whose zone is not yet taken until h are
	// picked or every zone is taken; fill the rest of the first h by
	// score order; then everything else by score order.
	h := min(n, k)
	out := sized(s.pref[:], k)[:0]
	picked := sized(s.picked[:], k)
	taken := sized(s.taken[:], r.zones)
	// NB: s may be reused across calls (Owned does).
	clear(picked)
	clear(taken)
	nTaken := 0
	for i, idx := range sorted {
		if len(out) == h || nTaken == r.zones {
			break
		}
		if z := r.zone[idx]; !taken[z] {
			taken[z] = true
			nTaken++
			picked[i] = true
			out = append(out, idx)
		}
	}
	for i, idx := range sorted {
		if len(out) == h {
			break
		}
		if !picked[i] {
			picked[i] = true
			out = append(out, idx)
		}
	}
	for i, idx := range sorted {
		if !picked[i] {
			out = append(out, idx)
		}
	}
	return out
}

// appendIDs appends the IDs of node indices idx to dst.
func (r *Ring) appendIDs(dst []NodeID, idx []uint16) []NodeID {
	for _, i := range idx {
		dst = append(dst, r.nodes[i].ID)
	}
	return dst
}

// ids returns the IDs of node indices idx in a fresh slice, nil if none.
func (r *Ring) ids(idx []uint16) []NodeID {
	if len(idx) == 0 {
		return nil
	}
	return r.appendIDs(make([]NodeID, 0, len(idx)), idx)
}

// Partitions returns Q.
func (r *Ring) Partitions() int { return r.q }

// Nodes returns the nodes of the ring sorted by ID, in a fresh slice.
func (r *Ring) Nodes() []Node { return slices.Clone(r.nodes) }

// PartitionForKey returns the partition of key: PartitionOf(KeyHash(key), Q).
// NB: it does not use the ring's Hasher, which only scores placement, because
// the partition must agree with the storage layout that store/ and
// antientropy/ derive from KeyHash.
func (r *Ring) PartitionForKey(key []byte) Partition {
	return PartitionOf(KeyHash(key), r.q)
}

// PreferenceList returns every node of the ring ordered for partition p:
// by descending score = hasher(nodeID || 4-byte big-endian p), ties by
// NodeID (rendezvous hashing). When zones are set, the first n entries span
// as many distinct zones as possible, walking in score order, and the rest
// follow in score order. The first n are the home replicas, the rest the
// fallbacks in the order to try them. It returns nil for an empty ring or a
// p outside [0, Q). The slice is the caller's.
func (r *Ring) PreferenceList(p Partition, n int) []NodeID {
	var s scratch
	return r.ids(r.prefIndices(p, n, &s))
}

// AppendPreferenceList appends PreferenceList(p, n) to dst and returns it;
// with a dst of enough capacity it does not allocate (for rings of up to 64
// nodes within the cache limit).
func (r *Ring) AppendPreferenceList(dst []NodeID, p Partition, n int) []NodeID {
	var s scratch
	return r.appendIDs(dst, r.prefIndices(p, n, &s))
}

// Home returns the home replicas of partition p: the first min(n, nodes)
// entries of PreferenceList(p, n).
func (r *Ring) Home(p Partition, n int) []NodeID {
	var s scratch
	idx := r.prefIndices(p, n, &s)
	return r.ids(idx[:clamp(n, len(idx))])
}

// Fallbacks returns the entries of PreferenceList(p, n) after the home
// replicas, in order.
func (r *Ring) Fallbacks(p Partition, n int) []NodeID {
	var s scratch
	idx := r.prefIndices(p, n, &s)
	return r.ids(idx[clamp(n, len(idx)):])
}

// IsHome reports whether id is one of the n home replicas of partition p.
// It does not allocate for rings within the cache limit.
func (r *Ring) IsHome(p Partition, n int, id NodeID) bool {
	j, ok := r.index[id]
	if !ok {
		return false
	}
	var s scratch
	idx := r.prefIndices(p, n, &s)
	return slices.Contains(idx[:clamp(n, len(idx))], j)
}

// Owned returns, in ascending order, the partitions where id is one of the n
// home replicas.
func (r *Ring) Owned(id NodeID, n int) []Partition {
	j, ok := r.index[id]
	if !ok {
		return nil
	}
	var out []Partition
	var s scratch
	for p := range r.q {
		idx := r.prefIndices(Partition(p), n, &s)
		if slices.Contains(idx[:clamp(n, len(idx))], j) {
			out = append(out, Partition(p))
		}
	}
	return out
}

// clamp returns n limited to [0, k].
func clamp(n, k int) int { return max(0, min(n, k)) }

// Move is one home replica that a ring change creates: partition Partition
// gains node To as a home replica. From lists the partition's home replicas
// before the change (the nodes To can copy the data from), in preference
// order; it is the move's own slice.
type Move struct {
	Partition Partition
	To        NodeID
	From      []NodeID
}

// Moves compares two rings of the same Q for n home replicas and returns,
// for every partition in ascending order, the (partition, node) home-replica
// pairs present in to but not in from, in to's preference order. Used to
// plan ownership transfer and to measure movement: with rendezvous hashing,
// adding one node to k yields about n*Q/(k+1) moves, all to the new node.
//
// A nil from stands for an empty ring (every home replica of to is a move);
// a nil to, or rings of different Q, yield nil.
func Moves(from, to *Ring, n int) []Move {
	if to == nil || (from != nil && from.q != to.q) {
		return nil
	}
	var moves []Move
	for p := range to.q {
		var before []NodeID
		if from != nil {
			before = from.Home(Partition(p), n)
		}
		for _, id := range to.Home(Partition(p), n) {
			if !slices.Contains(before, id) {
				moves = append(moves, Move{Partition: Partition(p), To: id, From: slices.Clone(before)})
			}
		}
	}
	return moves
}
