package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/version"
)

// Errors returned by the store. Callers check them with errors.Is.
var (
	// ErrNotFound: the key was never stored here (a tombstone is found).
	ErrNotFound = errors.New("store: not found")
	// ErrEmptyKey: keys must have at least one byte.
	ErrEmptyKey = errors.New("store: empty key")
	// ErrKeyTooLarge: the key exceeds Options.MaxKeySize.
	ErrKeyTooLarge = errors.New("store: key too large")
	// ErrValueTooLarge: the value exceeds Options.MaxValueSize.
	ErrValueTooLarge = errors.New("store: value too large")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrLayoutMismatch: the data directory was created with other
	// partition or segment counts.
	ErrLayoutMismatch = errors.New("store: data directory layout mismatch")
)

// SyncMode says when a write is made durable.
type SyncMode uint8

const (
	// SyncAlways fsyncs the WAL before every write returns (concurrent
	// writes share an fsync). Acknowledged writes survive kill -9 and power
	// loss. The default.
	SyncAlways SyncMode = iota
	// SyncBatch returns before the fsync and fsyncs the WAL every
	// Options.SyncInterval: a crash (even kill -9: Pebble buffers the WAL in
	// process) may lose the writes of the last interval on this replica.
	SyncBatch
	// SyncNone never fsyncs explicitly; for benchmarks and throwaway data.
	SyncNone
)

// String returns the flag spelling of m.
func (m SyncMode) String() string {
	switch m {
	case SyncAlways:
		return "always"
	case SyncBatch:
		return "batch"
	case SyncNone:
		return "none"
	}
	return fmt.Sprintf("SyncMode(%d)", m)
}

// ParseSyncMode parses "always", "batch" or "none".
func ParseSyncMode(s string) (SyncMode, error) {
	for _, m := range []SyncMode{SyncAlways, SyncBatch, SyncNone} {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("store: sync mode %q is not one of always, batch, none", s)
}

// Observer learns of every change to stored data. The store calls Changed
// after the change is committed, while it still holds the key's lock, so
// calls for one key are serialized and in commit order. before is nil when
// the key was absent, and may carry only versions (its siblings' values
// nil) when the store read it from its cache. digest is Options.Digest(key, before) XOR
// Options.Digest(key, after), which the store computed for its summary (0
// without a Digest). Changed must be quick and must not call back into the
// store for the same key.
type Observer interface {
	Changed(p ring.Partition, segment uint32, key []byte, before, after *version.Object, digest uint64)
}

// Options configure a store. Zero fields take the defaults shown.
type Options struct {
	// Dir is the data directory. Required.
	Dir string
	// FS is the filesystem; nil is the real disk. vfs.NewMem() for tests.
	FS vfs.FS
	// NodeID names this node; with the epoch it forms the actor id.
	NodeID string
	// Partitions is the ring's partition count Q (power of two). Fixed at
	// creation. Default 256.
	Partitions int
	// Segments is the number of anti-entropy segments per partition (power
	// of two). Fixed at creation. Default 1024.
	Segments int
	// Sync is the durability mode. Default SyncAlways.
	Sync SyncMode
	// SyncInterval is how often SyncBatch fsyncs. Default 10ms.
	SyncInterval time.Duration
	// SyncMinGap is, with SyncAlways, the least time between two fsyncs of
	// the WAL: writes that come meanwhile wait and share the next one
	// (Pebble's WALMinSyncInterval). A write on a quiet store is synced at
	// once; under load fewer, larger fsyncs leave more CPU to the writes.
	// Default 500us: SDK puts (3,2,2, 64 callers) went from 42.8k to 50.1k
	// per 10 s in alternating runs (250us: 43.6k, 1ms: 48.2k), CPU per put
	// 12% lower. Negative: fsync as soon as asked.
	SyncMinGap time.Duration
	// MaxKeySize in bytes. Default 64 KiB.
	MaxKeySize int
	// MaxValueSize in bytes. Default 1 MiB.
	MaxValueSize int
	// CacheSize is Pebble's block cache in bytes. Default 32 MiB.
	CacheSize int64
	// MemTableSize is Pebble's memtable size in bytes. Default 4 MiB.
	// NB: Pebble charges its memtables (the mutable one and those being
	// flushed) to the block cache's budget, so CacheSize must be well
	// above twice this. With 16 MiB memtables and a 32 MiB cache, a store
	// under writes held no block at all (0 entries, every read a pread:
	// TestBlockCacheHoldsBlocks); at 4 MiB SDK gets went from 75k/69k to
	// 94k/103k per 10 s and puts from 37.5k/41.8k to 48.2k/47.2k
	// (alternating runs; CPU per get 0.075 -> 0.053 ms per node).
	MemTableSize uint64
	// MemTableJitter, in [0, 0.5), sizes this store's memtables at a
	// random factor in [1-j, 1+j] of MemTableSize, drawn at Open. Replicas
	// take the same writes, so with equal memtables they flush, and then
	// compact, at the same moments: every ~16 s at 1,000 mixed ops/s all
	// three nodes compacted at once, and a quorum needs two of them. A
	// different size per node spreads their flushes apart. Default 0.25;
	// negative: none.
	MemTableJitter float64
	// ObjectCacheSize is the budget of the cache of the versions of
	// recent keys (objectCache), in bytes of Go heap; negative disables
	// it. Default 16 MiB: about 100k keys, at about twice that in RSS; a
	// node holds 1M keys in 157 MiB of RSS with it (the target is 200).
	ObjectCacheSize int64
	// Observer, when set, sees every data change (anti-entropy trees).
	Observer Observer
	// Digest is the per-key hash whose XOR per segment the store keeps
	// with the data (see SegmentDigests); nil keeps none. It must be 0
	// for an absent object and depend only on the key and the object's
	// versions. DigestName names it: the kept digests are trusted at open
	// only when they were kept under the same name.
	Digest     func(key []byte, o *version.Object) uint64
	DigestName string
	// Now is the clock for write timestamps. Default time.Now.
	Now func() time.Time
	// Logger receives Pebble's and the store's log lines.
	Logger zerolog.Logger

	// journalLimit is how many bytes of summary journal records start a
	// checkpoint (summary.go); tests set it low. Default
	// defaultJournalLimit.
	journalLimit int64
}

func (o *Options) setDefaults() {
	if o.Partitions == 0 {
		o.Partitions = 256
	}
	if o.Segments == 0 {
		o.Segments = 1024
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = 10 * time.Millisecond
	}
	if o.SyncMinGap == 0 {
		o.SyncMinGap = 500 * time.Microsecond
	}
	if o.MaxKeySize == 0 {
		o.MaxKeySize = 64 << 10
	}
	if o.MaxValueSize == 0 {
		o.MaxValueSize = 1 << 20
	}
	if o.CacheSize == 0 {
		o.CacheSize = 32 << 20
	}
	if o.MemTableJitter == 0 {
		o.MemTableJitter = 0.25
	}
	if o.journalLimit == 0 {
		o.journalLimit = defaultJournalLimit
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = 4 << 20
	}
	if o.ObjectCacheSize == 0 {
		o.ObjectCacheSize = 16 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Digest == nil {
		o.DigestName = "none"
	}
}

const (
	stripeBits = 12
	nStripes   = 1 << stripeBits

	prefixData = 'd'
	prefixAux  = 'a'
	prefixMeta = 'm'

	metaLayout = "layout"
	metaEpoch  = "epoch"
)

// Store is one node's Pebble database. Safe for concurrent use.
type Store struct {
	opts     Options
	db       *pebble.DB
	actor    version.Actor
	epoch    string
	fresh    bool
	qBits    int
	segBits  int
	writeOpt *pebble.WriteOptions

	stripes [nStripes]sync.Mutex
	// cache holds recently written objects; see objectCache.
	cache *objectCache

	// memTable is the memtable size Pebble was given (MemTableJitter).
	memTable uint64
	// stalls counts Pebble's write stalls; scrape keeps Close from closing
	// the DB under a metrics scrape (metrics.go).
	stalls *stalls
	scrape sync.Mutex

	// cells are the summary (summary.go), each guarded by its stripe;
	// cellBits is log2(len(cells)).
	cells    []cell
	cellBits int
	// The cells' journal and checkpoints (summary.go): the last record's
	// sequence number, the record bytes since the last checkpoint, the
	// cells changed since (a bit each), the background checkpoint's wake
	// and lock, and how many checkpoints ran.
	journalSeq    atomic.Uint64
	journalBytes  atomic.Int64
	dirty         []atomic.Uint64
	checkpointReq chan struct{}
	checkpointMu  sync.Mutex
	checkpoints   atomic.Int64
	// live and tombs are per-partition key counts: the sums of the
	// partition's cells, adjusted with them.
	live, tombs []atomic.Int64

	closed atomic.Bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

// Open opens (or creates) the store in opts.Dir.
func Open(opts Options) (*Store, error) {
	opts.setDefaults()
	if err := ring.ValidPartitions(opts.Partitions); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if opts.Segments < 1 || opts.Segments > 1<<16 || opts.Segments&(opts.Segments-1) != 0 {
		return nil, fmt.Errorf("store: segments %d is not a power of two in [1, 65536]", opts.Segments)
	}
	if opts.NodeID == "" {
		return nil, errors.New("store: node id is empty")
	}
	memTable := jittered(opts.MemTableSize, opts.MemTableJitter, mrand.Float64())
	cache := pebble.NewCache(opts.CacheSize)
	defer cache.Unref()
	popts := &pebble.Options{
		FS:                 opts.FS,
		Cache:              cache,
		MemTableSize:       memTable,
		Logger:             pebbleLogger{opts.Logger},
		FormatMajorVersion: pebble.FormatNewest,
		// Keys are hashed over the whole key space, so every flushed
		// memtable overlaps every L0 file and all of Lbase: at Pebble's
		// default of 4 L0 files, each L0 compaction rewrote Lbase (the
		// whole store, for a small one) for 16 MiB of new writes, and
		// compaction took 20-29% of a replica's CPU under overwrites.
		// Eight let twice the writes fold into each rewrite (a key
		// overwritten meanwhile is written once), for more bloom-filter
		// probes per read that misses the memtable. Twelve was the choice
		// while each write was two entries (its key and its summary
		// cell); with one, in four alternating rounds against twelve,
		// eight cost SETs 2% (-P 1) and 7% (-P 16) more CPU and saved GETs
		// -P 1 9% (ops/s +8%): reads are most of what a store serves
		// (docs/performance.md).
		L0CompactionThreshold: 8,
		L0StopWritesThreshold: 32,
	}
	stl := &stalls{now: opts.Now}
	popts.EventListener = stl.listener(opts.Logger)
	if gap := opts.SyncMinGap; gap > 0 && opts.Sync == SyncAlways {
		popts.WALMinSyncInterval = func() time.Duration { return gap }
	}
	// Every write reads the key first (to version or merge it), and a new
	// key's read misses: bloom filters answer most misses without touching
	// data blocks. 10 bits per key: ~1% false positives.
	for i := range popts.Levels {
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(opts.Dir, popts)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", opts.Dir, err)
	}
	s := &Store{
		opts:    opts,
		db:      db,
		qBits:   bits.TrailingZeros(uint(opts.Partitions)),
		segBits: bits.TrailingZeros(uint(opts.Segments)),
		live:    make([]atomic.Int64, opts.Partitions),
		tombs:   make([]atomic.Int64, opts.Partitions),
		stop:    make(chan struct{}),
		cache:   newObjectCache(opts.ObjectCacheSize),
		stalls:  stl,

		memTable:      memTable,
		checkpointReq: make(chan struct{}, 1),
	}
	s.cellBits = max(stripeBits, s.qBits+s.segBits)
	switch opts.Sync {
	case SyncAlways:
		s.writeOpt = pebble.Sync
	default:
		s.writeOpt = pebble.NoSync
	}
	if err := s.initMeta(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.loadSummary(); err != nil {
		db.Close()
		return nil, err
	}
	s.actor = version.NewActor(opts.NodeID, s.epoch)
	if opts.Sync == SyncBatch {
		s.wg.Add(1)
		go s.syncLoop()
	}
	s.wg.Add(1)
	go s.checkpointLoop()
	if s.journalBytes.Load() >= opts.journalLimit {
		s.checkpointReq <- struct{}{}
	}
	return s, nil
}

// initMeta checks the layout and reads or creates the epoch.
func (s *Store) initMeta() error {
	layout := binary.BigEndian.AppendUint32(nil, uint32(s.opts.Partitions))
	layout = binary.BigEndian.AppendUint32(layout, uint32(s.opts.Segments))
	old, err := s.Meta(metaLayout)
	if err != nil {
		return err
	}
	epoch, err := s.Meta(metaEpoch)
	if err != nil {
		return err
	}
	if old != nil && !bytes.Equal(old, layout) {
		return fmt.Errorf("%w: %s was created with %d partitions and %d segments, not %d and %d",
			ErrLayoutMismatch, s.opts.Dir, binary.BigEndian.Uint32(old), binary.BigEndian.Uint32(old[4:]),
			s.opts.Partitions, s.opts.Segments)
	}
	if epoch != nil {
		s.epoch = string(epoch)
		return nil
	}
	// A directory without an epoch is empty (or never finished creating):
	// this node starts without its previous data, so it takes a new epoch
	// and never reuses a counter it may have handed out before.
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return fmt.Errorf("store: epoch: %w", err)
	}
	s.epoch = hex.EncodeToString(r[:])
	s.fresh = true
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(metaKey(metaLayout), layout, nil)
	_ = b.Set(metaKey(metaEpoch), []byte(s.epoch), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store: write epoch: %w", err)
	}
	return nil
}

// Actor is this node's actor id for the current epoch.
func (s *Store) Actor() version.Actor { return s.actor }

// Epoch is the data directory's epoch.
func (s *Store) Epoch() string { return s.epoch }

// Fresh reports whether Open created the data (the directory was empty).
func (s *Store) Fresh() bool { return s.fresh }

// Partitions is Q.
func (s *Store) Partitions() int { return s.opts.Partitions }

// Segments is the number of segments per partition.
func (s *Store) Segments() int { return s.opts.Segments }

// Locate returns the partition and segment of a key.
func (s *Store) Locate(key []byte) (ring.Partition, uint32) {
	h := ring.KeyHash(key)
	return ring.PartitionOf(h, s.opts.Partitions), ring.SegmentOf(h, s.opts.Partitions, s.opts.Segments)
}

// CheckKey validates a key against the limits.
func (s *Store) CheckKey(key []byte) error {
	if len(key) == 0 {
		return ErrEmptyKey
	}
	if len(key) > s.opts.MaxKeySize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrKeyTooLarge, len(key), s.opts.MaxKeySize)
	}
	return nil
}

// CheckValue validates a value against the limits.
func (s *Store) CheckValue(v []byte) error {
	if len(v) > s.opts.MaxValueSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrValueTooLarge, len(v), s.opts.MaxValueSize)
	}
	return nil
}

func (s *Store) dataKey(p ring.Partition, seg uint32, key []byte) []byte {
	k := make([]byte, 5, 5+len(key))
	k[0] = prefixData
	binary.BigEndian.PutUint16(k[1:], uint16(p))
	binary.BigEndian.PutUint16(k[3:], uint16(seg))
	return append(k, key...)
}

func stripeOf(key []byte) int { return int(ring.KeyHash(key) >> (64 - stripeBits)) }

// versionsLocked returns dk's object, with dk's stripe held: from the
// object cache, only its versions (partial: every sibling's Value is nil;
// see objectCache), else the whole object from Pebble, whose versions it
// caches (absence included). A caller that needs a value it does not
// bring itself reads the whole object with fullLocked.
func (s *Store) versionsLocked(stripe int, dk []byte) (o *version.Object, partial bool, err error) {
	if o, ok := s.cache.get(stripe, dk); ok {
		if o == nil {
			return nil, false, ErrNotFound
		}
		return o, true, nil
	}
	o, err = s.fullLocked(stripe, dk)
	return o, false, err
}

// fullLocked reads dk's whole object from Pebble, with dk's stripe held,
// and caches its versions (absence included).
func (s *Store) fullLocked(stripe int, dk []byte) (*version.Object, error) {
	o, err := s.get(dk)
	switch {
	case err == nil:
		s.cache.put(stripe, dk, o)
	case errors.Is(err, ErrNotFound):
		s.cache.put(stripe, dk, nil)
	}
	return o, err
}

// keepsSiblings reports whether a write with context ctx on top of before
// keeps one of before's siblings (one ctx does not cover), and so needs
// its value.
func keepsSiblings(ctx version.VV, before *version.Object) bool {
	for _, sib := range before.Siblings {
		if !ctx.Covers(sib.Dot) {
			return true
		}
	}
	return false
}

// siblingsFrom reports whether every sibling of merged is one of in's, so
// that merged has every value it needs from in.
func siblingsFrom(merged, in *version.Object) bool {
	for _, m := range merged.Siblings {
		if !slices.ContainsFunc(in.Siblings, func(s version.Sibling) bool { return s.Dot == m.Dot }) {
			return false
		}
	}
	return true
}

// stripeRange returns the stripes [lo, hi) holding partition p's keys.
func (s *Store) stripeRange(p ring.Partition) (lo, hi int) {
	if s.qBits <= stripeBits {
		shift := stripeBits - s.qBits
		return int(p) << shift, (int(p) + 1) << shift
	}
	lo = int(p) >> (s.qBits - stripeBits)
	return lo, lo + 1
}

// LockPartition blocks every write to partition p until the returned
// function is called. Reads go on. Hold it briefly.
func (s *Store) LockPartition(p ring.Partition) (unlock func()) {
	lo, hi := s.stripeRange(p)
	for i := lo; i < hi; i++ {
		s.stripes[i].Lock()
	}
	return func() {
		for i := hi - 1; i >= lo; i-- {
			s.stripes[i].Unlock()
		}
	}
}

// Get returns the stored object for key, tombstones included, or
// ErrNotFound. The object is the caller's to keep.
func (s *Store) Get(key []byte) (*version.Object, error) {
	if err := s.CheckKey(key); err != nil {
		return nil, err
	}
	p, seg := s.Locate(key)
	dk := s.dataKey(p, seg, key)
	// The cache holds versions, not values: it answers only for a key it
	// knows absent.
	if s.cache.absent(stripeOf(key), dk) {
		return nil, ErrNotFound
	}
	return s.get(dk)
}

// Versions returns key's versions: its object, whose siblings' values may
// be nil (see objectCache), or ErrNotFound. It is what a digest read
// needs (Options.Digest depends on versions only), served from the
// object cache when it can be. The object is the caller's to keep.
func (s *Store) Versions(key []byte) (*version.Object, error) {
	if err := s.CheckKey(key); err != nil {
		return nil, err
	}
	p, seg := s.Locate(key)
	dk := s.dataKey(p, seg, key)
	st := stripeOf(key)
	if o, ok := s.cache.get(st, dk); ok {
		if o == nil {
			return nil, ErrNotFound
		}
		return o, nil
	}
	// A miss fills the cache, which takes the key's lock (see objectCache).
	s.stripes[st].Lock()
	defer s.stripes[st].Unlock()
	o, _, err := s.versionsLocked(st, dk)
	return o, err
}

// Digest returns Options.Digest of key's object o (0 without a Digest or
// for an absent object).
func (s *Store) Digest(key []byte, o *version.Object) uint64 { return s.digest(key, o) }

func (s *Store) get(dk []byte) (*version.Object, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	v, closer, err := s.db.Get(dk)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get: %w", err)
	}
	defer closer.Close()
	// NB: Pebble's buffer is valid only until Close; the decoded object
	// aliases its input, so decode from a copy.
	o, err := version.Decode(bytes.Clone(v))
	if err != nil {
		return nil, fmt.Errorf("store: key %q: %w", dk[5:], err)
	}
	return o, nil
}

// PutRequest is a write to version at this node.
type PutRequest struct {
	Key   []byte
	Value []byte
	// Tombstone makes the write a delete; Value is then ignored.
	Tombstone bool
	// Context is what the writer read: the write supersedes exactly the
	// siblings it covers. Nil supersedes nothing (a new sibling).
	Context version.VV
	// SupersedeLocal makes the write supersede every sibling this node
	// holds, whatever Context says: Redis SET, last-write-wins puts and
	// deletes without a context.
	SupersedeLocal bool
}

// Put versions a write with this node's actor, atomically with respect to
// every other write of the key, and returns the new object. The caller must
// be a home replica of the key (see package version).
func (s *Store) Put(req PutRequest) (*version.Object, error) {
	after, _, durable, err := s.PutPipelined(req)
	if err != nil {
		return nil, err
	}
	return after, durable()
}

// PutPipelined is Put that returns as soon as the write is applied (and
// visible), with a function that waits until it is durable. A coordinator
// sends the new object to the other replicas in between, so its own fsync
// overlaps theirs instead of preceding them. The caller must call durable
// exactly once and count the write only if it returns nil. enc is after's
// encoding (version.Encode), as stored, for the caller to send on without
// encoding it again; it must not be modified.
func (s *Store) PutPipelined(req PutRequest) (after *version.Object, enc []byte, durable func() error, err error) {
	if err := s.CheckKey(req.Key); err != nil {
		return nil, nil, nil, err
	}
	if req.Tombstone {
		req.Value = nil
	} else if err := s.CheckValue(req.Value); err != nil {
		return nil, nil, nil, err
	}
	p, seg := s.Locate(req.Key)
	dk := s.dataKey(p, seg, req.Key)
	st := stripeOf(req.Key)
	s.stripes[st].Lock()
	defer s.stripes[st].Unlock()
	before, ctx, err := s.beforePut(st, dk, req)
	if err != nil {
		return nil, nil, nil, err
	}
	after, _ = version.Update(before, ctx, s.actor, req.Value, req.Tombstone, s.opts.Now().UnixNano())
	if s.closed.Load() {
		return nil, nil, nil, ErrClosed
	}
	b := s.db.NewBatch()
	enc = version.Encode(after)
	ci, c, err := s.stageEncoded(b, req.Key, dk, before, after, enc)
	if err != nil {
		b.Close()
		return nil, nil, nil, err
	}
	if s.opts.Sync != SyncAlways {
		err := b.Commit(s.writeOpt)
		b.Close()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("store: write: %w", err)
		}
		d := s.cells[ci].digest ^ c.digest
		s.setCell(ci, c)
		s.cache.put(st, dk, after)
		s.applied(p, seg, req.Key, before, after, d)
		return after, enc, func() error { return nil }, nil
	}
	// NB: the write is visible from here on, before its fsync, as with any
	// Pebble write; a later write of the key that is durable makes this one
	// durable too (the WAL is sequential).
	if err := s.db.ApplyNoSyncWait(b, pebble.Sync); err != nil {
		b.Close()
		return nil, nil, nil, fmt.Errorf("store: write: %w", err)
	}
	d := s.cells[ci].digest ^ c.digest
	s.setCell(ci, c)
	s.cache.put(st, dk, after)
	s.applied(p, seg, req.Key, before, after, d)
	return after, enc, func() error {
		defer b.Close()
		if err := b.SyncWait(); err != nil {
			return fmt.Errorf("store: sync: %w", err)
		}
		return nil
	}, nil
}

// beforePut reads what a put of dk is versioned on top of, with dk's
// stripe held, and the context it supersedes: from the cache's versions
// when the put keeps none of the stored siblings (an overwrite, or a
// context that covers them all), else the whole object.
func (s *Store) beforePut(st int, dk []byte, req PutRequest) (before *version.Object, ctx version.VV, err error) {
	before, partial, err := s.versionsLocked(st, dk)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, nil, err
	}
	ctx = req.Context
	if req.SupersedeLocal && before != nil {
		ctx = before.Context.Join(ctx)
	}
	if partial && keepsSiblings(ctx, before) {
		if before, err = s.fullLocked(st, dk); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, nil, err
		}
		ctx = req.Context
		if req.SupersedeLocal && before != nil {
			ctx = before.Context.Join(ctx)
		}
	}
	return before, ctx, nil
}

// mergeBefore reads what obj is merged into, with dk's stripe held, and
// the merge: from the cache's versions when the merge keeps only obj's
// siblings, else from the whole object.
func (s *Store) mergeBefore(st int, dk []byte, obj *version.Object) (before, after *version.Object, err error) {
	before, partial, err := s.versionsLocked(st, dk)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, nil, err
	}
	// NB: obj first: where both hold a sibling, Merge keeps its first
	// argument's, which has the value.
	after = version.Merge(obj, before)
	if partial && !siblingsFrom(after, obj) {
		if before, err = s.fullLocked(st, dk); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, nil, err
		}
		after = version.Merge(obj, before)
	}
	return before, after, nil
}

// Merge joins obj into the stored object for key. It writes only when the
// join differs from what is stored, and reports whether it did. A merge
// never creates a version.
func (s *Store) Merge(key []byte, obj *version.Object) (merged *version.Object, changed bool, err error) {
	if err := s.CheckKey(key); err != nil {
		return nil, false, err
	}
	p, seg := s.Locate(key)
	dk := s.dataKey(p, seg, key)
	st := stripeOf(key)
	s.stripes[st].Lock()
	defer s.stripes[st].Unlock()
	before, after, err := s.mergeBefore(st, dk, obj)
	if err != nil {
		return nil, false, err
	}
	if before != nil && version.Equal(before, after) {
		return after, false, nil // after: before may lack values
	}
	if after.IsEmpty() {
		return after, false, nil
	}
	if err := s.write(p, seg, key, dk, before, after); err != nil {
		s.cache.forget(st, dk)
		return nil, false, err
	}
	s.cache.put(st, dk, after)
	return after, true, nil
}

// write stores after under dk; the key's stripe is held.
func (s *Store) write(p ring.Partition, seg uint32, key, dk []byte, before, after *version.Object) error {
	if s.closed.Load() {
		return ErrClosed
	}
	b := s.db.NewBatch()
	defer b.Close()
	ci, c, err := s.stageChange(b, key, dk, before, after)
	if err != nil {
		return err
	}
	if err := b.Commit(s.writeOpt); err != nil {
		return fmt.Errorf("store: write: %w", err)
	}
	d := s.cells[ci].digest ^ c.digest
	s.setCell(ci, c)
	s.applied(p, seg, key, before, after, d)
	return nil
}

// applied updates the counts and tells the observer about a committed
// change; the key's stripe is held.
func (s *Store) applied(p ring.Partition, seg uint32, key []byte, before, after *version.Object, digest uint64) {
	s.adjustCounts(p, before, -1)
	s.adjustCounts(p, after, +1)
	if s.opts.Observer != nil {
		s.opts.Observer.Changed(p, seg, key, before, after, digest)
	}
}

func (s *Store) adjustCounts(p ring.Partition, o *version.Object, d int64) {
	switch {
	case o == nil:
	case o.Deleted():
		s.tombs[p].Add(d)
	default:
		s.live[p].Add(d)
	}
}

// Entry is one stored key during a scan.
type Entry struct {
	Key     []byte
	Segment uint32
	Object  *version.Object
}

// ScanPartition calls fn for every key of partition p whose segment is in
// [segFrom, segTo), in key-layout order, from a consistent snapshot. The
// entry is the caller's to keep. Returning false stops the scan.
func (s *Store) ScanPartition(p ring.Partition, segFrom, segTo uint32, fn func(Entry) bool) error {
	return s.scan(p, s.dataKey(p, segFrom, nil), segTo, fn)
}

// Cursor is a position in a partition scan: the last entry returned.
type Cursor struct {
	Segment uint32
	Key     []byte
}

// ScanPartitionAfter calls fn for every key of partition p after cursor
// (from the start when cursor is nil), in key-layout order. Resumable scans
// (ownership transfer) use it.
func (s *Store) ScanPartitionAfter(p ring.Partition, cursor *Cursor, fn func(Entry) bool) error {
	lo := s.dataKey(p, 0, nil)
	if cursor != nil {
		// The smallest key after cursor's: the same bytes plus a zero byte.
		lo = append(s.dataKey(p, cursor.Segment, cursor.Key), 0)
	}
	return s.scan(p, lo, uint32(s.opts.Segments), fn)
}

func (s *Store) scan(p ring.Partition, lo []byte, segTo uint32, fn func(Entry) bool) error {
	if s.closed.Load() {
		return ErrClosed
	}
	var hi []byte
	if int(segTo) >= s.opts.Segments {
		hi = s.dataKey(p+1, 0, nil)
		if int(p)+1 == s.opts.Partitions {
			hi = []byte{prefixData + 1}
		}
	} else {
		hi = s.dataKey(p, segTo, nil)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("store: scan: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		o, err := version.Decode(bytes.Clone(it.Value()))
		if err != nil {
			return fmt.Errorf("store: scan key %q: %w", k[5:], err)
		}
		e := Entry{Key: bytes.Clone(k[5:]), Segment: uint32(binary.BigEndian.Uint16(k[3:])), Object: o}
		if !fn(e) {
			return nil
		}
	}
	return it.Error()
}

// Counts is what a node holds.
type Counts struct {
	Live       int64 // keys with at least one live value
	Tombstones int64 // keys that read as deleted
}

// Counts returns the node's key counts, all partitions summed. They are
// exact from Open on: the summary keeps them with the data.
func (s *Store) Counts() Counts {
	var c Counts
	for p := range s.live {
		c.Live += s.live[p].Load()
		c.Tombstones += s.tombs[p].Load()
	}
	return c
}

// PartitionCounts returns the counts of one partition.
func (s *Store) PartitionCounts(p ring.Partition) Counts {
	return Counts{Live: s.live[p].Load(), Tombstones: s.tombs[p].Load()}
}

func (s *Store) syncLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.db.LogData(nil, pebble.Sync); err != nil && !s.closed.Load() {
				s.opts.Logger.Error().Err(err).Msg("periodic wal sync")
			}
		}
	}
}

// Flush makes everything written so far durable (whatever the sync mode).
func (s *Store) Flush() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.db.LogData(nil, pebble.Sync)
}

func metaKey(name string) []byte { return append([]byte{prefixMeta}, name...) }

// Meta returns the metadata value under name, or nil when absent.
func (s *Store) Meta(name string) ([]byte, error) {
	v, closer, err := s.db.Get(metaKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: meta %s: %w", name, err)
	}
	defer closer.Close()
	return bytes.Clone(v), nil
}

// SetMeta durably sets the metadata value under name.
func (s *Store) SetMeta(name string, value []byte) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.db.Set(metaKey(name), value, pebble.Sync)
}

// Close flushes and closes the database and waits for background work.
// It is idempotent.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.stop)
	s.wg.Wait()
	// Writers hold stripes while they use the DB: take them all so none is
	// mid-write when Pebble closes.
	for i := range s.stripes {
		s.stripes[i].Lock()
	}
	defer func() {
		for i := range s.stripes {
			s.stripes[i].Unlock()
		}
	}()
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		s.opts.Logger.Warn().Err(err).Msg("final wal sync")
	}
	s.scrape.Lock() // a scrape in progress ends; later ones see closed
	defer s.scrape.Unlock()
	return s.db.Close()
}

// pebbleLogger routes Pebble's log lines to zerolog.
type pebbleLogger struct{ l zerolog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug().Str("component", "pebble").Msgf(format, args...)
}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error().Str("component", "pebble").Msgf(format, args...)
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Fatal().Str("component", "pebble").Msgf(format, args...)
}

// KeyObject is one key's object, for batch merges.
type KeyObject struct {
	Key    []byte
	Object *version.Object
}

// located is where a key of a batch lives: its partition, segment, data
// key and stripe.
type located struct {
	p      ring.Partition
	seg    uint32
	dk     []byte
	stripe int
}

// lockKeys locates n keys (key(i) is the i-th) and locks each of their
// stripes once, in ascending order, so that batches cannot deadlock with
// one another or with LockPartition. unlock releases them.
func (s *Store) lockKeys(n int, key func(i int) []byte) (locs []located, unlock func()) {
	locs = make([]located, n)
	stripes := make([]int, 0, n)
	for i := range n {
		k := key(i)
		p, seg := s.Locate(k)
		st := stripeOf(k)
		locs[i] = located{p, seg, s.dataKey(p, seg, k), st}
		stripes = append(stripes, st)
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, st := range stripes {
		s.stripes[st].Lock()
	}
	return locs, func() {
		for _, st := range stripes {
			s.stripes[st].Unlock()
		}
	}
}

// MergeMany merges many objects in one Pebble batch (one fsync in
// SyncAlways), atomically per key with respect to other writes. It is how
// bulk repair (hint replay, anti-entropy, ownership transfer) writes. It
// returns how many keys changed. Keys may repeat.
func (s *Store) MergeMany(items []KeyObject) (changed int, err error) {
	if len(items) == 0 {
		return 0, nil
	}
	for _, it := range items {
		if err := s.CheckKey(it.Key); err != nil {
			return 0, err
		}
	}
	locs, unlock := s.lockKeys(len(items), func(i int) []byte { return items[i].Key })
	defer unlock()
	if s.closed.Load() {
		return 0, ErrClosed
	}
	type change struct {
		i             int
		before, after *version.Object
		digest        uint64 // the change to its cell's digest
	}
	var changes []change
	// Later items for the same key must see earlier ones: keep the
	// in-batch state per data key.
	pending := map[string]*version.Object{}
	// Cells staged in the batch: several keys may share one.
	staged := map[int]cell{}
	b := s.db.NewBatch()
	defer b.Close()
	for i, it := range items {
		l := locs[i]
		before, ok := pending[string(l.dk)]
		var after *version.Object
		if ok {
			after = version.Merge(it.Object, before)
		} else {
			var err error
			if before, after, err = s.mergeBefore(l.stripe, l.dk, it.Object); err != nil {
				return 0, err
			}
		}
		if (before != nil && version.Equal(before, after)) || after.IsEmpty() {
			continue
		}
		pending[string(l.dk)] = after
		if err := b.Set(l.dk, version.Encode(after), nil); err != nil {
			return 0, fmt.Errorf("store: batch: %w", err)
		}
		ci := s.cellOf(ring.KeyHash(it.Key))
		c, ok := staged[ci]
		if !ok {
			c = s.cells[ci]
		}
		next := s.changed(c, it.Key, before, after)
		staged[ci] = next
		changes = append(changes, change{i, before, after, c.digest ^ next.digest})
	}
	if len(changes) == 0 {
		return 0, nil
	}
	if err := s.journalCells(b, staged); err != nil {
		return 0, err
	}
	if err := b.Commit(s.writeOpt); err != nil {
		for _, c := range changes {
			s.cache.forget(locs[c.i].stripe, locs[c.i].dk)
		}
		return 0, fmt.Errorf("store: batch commit: %w", err)
	}
	for ci, c := range staged {
		s.setCell(ci, c)
	}
	for _, c := range changes {
		l := locs[c.i]
		s.cache.put(l.stripe, l.dk, c.after)
		s.applied(l.p, l.seg, items[c.i].Key, c.before, c.after, c.digest)
	}
	return len(changes), nil
}

// DeleteIf removes key's object when pred, called with the stored object
// under the key's lock, returns true. It is for data this node should no
// longer hold (a fallback's copy after hand-off, a partition it gave up, a
// reaped tombstone), never for user deletes, which are tombstones. The
// observer sees after == nil.
func (s *Store) DeleteIf(key []byte, pred func(cur *version.Object) bool) (deleted bool, err error) {
	if err := s.CheckKey(key); err != nil {
		return false, err
	}
	p, seg := s.Locate(key)
	dk := s.dataKey(p, seg, key)
	st := stripeOf(key)
	s.stripes[st].Lock()
	defer s.stripes[st].Unlock()
	cur, err := s.fullLocked(st, dk) // pred sees the whole object
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil || !pred(cur) {
		return false, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	ci, c, err := s.stageChange(b, key, dk, cur, nil)
	if err != nil {
		return false, err
	}
	if err := b.Commit(s.writeOpt); err != nil {
		s.cache.forget(st, dk)
		return false, fmt.Errorf("store: delete: %w", err)
	}
	d := s.cells[ci].digest ^ c.digest
	s.setCell(ci, c)
	s.cache.put(st, dk, nil)
	s.applied(p, seg, key, cur, nil, d)
	return true, nil
}

// Aux keyspaces hold subsystems' own records (hints, transfer progress)
// in the same database, apart from the data. Each subsystem owns one space
// byte; see the Aux* constants. Only append.
const (
	// AuxHints is hinted handoff's keyspace.
	AuxHints byte = 'h'
	// AuxTransfer is ownership transfer's keyspace.
	AuxTransfer byte = 't'
	// AuxAntiEntropy is anti-entropy's keyspace.
	AuxAntiEntropy byte = 'e'
)

func auxKey(space byte, key []byte) []byte {
	return append([]byte{prefixAux, space}, key...)
}

// AuxGet returns the value under key in an aux space, or ErrNotFound.
func (s *Store) AuxGet(space byte, key []byte) ([]byte, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	v, closer, err := s.db.Get(auxKey(space, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: aux get: %w", err)
	}
	defer closer.Close()
	return bytes.Clone(v), nil
}

// AuxBatch is a set of aux writes committed together.
type AuxBatch struct {
	b *pebble.Batch
	s *Store
}

// NewAuxBatch starts a batch of aux writes. Commit or Close it.
func (s *Store) NewAuxBatch() *AuxBatch { return &AuxBatch{b: s.db.NewBatch(), s: s} }

// Set adds a write to the batch.
func (a *AuxBatch) Set(space byte, key, value []byte) { _ = a.b.Set(auxKey(space, key), value, nil) }

// Delete adds a delete to the batch.
func (a *AuxBatch) Delete(space byte, key []byte) { _ = a.b.Delete(auxKey(space, key), nil) }

// Len is the number of writes in the batch.
func (a *AuxBatch) Len() int { return int(a.b.Count()) }

// Commit applies the batch durably (per the sync mode) and closes it.
func (a *AuxBatch) Commit() error {
	defer a.b.Close()
	if a.s.closed.Load() {
		return ErrClosed
	}
	if err := a.b.Commit(a.s.writeOpt); err != nil {
		return fmt.Errorf("store: aux commit: %w", err)
	}
	return nil
}

// Close discards an uncommitted batch.
func (a *AuxBatch) Close() { _ = a.b.Close() }

// AuxSet durably sets key in an aux space.
func (s *Store) AuxSet(space byte, key, value []byte) error {
	b := s.NewAuxBatch()
	b.Set(space, key, value)
	return b.Commit()
}

// AuxDelete durably deletes key from an aux space.
func (s *Store) AuxDelete(space byte, key []byte) error {
	b := s.NewAuxBatch()
	b.Delete(space, key)
	return b.Commit()
}

// AuxScan calls fn for each key with the prefix in an aux space, in key
// order, from a consistent snapshot; key is without the space. Both slices
// are the caller's to keep. Returning false stops the scan.
func (s *Store) AuxScan(space byte, prefix []byte, fn func(key, value []byte) bool) error {
	if s.closed.Load() {
		return ErrClosed
	}
	lo := auxKey(space, prefix)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return fmt.Errorf("store: aux scan: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if !fn(bytes.Clone(it.Key()[2:]), bytes.Clone(it.Value())) {
			return nil
		}
	}
	return it.Error()
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// jittered returns size scaled by a factor in [1-j, 1+j] picked by u in
// [0, 1); j outside (0, 0.5) leaves size as is.
func jittered(size uint64, j, u float64) uint64 {
	if j <= 0 || j >= 0.5 {
		return size
	}
	return uint64(float64(size) * (1 - j + 2*j*u))
}
