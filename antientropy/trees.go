package antientropy

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/mnemo-kv/mnemo/internal/version"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
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
// O(1) work.
func (t *Trees) Changed(p ring.Partition, segment uint32, key []byte, before, after *version.Object) {
	if int(p) >= len(t.parts) || int(segment) >= t.segments {
		return
	}
	old, cur := LeafHash(key, before), LeafHash(key, after)
	if old == cur {
		return
	}
	pt := &t.parts[p]
	pt.mu.Lock()
	if pt.built {
		pt.tree.Toggle(segment, old)
		pt.tree.Toggle(segment, cur)
	}
	pt.mu.Unlock()
}

var _ store.Observer = (*Trees)(nil)

// Build builds every partition's tree not built yet from the store, one
// partition at a time, each scanned under store.LockPartition: that
// partition's writes wait for the millisecond or so of its scan, the rest
// of the node goes on serving. The scan reads the stored encodings
// (store.ScanPartitionRaw) and hashes them with LeafHashEncoded, without
// decoding or copying an object. It yields between partitions. It returns
// when every partition is built, or with ctx's error, or with the store's
// (an object that does not decode is one). Call it once, in the
// background, right after opening the store with t as its Observer;
// calling it again builds nothing twice. AntiEntropy calls it paced, so
// that the build takes a bounded share of the CPU (Config.CPUShare).
func (t *Trees) Build(ctx context.Context, s *store.Store) error {
	return t.build(ctx, s, nil)
}

// build is Build with each partition's scan a turn of pace (nil: yield
// between partitions only).
func (t *Trees) build(ctx context.Context, s *store.Store, pace *pacer) error {
	if s.Partitions() != len(t.parts) || s.Segments() != t.segments {
		return fmt.Errorf("antientropy: store has %d partitions of %d segments, trees %d of %d",
			s.Partitions(), s.Segments(), len(t.parts), t.segments)
	}
	for p := range t.parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		var tn turn
		if err := pace.begin(ctx, &tn); err != nil {
			return err
		}
		err := t.buildPartition(s, ring.Partition(p))
		if perr := pace.end(ctx, &tn); err == nil {
			err = perr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (t *Trees) buildPartition(s *store.Store, p ring.Partition) error {
	pt := &t.parts[p]
	pt.mu.Lock()
	done := pt.built
	pt.mu.Unlock()
	if done {
		return nil
	}
	unlock := s.LockPartition(p)
	defer unlock()
	tree := NewTree(t.segments)
	var herr error
	err := s.ScanPartitionRaw(p, func(key []byte, seg uint32, enc []byte) bool {
		leaf, err := LeafHashEncoded(key, enc)
		if err != nil {
			herr = fmt.Errorf("key %q: %w", key, err)
			return false
		}
		if int(seg) < t.segments {
			tree.Toggle(seg, leaf)
		}
		return true
	})
	if err == nil {
		err = herr
	}
	if err != nil {
		return fmt.Errorf("antientropy: build partition %d: %w", p, err)
	}
	pt.mu.Lock()
	if !pt.built {
		pt.tree, pt.built = tree, true
		t.built.Add(1)
	}
	pt.mu.Unlock()
	return nil
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
