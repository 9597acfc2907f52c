package store

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/goleak"

	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/version"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openMem(t testing.TB, fs vfs.FS, opts Options) *Store {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = "/data"
	}
	if opts.NodeID == "" {
		opts.NodeID = "n1"
	}
	opts.FS = fs
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func values(o *version.Object) []string {
	out := []string{}
	if o == nil {
		return out
	}
	for _, s := range o.Siblings {
		if s.Tombstone {
			out = append(out, "<tombstone>")
		} else {
			out = append(out, string(s.Value))
		}
	}
	return out
}

func TestPutGetSiblingsAndContext(t *testing.T) {
	s := openMem(t, vfs.NewMem(), Options{})
	defer s.Close()
	key := []byte("k")
	if _, err := s.Get(key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get absent: %v", err)
	}
	o1, err := s.Put(PutRequest{Key: key, Value: []byte("a")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(PutRequest{Key: key, Value: []byte("b")}); err != nil { // blind: a sibling
		t.Fatal(err)
	}
	got, err := s.Get(key)
	if err != nil || strings.Join(values(got), ",") != "a,b" {
		t.Fatalf("after two blind puts: %v %v", values(got), err)
	}
	// With the context of the first write only, "a" goes and "b" stays.
	o3, err := s.Put(PutRequest{Key: key, Value: []byte("c"), Context: o1.Context})
	if err != nil || strings.Join(values(o3), ",") != "b,c" {
		t.Fatalf("put with o1's context: %v %v", values(o3), err)
	}
	// SupersedeLocal replaces everything held here.
	o4, err := s.Put(PutRequest{Key: key, Value: []byte("d"), SupersedeLocal: true})
	if err != nil || strings.Join(values(o4), ",") != "d" {
		t.Fatalf("supersede local: %v %v", values(o4), err)
	}
	del, err := s.Put(PutRequest{Key: key, Tombstone: true, Context: o4.Context})
	if err != nil || !del.Deleted() {
		t.Fatalf("delete: %v %v", values(del), err)
	}
	if got, _ := s.Get(key); !got.Deleted() {
		t.Fatalf("tombstone not stored: %v", values(got))
	}
}

func TestMergeWritesOnlyChanges(t *testing.T) {
	fs := vfs.NewMem()
	a := openMem(t, fs, Options{Dir: "/a", NodeID: "a"})
	defer a.Close()
	b := openMem(t, fs, Options{Dir: "/b", NodeID: "b"})
	defer b.Close()
	key := []byte("k")
	oa, _ := a.Put(PutRequest{Key: key, Value: []byte("from-a")})
	ob, _ := b.Put(PutRequest{Key: key, Value: []byte("from-b")})
	m, changed, err := a.Merge(key, ob)
	if err != nil || !changed || strings.Join(values(m), ",") != "from-a,from-b" {
		t.Fatalf("merge concurrent: %v changed=%v err=%v", values(m), changed, err)
	}
	if _, changed, _ := a.Merge(key, ob); changed {
		t.Fatal("merging the same object twice changed the store")
	}
	if _, changed, _ := a.Merge(key, oa); changed {
		t.Fatal("merging an older object changed the store")
	}
}

func TestLimits(t *testing.T) {
	s := openMem(t, vfs.NewMem(), Options{MaxKeySize: 8, MaxValueSize: 16})
	defer s.Close()
	for _, tc := range []struct {
		req  PutRequest
		want error
	}{
		{PutRequest{Key: nil, Value: []byte("v")}, ErrEmptyKey},
		{PutRequest{Key: []byte("123456789"), Value: []byte("v")}, ErrKeyTooLarge},
		{PutRequest{Key: []byte("k"), Value: make([]byte, 17)}, ErrValueTooLarge},
	} {
		if _, err := s.Put(tc.req); !errors.Is(err, tc.want) {
			t.Errorf("put %q (%d bytes): %v, want %v", tc.req.Key, len(tc.req.Value), err, tc.want)
		}
	}
	if _, err := s.Put(PutRequest{Key: []byte("12345678"), Value: make([]byte, 16)}); err != nil {
		t.Errorf("put at the limits: %v", err)
	}
}

func TestEpochAndLayoutPersist(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, Options{})
	if !s.Fresh() {
		t.Fatal("new directory not fresh")
	}
	epoch, actor := s.Epoch(), s.Actor()
	if _, err := s.Put(PutRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openMem(t, fs, Options{})
	if s.Fresh() || s.Epoch() != epoch || s.Actor() != actor {
		t.Fatalf("reopen: fresh=%v epoch %s (was %s)", s.Fresh(), s.Epoch(), epoch)
	}
	if got, err := s.Get([]byte("k")); err != nil || values(got)[0] != "v" {
		t.Fatalf("data lost on reopen: %v", err)
	}
	s.Close()

	if _, err := Open(Options{Dir: "/data", FS: fs, NodeID: "n1", Partitions: 64}); !errors.Is(err, ErrLayoutMismatch) {
		t.Fatalf("open with other partitions: %v", err)
	}

	// An empty directory is a new epoch: counters restart under a new actor.
	s2 := openMem(t, fs, Options{Dir: "/wiped"})
	defer s2.Close()
	if s2.Epoch() == epoch || s2.Actor() == actor || s2.Actor().Node() != "n1" {
		t.Fatalf("wiped dir reused epoch %s / actor %s", s2.Epoch(), s2.Actor())
	}
}

func TestCountsAndScan(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, Options{Partitions: 16, Segments: 8})
	for i := range 200 {
		key := []byte(fmt.Sprint("key-", i))
		o, err := s.Put(PutRequest{Key: key, Value: []byte("v")})
		if err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			if _, err := s.Put(PutRequest{Key: key, Tombstone: true, Context: o.Context}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if c := s.Counts(); c.Live != 180 || c.Tombstones != 20 {
		t.Fatalf("counts %+v, want 180 live and 20 tombstones", c)
	}
	// Every key is found by scanning its own partition and segment.
	seen := 0
	for p := range 16 {
		err := s.ScanPartition(ring.Partition(p), 0, 8, func(e Entry) bool {
			gp, gseg := s.Locate(e.Key)
			if gp != ring.Partition(p) || gseg != e.Segment {
				t.Errorf("key %q in partition %d segment %d, located at %d/%d", e.Key, p, e.Segment, gp, gseg)
			}
			seen++
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if seen != 200 {
		t.Fatalf("scanned %d keys, want 200", seen)
	}
	s.Close()

	s = openMem(t, fs, Options{Partitions: 16, Segments: 8})
	defer s.Close()
	if c := s.Counts(); c.Live != 180 || c.Tombstones != 20 {
		t.Fatalf("counts after reopen %+v", c)
	}
}

// Concurrent blind writes to one key must each become a sibling: the
// read-modify-write is atomic per key, so no write is lost.
func TestConcurrentPutsLoseNothing(t *testing.T) {
	s := openMem(t, vfs.NewMem(), Options{Sync: SyncNone})
	defer s.Close()
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := s.Put(PutRequest{Key: []byte("hot"), Value: []byte(fmt.Sprint(w, "-", i))}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	o, err := s.Get([]byte("hot"))
	if err != nil || len(o.Siblings) != writers*each {
		t.Fatalf("%d siblings, want %d (err %v)", len(o.Siblings), writers*each, err)
	}
}

type recordingObserver struct {
	mu      sync.Mutex
	changes []string
}

func (r *recordingObserver) Changed(p ring.Partition, seg uint32, key []byte, before, after *version.Object, _ uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, fmt.Sprintf("%s:%v->%v", key, dots(before), values(after)))
}

// dots lists an object's siblings by counter: an observer's before may
// carry versions only (see Observer).
func dots(o *version.Object) []uint64 {
	out := []uint64{}
	if o != nil {
		for _, s := range o.Siblings {
			out = append(out, s.Dot.Counter)
		}
	}
	return out
}

func TestObserverSeesEveryChange(t *testing.T) {
	obs := &recordingObserver{}
	s := openMem(t, vfs.NewMem(), Options{Observer: obs})
	defer s.Close()
	o, _ := s.Put(PutRequest{Key: []byte("k"), Value: []byte("a")})
	s.Merge([]byte("k"), o) // no change: not observed
	s.Put(PutRequest{Key: []byte("k"), Value: []byte("b"), Context: o.Context})
	want := []string{"k:[]->[a]", "k:[1]->[b]"}
	if strings.Join(obs.changes, " ") != strings.Join(want, " ") {
		t.Fatalf("observed %v, want %v", obs.changes, want)
	}
}

func TestLockPartitionBlocksWritesOnlyThere(t *testing.T) {
	s := openMem(t, vfs.NewMem(), Options{Partitions: 16})
	defer s.Close()
	var inP, other []byte
	for i := 0; inP == nil || other == nil; i++ {
		k := []byte(fmt.Sprint("k", i))
		if p, _ := s.Locate(k); p == 3 {
			inP = k
		} else {
			other = k
		}
	}
	unlock := s.LockPartition(3)
	done := make(chan struct{})
	go func() {
		s.Put(PutRequest{Key: inP, Value: []byte("v")})
		close(done)
	}()
	if _, err := s.Put(PutRequest{Key: other, Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		t.Fatal("write to a locked partition went through")
	default:
	}
	unlock()
	<-done
}

func TestRealDiskReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	val := bytes.Repeat([]byte("x"), 1000)
	for i := range 100 {
		if _, err := s.Put(PutRequest{Key: []byte(fmt.Sprint(i)), Value: val}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s, err = Open(Options{Dir: dir, NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if c := s.Counts(); c.Live != 100 {
		t.Fatalf("live after reopen: %+v", c)
	}
}

func BenchmarkPut(b *testing.B) {
	for _, mode := range []SyncMode{SyncNone, SyncAlways} {
		b.Run(mode.String(), func(b *testing.B) {
			s, err := Open(Options{Dir: b.TempDir(), NodeID: "n1", Sync: mode})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			val := bytes.Repeat([]byte("v"), 100)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					if _, err := s.Put(PutRequest{Key: fmt.Appendf(nil, "key-%d-%p", i, pb), Value: val}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func BenchmarkGet(b *testing.B) {
	s, err := Open(Options{Dir: b.TempDir(), NodeID: "n1", Sync: SyncNone})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	val := bytes.Repeat([]byte("v"), 100)
	const n = 10000
	for i := range n {
		s.Put(PutRequest{Key: fmt.Appendf(nil, "key-%d", i), Value: val})
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, err := s.Get(fmt.Appendf(nil, "key-%d", i%n)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestMergeManyAndDeleteIf(t *testing.T) {
	obs := &recordingObserver{}
	fs := vfs.NewMem()
	src := openMem(t, fs, Options{Dir: "/src", NodeID: "src"})
	defer src.Close()
	dst := openMem(t, fs, Options{Dir: "/dst", NodeID: "dst", Observer: obs})
	defer dst.Close()
	var items []KeyObject
	for i := range 50 {
		k := []byte(fmt.Sprint("k", i))
		o, _ := src.Put(PutRequest{Key: k, Value: []byte("v")})
		items = append(items, KeyObject{k, o})
	}
	// A repeated key in the same batch merges with the earlier item.
	o2, _ := src.Put(PutRequest{Key: []byte("k0"), Value: []byte("v2")})
	items = append(items, KeyObject{[]byte("k0"), o2})
	changed, err := dst.MergeMany(items)
	if err != nil || changed != 51 {
		t.Fatalf("MergeMany changed %d, err %v; want 51", changed, err)
	}
	if got, _ := dst.Get([]byte("k0")); strings.Join(values(got), ",") != "v,v2" {
		t.Fatalf("k0 = %v", values(got))
	}
	if changed, _ := dst.MergeMany(items); changed != 0 {
		t.Fatalf("second MergeMany changed %d", changed)
	}
	if c := dst.Counts(); c.Live != 50 {
		t.Fatalf("counts %+v", c)
	}
	del, err := dst.DeleteIf([]byte("k1"), func(cur *version.Object) bool { return false })
	if err != nil || del {
		t.Fatalf("DeleteIf with false predicate deleted=%v err=%v", del, err)
	}
	del, err = dst.DeleteIf([]byte("k1"), func(cur *version.Object) bool { return true })
	if err != nil || !del {
		t.Fatalf("DeleteIf: deleted=%v err=%v", del, err)
	}
	if _, err := dst.Get([]byte("k1")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("k1 after DeleteIf: %v", err)
	}
	if c := dst.Counts(); c.Live != 49 {
		t.Fatalf("counts after delete %+v", c)
	}
	if last := obs.changes[len(obs.changes)-1]; last != "k1:[1]->[]" {
		t.Fatalf("observer saw %q for the delete", last)
	}
}

func TestAuxKeyspaces(t *testing.T) {
	s := openMem(t, vfs.NewMem(), Options{})
	defer s.Close()
	b := s.NewAuxBatch()
	b.Set(AuxHints, []byte("n2\x00a"), []byte("1"))
	b.Set(AuxHints, []byte("n2\x00b"), []byte("2"))
	b.Set(AuxHints, []byte("n3\x00a"), []byte("3"))
	b.Set(AuxTransfer, []byte("n2\x00z"), []byte("other space"))
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	var got []string
	s.AuxScan(AuxHints, []byte("n2\x00"), func(k, v []byte) bool {
		got = append(got, string(k)+"="+string(v))
		return true
	})
	if strings.Join(got, " ") != "n2\x00a=1 n2\x00b=2" {
		t.Fatalf("scan got %q", got)
	}
	if err := s.AuxDelete(AuxHints, []byte("n2\x00a")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuxGet(AuxHints, []byte("n2\x00a")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted aux key: %v", err)
	}
	if v, err := s.AuxGet(AuxTransfer, []byte("n2\x00z")); err != nil || string(v) != "other space" {
		t.Fatalf("aux get %q %v", v, err)
	}
	// Aux records are not data: counts and partition scans ignore them.
	if c := s.Counts(); c.Live != 0 {
		t.Fatalf("aux records counted as keys: %+v", c)
	}
}

func TestScanPartitionAfterResumes(t *testing.T) {
	s := openMem(t, vfs.NewMem(), Options{Partitions: 4, Segments: 16})
	defer s.Close()
	for i := range 300 {
		s.Put(PutRequest{Key: []byte(fmt.Sprint("k", i)), Value: []byte("v")})
	}
	for p := range ring.Partition(4) {
		var all []string
		s.ScanPartition(p, 0, 16, func(e Entry) bool { all = append(all, string(e.Key)); return true })
		// Read it back 7 keys at a time from a cursor.
		var got []string
		var cur *Cursor
		for {
			n := 0
			s.ScanPartitionAfter(p, cur, func(e Entry) bool {
				got = append(got, string(e.Key))
				cur = &Cursor{e.Segment, e.Key}
				n++
				return n < 7
			})
			if n < 7 {
				break
			}
		}
		if strings.Join(got, ",") != strings.Join(all, ",") {
			t.Fatalf("partition %d: resumed scan %d keys, full scan %d", p, len(got), len(all))
		}
	}
}

// The object cache never serves something Pebble does not hold: after any
// mix of puts, merges and conditional deletes from many goroutines, with a
// budget small enough to evict constantly, every key reads the same
// through the cache as straight from Pebble.
// TestCachedVersionsKeepValues: with the versions of a key cached, a put
// that keeps a concurrent sibling, and a merge that keeps a local one,
// read the value they keep from Pebble; a merge that changes nothing
// returns whole values (a fallback hints what Merge returns).
func TestCachedVersionsKeepValues(t *testing.T) {
	s := openMem(t, vfs.NewMem(), Options{})
	defer s.Close()
	other := openMem(t, vfs.NewMem(), Options{Dir: "/other", NodeID: "other"})
	defer other.Close()
	a, err := s.Put(PutRequest{Key: []byte("k"), Value: []byte("a")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(PutRequest{Key: []byte("k"), Value: []byte("b")}); err != nil { // no context: a sibling
		t.Fatal(err)
	}
	o, _ := s.Get([]byte("k"))
	if got := values(o); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("after a concurrent put: %v, want [a b]", got)
	}
	w, _ := other.Put(PutRequest{Key: []byte("k"), Value: []byte("w")})
	if _, _, err := s.Merge([]byte("k"), w); err != nil {
		t.Fatal(err)
	}
	o, _ = s.Get([]byte("k"))
	if got := values(o); len(got) != 3 {
		t.Fatalf("after merging a concurrent write: %v, want a, b and w", got)
	}
	merged, changed, err := s.Merge([]byte("k"), a)
	if err != nil || changed {
		t.Fatalf("merging an old version: changed %v, %v", changed, err)
	}
	for _, sib := range merged.Siblings {
		if len(sib.Value) == 0 {
			t.Fatalf("Merge returned %v without its value", sib.Dot)
		}
	}
	// An overwrite needs only versions: it supersedes all three.
	if _, err := s.Put(PutRequest{Key: []byte("k"), Value: []byte("c"), SupersedeLocal: true}); err != nil {
		t.Fatal(err)
	}
	if o, _ = s.Get([]byte("k")); len(o.Siblings) != 1 || string(o.Siblings[0].Value) != "c" {
		t.Fatalf("after an overwrite: %v, want [c]", values(o))
	}
}

// TestCacheEncodingRoundTrips: the cache's compact encoding gives back the
// versions it was given.
func TestCacheEncodingRoundTrips(t *testing.T) {
	c := newObjectCache(1 << 20)
	a, b := version.NewActor("n1", "e1"), version.NewActor("n2", "e2")
	o1, _ := version.Update(nil, nil, a, []byte("x"), false, 12345)
	o2, _ := version.Update(o1, nil, b, nil, true, -7)
	o3 := version.Merge(o2, &version.Object{Context: version.VV{{Actor: b, Counter: 1 << 40}}})
	for _, o := range []*version.Object{o1, o2, o3, {}} {
		enc, ok := c.actors.encode(nil, o)
		if !ok {
			t.Fatal("encode refused")
		}
		got, ok := c.actors.decode(enc)
		if !ok || !version.Equal(got, o) {
			t.Fatalf("round trip of %v: %v (ok %v)", dots(o), dots(got), ok)
		}
		for i := range got.Siblings {
			if got.Siblings[i].Timestamp != o.Siblings[i].Timestamp {
				t.Fatalf("timestamp %d came back as %d", o.Siblings[i].Timestamp, got.Siblings[i].Timestamp)
			}
		}
	}
	if _, ok := c.actors.decode([]byte{5, 1}); ok {
		t.Fatal("decode took bytes encode did not write")
	}
}

func TestObjectCacheStaysCoherent(t *testing.T) {
	s := openMem(t, vfs.NewMem(), Options{Sync: SyncNone, ObjectCacheSize: 64 << 10})
	defer s.Close()
	other := openMem(t, vfs.NewMem(), Options{Dir: "/other", NodeID: "other", Sync: SyncNone})
	defer other.Close()
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 400 {
				key := []byte(fmt.Sprint("k", (i*7+w)%97))
				switch i % 4 {
				case 0, 1:
					if _, err := s.Put(PutRequest{Key: key, Value: []byte(fmt.Sprint(w, i)), SupersedeLocal: i%3 == 0}); err != nil {
						t.Error(err)
					}
				case 2:
					o, _ := other.Put(PutRequest{Key: key, Value: []byte("o")})
					if _, _, err := s.Merge(key, o); err != nil {
						t.Error(err)
					}
				default:
					if _, err := s.DeleteIf(key, func(o *version.Object) bool { return len(o.Siblings) > 3 }); err != nil {
						t.Error(err)
					}
				}
				if _, err := s.Get(key); err != nil && !errors.Is(err, ErrNotFound) {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for i := range 97 {
		key := []byte(fmt.Sprint("k", i))
		p, seg := s.Locate(key)
		dk := s.dataKey(p, seg, key)
		fromPebble, errP := s.get(dk)
		// Every value written is whole: no write took a cached sibling,
		// which has no value, into what it stored.
		if errP == nil {
			for _, sib := range fromPebble.Siblings {
				if !sib.Tombstone && len(sib.Value) == 0 {
					t.Fatalf("%s: a stored sibling %v lost its value", key, sib.Dot)
				}
			}
		}
		cached, ok := s.cache.get(stripeOf(key), dk)
		if !ok {
			continue // evicted
		}
		if (errP == nil) != (cached != nil) || (errP == nil && !version.Equal(fromPebble, cached)) {
			t.Fatalf("%s: cache %v, pebble %v %v", key, dots(cached), dots(fromPebble), errP)
		}
	}
}
