package antientropy

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
	"github.com/mnemo-kv/mnemo/version"
)

var (
	repairKeys    = flag.Int("repair.keys", 250_000, "BenchmarkRepair: keys of 100 random bytes (make bench: 1M)")
	repairQ       = flag.Int("repair.q", 64, "BenchmarkRepair: partitions (make bench: 256; keep about 4 keys per segment)")
	repairMissing = flag.Int("repair.missing-every", 10, "BenchmarkRepair: one key in this many is missing on the repaired node")
)

// BenchmarkRepair measures one exchange that repairs a node missing 10%
// of the keys, at the bench's density (about 4 keys of 100 random bytes
// per segment), and reports the bytes sent both ways per byte of missing
// data (key plus value), and the cost of the in-sync round that follows.
// Set -repair.keys=1000000 -repair.q=256 for the bench's full size.
func BenchmarkRepair(b *testing.B) {
	rng := newRand(b)
	c := newCluster(b, clusterOpts{Q: *repairQ, Config: Config{Logger: zerolog.Nop(), Rate: -1}}, "a", "b")
	a, bn := c.node("a"), c.node("b")
	c.waitBuilt("a", "b")
	t0 := time.Now()
	missing, missingBytes := fillRandom(b, rng, *repairKeys, 100, *repairMissing, []*testNode{a}, []*testNode{bn})
	b.Logf("%d keys over %d partitions filled in %v; %d missing (%d bytes)", *repairKeys, *repairQ, time.Since(t0), len(missing), missingBytes)
	var spent, inSync int64
	var took time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if i > 0 {
			for _, k := range missing {
				if _, err := bn.st.DeleteIf(k, func(*version.Object) bool { return true }); err != nil {
					b.Fatal(err)
				}
			}
		}
		before := c.bytes.Load()
		start := time.Now()
		b.StartTimer()
		res, err := a.ae.ExchangeNow(ctxTimeout(b, 10*time.Minute), "b", nil)
		b.StopTimer()
		took += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if res.KeysSent != len(missing) {
			b.Fatalf("sent %d objects, %d missing", res.KeysSent, len(missing))
		}
		spent += c.bytes.Load() - before
		before = c.bytes.Load()
		res, err = a.ae.ExchangeNow(ctxTimeout(b, time.Minute), "b", nil)
		if err != nil || res.InSync != *repairQ {
			b.Fatalf("round after the repair: %+v %v", res, err)
		}
		inSync = c.bytes.Load() - before
		b.StartTimer()
	}
	b.StopTimer()
	ratio := float64(spent) / float64(b.N) / float64(missingBytes)
	b.ReportMetric(ratio, "bytes/missing-byte")
	b.ReportMetric(float64(inSync), "in-sync-round-bytes")
	b.ReportMetric(float64(len(missing))*float64(b.N)/took.Seconds(), "keys-repaired/s")
	b.Logf("%.3f bytes per missing byte; in-sync round %d bytes;%s", ratio, inSync, c.traffic())
}

var (
	buildKeys = flag.Int("build.keys", 250_000, "BenchmarkBuild: keys of 100 random bytes (the bench's node-3 after its restart: 1100000)")
	buildQ    = flag.Int("build.q", 256, "BenchmarkBuild: partitions")
)

// BenchmarkBuild measures what a restart costs a store holding
// -build.keys keys of 100 random bytes: "open" reopens the store (which
// restores its summary), "build" is Trees.Build from that summary (what a
// restarted node does before its first exchange), and "scan" the tree
// build from a scan of every object, hashed with LeafHashEncoded (what a
// restart did before the summary, and what Verify's store scan costs, less
// decoding). All must give the same roots.
func BenchmarkBuild(b *testing.B) {
	rng := newRand(b)
	dir := b.TempDir()
	opts := store.Options{Dir: dir, NodeID: "n1", Partitions: *buildQ, Segments: 1024,
		Sync: store.SyncNone, CacheSize: 32 << 20, MemTableSize: 16 << 20,
		Digest: LeafHash, DigestName: LeafHashName}
	st, err := store.Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	fillStore(b, rng, st, *buildKeys, 100)
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d keys over %d partitions filled in %v", *buildKeys, *buildQ, time.Since(t0))
	b.Run("open", func(b *testing.B) {
		for b.Loop() {
			if st, err = store.Open(opts); err != nil {
				b.Fatal(err)
			}
			if c := st.Counts(); c.Live != int64(*buildKeys) {
				b.Fatalf("%d keys counted after reopening, want %d", c.Live, *buildKeys)
			}
			if err := st.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	if st, err = store.Open(opts); err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var want map[ring.Partition]uint64
	b.Run("scan", func(b *testing.B) {
		for b.Loop() {
			want = scanTrees(b, st).Roots()
		}
		b.ReportMetric(float64(*buildKeys)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
	})
	b.Run("build", func(b *testing.B) {
		var trees *Trees
		for b.Loop() {
			trees = NewTrees(*buildQ, 1024)
			if err := trees.Build(context.Background(), st); err != nil {
				b.Fatal(err)
			}
		}
		if want != nil && !maps.Equal(trees.Roots(), want) {
			b.Fatal("the trees built from the summary differ from the scan's")
		}
	})
}

// fillStore writes n keys of valueLen random bytes to st, each versioned
// by one actor as puts would, in storage order.
func fillStore(t testing.TB, rng *rand.Rand, st *store.Store, n, valueLen int) {
	t.Helper()
	type item struct {
		kv  store.KeyObject
		p   ring.Partition
		seg uint32
	}
	actor := version.NewActor("node-1", "0123456789abcdef")
	ts := time.Now().UnixNano()
	items := make([]item, n)
	for i := range items {
		key := []byte(fmt.Sprintf("key-%08d", i))
		val := make([]byte, valueLen)
		for j := range val {
			val[j] = byte(rng.Uint32())
		}
		dot := version.Dot{Actor: actor, Counter: uint64(i + 1)}
		o := &version.Object{Context: version.VV{{Actor: actor, Counter: dot.Counter}},
			Siblings: []version.Sibling{{Dot: dot, Value: val, Timestamp: ts + int64(i)*1000}}}
		it := item{kv: store.KeyObject{Key: key, Object: o}}
		it.p, it.seg = st.Locate(key)
		items[i] = it
	}
	slices.SortFunc(items, func(x, y item) int {
		if x.p != y.p {
			return int(x.p) - int(y.p)
		}
		if x.seg != y.seg {
			return int(x.seg) - int(y.seg)
		}
		return bytes.Compare(x.kv.Key, y.kv.Key)
	})
	const batch = 1000
	for lo := 0; lo < n; lo += batch {
		objs := make([]store.KeyObject, 0, batch)
		for _, it := range items[lo:min(n, lo+batch)] {
			objs = append(objs, it.kv)
		}
		if _, err := st.MergeMany(objs); err != nil {
			t.Fatal(err)
		}
	}
}

var (
	rejoinKeys = flag.Int("rejoin.keys", 64_000, "BenchmarkRejoin: keys of 100 random bytes (the bench: 1000000)")
	rejoinQ    = flag.Int("rejoin.q", 16, "BenchmarkRejoin: partitions (the bench: 256; keep about 4 keys per segment)")
)

// BenchmarkRejoin runs the rejoin story of TestRejoinRepairsOnce (three
// replicas, c restarts missing one key in ten, its trees building at first,
// four triggers) and reports the bytes sent per missing byte and the
// objects c received per missing key. Set -rejoin.keys=1000000
// -rejoin.q=256 for the bench's size.
func BenchmarkRejoin(b *testing.B) {
	var bytesRatio, recvRatio float64
	for i := 0; i < b.N; i++ {
		f := rejoin(b, *rejoinKeys, *rejoinQ)
		bytesRatio += float64(f.bytes) / float64(f.missingBytes)
		recvRatio += float64(f.received) / float64(f.missing)
	}
	b.ReportMetric(bytesRatio/float64(b.N), "bytes/missing-byte")
	b.ReportMetric(recvRatio/float64(b.N), "received/missing-key")
}
