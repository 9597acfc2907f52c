package antientropy

import (
	"encoding/binary"
	"math/bits"
	"sync"

	"github.com/cespare/xxhash/v2"

	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/version"
)

// LeafHashName names LeafHash for the store, which keeps its XOR per
// segment (store.Options.DigestName).
const LeafHashName = "leafhash-xxh64-v1"

// LeafHash is one key's contribution to its segment's hash: a 64-bit hash
// of the key and of its version digest, which covers the object's causal
// context and each sibling's dot and tombstone flag. Values are not hashed:
// a dot names exactly one write, so two replicas holding the same dots hold
// the same values (version.Equal compares objects the same way). An absent
// or empty object contributes 0.
//
// NB: every node of a cluster must compute the same LeafHash; changing it
// makes every tree differ until all nodes run the new code, and must
// change LeafHashName, so that stores rebuild the digests they keep.
func LeafHash(key []byte, o *version.Object) uint64 {
	if o.IsEmpty() {
		return 0
	}
	var d xxhash.Digest
	d.Reset()
	var buf [binary.MaxVarintLen64]byte
	// Length-prefix every variable field so that no two objects share an
	// input.
	_, _ = d.Write(binary.AppendUvarint(buf[:0], uint64(len(key))))
	_, _ = d.Write(key)
	_, _ = d.Write(binary.AppendUvarint(buf[:0], uint64(len(o.Context))))
	for _, e := range o.Context {
		_, _ = d.Write(binary.AppendUvarint(buf[:0], uint64(len(e.Actor))))
		_, _ = d.WriteString(string(e.Actor))
		_, _ = d.Write(binary.AppendUvarint(buf[:0], e.Counter))
	}
	_, _ = d.Write(binary.AppendUvarint(buf[:0], uint64(len(o.Siblings))))
	for _, s := range o.Siblings {
		_, _ = d.Write(binary.AppendUvarint(buf[:0], uint64(len(s.Dot.Actor))))
		_, _ = d.WriteString(string(s.Dot.Actor))
		// Counter and tombstone flag in one varint.
		c := s.Dot.Counter << 1
		if s.Tombstone {
			c |= 1
		}
		_, _ = d.Write(binary.AppendUvarint(buf[:0], c))
	}
	h := d.Sum64()
	if h == 0 {
		// 0 means "no key"; a real key never contributes it.
		h = 1
	}
	return h
}

// LeafHashEncoded is LeafHash of the object whose encoding (version.Encode)
// is encoded, computed without decoding it: version.WalkEncoded walks the
// msgpack, and the context and each sibling's dot and tombstone flag are
// hashed as they come (values and timestamps are skipped). It accepts
// exactly what version.Decode accepts and returns an error wrapping
// version.ErrMalformed otherwise. Start-up tree builds use it on
// store.ScanPartitionRaw: about 100 ns per object, against 450 ns to
// decode and hash.
func LeafHashEncoded(key, encoded []byte) (uint64, error) {
	lv := leafVisitors.Get().(*leafVisitor)
	defer leafVisitors.Put(lv)
	lv.h.n, lv.h.flushed = 0, false
	lv.h.uvarint(uint64(len(key)))
	lv.h.write(key)
	if err := version.WalkEncoded(encoded, lv); err != nil {
		return 0, err
	}
	if lv.entries == 0 && lv.siblings == 0 {
		return 0, nil // the empty object
	}
	sum := lv.h.sum()
	if sum == 0 {
		sum = 1
	}
	return sum, nil
}

// leafVisitors are reused: a visitor passed as an interface escapes, and
// allocating one per key would cost more than the walk.
var leafVisitors = sync.Pool{New: func() any { return new(leafVisitor) }}

// leafVisitor hashes what version.WalkEncoded finds as LeafHash does.
type leafVisitor struct {
	h                 leafHasher
	entries, siblings int
}

func (v *leafVisitor) Context(n int) {
	v.entries = n
	v.h.uvarint(uint64(n))
}

func (v *leafVisitor) Entry(actor []byte, counter uint64) {
	v.h.uvarint(uint64(len(actor)))
	v.h.write(actor)
	v.h.uvarint(counter)
}

func (v *leafVisitor) Siblings(n int) {
	v.siblings = n
	if v.entries > 0 || n > 0 {
		v.h.uvarint(uint64(n))
	}
}

func (v *leafVisitor) Sibling(actor []byte, counter uint64, tombstone bool) {
	v.h.uvarint(uint64(len(actor)))
	v.h.write(actor)
	counter <<= 1
	if tombstone {
		counter |= 1
	}
	v.h.uvarint(counter)
}

// leafHasher feeds xxhash through a buffer: LeafHash's many small writes,
// in one call for most objects. The digest is that of the concatenation,
// so it equals LeafHash's.
type leafHasher struct {
	d       xxhash.Digest
	flushed bool
	n       int
	buf     [256]byte
}

func (h *leafHasher) flush() {
	if !h.flushed {
		h.d.Reset()
		h.flushed = true
	}
	_, _ = h.d.Write(h.buf[:h.n])
	h.n = 0
}

func (h *leafHasher) uvarint(v uint64) {
	if len(h.buf)-h.n < binary.MaxVarintLen64 {
		h.flush()
	}
	h.n += binary.PutUvarint(h.buf[h.n:], v)
}

func (h *leafHasher) write(b []byte) {
	if len(b) > len(h.buf)-h.n {
		h.flush()
		if len(b) > len(h.buf) {
			_, _ = h.d.Write(b)
			return
		}
	}
	h.n += copy(h.buf[h.n:], b)
}

func (h *leafHasher) sum() uint64 {
	if !h.flushed {
		return xxhash.Sum64(h.buf[:h.n])
	}
	h.flush()
	return h.d.Sum64()
}

// Exchanges compare shortened hashes, salted with a random salt per
// exchange (per pass over a partition): equal hashes always give equal
// tags, and unequal ones collide with a small probability for that pass
// only, a different pair in the next one, so a collision delays a repair
// by a pass or a round and can never hide a difference for good.

// SegmentTag shortens a segment (or any) hash to 24 bits with salt. 0
// stays 0 (an empty segment) and nothing else maps to 0. Two different
// segments collide with probability 2^-24 in one pass.
func SegmentTag(h, salt uint64) uint32 {
	if h == 0 {
		return 0
	}
	t := uint32(mix64(h^salt) >> 40)
	if t == 0 {
		t = 1
	}
	return t
}

// KeyDescriptor is one key's 32-bit descriptor in an exchange: a 16-bit tag
// of the key (high half) and a 16-bit tag of its version (low half, from
// the key's LeafHash), both salted. Equal descriptors mean the same key
// at the same version, wrong with probability 2^-32 for two keys and 2^-16
// for two versions of one key, in one pass. Equal key tags with unequal
// descriptors mean, most likely, the same key at two versions: the
// responder then asks for the initiator's version instead of sending its
// own, and returns the merge only if the initiator's version lacked
// something.
func KeyDescriptor(key []byte, leaf, salt uint64) uint32 {
	kt := uint32(mix64(ring.KeyHash(key)^salt) >> 48)
	vt := uint32(mix64(leaf^salt^0x9e3779b97f4a7c15) >> 48)
	return kt<<16 | vt
}

// mix64 is the murmur3 64-bit finalizer: a bijection that spreads every
// input bit over every output bit.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// Tree is one partition's Merkle tree in the tictac form of Riak 3's AAE:
// every hash is the XOR of the hashes below it. A segment's hash is the XOR
// of its keys' LeafHash, a branch's the XOR of its segments', the root the
// XOR of the branches'. Adding or removing a key is therefore one XOR at
// each level (O(1)), the result does not depend on the order keys were
// added, and no exchange ever needs a rebuild scan.
//
// Segments are the store's (a partition's keys are stored grouped by
// segment, so a segment is one contiguous range to scan). Branches group
// them: 2^floor(log2(segments)/2) branches, so 1024 segments make 32
// branches of 32.
//
// A Tree is a plain value, not safe for concurrent use; Trees adds the
// locking. The zero Tree is unusable: use NewTree.
type Tree struct {
	segs     []uint64 // nil while the tree is empty (allocated on first Toggle)
	branches []uint64
	root     uint64

	nSegs       int
	branchShift uint // segment >> branchShift is its branch
}

// NewTree returns the empty tree of a partition with segments segments (a
// power of two).
func NewTree(segments int) *Tree {
	segBits := uint(bits.TrailingZeros(uint(segments)))
	return &Tree{nSegs: segments, branchShift: segBits - segBits/2}
}

// Segments is the number of segments.
func (t *Tree) Segments() int { return t.nSegs }

// Branches is the number of branches.
func (t *Tree) Branches() int { return t.nSegs >> t.branchShift }

// SegmentsPerBranch is the number of segments under one branch.
func (t *Tree) SegmentsPerBranch() int { return 1 << t.branchShift }

// Toggle adds leaf to segment seg if it was absent, or removes it if
// present (XOR is its own inverse). An update of a key is Toggle of its
// old LeafHash and Toggle of its new one. seg must be < Segments.
func (t *Tree) Toggle(seg uint32, leaf uint64) {
	if leaf == 0 {
		return
	}
	if t.segs == nil {
		t.segs = make([]uint64, t.nSegs)
		t.branches = make([]uint64, t.Branches())
	}
	t.segs[seg] ^= leaf
	t.branches[seg>>t.branchShift] ^= leaf
	t.root ^= leaf
}

// Root is the root hash; 0 for an empty partition.
func (t *Tree) Root() uint64 { return t.root }

// Segment returns segment seg's hash.
func (t *Tree) Segment(seg int) uint64 {
	if t.segs == nil {
		return 0
	}
	return t.segs[seg]
}

// Branch returns branch b's hash.
func (t *Tree) Branch(b int) uint64 {
	if t.branches == nil {
		return 0
	}
	return t.branches[b]
}

// AppendBranches appends every branch hash, in order, to dst.
func (t *Tree) AppendBranches(dst []uint64) []uint64 {
	if t.branches == nil {
		return append(dst, make([]uint64, t.Branches())...)
	}
	return append(dst, t.branches...)
}

// AppendBranchSegments appends the hashes of branch b's segments, in
// order, to dst.
func (t *Tree) AppendBranchSegments(dst []uint64, b int) []uint64 {
	n := t.SegmentsPerBranch()
	if t.segs == nil {
		return append(dst, make([]uint64, n)...)
	}
	return append(dst, t.segs[b*n:(b+1)*n]...)
}

// Clone returns an independent copy of t.
func (t *Tree) Clone() *Tree {
	c := *t
	if t.segs != nil {
		c.segs = append([]uint64(nil), t.segs...)
		c.branches = append([]uint64(nil), t.branches...)
	}
	return &c
}

// Equal reports whether two trees hold the same hashes at every level.
func (t *Tree) Equal(o *Tree) bool {
	if t.nSegs != o.nSegs || t.root != o.root {
		return false
	}
	for s := range t.nSegs {
		if t.Segment(s) != o.Segment(s) {
			return false
		}
	}
	return true
}

// DiffHashes returns the indexes at which a and b differ; both must have
// the same length. It compares branch lists and segment lists alike.
func DiffHashes(a, b []uint64) []int {
	var out []int
	for i := range a {
		if a[i] != b[i] {
			out = append(out, i)
		}
	}
	return out
}

// DiffSegments returns the segments at which two trees of the same shape
// differ, visiting only the branches whose hashes differ: what an exchange
// does, minus the network.
func DiffSegments(a, b *Tree) []int {
	var out []int
	if a.root == b.root {
		return nil
	}
	n := a.SegmentsPerBranch()
	for br := range a.Branches() {
		if a.Branch(br) == b.Branch(br) {
			continue
		}
		for s := br * n; s < (br+1)*n; s++ {
			if a.Segment(s) != b.Segment(s) {
				out = append(out, s)
			}
		}
	}
	return out
}
