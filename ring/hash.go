package ring

import (
	"errors"
	"fmt"
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

const (
	// DefaultPartitions is the partition count Q of a new cluster when the
	// operator does not choose one: 256 spreads well over up to ~50 nodes
	// while keeping per-partition Merkle trees and the cached ring small.
	DefaultPartitions = 256
	// MaxPartitions is the largest allowed Q (2^16), so a Partition always
	// fits in 16 bits of the key hash and the ring cache stays bounded.
	MaxPartitions = 1 << 16
)

// ErrInvalidPartitions is returned (wrapped) for a partition count that is
// not a power of two in [1, MaxPartitions].
var ErrInvalidPartitions = errors.New("ring: invalid partition count")

// Partition is a partition number in [0, Q).
type Partition uint32

// KeyHash is the 64-bit hash (xxhash64) of a user key. Everything placed by
// key uses it: the partition is its top log2(Q) bits (PartitionOf) and the
// anti-entropy segment the bits right after those (SegmentOf).
//
// NB: this is part of the on-disk layout. Changing it re-partitions every
// stored key.
func KeyHash(key []byte) uint64 {
	return xxhash.Sum64(key)
}

// PartitionOf returns the partition of key hash h in a ring of q partitions:
// the top log2(q) bits of h. q must be a power of two (see ValidPartitions);
// for other q it uses floor(log2(q)) bits, so the result is still < q, and it
// returns 0 for q <= 1.
func PartitionOf(h uint64, q int) Partition {
	b := log2(q)
	if b == 0 {
		return 0
	}
	return Partition(h >> (64 - b))
}

// SegmentOf returns the anti-entropy segment, in [0, segments), of key hash
// h in a ring of q partitions: the log2(segments) bits right after the
// partition bits. Taking the bits after the partition's keeps segments
// uniformly filled within a partition (the partition bits are constant
// there). segments must be a power of two, at most 2^32, and
// log2(q)+log2(segments) must not exceed 64; it returns 0 for segments <= 1.
func SegmentOf(h uint64, q, segments int) uint32 {
	sb := log2(segments)
	if sb == 0 {
		return 0
	}
	// NB: Go defines shifts by >= 64 as producing 0, so no extra guard.
	return uint32((h << log2(q)) >> (64 - sb))
}

// ValidPartitions reports an error wrapping ErrInvalidPartitions unless q is
// a power of two in [1, MaxPartitions].
func ValidPartitions(q int) error {
	if q < 1 || q > MaxPartitions || q&(q-1) != 0 {
		return fmt.Errorf("%w: %d is not a power of two in [1, %d]", ErrInvalidPartitions, q, MaxPartitions)
	}
	return nil
}

// log2 returns floor(log2(n)) for n >= 1, and 0 for n < 1.
func log2(n int) uint {
	if n < 1 {
		return 0
	}
	return uint(bits.Len64(uint64(n)) - 1)
}
