package ring

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

func TestStatusString(t *testing.T) {
	for s, want := range map[Status]string{
		Joining: "joining", Active: "active", Leaving: "leaving", Removed: "removed",
		0: "status(0)", 9: "status(9)",
	} {
		if got := s.String(); got != want {
			t.Errorf("Status(%d).String() = %q, want %q", uint8(s), got, want)
		}
	}
	// NB: wire values; only append.
	if Joining != 1 || Active != 2 || Leaving != 3 || Removed != 4 {
		t.Error("Status wire values changed")
	}
}

func TestMergeHandChecked(t *testing.T) {
	a := Member{ID: "a", Status: Active, RPCAddr: "h:1", Version: 3}
	tests := []struct {
		name        string
		have, got   Member
		want        Member
		wantChanged bool
	}{
		{"higher version wins", a, with(a, func(m *Member) { m.Version = 4; m.Status = Joining }),
			with(a, func(m *Member) { m.Version = 4; m.Status = Joining }), true},
		{"lower version loses", a, with(a, func(m *Member) { m.Version = 2; m.Status = Removed }), a, false},
		{"tie: higher status wins", a, with(a, func(m *Member) { m.Status = Leaving }),
			with(a, func(m *Member) { m.Status = Leaving }), true},
		{"tie: removed beats leaving", with(a, func(m *Member) { m.Status = Removed }), with(a, func(m *Member) { m.Status = Leaving }),
			with(a, func(m *Member) { m.Status = Removed }), false},
		{"tie: then fields, greater wins", a, with(a, func(m *Member) { m.RPCAddr = "h:2" }),
			with(a, func(m *Member) { m.RPCAddr = "h:2" }), true},
		{"tie: zone before address", with(a, func(m *Member) { m.Zone = "z2"; m.RPCAddr = "h:0" }), with(a, func(m *Member) { m.Zone = "z1"; m.RPCAddr = "h:9" }),
			with(a, func(m *Member) { m.Zone = "z2"; m.RPCAddr = "h:0" }), false},
		{"equal is no change", a, a, a, false},
	}
	for _, tc := range tests {
		for _, order := range []string{"have<-got", "got<-have"} {
			x, y := tc.have, tc.got
			wantChanged := tc.wantChanged
			if order == "got<-have" {
				x, y = y, x
				wantChanged = x != tc.want
			}
			s := NewState(16)
			s.Members["a"] = x
			o := NewState(16)
			o.Members["a"] = y
			changed, err := s.Merge(o)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.name, order, err)
			}
			if s.Members["a"] != tc.want || changed != wantChanged {
				t.Errorf("%s %s: got %+v changed=%v, want %+v changed=%v", tc.name, order, s.Members["a"], changed, tc.want, wantChanged)
			}
		}
	}
}

func with(m Member, f func(*Member)) Member {
	f(&m)
	return m
}

func TestMergePartitions(t *testing.T) {
	for _, tc := range []struct {
		have, got, want int
		changed         bool
		err             error
	}{
		{0, 256, 256, true, nil},
		{256, 0, 256, false, nil},
		{256, 256, 256, false, nil},
		{0, 0, 0, false, nil},
		{256, 512, 256, false, ErrPartitionMismatch},
	} {
		s := NewState(tc.have)
		s.Update(Member{ID: "a", Status: Active})
		o := NewState(tc.got)
		o.Update(Member{ID: "b", Status: Active})
		before := s.Clone()
		changed, err := s.Merge(o)
		if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("Merge q %d <- %d: err %v, want %v", tc.have, tc.got, err, tc.err)
		}
		if err != nil {
			if !reflect.DeepEqual(s, before) {
				t.Errorf("Merge q %d <- %d failed but changed the state: %+v", tc.have, tc.got, s)
			}
			continue
		}
		if s.Partitions != tc.want || !changed {
			t.Errorf("Merge q %d <- %d: q %d changed %v, want q %d (and a new member)", tc.have, tc.got, s.Partitions, changed, tc.want)
		}
	}
}

func TestMergeIntoZeroState(t *testing.T) {
	var s State
	o := NewState(8)
	o.Update(Member{ID: "a", Status: Joining})
	if changed, err := s.Merge(o); err != nil || !changed || !reflect.DeepEqual(s, o) {
		t.Errorf("zero State Merge: changed %v err %v state %+v, want %+v", changed, err, s, o)
	}
}

func TestUpdate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		existing uint64 // 0: no entry
		given    uint64
		want     uint64
	}{
		{"new entry", 0, 0, 1},
		{"new entry keeps a given version", 0, 7, 8},
		{"bumps the existing version", 5, 0, 6},
		{"bumps a stale given version", 5, 2, 6},
		{"bumps a newer given version", 5, 9, 10},
	} {
		s := NewState(16)
		if tc.existing != 0 {
			s.Members["a"] = Member{ID: "a", Status: Joining, Version: tc.existing}
		}
		got := s.Update(Member{ID: "a", Status: Active, Zone: "z", Version: tc.given})
		if got.Version != tc.want || got.Status != Active || got.Zone != "z" {
			t.Errorf("%s: Update = %+v, want version %d", tc.name, got, tc.want)
		}
		if m, ok := s.Member("a"); !ok || m != got {
			t.Errorf("%s: Member(a) = %+v, %v; want %+v", tc.name, m, ok, got)
		}
	}
	var zero State
	if m := zero.Update(Member{ID: "x", Status: Joining}); m.Version != 1 || len(zero.Members) != 1 {
		t.Errorf("Update on zero State: %+v, %v", m, zero.Members)
	}
}

func TestWithStatus(t *testing.T) {
	s := NewState(16)
	for _, m := range []Member{
		{ID: "d", Status: Leaving}, {ID: "a", Status: Active}, {ID: "c", Status: Joining},
		{ID: "b", Status: Active}, {ID: "e", Status: Removed},
	} {
		s.Update(m)
	}
	idsOf := func(ms []Member) []NodeID {
		var out []NodeID
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	for _, tc := range []struct {
		st   []Status
		want string
	}{
		{[]Status{Active, Leaving}, "a b d"},
		{[]Status{Active}, "a b"},
		{[]Status{Removed}, "e"},
		{nil, "a b c d e"},
		{[]Status{Status(9)}, ""},
	} {
		if got := idsOf(s.WithStatus(tc.st...)); !slices.Equal(got, ids(tc.want)) {
			t.Errorf("WithStatus(%v) = %v, want %v", tc.st, got, ids(tc.want))
		}
	}
	ns := NodesOf([]Member{{ID: "a", Zone: "z1"}, {ID: "b"}})
	if want := nodes("a@z1", "b"); !slices.Equal(ns, want) {
		t.Errorf("NodesOf = %v, want %v", ns, want)
	}
}

func TestClone(t *testing.T) {
	s := NewState(16)
	s.Update(Member{ID: "a", Status: Active})
	c := s.Clone()
	c.Update(Member{ID: "b", Status: Active})
	c.Update(Member{ID: "a", Status: Leaving})
	if len(s.Members) != 1 || s.Members["a"].Status != Active {
		t.Errorf("Clone shares the members map: %+v", s.Members)
	}
}

// genState draws a small State whose entries collide often (few ids, few
// versions), so merges exercise every tie-break.
func genState(q ...int) *rapid.Generator[State] {
	if len(q) == 0 {
		q = []int{0, 16}
	}
	return rapid.Custom(func(t *rapid.T) State {
		s := NewState(rapid.SampledFrom(q).Draw(t, "q"))
		for range rapid.IntRange(0, 6).Draw(t, "members") {
			id := rapid.SampledFrom([]NodeID{"a", "b", "c", "d"}).Draw(t, "id")
			s.Members[id] = Member{
				ID:         id,
				Zone:       rapid.SampledFrom([]string{"", "z1", "z2"}).Draw(t, "zone"),
				Status:     Status(rapid.IntRange(1, 4).Draw(t, "status")),
				RPCAddr:    rapid.SampledFrom([]string{"", "h1:1", "h2:1"}).Draw(t, "rpc"),
				HTTPAddr:   rapid.SampledFrom([]string{"", "h1:2"}).Draw(t, "http"),
				GossipAddr: rapid.SampledFrom([]string{"", "h1:3"}).Draw(t, "gossip"),
				RESPAddr:   rapid.SampledFrom([]string{"", "h1:4"}).Draw(t, "resp"),
				Version:    rapid.Uint64Range(0, 3).Draw(t, "version"),
			}
		}
		return s
	})
}

// merged returns a ⊔ b without touching either.
func merged(t *rapid.T, a, b State) State {
	out := a.Clone()
	if _, err := out.Merge(b); err != nil {
		t.Fatalf("Merge: %v", err)
	}
	return out
}

// Reference: Shapiro et al., "Conflict-free Replicated Data Types" (2011),
// §2.2: a state-based object converges if merge computes a least upper
// bound, i.e. is commutative, associative and idempotent.
func TestMergeLaws(t *testing.T) {
	t.Run("commutative", rapid.MakeCheck(func(t *rapid.T) {
		a, b := genState().Draw(t, "a"), genState().Draw(t, "b")
		if ab, ba := merged(t, a, b), merged(t, b, a); !reflect.DeepEqual(ab, ba) {
			t.Fatalf("a⊔b = %+v\nb⊔a = %+v", ab, ba)
		}
	}))
	t.Run("associative", rapid.MakeCheck(func(t *rapid.T) {
		a, b, c := genState().Draw(t, "a"), genState().Draw(t, "b"), genState().Draw(t, "c")
		l, r := merged(t, merged(t, a, b), c), merged(t, a, merged(t, b, c))
		if !reflect.DeepEqual(l, r) {
			t.Fatalf("(a⊔b)⊔c = %+v\na⊔(b⊔c) = %+v", l, r)
		}
		if l.Digest() != r.Digest() {
			t.Fatal("equal states, different digests")
		}
	}))
	t.Run("idempotent", rapid.MakeCheck(func(t *rapid.T) {
		a, b := genState().Draw(t, "a"), genState().Draw(t, "b")
		if aa := merged(t, a, a); !reflect.DeepEqual(aa, a) {
			t.Fatalf("a⊔a = %+v, want %+v", aa, a)
		}
		ab := merged(t, a, b)
		again := ab.Clone()
		if changed, _ := again.Merge(b); changed || !reflect.DeepEqual(again, ab) {
			t.Fatalf("(a⊔b)⊔b changed=%v: %+v, want %+v", changed, again, ab)
		}
	}))
	t.Run("upper bound and changed flag", rapid.MakeCheck(func(t *rapid.T) {
		a, b := genState().Draw(t, "a"), genState().Draw(t, "b")
		s := a.Clone()
		changed, err := s.Merge(b)
		if err != nil {
			t.Fatal(err)
		}
		if changed == reflect.DeepEqual(s, a) {
			t.Fatalf("changed=%v but state went from %+v to %+v", changed, a, s)
		}
		for _, in := range []State{a, b} {
			for id, m := range in.Members {
				if compareMembers(s.Members[id], m) < 0 {
					t.Fatalf("merge lost %+v: have %+v", m, s.Members[id])
				}
			}
		}
	}))
	t.Run("mismatched partitions fail both ways", rapid.MakeCheck(func(t *rapid.T) {
		a, b := genState(16).Draw(t, "a"), genState(32).Draw(t, "b")
		for _, x := range [][2]State{{a, b}, {b, a}} {
			s := x[0].Clone()
			if _, err := s.Merge(x[1]); !errors.Is(err, ErrPartitionMismatch) {
				t.Fatalf("Merge q %d <- %d: %v, want ErrPartitionMismatch", x[0].Partitions, x[1].Partitions, err)
			}
			if !reflect.DeepEqual(s, x[0]) {
				t.Fatal("failed Merge changed the state")
			}
		}
	}))
}

// An Update on one node reaches another through Merge and wins there, once
// the two have exchanged state (as gossip push/pull does).
func TestUpdateThenMergePropagates(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s1, s2 := genState(16).Draw(t, "s1"), genState(16).Draw(t, "s2")
		s1 = merged(t, s1, s2)
		s2 = merged(t, s2, s1)
		m := s1.Update(Member{
			ID:     rapid.SampledFrom([]NodeID{"a", "b", "e"}).Draw(t, "id"),
			Status: Status(rapid.IntRange(1, 4).Draw(t, "status")),
		})
		changed, err := s2.Merge(s1)
		if err != nil || !changed {
			t.Fatalf("Merge after Update: changed=%v err=%v", changed, err)
		}
		if got, _ := s2.Member(m.ID); got != m {
			t.Fatalf("s2 has %+v, want the update %+v", got, m)
		}
		if !reflect.DeepEqual(s1, s2) || s1.Digest() != s2.Digest() {
			t.Fatalf("not converged:\n%+v\n%+v", s1, s2)
		}
	})
}
