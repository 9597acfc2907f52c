package store

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/version"
)

// testDigest is a digest of a key and its versions (not the values, like
// anti-entropy's).
func testDigest(key []byte, o *version.Object) uint64 {
	if o.IsEmpty() {
		return 0
	}
	d := xxhash.New()
	_, _ = d.Write(key)
	for _, e := range o.Context {
		_, _ = fmt.Fprintf(d, "|%s:%d", e.Actor, e.Counter)
	}
	for _, s := range o.Siblings {
		_, _ = fmt.Fprintf(d, "|%s:%d:%v", s.Dot.Actor, s.Dot.Counter, s.Tombstone)
	}
	return d.Sum64() | 1
}

// scanned computes what the summary must say from the data itself: every
// segment's digest and the counts.
func scanned(t *testing.T, s *Store) (digests [][]uint64, c Counts) {
	t.Helper()
	for p := range s.Partitions() {
		segs := make([]uint64, s.Segments())
		err := s.ScanPartition(ring.Partition(p), 0, uint32(s.Segments()), func(e Entry) bool {
			segs[e.Segment] ^= testDigest(e.Key, e.Object)
			if e.Object.Deleted() {
				c.Tombstones++
			} else {
				c.Live++
			}
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, segs)
	}
	return digests, c
}

// kept returns the summary's segment digests.
func kept(s *Store) [][]uint64 {
	var out [][]uint64
	for p := range s.Partitions() {
		unlock := s.LockPartition(ring.Partition(p))
		out = append(out, s.SegmentDigests(nil, ring.Partition(p)))
		unlock()
	}
	return out
}

func checkSummary(t *testing.T, s *Store, when string) {
	t.Helper()
	want, wc := scanned(t, s)
	if got := kept(s); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("%s: segment digests kept differ from the data's", when)
	}
	if got := s.Counts(); got != wc {
		t.Fatalf("%s: counts %+v, data holds %+v", when, got, wc)
	}
}

// churn writes through every write path: versioned puts and deletes,
// merges, batch merges and removals, from several goroutines, on keys that
// share cells (Partitions*Segments below the stripe count).
func churn(t *testing.T, s *Store, seed uint64, ops int) {
	t.Helper()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(seed, uint64(g)))
			other := version.NewActor("n2", "e")
			for i := range ops {
				key := []byte(fmt.Sprint("key-", rnd.IntN(300)))
				var err error
				switch rnd.IntN(7) {
				case 0, 1:
					_, err = s.Put(PutRequest{Key: key, Value: []byte("v"), SupersedeLocal: rnd.IntN(2) == 0})
				case 2:
					_, err = s.Put(PutRequest{Key: key, Tombstone: true, SupersedeLocal: true})
				case 3:
					o, _ := version.Update(nil, nil, other, []byte("w"), false, int64(i))
					_, _, err = s.Merge(key, o)
				case 4:
					var items []KeyObject
					for range 5 {
						o, _ := version.Update(nil, nil, other, []byte("m"), rnd.IntN(3) == 0, int64(i))
						items = append(items, KeyObject{Key: []byte(fmt.Sprint("key-", rnd.IntN(300))), Object: o})
					}
					_, err = s.MergeMany(items)
				case 5:
					_, err = s.DeleteIf(key, func(*version.Object) bool { return rnd.IntN(2) == 0 })
				case 6:
					var reqs []PutRequest
					for range 5 {
						reqs = append(reqs, PutRequest{Key: []byte(fmt.Sprint("key-", rnd.IntN(300))), Value: []byte("p"),
							Tombstone: rnd.IntN(4) == 0, SupersedeLocal: true})
					}
					var durable func() error
					if _, _, durable, err = s.PutMany(reqs); err == nil {
						err = durable()
					}
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// The summary matches the data after every kind of write, and is restored
// exactly at reopen, after a clean close or a crash (an unsynced tail lost
// with its journal records, which share its batches). With a small
// journal limit, checkpoints run all through the writes, concurrently
// with them.
func TestSummaryKeptWithTheData(t *testing.T) {
	for _, limit := range []int64{0, 300} {
		t.Run(fmt.Sprint("journal-limit-", limit), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			opts := Options{Partitions: 8, Segments: 4, Digest: testDigest, DigestName: "test", Sync: SyncNone, journalLimit: limit}
			s := openMem(t, fs, opts)
			churn(t, s, 1, 500)
			checkSummary(t, s, "after the writes")
			s.Close()

			s = openMem(t, fs, opts)
			checkSummary(t, s, "after reopening")
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			churn(t, s, 2, 300)
			crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(3, 3))})
			ran := s.checkpoints.Load()
			s.Close()
			if limit > 0 && ran == 0 {
				t.Fatalf("no checkpoint ran with a journal limit of %d bytes", limit)
			}

			s = openMem(t, crashed, opts)
			defer s.Close()
			checkSummary(t, s, "after a crash")
			for p := range s.Partitions() {
				unlock := s.LockPartition(ring.Partition(p))
				fixed, err := s.VerifySummary(ring.Partition(p))
				unlock()
				if err != nil || fixed != 0 {
					t.Fatalf("partition %d: verify fixed %d cells (%v), want 0", p, fixed, err)
				}
			}
		})
	}
}

// journalRecords counts the summary journal's records in Pebble.
func journalRecords(t *testing.T, s *Store) int {
	t.Helper()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixJournal}, UpperBound: []byte{prefixJournal + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	return n
}

// A checkpoint folds the journal into the base cells: the records it
// covers are gone, the cells read back the same at reopen, and writes
// after it are journaled again.
func TestSummaryCheckpoint(t *testing.T) {
	fs := vfs.NewMem()
	opts := Options{Partitions: 8, Segments: 4, Digest: testDigest, DigestName: "test", Sync: SyncNone}
	s := openMem(t, fs, opts)
	churn(t, s, 6, 200)
	if n := journalRecords(t, s); n == 0 {
		t.Fatal("writes left no journal records")
	}
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	if n := journalRecords(t, s); n != 0 {
		t.Fatalf("%d journal records left after a checkpoint with no writes running", n)
	}
	if got := s.journalBytes.Load(); got != 0 {
		t.Fatalf("journal bytes %d after the checkpoint", got)
	}
	checkSummary(t, s, "after the checkpoint")
	if _, err := s.Put(PutRequest{Key: []byte("after"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if n := journalRecords(t, s); n != 1 {
		t.Fatalf("%d journal records after one put, want 1", n)
	}
	s.Close()

	s = openMem(t, fs, opts)
	defer s.Close()
	checkSummary(t, s, "after reopening")
}

// A summary kept before the journal (cells-v1: base cells only) is read
// as it is, and its meta record moves to the current version.
func TestSummaryV1Read(t *testing.T) {
	fs := vfs.NewMem()
	opts := Options{Partitions: 8, Segments: 4, Digest: testDigest, DigestName: "test", Sync: SyncNone}
	s := openMem(t, fs, opts)
	churn(t, s, 7, 200)
	if err := s.checkpoint(); err != nil { // every cell a base cell, as v1 kept them
		t.Fatal(err)
	}
	if err := s.SetMeta(metaSummary, []byte(summaryVersionV1+" test")); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openMem(t, fs, opts)
	defer s.Close()
	checkSummary(t, s, "after opening a v1 summary")
	if name, _ := s.Meta(metaSummary); string(name) != summaryVersion+" test" {
		t.Fatalf("meta record %q", name)
	}
}

// A summary kept under another digest (or none) is rebuilt at open.
func TestSummaryRebuiltForAnotherDigest(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, Options{Partitions: 8, Segments: 4})
	churn(t, s, 4, 200)
	want := s.Counts()
	s.Close()

	s = openMem(t, fs, Options{Partitions: 8, Segments: 4, Digest: testDigest, DigestName: "test"})
	defer s.Close()
	checkSummary(t, s, "after the rebuild")
	if s.Counts() != want {
		t.Fatalf("counts %+v after the rebuild, %+v before", s.Counts(), want)
	}
	if name, _ := s.Meta(metaSummary); string(name) != summaryVersion+" test" {
		t.Fatalf("meta record %q", name)
	}
}

// VerifySummary finds and corrects a cell kept wrong, on disk too.
func TestVerifySummaryCorrects(t *testing.T) {
	fs := vfs.NewMem()
	opts := Options{Partitions: 8, Segments: 4, Digest: testDigest, DigestName: "test"}
	s := openMem(t, fs, opts)
	churn(t, s, 5, 200)
	key := []byte("key-7")
	if _, err := s.Put(PutRequest{Key: key, Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	p, _ := s.Locate(key)
	// A bug's work: the cell of key-7 says something its keys do not.
	unlock := s.LockPartition(p)
	i := s.cellOf(ring.KeyHash(key))
	s.cells[i].digest ^= 0xdead
	s.cells[i].live += 3
	b := s.db.NewBatch()
	if err := stage(b, i, s.cells[i]); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(nil); err != nil {
		t.Fatal(err)
	}
	b.Close()
	s.setCounts(p)
	fixed, err := s.VerifySummary(p)
	unlock()
	if err != nil || fixed != 1 {
		t.Fatalf("verify fixed %d cells (%v), want 1", fixed, err)
	}
	checkSummary(t, s, "after the fix")
	s.Close()
	s = openMem(t, fs, opts)
	defer s.Close()
	checkSummary(t, s, "after reopening")
}
