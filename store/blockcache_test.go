package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// TestBlockCacheHoldsBlocks: with the store's default sizes, Pebble's block
// cache keeps blocks while writes and reads run together. Pebble charges
// its memtables to the cache's budget; with 16 MiB memtables and a 32 MiB
// cache it held nothing once writes began (0 entries, hit rate 12%), and
// every read of an older key went to the file.
func TestBlockCacheHoldsBlocks(t *testing.T) {
	// The object cache is off so that reads reach Pebble.
	s, err := Open(Options{Dir: t.TempDir(), NodeID: "n1", Sync: SyncNone, ObjectCacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	val := bytes.Repeat([]byte("v"), 100)
	const keys = 40000
	key := func(i int) []byte { return fmt.Appendf(nil, "key:%012d", i) }
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < keys; i += 8 {
				if _, err := s.Put(PutRequest{Key: key(i), Value: val}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	before := s.db.Metrics().BlockCache
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range 8000 {
				k := key(r.IntN(keys))
				var err error
				if i%2 == 0 {
					_, err = s.Put(PutRequest{Key: k, Value: val})
				} else {
					_, err = s.Get(k)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	m := s.db.Metrics()
	hits, misses := m.BlockCache.Hits-before.Hits, m.BlockCache.Misses-before.Misses
	rate := float64(hits) / float64(max(1, hits+misses))
	t.Logf("block cache after 64k mixed ops: %d entries, %d bytes; hit rate %.1f%% (%d hits, %d misses); %d flushes, %d compactions",
		m.BlockCache.Count, m.BlockCache.Size, 100*rate, hits, misses, m.Flush.Count, m.Compact.Count)
	if m.Flush.Count < 2 {
		t.Fatalf("only %d memtable flushes: the load did not exercise the memtables' reservation", m.Flush.Count)
	}
	if m.BlockCache.Count == 0 || rate < 0.7 {
		t.Fatalf("block cache holds %d blocks, hit rate %.1f%%: reads go to the files", m.BlockCache.Count, 100*rate)
	}
}

// jittered spreads memtable sizes over [1-j, 1+j] of the size asked, and
// leaves them alone when jitter is off; Open uses a different draw per
// store, so replicas taking the same writes do not flush in step.
func TestMemTableJitter(t *testing.T) {
	const size = 4 << 20
	if got := jittered(size, 0.25, 0); got != 3<<20 {
		t.Fatalf("lowest draw: %d, want %d", got, 3<<20)
	}
	if got := jittered(size, 0.25, 0.999999); got < 5<<20-64 || got > 5<<20 {
		t.Fatalf("highest draw: %d, want just under %d", got, 5<<20)
	}
	for _, j := range []float64{-1, 0, 0.5, 2} {
		if got := jittered(size, j, 0.9); got != size {
			t.Fatalf("jitter %v: %d, want the size unchanged", j, got)
		}
	}
	seen := map[uint64]bool{}
	for range 20 {
		s, err := Open(Options{Dir: t.TempDir(), NodeID: "n1", Sync: SyncNone})
		if err != nil {
			t.Fatal(err)
		}
		if s.memTable < 3<<20 || s.memTable >= 5<<20 {
			t.Fatalf("memtable size %d outside [3, 5) MiB", s.memTable)
		}
		seen[s.memTable] = true
		s.Close()
	}
	t.Logf("%d distinct memtable sizes in 20 opens", len(seen))
	if len(seen) < 2 {
		t.Fatal("20 stores opened with the default jitter all got the same memtable size")
	}
}
