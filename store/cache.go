package store

import (
	"bytes"
	"encoding/binary"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"

	"github.com/mnemo-kv/mnemo/version"
)

// objectCache keeps the versions of recently used keys in memory, without
// their values: each sibling's dot, tombstone flag and timestamp, and the
// causal context. That is all the read-before-write of most writes needs:
// an overwrite (a Redis SET, an lww or Overwrite() put) supersedes every
// sibling it finds, and a replica's merge of an object that covers what
// it holds keeps only the incoming siblings; the store's summary digest
// and counts depend on versions only too. Writes that need a value they
// do not bring (a put that keeps a concurrent sibling, a merge that keeps
// a local one) read the key from Pebble. Values were dropped from the
// cache in issue 12: with them an entry took about 370 bytes of heap for
// a 100-byte value, so the 16 MiB budget held a third of a 100k-key
// working set and a pipelined SET spent a third of its CPU in Pebble
// reads; an entry is now a compact encoding with actors interned, about
// 160 bytes of heap.
//
// Coherence: the cache is filled only while the key's stripe lock is held
// (by writes, and by the reads writes do under that lock), so it can never
// take an older version after a newer one. Readers without the lock only
// look. Entries are evicted first-in first-out per shard once a shard is
// over its byte budget. The objects get returns are new; their siblings'
// values are nil (see Store.versionsLocked).
type objectCache struct {
	shards []cacheShard
	actors actorTable
}

const cacheShards = 64

// entryOverhead is the heap an entry costs beyond its data key and encoded
// versions: its map slot (hash and entry, at the map's load factor), its
// queue slot, and the size-class rounding of its one allocation.
const entryOverhead = 112

type cacheShard struct {
	mu sync.Mutex
	// m maps a data key's hash to its entry, held by value; fifo is the
	// insertion order (a slot whose gen is not its entry's is a hole,
	// where an entry was removed). Keyed by a fixed-size hash, with the
	// key in the entry's one buffer, a lookup touches the map's slot and
	// that buffer only: with string keys it also read the key's own bytes
	// and the entry, and the map was 6-9% of a replica's CPU per SET.
	// Two keys whose hashes collide take turns in one slot.
	m      map[uint64]cacheEntry
	fifo   []fifoSlot
	head   int
	bytes  int64
	budget int64
	gen    uint32
	// hits and misses count get's answers (Collector sums them).
	hits, misses uint64
	_            [40]byte // 128 bytes: shards on separate cache lines
}

type cacheEntry struct {
	data   []byte // the data key, then its versions' encoding (encodeVersions)
	klen   int32  // the data key's length
	gen    uint32 // the entry's fifo slot
	absent bool   // the key is known absent: no versions follow
}

type fifoSlot struct {
	h   uint64
	gen uint32
}

func (e *cacheEntry) is(dk []byte) bool {
	return int(e.klen) == len(dk) && string(e.data[:e.klen]) == string(dk)
}

func (e *cacheEntry) size() int64 { return int64(len(e.data)) + entryOverhead }

// newObjectCache returns a cache of about budget bytes, or nil (no cache)
// for a budget of zero or less.
func newObjectCache(budget int64) *objectCache {
	if budget <= 0 {
		return nil
	}
	c := &objectCache{shards: make([]cacheShard, cacheShards)}
	c.actors.idx = map[version.Actor]uint32{}
	for i := range c.shards {
		c.shards[i].m = map[uint64]cacheEntry{}
		c.shards[i].budget = budget / cacheShards
	}
	return c
}

func (c *objectCache) shard(stripe int) *cacheShard { return &c.shards[stripe%cacheShards] }

// get returns the cached versions of dk and whether dk was cached (a
// cached nil means absent). The object's siblings carry no values.
func (c *objectCache) get(stripe int, dk []byte) (*version.Object, bool) {
	if c == nil {
		return nil, false
	}
	h := xxhash.Sum64(dk)
	s := c.shard(stripe)
	s.mu.Lock()
	e, ok := s.m[h]
	if !ok || !e.is(dk) {
		s.misses++
		s.mu.Unlock()
		return nil, false
	}
	s.hits++
	s.mu.Unlock()
	if e.absent {
		return nil, true
	}
	// NB: an entry's data is never modified once made, so it is read
	// outside the lock.
	o, ok := c.actors.decode(e.data[e.klen:])
	return o, ok
}

// absent reports whether dk is cached as absent, without decoding an
// entry: a read of the value (which the cache does not hold) asks only
// that.
func (c *objectCache) absent(stripe int, dk []byte) bool {
	if c == nil {
		return false
	}
	h := xxhash.Sum64(dk)
	s := c.shard(stripe)
	s.mu.Lock()
	e, ok := s.m[h]
	s.mu.Unlock()
	return ok && e.absent && e.is(dk)
}

// stats returns the hits and misses of get so far (zeros without a cache).
func (c *objectCache) stats() (hits, misses uint64) {
	if c == nil {
		return 0, 0
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		hits, misses = hits+s.hits, misses+s.misses
		s.mu.Unlock()
	}
	return hits, misses
}

// put caches obj's versions (nil: absent) for dk. The key's stripe must be
// held.
func (c *objectCache) put(stripe int, dk []byte, obj *version.Object) {
	if c == nil {
		return
	}
	e := cacheEntry{klen: int32(len(dk)), absent: obj == nil}
	if obj == nil {
		e.data = bytes.Clone(dk)
	} else {
		var ok bool
		buf := make([]byte, 0, len(dk)+2+len(obj.Context)*6+len(obj.Siblings)*16)
		if e.data, ok = c.actors.encode(append(buf, dk...), obj); !ok {
			c.forget(stripe, dk)
			return
		}
	}
	h := xxhash.Sum64(dk)
	s := c.shard(stripe)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[h]; ok {
		// The same key keeps its place in the queue; a colliding one
		// takes the slot over.
		s.bytes -= old.size()
		e.gen = old.gen
	} else {
		s.gen++
		e.gen = s.gen
		s.fifo = append(s.fifo, fifoSlot{h, e.gen})
	}
	s.m[h] = e
	s.bytes += e.size()
	for s.bytes > s.budget && s.head < len(s.fifo) {
		f := s.fifo[s.head]
		s.fifo[s.head] = fifoSlot{}
		s.head++
		if cur, ok := s.m[f.h]; ok && cur.gen == f.gen {
			delete(s.m, f.h)
			s.bytes -= cur.size()
		}
	}
	// Compact the queue once its dead prefix dominates.
	if s.head > 1024 && s.head*2 > len(s.fifo) {
		s.fifo = append(s.fifo[:0:0], s.fifo[s.head:]...)
		s.head = 0
	}
}

// forget drops dk. The key's stripe must be held.
func (c *objectCache) forget(stripe int, dk []byte) {
	if c == nil {
		return
	}
	h := xxhash.Sum64(dk)
	s := c.shard(stripe)
	s.mu.Lock()
	if e, ok := s.m[h]; ok && e.is(dk) {
		delete(s.m, h)
		s.bytes -= e.size()
	}
	s.mu.Unlock()
}

// maxActors bounds the actors the cache interns. Actors are node#epoch, a
// handful per node over a cluster's life; past the bound, objects with a
// new actor are simply not cached.
const maxActors = 1 << 16

// actorTable interns actor ids as small numbers for the cache's encoding,
// so that an entry holds no strings and decoding allocates none.
type actorTable struct {
	mu    sync.RWMutex
	idx   map[version.Actor]uint32
	names []version.Actor
}

// id returns a's number, adding it if new; false past maxActors.
func (t *actorTable) id(a version.Actor) (uint32, bool) {
	t.mu.RLock()
	i, ok := t.idx[a]
	t.mu.RUnlock()
	if ok {
		return i, true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.idx[a]; ok {
		return i, true
	}
	if len(t.names) >= maxActors {
		return 0, false
	}
	i = uint32(len(t.names))
	a = version.Actor(strings.Clone(string(a))) // NB: its own bytes, not a slice of a larger string
	t.names = append(t.names, a)
	t.idx[a] = i
	return i, true
}

// encode appends to b o's versions: the context's entries and each
// sibling's dot, tombstone flag and timestamp, as varints with actors
// interned.
func (t *actorTable) encode(b []byte, o *version.Object) ([]byte, bool) {
	b = binary.AppendUvarint(b, uint64(len(o.Context)))
	for _, e := range o.Context {
		id, ok := t.id(e.Actor)
		if !ok {
			return nil, false
		}
		b = binary.AppendUvarint(b, uint64(id))
		b = binary.AppendUvarint(b, e.Counter)
	}
	b = binary.AppendUvarint(b, uint64(len(o.Siblings)))
	for _, s := range o.Siblings {
		id, ok := t.id(s.Dot.Actor)
		if !ok {
			return nil, false
		}
		b = binary.AppendUvarint(b, uint64(id))
		c := s.Dot.Counter << 1
		if s.Tombstone {
			c |= 1
		}
		b = binary.AppendUvarint(b, c)
		b = binary.AppendVarint(b, s.Timestamp)
	}
	return b, true
}

// decode reverses encode. It reports false for bytes encode did not write
// (a bug): the caller reads the key from Pebble instead.
func (t *actorTable) decode(b []byte) (*version.Object, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	actor := func() (version.Actor, bool) {
		i, ok := next()
		if !ok || i >= uint64(len(t.names)) {
			return "", false
		}
		return t.names[i], true
	}
	nctx, ok := next()
	if !ok || nctx > uint64(len(b)) {
		return nil, false
	}
	o := &version.Object{}
	if nctx > 0 {
		o.Context = make(version.VV, nctx)
	}
	for i := range o.Context {
		a, ok1 := actor()
		c, ok2 := next()
		if !ok1 || !ok2 {
			return nil, false
		}
		o.Context[i] = version.Entry{Actor: a, Counter: c}
	}
	nsib, ok := next()
	if !ok || nsib > uint64(len(b)) {
		return nil, false
	}
	if nsib > 0 {
		o.Siblings = make([]version.Sibling, nsib)
	}
	for i := range o.Siblings {
		a, ok1 := actor()
		c, ok2 := next()
		ts, n := binary.Varint(b)
		if !ok1 || !ok2 || n <= 0 {
			return nil, false
		}
		b = b[n:]
		o.Siblings[i] = version.Sibling{Dot: version.Dot{Actor: a, Counter: c >> 1}, Tombstone: c&1 == 1, Timestamp: ts}
	}
	return o, len(b) == 0
}
