package store

// The summary: what a node needs at start-up about its data without
// reading it. Every stored key adds to one cell: its object's digest
// (Options.Digest, XORed: anti-entropy's segment hashes) and its live or
// tombstone count. The cells are persisted with the writes that change
// them, so after any crash the summary matches the data it describes, and
// a restarted node restores its Merkle trees and key counts from a few MiB
// instead of scanning every object (which took 4.6 s of CPU for a million
// keys, on a node that is meanwhile catching up and serving).
//
// A cell is the set of keys sharing the top cellBits bits of their hash,
// with cellBits = max(stripeBits, partition bits + segment bits): each cell
// lies in exactly one write stripe and one anti-entropy segment. Its writer
// therefore holds the stripe lock from computing the cell's new value to
// committing it, so the values of one cell are committed in the order they
// were computed, and a plain Set (no read, no merge operator) is exact.
//
// How cells are persisted: a journal and checkpoints. Each write batch
// adds one journal record, in the same Pebble batch, holding the new values
// of every cell it changed, under a sequence number taken while the
// batch's stripes are held. Until issue 12 each changed cell was a Pebble
// key of its own, so a write was two memtable entries (its key and its
// cell), each flushed and compacted; a batch of ten combined SETs now adds
// eleven, not twenty (SET -P 16 without cells at all used 18-20% less CPU
// per write). Once the records since the last checkpoint pass
// Options.journalLimit bytes, a background checkpoint writes each cell
// changed since (the dirty bits) as a base cell and deletes the records up
// to the sequence number it read when it started, in one batch. It copies
// each stripe's cells under that stripe's lock, so every record it deletes
// (taken before it started) is in the values it writes; the records after
// it remain, and as records hold absolute values, replaying one whose
// value the checkpoint already wrote changes nothing. At open the base
// cells are read and the remaining records applied in order: for each
// cell, the last record naming it holds its last committed value.
//
// The summary is trusted at open only if the meta record says it was kept
// with the same digest function (summaryVersion plus Options.DigestName);
// otherwise Open rebuilds it with one scan. VerifySummary recomputes a
// partition's cells from its data, for the background check that restored
// state matches what is stored (a guard against bugs, not crashes).

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/version"
)

const (
	prefixSummary = 's'
	prefixJournal = 'j'
	metaSummary   = "summary"
	// summaryVersion changes with the cell layout or encoding: cells-v2
	// added the journal, which a cells-v1 binary would not read (it
	// rebuilds instead). A cells-v1 summary is read as it is: it has no
	// journal.
	summaryVersion   = "cells-v2"
	summaryVersionV1 = "cells-v1"
	cellValueLen     = 16
	// journalCellLen is one cell in a journal record: its index (4 bytes,
	// big-endian) and value.
	journalCellLen = 4 + cellValueLen
	// defaultJournalLimit is Options.journalLimit's default. At 20 bytes
	// a cell change it is about 800k changes, after which a checkpoint
	// writes at most the 262k cells (256 partitions, 1024 segments) and
	// usually far fewer; replaying it at open takes tens of milliseconds.
	defaultJournalLimit = 16 << 20
)

// cell is one cell's summary: the XOR of its keys' digests and how many of
// its keys are live or tombstones.
type cell struct {
	digest      uint64
	live, tombs uint32
}

func (c cell) isZero() bool { return c == cell{} }

func (c cell) appendTo(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, c.digest)
	dst = binary.LittleEndian.AppendUint32(dst, c.live)
	return binary.LittleEndian.AppendUint32(dst, c.tombs)
}

func decodeCell(v []byte) (cell, error) {
	if len(v) != cellValueLen {
		return cell{}, fmt.Errorf("summary cell of %d bytes, want %d", len(v), cellValueLen)
	}
	return cell{
		digest: binary.LittleEndian.Uint64(v),
		live:   binary.LittleEndian.Uint32(v[8:]),
		tombs:  binary.LittleEndian.Uint32(v[12:]),
	}, nil
}

func cellKey(i int) []byte {
	return binary.BigEndian.AppendUint32([]byte{prefixSummary}, uint32(i))
}

func journalKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixJournal}, seq)
}

// appendJournalCell appends cell i's value c to a journal record.
func appendJournalCell(rec []byte, i int, c cell) []byte {
	return c.appendTo(binary.BigEndian.AppendUint32(rec, uint32(i)))
}

// DigestName is Options.DigestName ("none" without a Digest).
func (s *Store) DigestName() string { return s.opts.DigestName }

// summaryName is what the meta record must say for the cells to be
// trusted.
func (s *Store) summaryName() string { return summaryVersion + " " + s.opts.DigestName }

// summaryNameV1 is summaryName for a summary kept before the journal.
func (s *Store) summaryNameV1() string { return summaryVersionV1 + " " + s.opts.DigestName }

// cellOf returns the cell of key hash h.
func (s *Store) cellOf(h uint64) int { return int(h >> (64 - s.cellBits)) }

// partitionCells returns partition p's cells [lo, hi).
func (s *Store) partitionCells(p ring.Partition) (lo, hi int) {
	shift := s.cellBits - s.qBits
	return int(p) << shift, (int(p) + 1) << shift
}

// digest is Options.Digest, 0 without one or for an absent object.
func (s *Store) digest(key []byte, o *version.Object) uint64 {
	if s.opts.Digest == nil || o.IsEmpty() {
		return 0
	}
	return s.opts.Digest(key, o)
}

// changed returns c with key's object changed from before to after.
func (s *Store) changed(c cell, key []byte, before, after *version.Object) cell {
	c.digest ^= s.digest(key, before) ^ s.digest(key, after)
	c.count(before, ^uint32(0)) // -1
	c.count(after, 1)
	return c
}

func (c *cell) count(o *version.Object, d uint32) {
	switch {
	case o == nil:
	case o.Deleted():
		c.tombs += d
	default:
		c.live += d
	}
}

// stageChange adds to b the write of key's new object (after nil: its
// removal) under data key dk and a journal record of its cell's new value,
// which it returns; the caller holds the key's stripe and sets the cell
// (setCell) once b commits.
func (s *Store) stageChange(b *pebble.Batch, key, dk []byte, before, after *version.Object) (i int, c cell, err error) {
	var enc []byte
	if after != nil {
		enc = version.Encode(after)
	}
	return s.stageEncoded(b, key, dk, before, after, enc)
}

// stageEncoded is stageChange with after's encoding (enc) made by the
// caller, who may hand it on: Pebble copies it into the batch.
func (s *Store) stageEncoded(b *pebble.Batch, key, dk []byte, before, after *version.Object, enc []byte) (i int, c cell, err error) {
	if after == nil {
		err = b.Delete(dk, nil)
	} else {
		err = b.Set(dk, enc, nil)
	}
	if err != nil {
		return 0, cell{}, fmt.Errorf("store: batch: %w", err)
	}
	i = s.cellOf(ring.KeyHash(key))
	c = s.changed(s.cells[i], key, before, after)
	var rec [journalCellLen]byte
	return i, c, s.journal(b, appendJournalCell(rec[:0], i, c))
}

// journal adds to b a record of new cell values (appendJournalCell's)
// under the next sequence number. The caller holds the stripe of every
// cell in rec until b has committed and it has set them (setCell); that
// keeps each cell's records in the order of its values, and lets a
// checkpoint know that every record before the one it starts at is done.
func (s *Store) journal(b *pebble.Batch, rec []byte) error {
	if err := b.Set(journalKey(s.journalSeq.Add(1)), rec, nil); err != nil {
		return fmt.Errorf("store: batch: %w", err)
	}
	if s.journalBytes.Add(int64(len(rec))) >= s.opts.journalLimit {
		select {
		case s.checkpointReq <- struct{}{}:
		default:
		}
	}
	return nil
}

// journalCells adds to b one record of the staged cells' new values.
func (s *Store) journalCells(b *pebble.Batch, staged map[int]cell) error {
	rec := make([]byte, 0, len(staged)*journalCellLen)
	for i, c := range staged {
		rec = appendJournalCell(rec, i, c)
	}
	return s.journal(b, rec)
}

// setCell sets cell i once the batch with its journal record has
// committed; the caller holds its stripe.
func (s *Store) setCell(i int, c cell) {
	s.cells[i] = c
	s.dirty[i>>6].Or(1 << (i & 63))
}

// checkpointLoop checkpoints the summary when journal asks.
func (s *Store) checkpointLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.checkpointReq:
			if s.journalBytes.Load() < s.opts.journalLimit {
				continue
			}
			if err := s.checkpoint(); err != nil {
				s.opts.Logger.Warn().Err(err).Msg("store: summary checkpoint failed; the journal keeps the cells")
			}
		}
	}
}

// checkpoint writes every cell changed since the last checkpoint as a base
// cell and deletes the journal records it covers, in one batch (see the
// file comment for why that is exact).
func (s *Store) checkpoint() error {
	s.checkpointMu.Lock()
	defer s.checkpointMu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	upTo, size := s.journalSeq.Load(), s.journalBytes.Load()
	b := s.db.NewBatch()
	defer b.Close()
	var written []int
	per := 1 << (s.cellBits - stripeBits) // cells per stripe
	for st := range nStripes {
		lo, hi := st*per, (st+1)*per
		s.stripes[st].Lock()
		for w := lo >> 6; w<<6 < hi; w++ {
			mask := ^uint64(0)
			if n := hi - lo; n < 64 {
				mask = (1<<n - 1) << (lo & 63)
			}
			set := s.dirty[w].And(^mask) & mask
			for set != 0 {
				i := w<<6 + bits.TrailingZeros64(set)
				set &= set - 1
				if err := stage(b, i, s.cells[i]); err != nil {
					s.stripes[st].Unlock()
					s.redirty(written)
					return err
				}
				written = append(written, i)
			}
		}
		s.stripes[st].Unlock()
	}
	err := b.DeleteRange(journalKey(0), journalKey(upTo+1), nil)
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	if err != nil {
		s.redirty(written)
		return fmt.Errorf("store: summary checkpoint: %w", err)
	}
	s.journalBytes.Add(-size)
	s.checkpoints.Add(1)
	return nil
}

// redirty marks cells dirty again after a checkpoint that failed.
func (s *Store) redirty(cells []int) {
	for _, i := range cells {
		s.dirty[i>>6].Or(1 << (i & 63))
	}
}

// stage adds cell i's base value c to b.
func stage(b *pebble.Batch, i int, c cell) error {
	var v [cellValueLen]byte
	if err := b.Set(cellKey(i), c.appendTo(v[:0]), nil); err != nil {
		return fmt.Errorf("store: batch: %w", err)
	}
	return nil
}

// loadSummary reads the cells at open, or rebuilds them when they were not
// kept with this digest, and sets the partitions' counts.
func (s *Store) loadSummary() error {
	s.cells = make([]cell, 1<<s.cellBits)
	s.dirty = make([]atomic.Uint64, (len(s.cells)+63)/64)
	name, err := s.Meta(metaSummary)
	if err != nil {
		return err
	}
	switch {
	case s.fresh:
		if err := s.SetMeta(metaSummary, []byte(s.summaryName())); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	case string(name) == s.summaryName():
		if err := s.readCells(); err != nil {
			return err
		}
		if err := s.replayJournal(); err != nil {
			return err
		}
	case string(name) == s.summaryNameV1():
		if err := s.readCells(); err != nil {
			return err
		}
		if err := s.SetMeta(metaSummary, []byte(s.summaryName())); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	default:
		t0 := time.Now()
		if err := s.rebuildSummary(); err != nil {
			return err
		}
		s.opts.Logger.Info().Str("was", string(name)).Str("now", s.summaryName()).
			Dur("took", time.Since(t0)).Msg("store: summary rebuilt from the data")
	}
	for p := range s.opts.Partitions {
		s.setCounts(ring.Partition(p))
	}
	return nil
}

// readCells loads every persisted cell.
func (s *Store) readCells() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixSummary}, UpperBound: []byte{prefixSummary + 1}})
	if err != nil {
		return fmt.Errorf("store: summary: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != 5 {
			return fmt.Errorf("store: summary: bad cell key %x", k)
		}
		i := int(binary.BigEndian.Uint32(k[1:]))
		if i >= len(s.cells) {
			return fmt.Errorf("store: summary: cell %d of %d", i, len(s.cells))
		}
		if s.cells[i], err = decodeCell(it.Value()); err != nil {
			return fmt.Errorf("store: summary: cell %d: %w", i, err)
		}
	}
	return it.Error()
}

// replayJournal applies the journal's records to the base cells, in order,
// and marks the cells they name dirty for the next checkpoint.
func (s *Store) replayJournal() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixJournal}, UpperBound: []byte{prefixJournal + 1}})
	if err != nil {
		return fmt.Errorf("store: summary journal: %w", err)
	}
	defer it.Close()
	var last uint64
	var size int64
	for it.First(); it.Valid(); it.Next() {
		k, rec := it.Key(), it.Value()
		if len(k) != 9 || len(rec)%journalCellLen != 0 {
			return fmt.Errorf("store: summary journal: bad record %x (%d bytes)", k, len(rec))
		}
		last = binary.BigEndian.Uint64(k[1:])
		size += int64(len(rec))
		for ; len(rec) > 0; rec = rec[journalCellLen:] {
			i := int(binary.BigEndian.Uint32(rec))
			if i >= len(s.cells) {
				return fmt.Errorf("store: summary journal: cell %d of %d", i, len(s.cells))
			}
			if s.cells[i], err = decodeCell(rec[4:journalCellLen]); err != nil {
				return fmt.Errorf("store: summary journal: cell %d: %w", i, err)
			}
			s.dirty[i>>6].Or(1 << (i & 63))
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("store: summary journal: %w", err)
	}
	s.journalSeq.Store(last)
	s.journalBytes.Store(size)
	return nil
}

// rebuildSummary recomputes every cell from the data and replaces the
// persisted cells and meta record in one batch. Open calls it before
// anything else uses the store.
func (s *Store) rebuildSummary() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixData}, UpperBound: []byte{prefixData + 1}})
	if err != nil {
		return fmt.Errorf("store: summary: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		o, err := version.Decode(bytes.Clone(it.Value()))
		if err != nil {
			it.Close()
			return fmt.Errorf("store: summary: key %q: %w", k[5:], err)
		}
		i := s.cellOf(ring.KeyHash(k[5:]))
		s.cells[i] = s.changed(s.cells[i], k[5:], nil, o)
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("store: summary: %w", err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange([]byte{prefixSummary}, []byte{prefixSummary + 1}, nil); err != nil {
		return fmt.Errorf("store: summary: %w", err)
	}
	if err := b.DeleteRange([]byte{prefixJournal}, []byte{prefixJournal + 1}, nil); err != nil {
		return fmt.Errorf("store: summary: %w", err)
	}
	for i, c := range s.cells {
		if !c.isZero() {
			if err := stage(b, i, c); err != nil {
				return err
			}
		}
	}
	_ = b.Set(metaKey(metaSummary), []byte(s.summaryName()), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store: summary: %w", err)
	}
	return nil
}

// setCounts sets partition p's counts from its cells.
func (s *Store) setCounts(p ring.Partition) {
	var live, tombs int64
	lo, hi := s.partitionCells(p)
	for _, c := range s.cells[lo:hi] {
		live += int64(c.live)
		tombs += int64(c.tombs)
	}
	s.live[p].Store(live)
	s.tombs[p].Store(tombs)
}

// SegmentDigests appends to dst, for each segment of partition p in order,
// the XOR of Options.Digest over the segment's stored keys: what an
// anti-entropy tree built from the data would hold. The caller holds
// LockPartition(p), so that no write to p is half applied.
func (s *Store) SegmentDigests(dst []uint64, p ring.Partition) []uint64 {
	lo, hi := s.partitionCells(p)
	per := (hi - lo) / s.opts.Segments
	for seg := range s.opts.Segments {
		var h uint64
		for _, c := range s.cells[lo+seg*per : lo+(seg+1)*per] {
			h ^= c.digest
		}
		dst = append(dst, h)
	}
	return dst
}

// VerifySummary recomputes partition p's cells from its data and corrects
// those that differ (in memory and on disk). It returns how many differed:
// 0 unless the summary was kept wrong. The caller holds LockPartition(p).
// It decodes every object of p.
func (s *Store) VerifySummary(p ring.Partition) (fixed int, err error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	lo, hi := s.partitionCells(p)
	fresh := make([]cell, hi-lo)
	var derr error
	err = s.ScanPartitionRaw(p, func(key []byte, _ uint32, enc []byte) bool {
		o, err := version.Decode(bytes.Clone(enc))
		if err != nil {
			derr = fmt.Errorf("store: verify summary: key %q: %w", key, err)
			return false
		}
		i := s.cellOf(ring.KeyHash(key)) - lo
		fresh[i] = s.changed(fresh[i], key, nil, o)
		return true
	})
	if err = errors.Join(err, derr); err != nil {
		return 0, err
	}
	// The corrections are a journal record, like any write's: a base cell
	// would be overwritten at replay by the records before it.
	var rec []byte
	for i, c := range fresh {
		if c != s.cells[lo+i] {
			fixed++
			rec = appendJournalCell(rec, lo+i, c)
		}
	}
	if fixed == 0 {
		return 0, nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.journal(b, rec); err != nil {
		return 0, err
	}
	if err := b.Commit(s.writeOpt); err != nil {
		return 0, fmt.Errorf("store: verify summary: %w", err)
	}
	for i, c := range fresh {
		if c != s.cells[lo+i] {
			s.setCell(lo+i, c)
		}
	}
	s.setCounts(p)
	return fixed, nil
}
