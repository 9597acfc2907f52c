package hintedhandoff

import (
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mnemo-kv/mnemo/store"
)

func syncModes() []store.SyncMode { return []store.SyncMode{store.SyncAlways, store.SyncNone} }

// BenchmarkAdd measures Add of fresh hints with 100-byte values, durable
// per the store's sync mode.
func BenchmarkAdd(b *testing.B) {
	for _, mode := range syncModes() {
		b.Run("sync="+mode.String(), func(b *testing.B) {
			c := newTestCluster(b)
			cfg := testConfig(b)
			cfg.Logger = cfg.Logger.Level(zerolog.Disabled)
			a := c.addWith("a", cfg, func(o *store.Options) { o.Sync = mode })
			o := obj(nil, "x#1", string(make([]byte, 100)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := a.h.Add("b", fmt.Appendf(nil, "key-%09d", i), o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReplay measures replay throughput over loopback (ns/op is one
// round of perRound hints): hints of
// 100-byte values delivered from a to b, batches of 256, no throttle. With
// copies, a also holds the data as a pure fallback and drops it after
// delivery. Reports hints/s.
func BenchmarkReplay(b *testing.B) {
	const perRound = 5000
	for _, mode := range syncModes() {
		for _, copies := range []bool{false, true} {
			b.Run(fmt.Sprintf("sync=%s/copies=%v", mode, copies), func(b *testing.B) {
				c := newTestCluster(b)
				cfg := testConfig(b)
				cfg.Logger = cfg.Logger.Level(zerolog.Disabled)
				opts := func(o *store.Options) { o.Sync = mode }
				a := c.addWith("a", cfg, opts)
				c.addWith("t", cfg, opts)
				o := obj(nil, "x#1", string(make([]byte, 100)))
				var took time.Duration
				for round := range b.N {
					b.StopTimer()
					for i := range perRound {
						k := fmt.Appendf(nil, "r%d-key-%06d", round, i)
						if copies {
							if _, _, err := a.st.Merge(k, o); err != nil {
								b.Fatal(err)
							}
						}
						if err := a.h.Add("t", k, o); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
					start := time.Now()
					a.h.replay("t") // directly: the scheduler is idle (1h check)
					took += time.Since(start)
					if s := a.h.Stats(); s.Stored != 0 || s.Failures != 0 {
						b.Fatalf("replay left %+v", s)
					}
				}
				b.ReportMetric(float64(perRound*b.N)/took.Seconds(), "hints/s")
			})
		}
	}
}
