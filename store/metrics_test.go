package store

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
)

// gatherStore scrapes s's collector through a registry, as /metrics does,
// and returns each family by name.
func gatherStore(t *testing.T, s *Store) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(s.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf
	}
	return got
}

func value(t *testing.T, got map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	mf := got[name]
	if mf == nil || len(mf.Metric) != 1 {
		t.Fatalf("no series %s", name)
	}
	m := mf.Metric[0]
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("%s is neither a counter nor a gauge", name)
	return 0
}

// TestCollector: a store taking fsynced writes and reads reports its WAL
// fsyncs in seconds, its caches' hits and misses, and its flushes; after
// Close a scrape reports nothing and does not touch the closed DB.
func TestCollector(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), NodeID: "n1", Sync: SyncAlways, SyncMinGap: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	val := bytes.Repeat([]byte("v"), 100)
	key := func(i int) []byte { return fmt.Appendf(nil, "key:%06d", i) }
	const writes = 200
	for i := range writes {
		if _, err := s.Put(PutRequest{Key: key(i), Value: val}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Versions(key(7)); err != nil { // just written: in the object cache
		t.Fatal(err)
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get([]byte("never-written")); err == nil {
		t.Fatal("a key never written was found")
	}

	got := gatherStore(t, s)
	h := got["mnemo_store_wal_fsync_seconds"]
	if h == nil || h.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("no WAL fsync histogram: %v", h)
	}
	hist := h.Metric[0].Histogram
	// One fsync per write here (no gap, one writer), plus the store's own.
	if n := hist.GetSampleCount(); n < writes {
		t.Fatalf("%d fsyncs observed for %d synced writes", n, writes)
	}
	mean := time.Duration(hist.GetSampleSum() / float64(hist.GetSampleCount()) * 1e9)
	if mean <= 0 || mean > 10*time.Second {
		t.Fatalf("mean fsync %v: not converted from Pebble's nanoseconds to seconds", mean)
	}
	if top := hist.Bucket[len(hist.Bucket)-1].GetUpperBound(); top > 3600 {
		t.Fatalf("largest bucket bound %v s: bounds not converted to seconds", top)
	}
	t.Logf("%d fsyncs, mean %v", hist.GetSampleCount(), mean)
	if v := value(t, got, "mnemo_store_wal_bytes_written_total"); v < writes*100 {
		t.Fatalf("WAL bytes written %v for %d writes of 100 bytes", v, writes)
	}
	if v := value(t, got, "mnemo_store_object_cache_hits_total"); v < 1 {
		t.Fatalf("object cache hits %v after reading a key just written", v)
	}
	if v := value(t, got, "mnemo_store_object_cache_misses_total"); v < 1 {
		t.Fatalf("object cache misses %v after reading keys it did not hold", v)
	}
	if v := value(t, got, "mnemo_store_summary_journal_bytes"); v < writes*journalCellLen {
		t.Fatalf("summary journal %v bytes after %d writes of new keys", v, writes)
	}
	if v := value(t, got, "mnemo_store_flushes_total"); v < 1 {
		t.Fatalf("flushes %v after a flush", v)
	}
	if v := value(t, got, "mnemo_store_block_cache_hits_total") + value(t, got, "mnemo_store_block_cache_misses_total"); v < 1 {
		t.Fatalf("no block cache lookups after reading a flushed store")
	}
	if v := value(t, got, "mnemo_store_disk_bytes"); v < writes*100 {
		t.Fatalf("disk bytes %v", v)
	}
	for _, name := range []string{"mnemo_store_write_stalls_total", "mnemo_store_write_stall_seconds_total", "mnemo_store_memtable_bytes",
		"mnemo_store_compactions_total", "mnemo_store_compaction_debt_bytes", "mnemo_store_read_amplification", "mnemo_store_block_cache_bytes"} {
		value(t, got, name)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := gatherStore(t, s); len(got) != 0 {
		t.Fatalf("a closed store reported %d series", len(got))
	}
}

// TestStallAccounting: Pebble's stall events count stalls and the time
// writes spent in them, including a stall still in progress.
func TestStallAccounting(t *testing.T) {
	clock := time.Unix(1_700_000_000, 0)
	st := stalls{now: func() time.Time { return clock }}
	l := st.listener(zerolog.Nop())
	l.WriteStallBegin(pebble.WriteStallBeginInfo{Reason: "memtable count limit reached"})
	clock = clock.Add(5 * time.Millisecond)
	l.WriteStallEnd()
	if st.count.Load() != 1 || st.nanos.Load() < int64(5*time.Millisecond) || st.began.Load() != 0 {
		t.Fatalf("after one stall of >= 5ms: count %d, %v stalled, in progress %v", st.count.Load(), time.Duration(st.nanos.Load()), st.began.Load() != 0)
	}
	l.WriteStallEnd() // an end without a begin changes nothing
	if st.count.Load() != 1 || st.nanos.Load() > int64(time.Minute) {
		t.Fatalf("a second end changed the figures: count %d, %v", st.count.Load(), time.Duration(st.nanos.Load()))
	}
}
