package store

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/mnemo-kv/mnemo/ring"
)

// ScanPartitionRaw calls fn for every key of partition p, in key-layout
// order (segment by segment), from a consistent snapshot, with the key, its
// segment and its object as stored (version.Encode). It neither decodes nor
// copies anything, which makes it several times cheaper than ScanPartition
// for scans that read every key and keep little, such as building
// anti-entropy trees at start-up.
//
// NB: key and encoded alias the iterator's buffers: they are valid only
// during the call, and fn must neither modify nor retain them (copy what it
// keeps). Returning false stops the scan. Like ScanPartition it does not
// lock: hold LockPartition around it for a scan that must not miss a
// concurrent write.
func (s *Store) ScanPartitionRaw(p ring.Partition, fn func(key []byte, segment uint32, encoded []byte) bool) error {
	return s.ScanSegmentsRaw(p, 0, uint32(s.opts.Segments), fn)
}

// ScanSegmentsRaw is ScanPartitionRaw restricted to the keys whose segment
// is in [segFrom, segTo). The same aliasing rules apply: key and encoded
// are valid only during the call.
func (s *Store) ScanSegmentsRaw(p ring.Partition, segFrom, segTo uint32, fn func(key []byte, segment uint32, encoded []byte) bool) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if int(p) >= s.opts.Partitions {
		return fmt.Errorf("store: partition %d out of range", p)
	}
	if segFrom >= segTo {
		return nil
	}
	lo := s.dataKey(p, segFrom, nil)
	var hi []byte
	switch {
	case int(segTo) < s.opts.Segments:
		hi = s.dataKey(p, segTo, nil)
	case int(p)+1 < s.opts.Partitions:
		hi = s.dataKey(p+1, 0, nil)
	default:
		hi = []byte{prefixData + 1}
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("store: scan: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) < 5 {
			return fmt.Errorf("store: scan: short data key %x", k)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("store: scan key %q: %w", k[5:], err)
		}
		if !fn(k[5:len(k):len(k)], uint32(binary.BigEndian.Uint16(k[3:])), v[:len(v):len(v)]) {
			return nil
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("store: scan: %w", err)
	}
	return nil
}
