package store

import (
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
)

// Storage figures for operators, read from Pebble at each scrape (Collector):
// what a write waits for (WAL fsync latency, write stalls), what a read
// costs (block and object cache hits), and the background work (flushes,
// compactions, their debt) that competes with both. The names are the
// node's /metrics series; README "Metrics" lists them.

// stalls counts Pebble's write stalls (memtables or L0 full: writes wait
// for a flush or compaction), from its event listener.
type stalls struct {
	count atomic.Int64
	nanos atomic.Int64
	began atomic.Int64 // UnixNano of the stall in progress; 0 when none
	now   func() time.Time
}

func (st *stalls) listener(log zerolog.Logger) *pebble.EventListener {
	return &pebble.EventListener{
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			st.count.Add(1)
			st.began.Store(st.now().UnixNano())
			log.Warn().Str("component", "pebble").Str("reason", info.Reason).Msg("write stall: writes wait for a flush or compaction")
		},
		WriteStallEnd: func() {
			if b := st.began.Swap(0); b != 0 {
				st.nanos.Add(st.now().UnixNano() - b)
			}
		},
	}
}

var (
	descFsync = prometheus.NewDesc("mnemo_store_wal_fsync_seconds",
		"Latency of the write-ahead log's fsyncs (one covers every write committed meanwhile; --sync always waits for it).", nil, nil)
	descWALBytes = prometheus.NewDesc("mnemo_store_wal_bytes_written_total",
		"Bytes written to the write-ahead log.", nil, nil)
	descStalls = prometheus.NewDesc("mnemo_store_write_stalls_total",
		"Write stalls: writes waited for a memtable flush or an L0 compaction.", nil, nil)
	descStallSecs = prometheus.NewDesc("mnemo_store_write_stall_seconds_total",
		"Time writes spent stalled.", nil, nil)
	descBlockHits = prometheus.NewDesc("mnemo_store_block_cache_hits_total",
		"Reads of an sstable block found in the block cache (--cache-size).", nil, nil)
	descBlockMisses = prometheus.NewDesc("mnemo_store_block_cache_misses_total",
		"Reads of an sstable block that went to the disk.", nil, nil)
	descBlockBytes = prometheus.NewDesc("mnemo_store_block_cache_bytes",
		"Bytes held by the block cache.", nil, nil)
	descObjHits = prometheus.NewDesc("mnemo_store_object_cache_hits_total",
		"Reads of a key answered by the object cache (--object-cache-size).", nil, nil)
	descObjMisses = prometheus.NewDesc("mnemo_store_object_cache_misses_total",
		"Reads of a key the object cache did not hold.", nil, nil)
	descMemtable = prometheus.NewDesc("mnemo_store_memtable_bytes",
		"Bytes allocated to memtables (the mutable one and those waiting to flush).", nil, nil)
	descFlushes = prometheus.NewDesc("mnemo_store_flushes_total",
		"Memtable flushes to sstables.", nil, nil)
	descCompactions = prometheus.NewDesc("mnemo_store_compactions_total",
		"Compactions completed.", nil, nil)
	descDebt = prometheus.NewDesc("mnemo_store_compaction_debt_bytes",
		"Estimated bytes compactions still have to rewrite for the LSM to be in shape.", nil, nil)
	descReadAmp = prometheus.NewDesc("mnemo_store_read_amplification",
		"Sorted runs a read may have to look into (memtables, L0 sublevels, levels).", nil, nil)
	descDisk = prometheus.NewDesc("mnemo_store_disk_bytes",
		"Bytes the store uses on disk (sstables, WAL, manifests).", nil, nil)
	descJournal = prometheus.NewDesc("mnemo_store_summary_journal_bytes",
		"Bytes of summary journal records since the last checkpoint (replayed at open).", nil, nil)
	descCheckpoints = prometheus.NewDesc("mnemo_store_summary_checkpoints_total",
		"Summary checkpoints: the journal folded into the persisted cells.", nil, nil)
)

// Collector returns a Prometheus collector of the store's storage figures.
// Each scrape reads Pebble's metrics once; after Close it reports nothing.
func (s *Store) Collector() prometheus.Collector { return storeCollector{s} }

type storeCollector struct{ s *Store }

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFsync, descWALBytes, descStalls, descStallSecs, descBlockHits, descBlockMisses,
		descBlockBytes, descObjHits, descObjMisses, descMemtable, descFlushes, descCompactions, descDebt, descReadAmp, descDisk, descJournal, descCheckpoints} {
		ch <- d
	}
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	s.scrape.Lock()
	defer s.scrape.Unlock()
	if s.closed.Load() {
		return
	}
	m := s.db.Metrics()
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	if h := m.LogWriter.FsyncLatency; h != nil {
		if hm, ok := fsyncHistogram(h); ok {
			ch <- hm
		}
	}
	counter(descWALBytes, float64(m.WAL.BytesWritten))
	stallNanos := s.stalls.nanos.Load()
	if b := s.stalls.began.Load(); b != 0 {
		stallNanos += max(0, s.stalls.now().UnixNano()-b)
	}
	counter(descStalls, float64(s.stalls.count.Load()))
	counter(descStallSecs, float64(stallNanos)/1e9)
	counter(descBlockHits, float64(m.BlockCache.Hits))
	counter(descBlockMisses, float64(m.BlockCache.Misses))
	gauge(descBlockBytes, float64(m.BlockCache.Size))
	hits, misses := s.cache.stats()
	counter(descObjHits, float64(hits))
	counter(descObjMisses, float64(misses))
	gauge(descMemtable, float64(m.MemTable.Size))
	counter(descFlushes, float64(m.Flush.Count))
	counter(descCompactions, float64(m.Compact.Count))
	gauge(descDebt, float64(m.Compact.EstimatedDebt))
	gauge(descReadAmp, float64(m.ReadAmp()))
	gauge(descDisk, float64(m.DiskSpaceUsage()))
	gauge(descJournal, float64(s.journalBytes.Load()))
	counter(descCheckpoints, float64(s.checkpoints.Load()))
}

// fsyncHistogram re-exports Pebble's WAL fsync histogram (nameless, in
// nanoseconds) under our name, in seconds.
func fsyncHistogram(h prometheus.Histogram) (prometheus.Metric, bool) {
	var pm dto.Metric
	if err := h.Write(&pm); err != nil || pm.Histogram == nil {
		return nil, false
	}
	ph := pm.Histogram
	buckets := make(map[float64]uint64, len(ph.Bucket))
	for _, b := range ph.Bucket {
		buckets[b.GetUpperBound()/1e9] = b.GetCumulativeCount()
	}
	hm, err := prometheus.NewConstHistogram(descFsync, ph.GetSampleCount(), ph.GetSampleSum()/1e9, buckets)
	return hm, err == nil
}
