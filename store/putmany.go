package store

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/version"
)

// PutMany versions several writes in one Pebble batch: one commit, and
// with SyncAlways one fsync, for all of them, where PutPipelined makes one
// each. A coordinator uses it for a pipeline of SETs. Each write is atomic
// with respect to other writes of its key, as Put's; a key that repeats is
// versioned on top of its earlier write, in order. It returns the new
// objects and their encodings (not to be modified), in the order of reqs,
// and, as PutPipelined, a function the caller must call once to wait until
// they are durable. A request that
// fails its key or value check fails the whole call, before anything is
// written.
func (s *Store) PutMany(reqs []PutRequest) (after []*version.Object, encs [][]byte, durable func() error, err error) {
	if len(reqs) == 0 {
		return nil, nil, func() error { return nil }, nil
	}
	for i := range reqs {
		r := &reqs[i]
		if err := s.CheckKey(r.Key); err != nil {
			return nil, nil, nil, err
		}
		if r.Tombstone {
			r.Value = nil
		} else if err := s.CheckValue(r.Value); err != nil {
			return nil, nil, nil, err
		}
	}
	locs, unlock := s.lockKeys(len(reqs), func(i int) []byte { return reqs[i].Key })
	defer unlock()
	if s.closed.Load() {
		return nil, nil, nil, ErrClosed
	}
	befores := make([]*version.Object, len(reqs))
	after = make([]*version.Object, len(reqs))
	encs = make([][]byte, len(reqs))
	digests := make([]uint64, len(reqs))
	// Later writes of a key see earlier ones: the in-batch state per data
	// key (only when keys repeat).
	var pending map[string]*version.Object
	staged := make(map[int]cell, len(reqs))
	b := s.db.NewBatch()
	now := s.opts.Now().UnixNano()
	for i, r := range reqs {
		l := locs[i]
		before, ok := pending[string(l.dk)]
		var ctx version.VV
		if ok {
			ctx = r.Context
			if r.SupersedeLocal && before != nil {
				ctx = before.Context.Join(ctx)
			}
		} else {
			var err error
			if before, ctx, err = s.beforePut(l.stripe, l.dk, r); err != nil {
				b.Close()
				return nil, nil, nil, err
			}
		}
		a, _ := version.Update(before, ctx, s.actor, r.Value, r.Tombstone, now)
		encs[i] = version.Encode(a)
		if err := b.Set(l.dk, encs[i], nil); err != nil {
			b.Close()
			return nil, nil, nil, fmt.Errorf("store: batch: %w", err)
		}
		ci := s.cellOf(ring.KeyHash(r.Key))
		c, ok := staged[ci]
		if !ok {
			c = s.cells[ci]
		}
		next := s.changed(c, r.Key, before, a)
		staged[ci] = next
		befores[i], after[i], digests[i] = before, a, c.digest^next.digest
		if i+1 < len(reqs) {
			if pending == nil {
				pending = make(map[string]*version.Object)
			}
			pending[string(l.dk)] = a
		}
	}
	if err := s.journalCells(b, staged); err != nil {
		b.Close()
		return nil, nil, nil, err
	}
	if s.opts.Sync == SyncAlways {
		err = s.db.ApplyNoSyncWait(b, pebble.Sync)
	} else {
		err = b.Commit(s.writeOpt)
	}
	if err != nil {
		b.Close()
		for _, l := range locs {
			s.cache.forget(l.stripe, l.dk)
		}
		return nil, nil, nil, fmt.Errorf("store: batch commit: %w", err)
	}
	for ci, c := range staged {
		s.setCell(ci, c)
	}
	for i, r := range reqs {
		l := locs[i]
		s.cache.put(l.stripe, l.dk, after[i])
		s.applied(l.p, l.seg, r.Key, befores[i], after[i], digests[i])
	}
	if s.opts.Sync != SyncAlways {
		b.Close()
		return after, encs, func() error { return nil }, nil
	}
	// NB: as in PutPipelined, the writes are visible before their fsync.
	return after, encs, func() error {
		defer b.Close()
		if err := b.SyncWait(); err != nil {
			return fmt.Errorf("store: sync: %w", err)
		}
		return nil
	}, nil
}
