package store

import (
	"sync"

	"github.com/mnemo-kv/mnemo/internal/version"
)

// objectCache keeps recently written objects in memory, decoded, so the
// read-before-write of every put and merge, and hot reads, skip Pebble (a
// memtable seek and a decode were a fifth of a replica's CPU per put).
//
// Coherence: the cache is filled only while the key's stripe lock is held
// (by writes, and by the reads writes do under that lock), so it can never
// take an older object after a newer one. Readers without the lock only
// look. Entries are evicted first-in first-out per shard once a shard is
// over its byte budget. Cached objects are shared: nobody may modify an
// object the store returns (version's functions never do).
type objectCache struct {
	shards []cacheShard
}

const cacheShards = 64

// entryOverhead is the heap an entry costs beyond its key and encoded
// object: the entry, its map slot and queue pointer, the decoded object's
// struct and slice headers, and the separate allocations of its values and
// clocks. A heap profile of a node holding 1M keys of 100 bytes found the
// cache's objects taking about 1.6 times the bytes a 64-byte overhead
// accounted for; 192 matches it.
const entryOverhead = 192

type cacheShard struct {
	mu sync.Mutex
	// m maps a data key to its object; fifo is the insertion order, with
	// nil holes where entries were replaced or removed.
	m      map[string]*cacheEntry
	fifo   []*cacheEntry
	head   int
	bytes  int64
	budget int64
	// hits and misses count get's answers (Collector sums them).
	hits, misses uint64
	_            [48]byte // 128 bytes: shards on separate cache lines
}

type cacheEntry struct {
	key  string
	obj  *version.Object // nil: the key is known absent
	size int64
}

// newObjectCache returns a cache of about budget bytes, or nil (no cache)
// for a budget of zero or less.
func newObjectCache(budget int64) *objectCache {
	if budget <= 0 {
		return nil
	}
	c := &objectCache{shards: make([]cacheShard, cacheShards)}
	for i := range c.shards {
		c.shards[i].m = map[string]*cacheEntry{}
		c.shards[i].budget = budget / cacheShards
	}
	return c
}

func (c *objectCache) shard(stripe int) *cacheShard { return &c.shards[stripe%cacheShards] }

// get returns the cached object for dk and whether dk was cached (a cached
// nil means absent).
func (c *objectCache) get(stripe int, dk []byte) (*version.Object, bool) {
	if c == nil {
		return nil, false
	}
	s := c.shard(stripe)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[string(dk)]
	if !ok {
		s.misses++
		return nil, false
	}
	s.hits++
	return e.obj, true
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

// put caches obj (nil: absent) for dk. The key's stripe must be held.
func (c *objectCache) put(stripe int, dk []byte, obj *version.Object) {
	if c == nil {
		return
	}
	size := int64(len(dk)) + entryOverhead
	if obj != nil {
		size += int64(version.EncodedSizeHint(obj))
	}
	s := c.shard(stripe)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[string(dk)]; ok {
		s.bytes -= old.size
		old.obj, old.size = obj, size
		s.bytes += size
	} else {
		e := &cacheEntry{key: string(dk), obj: obj, size: size}
		s.m[e.key] = e
		s.fifo = append(s.fifo, e)
		s.bytes += size
	}
	for s.bytes > s.budget && s.head < len(s.fifo) {
		e := s.fifo[s.head]
		s.fifo[s.head] = nil
		s.head++
		if cur, ok := s.m[e.key]; ok && cur == e {
			delete(s.m, e.key)
			s.bytes -= e.size
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
	s := c.shard(stripe)
	s.mu.Lock()
	if e, ok := s.m[string(dk)]; ok {
		delete(s.m, string(dk))
		s.bytes -= e.size
	}
	s.mu.Unlock()
}
