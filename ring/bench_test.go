package ring

import (
	"fmt"
	"testing"
)

func BenchmarkPartitionForKey(b *testing.B) {
	r := mustNew(b, DefaultPartitions, seqNodes(5))
	key := []byte("user:0000000042:profile")
	var p Partition
	for b.Loop() {
		p ^= r.PartitionForKey(key)
	}
	_ = p
}

func BenchmarkPreferenceList(b *testing.B) {
	for _, tc := range []struct {
		name  string
		nodes []Node
		opts  []Option
	}{
		{"nodes=5/zones=none", seqNodes(5), nil},
		{"nodes=5/zones=3", nodes("a@1", "b@2", "c@3", "d@1", "e@2"), nil},
		{"nodes=5/zones=3/uncached", nodes("a@1", "b@2", "c@3", "d@1", "e@2"), []Option{withCacheLimit(0)}},
		{"nodes=100/zones=none", seqNodes(100), nil},
	} {
		r := mustNew(b, DefaultPartitions, tc.nodes, tc.opts...)
		b.Run(tc.name, func(b *testing.B) {
			p := Partition(0)
			for b.Loop() {
				_ = r.PreferenceList(p, 3)
				p = (p + 1) % DefaultPartitions
			}
		})
		b.Run(tc.name+"/append", func(b *testing.B) {
			dst := make([]NodeID, 0, len(tc.nodes))
			p := Partition(0)
			for b.Loop() {
				dst = r.AppendPreferenceList(dst[:0], p, 3)
				p = (p + 1) % DefaultPartitions
			}
		})
		b.Run(tc.name+"/ishome", func(b *testing.B) {
			id := tc.nodes[0].ID
			p := Partition(0)
			for b.Loop() {
				_ = r.IsHome(p, 3, id)
				p = (p + 1) % DefaultPartitions
			}
		})
	}
}

func BenchmarkNew(b *testing.B) {
	for _, k := range []int{5, 100} {
		ns := seqNodes(k)
		b.Run(fmt.Sprintf("q=256/nodes=%d", k), func(b *testing.B) {
			for b.Loop() {
				if _, err := New(DefaultPartitions, ns); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchStates returns two states of k members where o is newer for every
// other member, as after a round of gossip.
func benchStates(k int) (s, o State) {
	s, o = NewState(DefaultPartitions), NewState(DefaultPartitions)
	for i := range k {
		m := Member{ID: NodeID(fmt.Sprintf("node-%03d", i)), Zone: "z1", Status: Active,
			RPCAddr: "10.0.0.1:7000", HTTPAddr: "10.0.0.1:8000", GossipAddr: "10.0.0.1:7946", Version: 3}
		s.Members[m.ID] = m
		if i%2 == 0 {
			m.Version++
		}
		o.Members[m.ID] = m
	}
	return s, o
}

func BenchmarkStateMerge(b *testing.B) {
	for _, k := range []int{5, 100} {
		s, o := benchStates(k)
		// Includes the Clone, as a gossip receiver would (NB: stopping
		// the timer per iteration costs more than the merge).
		b.Run(fmt.Sprintf("members=%d/clone+changed", k), func(b *testing.B) {
			for b.Loop() {
				c := s.Clone()
				if changed, err := c.Merge(o); err != nil || !changed {
					b.Fatal(changed, err)
				}
			}
		})
		b.Run(fmt.Sprintf("members=%d/unchanged", k), func(b *testing.B) {
			c := s.Clone()
			if _, err := c.Merge(o); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if changed, err := c.Merge(o); err != nil || changed {
					b.Fatal(changed, err)
				}
			}
		})
	}
}

func BenchmarkStateCodec(b *testing.B) {
	s, _ := benchStates(100)
	enc, err := s.Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode/members=100", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := s.Encode(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/members=100", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := DecodeState(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("digest/members=100", func(b *testing.B) {
		for b.Loop() {
			_ = s.Digest()
		}
	})
}
