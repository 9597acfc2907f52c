package ring

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"pgregory.net/rapid"
)

// tableHasher scores node id in partition p as scores[id][p], so the
// expected preference lists below can be read off the table by hand
// (groupcache's consistenthash_test.go does the same with digits). It fails
// the test on input that is not id || 4-byte big-endian p.
func tableHasher(t testing.TB, scores map[string][]uint64) Hasher {
	return func(b []byte) uint64 {
		if len(b) < 4 {
			t.Errorf("hasher input %q shorter than 4 bytes", b)
			return 0
		}
		id, p := string(b[:len(b)-4]), binary.BigEndian.Uint32(b[len(b)-4:])
		s, ok := scores[id]
		if !ok || int(p) >= len(s) {
			t.Errorf("hasher input %q: no score for node %q partition %d", b, id, p)
			return 0
		}
		return s[p]
	}
}

// nodes builds ring nodes from "id" or "id@zone" strings.
func nodes(specs ...string) []Node {
	out := make([]Node, len(specs))
	for i, s := range specs {
		id, zone, _ := strings.Cut(s, "@")
		out[i] = Node{ID: NodeID(id), Zone: zone}
	}
	return out
}

// ids splits a space-separated list of node ids; "" gives nil.
func ids(s string) []NodeID {
	var out []NodeID
	for _, f := range strings.Fields(s) {
		out = append(out, NodeID(f))
	}
	return out
}

func mustNew(t testing.TB, q int, ns []Node, opts ...Option) *Ring {
	t.Helper()
	r, err := New(q, ns, opts...)
	if err != nil {
		t.Fatalf("New(%d, %v): %v", q, ns, err)
	}
	return r
}

// cacheModes runs f on a ring built with and without the score cache, which
// must not change any answer.
func cacheModes(t *testing.T, f func(t *testing.T, opts ...Option)) {
	t.Run("cached", func(t *testing.T) { f(t) })
	t.Run("uncached", func(t *testing.T) { f(t, withCacheLimit(0)) })
}

// Reference: Dynamo §4.2 (partitioning), §4.6 (preference list). Scores are
// read from the table; higher first, ties by NodeID.
func TestPreferenceListHandChecked(t *testing.T) {
	scores := map[string][]uint64{
		//    p0  p1  p2  p3
		"a": {40, 10, 5, 7},
		"b": {30, 20, 5, 9},
		"c": {20, 30, 5, 8},
		"d": {10, 40, 1, 9},
	}
	tests := []struct {
		p               Partition
		n               int
		pref, home, fbk string
	}{
		{0, 3, "a b c d", "a b c", "d"},
		{1, 3, "d c b a", "d c b", "a"},
		{2, 2, "a b c d", "a b", "c d"}, // a, b, c tie at 5: by ID
		{3, 2, "b d c a", "b d", "c a"}, // b, d tie at 9: by ID
		{0, 0, "a b c d", "", "a b c d"},
		{0, -1, "a b c d", "", "a b c d"},
		{1, 4, "d c b a", "d c b a", ""},
		{1, 9, "d c b a", "d c b a", ""},
		{4, 3, "", "", ""}, // out of range
	}
	cacheModes(t, func(t *testing.T, opts ...Option) {
		r := mustNew(t, 4, nodes("d", "c", "b", "a"), append(opts, WithHasher(tableHasher(t, scores)))...)
		for _, tc := range tests {
			name := fmt.Sprintf("p%d/n%d", tc.p, tc.n)
			if got := r.PreferenceList(tc.p, tc.n); !slices.Equal(got, ids(tc.pref)) {
				t.Errorf("%s: PreferenceList = %v, want %v", name, got, ids(tc.pref))
			}
			if got := r.Home(tc.p, tc.n); !slices.Equal(got, ids(tc.home)) {
				t.Errorf("%s: Home = %v, want %v", name, got, ids(tc.home))
			}
			if got := r.Fallbacks(tc.p, tc.n); !slices.Equal(got, ids(tc.fbk)) {
				t.Errorf("%s: Fallbacks = %v, want %v", name, got, ids(tc.fbk))
			}
			for _, id := range ids("a b c d e") {
				want := slices.Contains(ids(tc.home), id)
				if got := r.IsHome(tc.p, tc.n, id); got != want {
					t.Errorf("%s: IsHome(%s) = %v, want %v", name, id, got, want)
				}
			}
		}
		for id, want := range map[NodeID][]Partition{
			// n=2 homes: p0 a b, p1 d c, p2 a b, p3 b d
			"a": {0, 2}, "b": {0, 2, 3}, "c": {1}, "d": {1, 3}, "zz": nil,
		} {
			if got := r.Owned(id, 2); !slices.Equal(got, want) {
				t.Errorf("Owned(%s, 2) = %v, want %v", id, got, want)
			}
		}
	})
}

// Reference: Dynamo §4.6 ("the preference list ... contains nodes spread
// across multiple data centers"). The first n span as many zones as
// possible, in score order; the rest follow in score order.
func TestPreferenceListZones(t *testing.T) {
	scores := map[string][]uint64{
		//    p0  p1     p0 order: a b c d e; p1 order: e d c b a
		"a": {50, 10},
		"b": {40, 20},
		"c": {30, 30},
		"d": {20, 40},
		"e": {10, 50},
	}
	tests := []struct {
		name  string
		nodes []Node
		p     Partition
		n     int
		pref  string
	}{
		// a@1 b@1 c@2 d@2 e@3, score order a b c d e.
		{"three zones n=1", nodes("a@1", "b@1", "c@2", "d@2", "e@3"), 0, 1, "a b c d e"},
		{"three zones n=2", nodes("a@1", "b@1", "c@2", "d@2", "e@3"), 0, 2, "a c b d e"},
		{"three zones n=3", nodes("a@1", "b@1", "c@2", "d@2", "e@3"), 0, 3, "a c e b d"},
		{"three zones n=4 fills by score", nodes("a@1", "b@1", "c@2", "d@2", "e@3"), 0, 4, "a c e b d"},
		{"three zones n=5", nodes("a@1", "b@1", "c@2", "d@2", "e@3"), 0, 5, "a c e b d"},
		{"three zones n=9", nodes("a@1", "b@1", "c@2", "d@2", "e@3"), 0, 9, "a c e b d"},
		{"n=0 is plain score order", nodes("a@1", "b@1", "c@2", "d@2", "e@3"), 0, 0, "a b c d e"},
		// p1 score order e d c b a: e@3, d@2, skip c@2, b@1.
		{"reverse order n=3", nodes("a@1", "b@1", "c@2", "d@2", "e@3"), 1, 3, "e d b c a"},
		// Two zones, n=3: a@1, c@2, then every zone is taken: fill with b.
		{"two zones n=3", nodes("a@1", "b@1", "c@2", "d@2"), 0, 3, "a c b d"},
		// Lopsided: three nodes in zone 1, two in zone 2.
		{"lopsided n=2", nodes("a@1", "b@1", "c@1", "d@2", "e@2"), 0, 2, "a d b c e"},
		{"lopsided n=3", nodes("a@1", "b@1", "c@1", "d@2", "e@2"), 0, 3, "a d b c e"},
		// One zone: nothing to spread, plain score order.
		{"one zone", nodes("a@1", "b@1", "c@1"), 0, 2, "a b c"},
		// A node without a zone in a zoned ring counts as the zone "".
		{"empty zone counts as a zone", nodes("a@1", "b@1", "c"), 0, 2, "a c b"},
		// No zones at all: plain score order.
		{"no zones", nodes("a", "b", "c", "d", "e"), 0, 3, "a b c d e"},
	}
	cacheModes(t, func(t *testing.T, opts ...Option) {
		for _, tc := range tests {
			r := mustNew(t, 2, tc.nodes, append(opts, WithHasher(tableHasher(t, scores)))...)
			if got := r.PreferenceList(tc.p, tc.n); !slices.Equal(got, ids(tc.pref)) {
				t.Errorf("%s: PreferenceList(%d, %d) = %v, want %v", tc.name, tc.p, tc.n, got, ids(tc.pref))
			}
			want := ids(tc.pref)
			h := clamp(tc.n, len(want))
			if got := r.Home(tc.p, tc.n); !slices.Equal(got, want[:h]) {
				t.Errorf("%s: Home = %v, want %v", tc.name, got, want[:h])
			}
			if got := r.Fallbacks(tc.p, tc.n); !slices.Equal(got, want[h:]) {
				t.Errorf("%s: Fallbacks = %v, want %v", tc.name, got, want[h:])
			}
		}
	})
}

func TestHasherInput(t *testing.T) {
	// The score of node id for partition p is hasher(id || big-endian p).
	seen := map[string]bool{}
	h := func(b []byte) uint64 { seen[string(b)] = true; return xxhash.Sum64(b) }
	r := mustNew(t, 2, nodes("n1", "node-two"), WithHasher(h))
	want := []string{"n1\x00\x00\x00\x00", "n1\x00\x00\x00\x01", "node-two\x00\x00\x00\x00", "node-two\x00\x00\x00\x01"}
	got := make([]string, 0, len(seen))
	for k := range seen {
		got = append(got, k)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("hasher inputs = %q, want %q", got, want)
	}
	// With the default hasher the order is the xxhash64 order.
	d := mustNew(t, 2, nodes("n1", "node-two"))
	for p := range Partition(2) {
		if !slices.Equal(r.PreferenceList(p, 1), d.PreferenceList(p, 1)) {
			t.Errorf("p%d: default hasher %v, xxhash %v", p, d.PreferenceList(p, 1), r.PreferenceList(p, 1))
		}
	}
}

func TestNewErrors(t *testing.T) {
	tooMany := make([]Node, MaxMembers+1)
	for i := range tooMany {
		tooMany[i].ID = NodeID(fmt.Sprint(i))
	}
	for _, tc := range []struct {
		name  string
		q     int
		nodes []Node
		want  error
	}{
		{"q not a power of two", 3, nodes("a"), ErrInvalidPartitions},
		{"q zero", 0, nodes("a"), ErrInvalidPartitions},
		{"q too large", 1 << 17, nodes("a"), ErrInvalidPartitions},
		{"empty id", 4, nodes("a", ""), ErrInvalidNodes},
		{"duplicate id", 4, nodes("a@1", "b", "a@2"), ErrInvalidNodes},
		{"too many nodes", 4, tooMany, ErrInvalidNodes},
	} {
		if _, err := New(tc.q, tc.nodes); !errors.Is(err, tc.want) {
			t.Errorf("%s: New = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestEmptyRing(t *testing.T) {
	r := mustNew(t, 8, nil)
	if got := r.PreferenceList(0, 3); got != nil {
		t.Errorf("PreferenceList on empty ring = %v, want nil", got)
	}
	if r.IsHome(0, 3, "a") || r.Owned("a", 3) != nil || r.Home(1, 3) != nil || r.Fallbacks(1, 3) != nil {
		t.Error("empty ring placed something")
	}
	if p := r.PartitionForKey([]byte("k")); int(p) >= 8 {
		t.Errorf("PartitionForKey = %d, want < 8", p)
	}
}

func TestRingAccessors(t *testing.T) {
	in := nodes("c@z", "a@y", "b@x")
	r := mustNew(t, 16, in)
	if r.Partitions() != 16 {
		t.Errorf("Partitions = %d, want 16", r.Partitions())
	}
	got := r.Nodes()
	if want := nodes("a@y", "b@x", "c@z"); !slices.Equal(got, want) {
		t.Errorf("Nodes = %v, want %v sorted by ID", got, want)
	}
	got[0].ID = "mutated"
	in[0].ID = "mutated too"
	if r.Nodes()[0].ID != "a" || r.PreferenceList(0, 3) == nil || slices.Contains(r.PreferenceList(0, 3), "mutated") {
		t.Error("ring shares memory with New's input or Nodes' output")
	}
	for _, key := range []string{"", "x", "user:1"} {
		if got, want := r.PartitionForKey([]byte(key)), PartitionOf(KeyHash([]byte(key)), 16); got != want {
			t.Errorf("PartitionForKey(%q) = %d, want %d", key, got, want)
		}
	}
	// The caller owns returned slices.
	pl := r.PreferenceList(3, 2)
	pl[0] = "mutated"
	if r.PreferenceList(3, 2)[0] == "mutated" {
		t.Error("PreferenceList returned the ring's cache")
	}
	if got := r.AppendPreferenceList([]NodeID{"x"}, 3, 2); !slices.Equal(got[1:], r.PreferenceList(3, 2)) || got[0] != "x" {
		t.Errorf("AppendPreferenceList = %v", got)
	}
}

// naivePreferenceList is the specification written plainly: sort by score,
// then pick zones for the first n.
func naivePreferenceList(ns []Node, p Partition, n int, h Hasher) []NodeID {
	type sc struct {
		n     Node
		score uint64
	}
	var all []sc
	zoned := false
	for _, nd := range ns {
		b := binary.BigEndian.AppendUint32([]byte(nd.ID), uint32(p))
		all = append(all, sc{nd, h(b)})
		zoned = zoned || nd.Zone != ""
	}
	slices.SortFunc(all, func(a, b sc) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.n.ID, b.n.ID)
	})
	var out []NodeID
	if !zoned || n <= 0 {
		for _, s := range all {
			out = append(out, s.n.ID)
		}
		return out
	}
	zones := map[string]bool{}
	for _, s := range all {
		zones[s.n.Zone] = false
	}
	used := map[NodeID]bool{}
	taken := 0
	for _, s := range all {
		if len(out) == n || taken == len(zones) {
			break
		}
		if !zones[s.n.Zone] {
			zones[s.n.Zone] = true
			taken++
			used[s.n.ID] = true
			out = append(out, s.n.ID)
		}
	}
	for _, s := range all {
		if len(out) < n && !used[s.n.ID] {
			used[s.n.ID] = true
			out = append(out, s.n.ID)
		}
	}
	for _, s := range all {
		if !used[s.n.ID] {
			out = append(out, s.n.ID)
		}
	}
	return out
}

// TestPreferenceListMatchesSpec checks the optimised lookups (cached and
// uncached, stack and heap scratch) against naivePreferenceList on random
// rings, and the zone-spreading guarantee.
func TestPreferenceListMatchesSpec(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		k := rapid.IntRange(0, 80).Draw(t, "nodes") // > stackNodes sometimes
		zones := rapid.IntRange(0, 5).Draw(t, "zones")
		var ns []Node
		for i := range k {
			z := ""
			if zones > 0 {
				z = fmt.Sprint("z", rapid.IntRange(0, zones).Draw(t, "zone")) // z0..zN, "" possible below
				if z == "z0" {
					z = ""
				}
			}
			ns = append(ns, Node{ID: NodeID(fmt.Sprint("node-", i)), Zone: z})
		}
		// A coarse hasher makes ties common, so the ID tie-break is exercised.
		coarse := rapid.Bool().Draw(t, "coarse")
		h := Hasher(xxhash.Sum64)
		if coarse {
			h = func(b []byte) uint64 { return xxhash.Sum64(b) % 3 }
		}
		q := 1 << rapid.IntRange(0, 4).Draw(t, "log2q")
		n := rapid.IntRange(-1, 7).Draw(t, "n")
		cached, err := New(q, ns, WithHasher(h))
		if err != nil {
			t.Fatal(err)
		}
		uncached, err := New(q, ns, WithHasher(h), withCacheLimit(0))
		if err != nil {
			t.Fatal(err)
		}
		for p := range Partition(q) {
			want := naivePreferenceList(ns, p, n, h)
			for name, r := range map[string]*Ring{"cached": cached, "uncached": uncached} {
				got := r.PreferenceList(p, n)
				if !slices.Equal(got, want) {
					t.Fatalf("%s p%d n%d: got %v, want %v", name, p, n, got, want)
				}
				home := r.Home(p, n)
				if !slices.Equal(append(home, r.Fallbacks(p, n)...), want) {
					t.Fatalf("%s p%d n%d: Home+Fallbacks != PreferenceList", name, p, n)
				}
				for _, id := range want {
					if r.IsHome(p, n, id) != slices.Contains(home, id) {
						t.Fatalf("%s p%d n%d: IsHome(%s) disagrees with Home %v", name, p, n, id, home)
					}
				}
			}
			// Owned agrees with IsHome.
			for _, x := range ns {
				if slices.Contains(cached.Owned(x.ID, n), p) != cached.IsHome(p, n, x.ID) {
					t.Fatalf("p%d n%d: Owned(%s) disagrees with IsHome", p, n, x.ID)
				}
			}
			// The first n span min(n, zones) distinct zones.
			if zoned := slices.ContainsFunc(ns, func(x Node) bool { return x.Zone != "" }); zoned && n > 0 {
				zoneOf := map[NodeID]string{}
				all := map[string]bool{}
				for _, x := range ns {
					zoneOf[x.ID] = x.Zone
					all[x.Zone] = true
				}
				got := map[string]bool{}
				for _, id := range cached.Home(p, n) {
					got[zoneOf[id]] = true
				}
				if len(got) != min(n, len(all)) {
					t.Fatalf("p%d n%d: home %v spans %d zones, want %d", p, n, cached.Home(p, n), len(got), min(n, len(all)))
				}
			}
		}
	})
}

// seqNodes returns nodes node-1 .. node-k.
func seqNodes(k int) []Node {
	out := make([]Node, k)
	for i := range out {
		out[i].ID = NodeID(fmt.Sprint("node-", i+1))
	}
	return out
}

// Reference: Dynamo §4.2 ("uniform data distribution"). With the default
// hasher each node holds close to N*Q/n replicas, with no virtual nodes.
func TestBalance(t *testing.T) {
	const q, n, k = 256, 3, 5
	r := mustNew(t, q, seqNodes(k))
	mean := float64(n*q) / k
	total := 0
	for _, nd := range r.Nodes() {
		owned := len(r.Owned(nd.ID, n))
		total += owned
		t.Logf("%s owns %d partitions (mean %.1f, %+.1f%%)", nd.ID, owned, mean, 100*(float64(owned)/mean-1))
		// Binomial(256, 0.6) has sd 7.8; 15% is about 3 sd.
		if math.Abs(float64(owned)-mean) > 0.15*mean {
			t.Errorf("%s owns %d partitions, want within 15%% of %.1f", nd.ID, owned, mean)
		}
	}
	if total != n*q {
		t.Errorf("home replicas total %d, want N*Q = %d", total, n*q)
	}
}

// Reference: Dynamo §4.2 (adding a node moves only what the new node takes)
// and §2 ("incremental scalability"). Rendezvous hashing moves about
// N*Q/(n+1) replicas, all to the new node; removing a node moves only the
// replicas it held.
func TestMovement(t *testing.T) {
	const q, rf = 256, 3
	for _, k := range []int{3, 4, 5, 8} {
		t.Run(fmt.Sprintf("n=%d", k), func(t *testing.T) {
			before := mustNew(t, q, seqNodes(k))
			after := mustNew(t, q, seqNodes(k+1))
			added := NodeID(fmt.Sprint("node-", k+1))

			moves := Moves(before, after, rf)
			expect := float64(rf*q) / float64(k+1)
			t.Logf("add node-%d to %d nodes: %d replica moves, expected N*Q/(n+1) = %.1f, ratio %.3f",
				k+1, k, len(moves), expect, float64(len(moves))/expect)
			if float64(len(moves)) > 1.1*expect {
				t.Errorf("adding a node moved %d replicas, want <= 1.1*%.1f", len(moves), expect)
			}
			if got := len(after.Owned(added, rf)); got != len(moves) {
				t.Errorf("%d moves, but the new node owns %d partitions", len(moves), got)
			}
			for _, m := range moves {
				if m.To != added {
					t.Errorf("move %+v: want To = %s (nothing else moves)", m, added)
				}
				if !slices.Equal(m.From, before.Home(m.Partition, rf)) {
					t.Errorf("move %+v: From != previous home %v", m, before.Home(m.Partition, rf))
				}
				// The new node displaced exactly one previous home replica.
				if kept := intersect(m.From, after.Home(m.Partition, rf)); len(kept) != rf-1 {
					t.Errorf("move %+v: kept %v of the previous home, want %d", m, kept, rf-1)
				}
			}

			// Remove node-1 from the k+1 ring: only its replicas move.
			removed := NodeID("node-1")
			shrunk := mustNew(t, q, seqNodes(k + 1)[1:])
			moves = Moves(after, shrunk, rf)
			held := after.Owned(removed, rf)
			t.Logf("remove %s from %d nodes: %d replica moves, it held %d", removed, k+1, len(moves), len(held))
			if len(moves) != len(held) {
				t.Errorf("removing %s moved %d replicas, want the %d it held", removed, len(moves), len(held))
			}
			for _, m := range moves {
				if !slices.Contains(m.From, removed) {
					t.Errorf("move %+v: partition was not held by %s", m, removed)
				}
				if slices.Contains(m.From, m.To) {
					t.Errorf("move %+v: To already held the partition", m)
				}
			}
		})
	}
}

func intersect(a, b []NodeID) []NodeID {
	var out []NodeID
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func TestMovesHandChecked(t *testing.T) {
	scores := map[string][]uint64{
		//    p0  p1  p2  p3
		"a": {40, 10, 30, 1},
		"b": {30, 20, 20, 2},
		"c": {20, 30, 10, 3},
		"d": {35, 5, 40, 4},
	}
	h := WithHasher(tableHasher(t, scores))
	abc := mustNew(t, 4, nodes("a", "b", "c"), h)
	abcd := mustNew(t, 4, nodes("a", "b", "c", "d"), h)
	// n=2 homes: abc  p0 a b, p1 c b, p2 a b, p3 c b
	//            abcd p0 a d, p1 c b, p2 d a, p3 d c
	for _, tc := range []struct {
		name     string
		from, to *Ring
		want     []Move
	}{
		{"add d", abc, abcd, []Move{
			{Partition: 0, To: "d", From: ids("a b")},
			{Partition: 2, To: "d", From: ids("a b")},
			{Partition: 3, To: "d", From: ids("c b")},
		}},
		{"remove d", abcd, abc, []Move{
			{Partition: 0, To: "b", From: ids("a d")},
			{Partition: 2, To: "b", From: ids("d a")},
			{Partition: 3, To: "b", From: ids("d c")},
		}},
		{"no change", abc, abc, nil},
		{"from nothing", nil, abc, []Move{
			{Partition: 0, To: "a"}, {Partition: 0, To: "b"},
			{Partition: 1, To: "c"}, {Partition: 1, To: "b"},
			{Partition: 2, To: "a"}, {Partition: 2, To: "b"},
			{Partition: 3, To: "c"}, {Partition: 3, To: "b"},
		}},
		{"to nothing", abc, nil, nil},
		{"different q", abc, mustNew(t, 8, nodes("a")), nil},
	} {
		got := Moves(tc.from, tc.to, 2)
		if !slices.EqualFunc(got, tc.want, func(a, b Move) bool {
			return a.Partition == b.Partition && a.To == b.To && slices.Equal(a.From, b.From)
		}) {
			t.Errorf("%s: Moves = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestLookupsDoNotAllocate(t *testing.T) {
	r := mustNew(t, 256, nodes("a@1", "b@2", "c@3", "d@1", "e@2"))
	dst := make([]NodeID, 0, 8)
	for name, f := range map[string]func(){
		"IsHome":               func() { r.IsHome(7, 3, "c") },
		"AppendPreferenceList": func() { dst = r.AppendPreferenceList(dst[:0], 7, 3) },
		"PartitionForKey":      func() { r.PartitionForKey([]byte("user:1")) },
	} {
		if a := testing.AllocsPerRun(100, f); a != 0 {
			t.Errorf("%s: %.1f allocations per call, want 0", name, a)
		}
	}
	if a := testing.AllocsPerRun(100, func() { r.PreferenceList(7, 3) }); a != 1 {
		t.Errorf("PreferenceList: %.1f allocations per call, want 1 (the result)", a)
	}
}
