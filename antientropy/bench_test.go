package antientropy

import (
	"flag"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mnemo-kv/mnemo/internal/version"
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
