package antientropy

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
	"github.com/mnemo-kv/mnemo/version"
)

// Trees holds one Merkle tree per partition and keeps them current: it is
// the store's Observer, so every committed write, merge and delete toggles
// the key's old and new LeafHash in its partition's tree.
//
// A partition's tree is usable once built (see Build). Until then changes
// to it are ignored, because the build scan will see them: the scan runs
// under store.LockPartition and flips "built" before releasing it, and the
// store calls Changed under the key's lock, so every change lands either
// before the scan (and is in it) or after the flip (and is applied).
//
// Safe for concurrent use.
type Trees struct {
	segments int
	parts    []partTree
	built    atomic.Int64 // partitions built
}

// partTree is one partition's tree and its lock.
type partTree struct {
	// mu guards built and tree. Held for O(1) work only.
	mu    sync.Mutex
	built bool
	tree  *Tree
}

// NewTrees returns the unbuilt trees of partitions partitions of segments
// segments each: the store's counts (store.Options, after defaults). It
// panics if either is not a power of two (the store rejects those too).
func NewTrees(partitions, segments int) *Trees {
	if partitions < 1 || partitions&(partitions-1) != 0 {
		panic(fmt.Sprintf("antientropy: partitions %d is not a power of two", partitions))
	}
	if segments < 1 || segments > 1<<16 || segments&(segments-1) != 0 {
		panic(fmt.Sprintf("antientropy: segments %d is not a power of two in [1, 65536]", segments))
	}
	t := &Trees{segments: segments, parts: make([]partTree, partitions)}
	for i := range t.parts {
		t.parts[i].tree = NewTree(segments)
	}
	return t
}

// Partitions is Q.
func (t *Trees) Partitions() int { return len(t.parts) }

// Segments is the number of segments per partition.
func (t *Trees) Segments() int { return t.segments }

// Changed implements store.Observer. It runs under the key's lock and does
// O(1) work: digest is LeafHash(key, before) XOR LeafHash(key, after),
// computed by the store (whose Digest is LeafHash, as Build checks), and
// toggling it toggles the old leaf out and the new one in.
func (t *Trees) Changed(p ring.Partition, segment uint32, key []byte, before, after *version.Object, digest uint64) {
	if int(p) >= len(t.parts) || int(segment) >= t.segments || digest == 0 {
		return
	}
	pt := &t.parts[p]
	pt.mu.Lock()
	if pt.built {
		pt.tree.Toggle(segment, digest)
	}
	pt.mu.Unlock()
}

var _ store.Observer = (*Trees)(nil)

// Build builds every partition's tree not built yet from the store's
// summary (store.SegmentDigests: the XOR of LeafHash per segment, which the
// store keeps with the data and restores at open), one partition at a
// time under store.LockPartition: no scan of the data, so a restarted node
// has its trees within milliseconds. The store must have been opened with
// Digest LeafHash (DigestName LeafHashName). It returns when every
// partition is built, or with ctx's error. Call it right after opening the
// store with t as its Observer; calling it again builds nothing twice.
// Verify checks the restored trees against the data.
func (t *Trees) Build(ctx context.Context, s *store.Store) error {
	if s.Partitions() != len(t.parts) || s.Segments() != t.segments {
		return fmt.Errorf("antientropy: store has %d partitions of %d segments, trees %d of %d",
			s.Partitions(), s.Segments(), len(t.parts), t.segments)
	}
	if s.DigestName() != LeafHashName {
		return fmt.Errorf("antientropy: the store keeps digest %q, not %q", s.DigestName(), LeafHashName)
	}
	segs := make([]uint64, 0, t.segments)
	for p := range t.parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		pt := &t.parts[p]
		unlock := s.LockPartition(ring.Partition(p))
		segs = s.SegmentDigests(segs[:0], ring.Partition(p))
		pt.mu.Lock()
		if !pt.built {
			pt.tree, pt.built = treeOf(segs), true
			t.built.Add(1)
		}
		pt.mu.Unlock()
		unlock()
	}
	return nil
}

// treeOf returns the tree whose segment hashes are segs.
func treeOf(segs []uint64) *Tree {
	tree := NewTree(len(segs))
	for seg, h := range segs {
		if h != 0 {
			tree.Toggle(uint32(seg), h)
		}
	}
	return tree
}

// Verify checks every built partition's tree against the data, one
// partition at a time under store.LockPartition: the store recomputes the
// partition's summary from its objects (store.VerifySummary, which
// corrects it), and a tree that differs from the summary is replaced. It
// returns how many partitions were wrong (0 unless a bug kept them wrong),
// or ctx's or the store's error. AntiEntropy runs it paced, one Interval
// after start-up.
func (t *Trees) Verify(ctx context.Context, s *store.Store) (wrong int, err error) {
	return t.verify(ctx, s, nil)
}

// verify is Verify with each partition a turn of pace (nil: unpaced).
func (t *Trees) verify(ctx context.Context, s *store.Store, pace *pacer) (wrong int, err error) {
	segs := make([]uint64, 0, t.segments)
	for p := range t.parts {
		if err := ctx.Err(); err != nil {
			return wrong, err
		}
		var tn turn
		if err := pace.begin(ctx, &tn); err != nil {
			return wrong, err
		}
		bad, err := t.verifyPartition(s, ring.Partition(p), segs)
		if perr := pace.end(ctx, &tn); err == nil {
			err = perr
		}
		if err != nil {
			return wrong, err
		}
		if bad {
			wrong++
		}
	}
	return wrong, nil
}

func (t *Trees) verifyPartition(s *store.Store, p ring.Partition, segs []uint64) (bad bool, err error) {
	unlock := s.LockPartition(p)
	defer unlock()
	fixed, err := s.VerifySummary(p)
	if err != nil {
		return false, err
	}
	want := treeOf(s.SegmentDigests(segs[:0], p))
	pt := &t.parts[p]
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if !pt.built {
		return fixed > 0, nil
	}
	if !pt.tree.Equal(want) {
		pt.tree = want
		return true, nil
	}
	return fixed > 0, nil
}

// Built reports whether partition p's tree is built.
func (t *Trees) Built(p ring.Partition) bool {
	if int(p) >= len(t.parts) {
		return false
	}
	pt := &t.parts[p]
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return pt.built
}

// BuiltCount is the number of partitions built.
func (t *Trees) BuiltCount() int { return int(t.built.Load()) }

// Root returns partition p's root hash, and false while it is not built.
func (t *Trees) Root(p ring.Partition) (uint64, bool) {
	if int(p) >= len(t.parts) {
		return 0, false
	}
	pt := &t.parts[p]
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return pt.tree.Root(), pt.built
}

// Roots returns the root hash of every built partition.
func (t *Trees) Roots() map[ring.Partition]uint64 {
	out := make(map[ring.Partition]uint64, len(t.parts))
	for p := range t.parts {
		if r, ok := t.Root(ring.Partition(p)); ok {
			out[ring.Partition(p)] = r
		}
	}
	return out
}

// Snapshot returns a copy of partition p's tree, and false while it is not
// built. It copies about 8 KiB (1024 segments); exchanges call it only for
// partitions whose roots differ.
func (t *Trees) Snapshot(p ring.Partition) (*Tree, bool) {
	if int(p) >= len(t.parts) {
		return nil, false
	}
	pt := &t.parts[p]
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if !pt.built {
		return nil, false
	}
	return pt.tree.Clone(), true
}
