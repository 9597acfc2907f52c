package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Fault is one scheduled fault: it begins At after the workloads start and
// is healed For later.
type Fault struct {
	Kind FaultKind
	At   time.Duration
	For  time.Duration
	// Nodes are the affected nodes (0-based): the killed, paused, wiped or
	// isolated node, or the minority side of a partition.
	Nodes []int
}

// End is when the fault is healed.
func (f Fault) End() time.Duration { return f.At + f.For }

// String is the fault as the report and the progress lines print it, with
// nodes named node-1.. as the cluster names them.
func (f Fault) String() string {
	names := make([]string, len(f.Nodes))
	for i, n := range f.Nodes {
		names[i] = fmt.Sprintf("node-%d", n+1)
	}
	switch f.Kind {
	case FaultPartition:
		return fmt.Sprintf("partition {%s} | rest", strings.Join(names, ","))
	case FaultIsolate:
		return "isolate " + strings.Join(names, ",")
	}
	return string(f.Kind) + " " + strings.Join(names, ",")
}

// ScheduleParams are the inputs of a schedule besides the seed.
type ScheduleParams struct {
	Nodes    int
	Duration time.Duration
	// GapMin and GapMax bound the time between two fault starts.
	GapMin, GapMax time.Duration
	// Kinds are drawn from; each appears at least once when the run is long
	// enough (the first faults cycle through them in a seeded order).
	Kinds         []FaultKind
	MaxConcurrent int
	// WipeGap is the least time between the starts of two wipes.
	WipeGap time.Duration
}

// faultLength is the range of a kind's duration. Pauses outlast the local
// failure detector (a death is seen within about 2-3.2 s), so the rest of
// the cluster declares the paused node dead and it must refute that.
var faultLength = map[FaultKind][2]time.Duration{
	FaultKill:      {2 * time.Second, 8 * time.Second},
	FaultPause:     {4 * time.Second, 8 * time.Second},
	FaultWipe:      {2 * time.Second, 6 * time.Second},
	FaultPartition: {4 * time.Second, 12 * time.Second},
	FaultIsolate:   {4 * time.Second, 12 * time.Second},
}

// NewSchedule draws the faults of a run from seed. It is pure: the same
// seed and params give the same schedule. Faults are ordered by At, end
// by Duration, never touch a node another active fault holds, keep at most
// MaxConcurrent active and one network fault at a time, and start a wipe
// only when no other node is down and no wipe started within WipeGap (so
// no acknowledged write can lose every copy to the schedule itself).
func NewSchedule(seed int64, p ScheduleParams) []Fault {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6d6e656d6f))
	between := func(lo, hi time.Duration) time.Duration {
		if hi <= lo {
			return lo
		}
		return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
	}
	var out []Fault
	if len(p.Kinds) == 0 || p.Nodes < 1 {
		return out
	}
	kinds := slices.Clone(p.Kinds)
	if p.Nodes < 2 {
		kinds = slices.DeleteFunc(kinds, FaultKind.network)
	}
	if len(kinds) == 0 {
		return out
	}
	// The first faults take each kind once, in a seeded order.
	cover := slices.Clone(kinds)
	rng.Shuffle(len(cover), func(i, j int) { cover[i], cover[j] = cover[j], cover[i] })
	lastWipe := time.Duration(-1)
	for t := between(p.GapMin, p.GapMax); t < p.Duration; t += between(p.GapMin, p.GapMax) {
		var active []Fault
		busy := map[int]bool{}
		down, network := 0, false
		for _, f := range out {
			if f.At <= t && t < f.End() {
				active = append(active, f)
				network = network || f.Kind.network()
				if f.Kind == FaultKill || f.Kind == FaultWipe {
					down++
				}
				if !f.Kind.network() {
					for _, n := range f.Nodes {
						busy[n] = true
					}
				}
			}
		}
		// Draw the kind and the nodes even when the fault is then dropped,
		// so the draws that follow stay the same.
		// Kinds not yet drawn come first, then all in a random order.
		rest := slices.Clone(kinds)
		rng.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
		order := append(slices.Clone(cover), rest...)
		perm := rng.Perm(p.Nodes)
		if len(active) >= p.MaxConcurrent {
			continue
		}
		var free []int
		for _, n := range perm {
			if !busy[n] {
				free = append(free, n)
			}
		}
		var f *Fault
		for _, k := range order {
			switch k {
			case FaultKill, FaultPause:
				if len(free) > 0 {
					f = &Fault{Kind: k, Nodes: []int{free[0]}}
				}
			case FaultWipe:
				if len(free) > 0 && down == 0 && (lastWipe < 0 || t-lastWipe >= p.WipeGap) {
					f = &Fault{Kind: k, Nodes: []int{free[0]}}
				}
			case FaultPartition:
				if !network && p.Nodes >= 3 {
					minority := slices.Clone(perm[:(p.Nodes-1)/2])
					slices.Sort(minority)
					f = &Fault{Kind: k, Nodes: minority}
				}
			case FaultIsolate:
				if !network {
					f = &Fault{Kind: k, Nodes: []int{perm[0]}}
				}
			}
			if f != nil {
				break
			}
		}
		if f == nil {
			continue
		}
		// A fault too close to the end to last its least length is
		// dropped, not cut short (a short pause would not be a death).
		r := faultLength[f.Kind]
		f.At = t
		f.For = min(between(r[0], r[1]), p.Duration-t)
		if f.For < r[0] {
			continue
		}
		if i := slices.Index(cover, f.Kind); i >= 0 {
			cover = slices.Delete(cover, i, i+1)
		}
		if f.Kind == FaultWipe {
			lastWipe = t
		}
		out = append(out, *f)
	}
	return out
}
