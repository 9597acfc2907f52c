package chaos

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

func defaultParams() ScheduleParams {
	c := DefaultConfig()
	return ScheduleParams{Nodes: c.Nodes, Duration: c.Duration, GapMin: c.FaultGapMin, GapMax: c.FaultGapMax,
		Kinds: AllFaults, MaxConcurrent: c.MaxConcurrentFaults, WipeGap: c.WipeGap}
}

func TestScheduleReplaysFromSeed(t *testing.T) {
	p := defaultParams()
	a, b := NewSchedule(42, p), NewSchedule(42, p)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("seed 42 gave two schedules:\n%v\n%v", a, b)
	}
	if reflect.DeepEqual(a, NewSchedule(43, p)) {
		t.Fatal("seeds 42 and 43 gave the same schedule")
	}
	if len(a) < 20 {
		t.Fatalf("10 minutes with faults every 5-15 s gave only %d faults", len(a))
	}
}

// TestScheduleInvariants checks, over many seeds and shapes, what
// NewSchedule promises.
func TestScheduleInvariants(t *testing.T) {
	short := ShortConfig()
	shapes := map[string]ScheduleParams{
		"default": defaultParams(),
		"short": {Nodes: 5, Duration: short.Duration, GapMin: short.FaultGapMin, GapMax: short.FaultGapMax,
			Kinds: AllFaults, MaxConcurrent: 2, WipeGap: short.WipeGap},
		"three nodes, one at a time": {Nodes: 3, Duration: 2 * time.Minute, GapMin: time.Second, GapMax: 3 * time.Second,
			Kinds: AllFaults, MaxConcurrent: 1, WipeGap: 10 * time.Second},
		"no network": {Nodes: 5, Duration: 2 * time.Minute, GapMin: 2 * time.Second, GapMax: 4 * time.Second,
			Kinds: []FaultKind{FaultKill, FaultPause, FaultWipe}, MaxConcurrent: 3, WipeGap: 20 * time.Second},
	}
	for name, p := range shapes {
		t.Run(name, func(t *testing.T) {
			for seed := int64(1); seed <= 300; seed++ {
				checkSchedule(t, seed, p, NewSchedule(seed, p))
			}
		})
	}
}

func checkSchedule(t *testing.T, seed int64, p ScheduleParams, s []Fault) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d: "+format+"\nschedule: %v", append(append([]any{seed}, args...), s)...)
	}
	lastWipe := time.Duration(-1)
	for i, f := range s {
		if !slices.Contains(p.Kinds, f.Kind) {
			fail("fault %d is a %s, not among %v", i, f.Kind, p.Kinds)
		}
		if i > 0 && f.At-s[i-1].At < p.GapMin {
			fail("faults %d and %d start %v apart, less than %v", i-1, i, f.At-s[i-1].At, p.GapMin)
		}
		if f.End() > p.Duration {
			fail("fault %d (%v) runs %v-%v outside the run of %v", i, f, f.At, f.End(), p.Duration)
		}
		r := faultLength[f.Kind]
		if f.For > r[1] || f.For < r[0] {
			fail("fault %d (%v) lasts %v, outside %v", i, f, f.For, r)
		}
		if f.Kind == FaultPause && f.For < 4*time.Second {
			fail("pause %d lasts %v: not longer than the failure detector", i, f.For)
		}
		var active []Fault
		for _, g := range s[:i] {
			if g.At <= f.At && f.At < g.End() {
				active = append(active, g)
			}
		}
		if len(active) >= p.MaxConcurrent {
			fail("fault %d starts with %d active, limit %d", i, len(active), p.MaxConcurrent)
		}
		for _, g := range active {
			if f.Kind.network() && g.Kind.network() {
				fail("network faults %v and %v overlap", g, f)
			}
			if !f.Kind.network() && !g.Kind.network() && slices.Contains(g.Nodes, f.Nodes[0]) {
				fail("%v starts while %v holds the node", f, g)
			}
			if f.Kind == FaultWipe && (g.Kind == FaultKill || g.Kind == FaultWipe) {
				fail("%v starts while %v has a node down", f, g)
			}
		}
		if f.Kind == FaultWipe {
			if lastWipe >= 0 && f.At-lastWipe < p.WipeGap {
				fail("wipes %v apart, less than %v", f.At-lastWipe, p.WipeGap)
			}
			lastWipe = f.At
		}
		switch f.Kind {
		case FaultPartition:
			if len(f.Nodes) != (p.Nodes-1)/2 || !slices.IsSorted(f.Nodes) {
				fail("partition %v: the minority side should be %d sorted nodes", f, (p.Nodes-1)/2)
			}
		default:
			if len(f.Nodes) != 1 {
				fail("%v should name one node", f)
			}
		}
		for _, n := range f.Nodes {
			if n < 0 || n >= p.Nodes {
				fail("%v names node %d of %d", f, n, p.Nodes)
			}
		}
	}
}

// TestScheduleCoversEveryKind: the short run of make test must play each
// kind at least once, whatever its seed.
func TestScheduleCoversEveryKind(t *testing.T) {
	c := ShortConfig()
	p := ScheduleParams{Nodes: c.Nodes, Duration: c.Duration, GapMin: c.FaultGapMin, GapMax: c.FaultGapMax,
		Kinds: AllFaults, MaxConcurrent: c.MaxConcurrentFaults, WipeGap: c.WipeGap}
	for seed := int64(1); seed <= 300; seed++ {
		s := NewSchedule(seed, p)
		for _, k := range AllFaults {
			if !slices.ContainsFunc(s, func(f Fault) bool { return f.Kind == k }) {
				t.Fatalf("seed %d: the short schedule has no %s: %v", seed, k, s)
			}
		}
	}
}

func TestScheduleWithoutFaults(t *testing.T) {
	p := defaultParams()
	p.Kinds = nil
	if s := NewSchedule(1, p); len(s) != 0 {
		t.Fatalf("no kinds gave %v", s)
	}
	p.Kinds, p.Nodes = []FaultKind{FaultPartition, FaultIsolate}, 1
	if s := NewSchedule(1, p); len(s) != 0 {
		t.Fatalf("network faults on one node gave %v", s)
	}
}

func TestFaultString(t *testing.T) {
	for _, tc := range []struct {
		f    Fault
		want string
	}{
		{Fault{Kind: FaultKill, Nodes: []int{2}}, "kill node-3"},
		{Fault{Kind: FaultPartition, Nodes: []int{0, 4}}, "partition {node-1,node-5} | rest"},
		{Fault{Kind: FaultIsolate, Nodes: []int{1}}, "isolate node-2"},
	} {
		if got := tc.f.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.f, got, tc.want)
		}
	}
}
