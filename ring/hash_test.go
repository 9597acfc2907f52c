package ring

import (
	"errors"
	"testing"

	"github.com/cespare/xxhash/v2"
)

func TestKeyHash(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want uint64
	}{
		// Reference values of xxhash64 with seed 0 (the xxHash spec's
		// test vector for the empty input, and xxhash.Sum64 otherwise).
		{"", 0xef46db3751d8e999},
		{"a", xxhash.Sum64String("a")},
		{"user:42", xxhash.Sum64String("user:42")},
	} {
		if got := KeyHash([]byte(tc.key)); got != tc.want {
			t.Errorf("KeyHash(%q) = %#x, want %#x", tc.key, got, tc.want)
		}
	}
}

func TestPartitionOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    uint64
		q    int
		want Partition
	}{
		{"one partition", 0xffff_ffff_ffff_ffff, 1, 0},
		{"q=2 top bit clear", 0x7fff_ffff_ffff_ffff, 2, 0},
		{"q=2 top bit set", 0x8000_0000_0000_0000, 2, 1},
		{"q=16 top nibble", 0xa123_4567_89ab_cdef, 16, 0xa},
		{"q=256 top byte", 0xab12_3456_789a_bcde, 256, 0xab},
		{"q=256 ignores lower bits", 0xabff_ffff_ffff_ffff, 256, 0xab},
		{"q=65536 top 16 bits", 0xbeef_0000_0000_0001, 65536, 0xbeef},
		{"q=0 degenerate", 0xffff_ffff_ffff_ffff, 0, 0},
		{"q=-4 degenerate", 0xffff_ffff_ffff_ffff, -4, 0},
		{"q=12 not a power of two uses 3 bits", 0xffff_ffff_ffff_ffff, 12, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PartitionOf(tc.h, tc.q); got != tc.want {
				t.Errorf("PartitionOf(%#x, %d) = %#x, want %#x", tc.h, tc.q, got, tc.want)
			}
		})
	}
}

func TestSegmentOf(t *testing.T) {
	for _, tc := range []struct {
		name        string
		h           uint64
		q, segments int
		want        uint32
	}{
		{"q=256 seg=256 second byte", 0xabcd_ef01_2345_6789, 256, 256, 0xcd},
		{"q=256 seg=1024 next 10 bits", 0xab_ff_c0_00_0000_0000, 256, 1024, 0x3ff},
		{"q=1 seg=1024 top 10 bits", 0xffc0_0000_0000_0000, 1, 1024, 0x3ff},
		{"q=65536 seg=65536", 0xabcd_ef01_2345_6789, 65536, 65536, 0xef01},
		{"q=16 seg=16 second nibble", 0x5a00_0000_0000_0000, 16, 16, 0xa},
		{"one segment", 0xffff_ffff_ffff_ffff, 256, 1, 0},
		{"q=2^16 seg=2^32 low bits", 0x0000_1234_5678_ffff, 65536, 1 << 32, 0x12345678},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SegmentOf(tc.h, tc.q, tc.segments); got != tc.want {
				t.Errorf("SegmentOf(%#x, %d, %d) = %#x, want %#x", tc.h, tc.q, tc.segments, got, tc.want)
			}
		})
	}
}

func TestPartitionAndSegmentPartitionTheHash(t *testing.T) {
	// The partition and the segment are disjoint bit fields of KeyHash, so
	// (partition, segment) are the top log2(q)+log2(segments) bits.
	const q, segments = 256, 1024
	for _, key := range []string{"", "a", "b", "user:1", "user:2", "🦀"} {
		h := KeyHash([]byte(key))
		got := uint64(PartitionOf(h, q))<<10 | uint64(SegmentOf(h, q, segments))
		if want := h >> (64 - 18); got != want {
			t.Errorf("key %q: partition|segment = %#x, want top 18 bits %#x", key, got, want)
		}
	}
}

func TestValidPartitions(t *testing.T) {
	for _, tc := range []struct {
		q  int
		ok bool
	}{
		{-1, false}, {0, false}, {1, true}, {2, true}, {3, false}, {12, false},
		{256, true}, {1024, true}, {65535, false}, {65536, true}, {131072, false},
	} {
		err := ValidPartitions(tc.q)
		if (err == nil) != tc.ok {
			t.Errorf("ValidPartitions(%d) = %v, want ok=%v", tc.q, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidPartitions) {
			t.Errorf("ValidPartitions(%d) = %v, want it to wrap ErrInvalidPartitions", tc.q, err)
		}
	}
	if err := ValidPartitions(DefaultPartitions); err != nil {
		t.Errorf("DefaultPartitions %d is invalid: %v", DefaultPartitions, err)
	}
}
