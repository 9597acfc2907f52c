package antientropy

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/internal/testutil"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
	"github.com/mnemo-kv/mnemo/version"
)

// obj builds an object by hand: context entries and siblings as
// "actor:counter" (a "-" prefix makes a tombstone), values "v".
func obj(ctx []version.Entry, sibs ...version.Sibling) *version.Object {
	return &version.Object{Context: ctx, Siblings: sibs}
}

func sib(a string, c uint64, v string, tomb bool) version.Sibling {
	return version.Sibling{Dot: version.Dot{Actor: version.Actor(a), Counter: c}, Value: []byte(v), Tombstone: tomb, Timestamp: 42}
}

// TestLeafHash checks what the per-key digest covers. Reference: Dynamo
// §4.7, a leaf is the hash of a key's value; with dotted version vectors
// the dots identify the values (version.Equal compares the same fields).
func TestLeafHash(t *testing.T) {
	ctxA := []version.Entry{{Actor: "a#1", Counter: 1}}
	ctxAB := []version.Entry{{Actor: "a#1", Counter: 1}, {Actor: "b#1", Counter: 1}}
	base := obj(ctxA, sib("a#1", 1, "x", false))
	tests := []struct {
		name  string
		key   string
		o     *version.Object
		equal bool // equal to base's hash under key "k"
	}{
		{"same object", "k", obj(ctxA, sib("a#1", 1, "x", false)), true},
		{"value not hashed (same dot)", "k", obj(ctxA, sib("a#1", 1, "y", false)), true},
		{"timestamp not hashed", "k", obj(ctxA, version.Sibling{Dot: version.Dot{Actor: "a#1", Counter: 1}, Value: []byte("x")}), true},
		{"other key", "k2", base, false},
		{"wider context", "k", obj(ctxAB, sib("a#1", 1, "x", false)), false},
		{"tombstone", "k", obj(ctxA, sib("a#1", 1, "", true)), false},
		{"other dot", "k", obj([]version.Entry{{Actor: "a#2", Counter: 1}}, sib("a#2", 1, "x", false)), false},
		{"two siblings", "k", obj(ctxAB, sib("a#1", 1, "x", false), sib("b#1", 1, "y", false)), false},
	}
	h0 := LeafHash([]byte("k"), base)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := LeafHash([]byte(tc.key), tc.o)
			if (h == h0) != tc.equal {
				t.Fatalf("LeafHash = %x, base %x; want equal=%v", h, h0, tc.equal)
			}
			if h == 0 {
				t.Fatal("a stored object hashed to 0")
			}
		})
	}
	if LeafHash([]byte("k"), nil) != 0 || LeafHash([]byte("k"), &version.Object{}) != 0 {
		t.Fatal("absent and empty objects must contribute 0")
	}
}

func TestTags(t *testing.T) {
	if SegmentTag(0, 12345) != 0 {
		t.Fatal("SegmentTag(0) must be 0: an empty segment")
	}
	for h := uint64(1); h < 100000; h++ {
		if tg := SegmentTag(h, 7); tg == 0 || tg >= 1<<24 {
			t.Fatalf("SegmentTag(%d) = %x", h, tg)
		}
	}
	if tg := SegmentTag(99, 1); tg != SegmentTag(99, 1) || tg == SegmentTag(99, 2) || tg == SegmentTag(98, 1) {
		t.Fatal("segment tags must depend on the hash and the salt, deterministically")
	}
	k := []byte("key")
	d := KeyDescriptor(k, 5, 1)
	if KeyDescriptor(k, 5, 1) != d {
		t.Fatal("descriptors must be deterministic")
	}
	if KeyDescriptor(k, 6, 1)>>16 != d>>16 || KeyDescriptor(k, 6, 1) == d {
		t.Fatal("another version of a key must keep the key tag and change the version tag")
	}
	if KeyDescriptor([]byte("other"), 5, 1)>>16 == d>>16 {
		t.Fatal("another key must (here) change the key tag")
	}
	if KeyDescriptor(k, 5, 2) == d {
		t.Fatal("descriptors must depend on the salt")
	}
}

// TestMatchSegment is a table of one segment's comparison: descriptors
// are written key tag (high half) and version tag (low half).
func TestMatchSegment(t *testing.T) {
	d := func(kt, vt uint32) uint32 { return kt<<16 | vt }
	type want struct {
		i     int
		check bool
	}
	tests := []struct {
		name         string
		theirs, ours []uint32
		wanted       []want
		sent         []int
	}{
		{name: "both empty"},
		{name: "equal", theirs: []uint32{d(1, 1), d(2, 2)}, ours: []uint32{d(1, 1), d(2, 2)}},
		{name: "we lack one", theirs: []uint32{d(1, 1), d(2, 2)}, ours: []uint32{d(2, 2)}, wanted: []want{{0, false}}},
		{name: "they lack one", theirs: []uint32{d(2, 2)}, ours: []uint32{d(1, 1), d(2, 2), d(3, 3)}, sent: []int{0, 2}},
		{name: "we hold nothing", theirs: []uint32{d(1, 1), d(2, 2)}, wanted: []want{{0, false}, {1, false}}},
		{name: "they hold nothing", ours: []uint32{d(1, 1), d(2, 2)}, sent: []int{0, 1}},
		{name: "another version: want with check, do not send", theirs: []uint32{d(1, 5)}, ours: []uint32{d(1, 7)}, wanted: []want{{0, true}}},
		{name: "key-tag collision with an equal key: send ours", theirs: []uint32{d(1, 5)}, ours: []uint32{d(1, 5), d(1, 9)}, sent: []int{1}},
		{name: "mixed", theirs: []uint32{d(1, 1), d(3, 3), d(4, 4), d(6, 1)}, ours: []uint32{d(2, 2), d(3, 3), d(4, 5), d(5, 5)},
			wanted: []want{{0, false}, {2, true}, {3, false}}, sent: []int{0, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var gotW []want
			var gotS []int
			var scratch [2][]int
			matchSegment(tc.theirs, tc.ours, func(i int, c bool) { gotW = append(gotW, want{i, c}) }, func(j int) { gotS = append(gotS, j) }, &scratch)
			if !slices.Equal(gotW, tc.wanted) || !slices.Equal(gotS, tc.sent) {
				t.Fatalf("wanted %v sent %v; want %v and %v", gotW, gotS, tc.wanted, tc.sent)
			}
		})
	}
}

// TestTreeShape checks the branch layout by hand: 1024 segments make 32
// branches of 32, so segment 33 is under branch 1.
func TestTreeShape(t *testing.T) {
	tests := []struct{ segs, branches, per int }{
		{1, 1, 1}, {2, 1, 2}, {4, 2, 2}, {1024, 32, 32}, {2048, 32, 64}, {65536, 256, 256},
	}
	for _, tc := range tests {
		tr := NewTree(tc.segs)
		if tr.Branches() != tc.branches || tr.SegmentsPerBranch() != tc.per {
			t.Errorf("NewTree(%d): %d branches of %d, want %d of %d", tc.segs, tr.Branches(), tr.SegmentsPerBranch(), tc.branches, tc.per)
		}
	}
	tr := NewTree(1024)
	tr.Toggle(33, 0xf0)
	if tr.Branch(1) != 0xf0 || tr.Segment(33) != 0xf0 || tr.Root() != 0xf0 || tr.Branch(0) != 0 {
		t.Fatalf("segment 33 not under branch 1: %x %x %x", tr.Branch(1), tr.Segment(33), tr.Root())
	}
}

// TestTreeUpdates is a table of toggles (add, update = remove old + add
// new, remove) and the hashes they must leave.
func TestTreeUpdates(t *testing.T) {
	type op struct {
		seg  uint32
		leaf uint64
	}
	tests := []struct {
		name       string
		ops        []op
		root       uint64
		seg3, seg4 uint64
	}{
		{name: "empty", root: 0},
		{name: "one key", ops: []op{{3, 0b0011}}, root: 0b0011, seg3: 0b0011},
		{name: "two keys one segment", ops: []op{{3, 0b0011}, {3, 0b0101}}, root: 0b0110, seg3: 0b0110},
		{name: "update", ops: []op{{3, 0b0011}, {3, 0b0011}, {3, 0b1000}}, root: 0b1000, seg3: 0b1000},
		{name: "remove", ops: []op{{3, 0b0011}, {4, 0b0101}, {3, 0b0011}}, root: 0b0101, seg4: 0b0101},
		{name: "remove all", ops: []op{{3, 1}, {4, 2}, {4, 2}, {3, 1}}, root: 0},
		{name: "zero leaf is absent", ops: []op{{3, 0}}, root: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTree(16) // 4 branches of 4: segments 3 and 4 under branches 0 and 1
			for _, o := range tc.ops {
				tr.Toggle(o.seg, o.leaf)
			}
			if tr.Root() != tc.root || tr.Segment(3) != tc.seg3 || tr.Segment(4) != tc.seg4 {
				t.Fatalf("root %b seg3 %b seg4 %b, want %b %b %b", tr.Root(), tr.Segment(3), tr.Segment(4), tc.root, tc.seg3, tc.seg4)
			}
			if tr.Branch(0)^tr.Branch(1) != tc.root {
				t.Fatalf("branches %b %b do not XOR to the root %b", tr.Branch(0), tr.Branch(1), tc.root)
			}
		})
	}
}

// TestTreeOrderIndependence: the tree is an XOR sum, so the order of
// additions does not matter.
func TestTreeOrderIndependence(t *testing.T) {
	rng := newRand(t)
	type kv struct {
		seg  uint32
		leaf uint64
	}
	items := make([]kv, 2000)
	for i := range items {
		items[i] = kv{uint32(rng.IntN(1024)), rng.Uint64() | 1}
	}
	a := NewTree(1024)
	for _, it := range items {
		a.Toggle(it.seg, it.leaf)
	}
	for range 5 {
		rng.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
		b := NewTree(1024)
		for _, it := range items {
			b.Toggle(it.seg, it.leaf)
		}
		if !a.Equal(b) {
			t.Fatal("same keys in another order gave another tree")
		}
	}
}

// TestDiff checks which branches and segments two trees disagree on.
func TestDiff(t *testing.T) {
	a, b := NewTree(1024), NewTree(1024)
	for s := range uint32(1024) {
		a.Toggle(s, uint64(s)+1)
		b.Toggle(s, uint64(s)+1)
	}
	if DiffSegments(a, b) != nil {
		t.Fatal("equal trees differ")
	}
	b.Toggle(3, 0x100)    // branch 0
	b.Toggle(40, 0x200)   // branch 1
	b.Toggle(41, 0x300)   // branch 1
	b.Toggle(1023, 0x400) // branch 31
	if got := DiffSegments(a, b); !slices.Equal(got, []int{3, 40, 41, 1023}) {
		t.Fatalf("DiffSegments = %v", got)
	}
	if got := DiffHashes(a.AppendBranches(nil), b.AppendBranches(nil)); !slices.Equal(got, []int{0, 1, 31}) {
		t.Fatalf("differing branches = %v", got)
	}
	if got := DiffHashes(a.AppendBranchSegments(nil, 1), b.AppendBranchSegments(nil, 1)); !slices.Equal(got, []int{8, 9}) {
		t.Fatalf("differing segments in branch 1 = %v", got)
	}
	// An empty tree against a full one differs everywhere.
	if got := DiffSegments(NewTree(1024), a); len(got) != 1024 {
		t.Fatalf("empty vs full: %d segments differ", len(got))
	}
}

func openStore(t testing.TB, obs store.Observer, q int) *store.Store {
	t.Helper()
	return openStoreIn(t, t.TempDir(), obs, q)
}

func openStoreIn(t testing.TB, dir string, obs store.Observer, q int) *store.Store {
	t.Helper()
	st, err := store.Open(store.Options{Dir: dir, NodeID: "n1", Partitions: q, Segments: 1024,
		Sync: store.SyncNone, CacheSize: 8 << 20, MemTableSize: 4 << 20, Observer: obs,
		Digest: LeafHash, DigestName: LeafHashName})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// scanTrees builds trees from a scan of the data itself (every stored
// object hashed with LeafHashEncoded): the reference the trees kept
// current and restored from the store's summary must equal.
func scanTrees(t testing.TB, st *store.Store) *Trees {
	t.Helper()
	trees := NewTrees(st.Partitions(), st.Segments())
	for p := range st.Partitions() {
		unlock := st.LockPartition(ring.Partition(p))
		pt := &trees.parts[p]
		err := st.ScanPartitionRaw(ring.Partition(p), func(key []byte, seg uint32, enc []byte) bool {
			leaf, err := LeafHashEncoded(key, enc)
			if err != nil {
				t.Errorf("key %q: %v", key, err)
				return false
			}
			pt.tree.Toggle(seg, leaf)
			return true
		})
		unlock()
		if err != nil {
			t.Fatal(err)
		}
		pt.built = true
	}
	return trees
}

// treesEqual fails unless two Trees hold the same built trees.
func treesEqual(t testing.TB, a, b *Trees) {
	t.Helper()
	for p := range a.Partitions() {
		ta, oka := a.Snapshot(ring.Partition(p))
		tb, okb := b.Snapshot(ring.Partition(p))
		if !oka || !okb {
			t.Fatalf("partition %d not built (%v, %v)", p, oka, okb)
		}
		if !ta.Equal(tb) {
			t.Fatalf("partition %d: root %x kept current, %x rebuilt; segments %v differ", p, ta.Root(), tb.Root(), DiffSegments(ta, tb))
		}
	}
}

// TestBuildEqualsIncremental: a tree kept current through puts, updates,
// siblings, tombstones, merges and removals equals one built from a scan,
// and so does one restored from the store's summary, before and after the
// store is reopened.
func TestBuildEqualsIncremental(t *testing.T) {
	rng := newRand(t)
	trees := NewTrees(8, 1024)
	dir := t.TempDir()
	st := openStoreIn(t, dir, trees, 8)
	if err := trees.Build(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	other := version.NewActor("n2", "e")
	for i := range 3000 {
		k := fmt.Sprintf("k%d", rng.IntN(1000))
		switch rng.IntN(6) {
		case 0, 1:
			if _, err := st.Put(store.PutRequest{Key: []byte(k), Value: []byte("v"), SupersedeLocal: true}); err != nil {
				t.Fatal(err)
			}
		case 2:
			if _, err := st.Put(store.PutRequest{Key: []byte(k), Value: []byte("sib")}); err != nil {
				t.Fatal(err)
			}
		case 3:
			if _, err := st.Put(store.PutRequest{Key: []byte(k), Tombstone: true, SupersedeLocal: true}); err != nil {
				t.Fatal(err)
			}
		case 4:
			o, _ := version.Update(nil, nil, other, []byte(fmt.Sprint(i)), false, int64(i))
			if _, err := st.MergeMany([]store.KeyObject{{Key: []byte(k), Object: o}}); err != nil {
				t.Fatal(err)
			}
		case 5:
			if _, err := st.DeleteIf([]byte(k), func(*version.Object) bool { return true }); err != nil {
				t.Fatal(err)
			}
		}
	}
	scanned := scanTrees(t, st)
	treesEqual(t, trees, scanned)
	fresh := NewTrees(8, 1024)
	if err := fresh.Build(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	treesEqual(t, fresh, scanned)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	reopened := NewTrees(8, 1024)
	st = openStoreIn(t, dir, reopened, 8)
	if err := reopened.Build(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	treesEqual(t, reopened, scanned)
	if wrong, err := reopened.Verify(context.Background(), st); err != nil || wrong != 0 {
		t.Fatalf("verify: %d partitions wrong (%v), want 0", wrong, err)
	}
}

// TestVerifyCorrectsATreeKeptWrong: a tree that drifted from the data (a
// bug's work) is found and replaced by Verify.
func TestVerifyCorrectsATreeKeptWrong(t *testing.T) {
	trees := NewTrees(4, 1024)
	st := openStore(t, trees, 4)
	if err := trees.Build(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if _, err := st.Put(store.PutRequest{Key: []byte(fmt.Sprint("k", i)), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	trees.parts[2].mu.Lock()
	trees.parts[2].tree.Toggle(7, 0xbad)
	trees.parts[2].mu.Unlock()
	wrong, err := trees.Verify(context.Background(), st)
	if err != nil || wrong != 1 {
		t.Fatalf("verify: %d partitions wrong (%v), want 1", wrong, err)
	}
	treesEqual(t, trees, scanTrees(t, st))
}

// TestBuildWhileWriting builds the trees while writers run: changes to a
// partition before its scan are in the scan, later ones are applied, so
// the result equals a rebuild once the writers stop.
func TestBuildWhileWriting(t *testing.T) {
	const q = 64
	trees := NewTrees(q, 1024)
	st := openStore(t, trees, q)
	for i := range 5000 {
		if _, err := st.Put(store.PutRequest{Key: []byte(fmt.Sprintf("pre%d", i)), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := []byte(fmt.Sprintf("w%d-%d", w, i%700))
				var err error
				switch i % 3 {
				case 0, 1:
					_, err = st.Put(store.PutRequest{Key: k, Value: []byte("x"), SupersedeLocal: true})
				case 2:
					_, err = st.Put(store.PutRequest{Key: k, Tombstone: true, SupersedeLocal: true})
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	buildErr := make(chan error, 1)
	go func() { buildErr <- trees.Build(context.Background(), st) }()
	if err := <-buildErr; err != nil {
		t.Fatal(err)
	}
	// Let the writers run on built trees for a little while too.
	before := trees.Roots()
	testutil.Eventually(t, 10*time.Second, "writes after the build", func() (bool, string) {
		now := trees.Roots()
		changed := 0
		for p, r := range now {
			if before[p] != r {
				changed++
			}
		}
		return changed > q/2, fmt.Sprintf("%d partitions changed", changed)
	})
	close(stop)
	wg.Wait()
	treesEqual(t, trees, scanTrees(t, st))
}

// TestUnbuiltPartitionIgnoresChanges: before its build a partition's
// tree stays empty and is reported unbuilt.
func TestUnbuiltPartitionIgnoresChanges(t *testing.T) {
	trees := NewTrees(4, 1024)
	st := openStore(t, trees, 4)
	put := func(k string) {
		if _, err := st.Put(store.PutRequest{Key: []byte(k), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		put(fmt.Sprint(i))
	}
	if r, ok := trees.Root(0); ok || r != 0 || trees.BuiltCount() != 0 || len(trees.Roots()) != 0 {
		t.Fatalf("unbuilt: root %x built %v count %d", r, ok, trees.BuiltCount())
	}
	if err := trees.Build(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	if trees.BuiltCount() != 4 || len(trees.Roots()) != 4 {
		t.Fatalf("built %d", trees.BuiltCount())
	}
	// A second Build is a no-op; a cancelled one returns the context's error.
	if err := trees.Build(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := NewTrees(4, 1024).Build(ctx, st); err != context.Canceled {
		t.Fatalf("cancelled build: %v", err)
	}
	if err := NewTrees(8, 1024).Build(context.Background(), st); err == nil {
		t.Fatal("trees of another shape built")
	}
}
