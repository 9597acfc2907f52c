package chaos

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// FaultRecord is a scheduled fault as it was played: when it actually
// began and was healed (offsets from the start of the workloads), and
// what went wrong doing it.
type FaultRecord struct {
	Fault
	Began, Ended time.Duration
	// Done is false for a fault that never began (the run ended first).
	Done   bool
	Errors []string
}

// nemesis plays a schedule against the cluster (Jepsen's name for it).
type nemesis struct {
	nodes *nodes
	net   *netnsNet // nil: no namespaces, no network faults
	start time.Time
	logf  func(format string, args ...any)
	// mu guards records.
	mu      sync.Mutex
	records []FaultRecord
}

// event is one fault's beginning or end.
type event struct {
	at    time.Duration
	fault int
	begin bool
}

// run plays schedule until its end or until stop closes; either way it
// heals every fault that began before returning.
func (nm *nemesis) run(schedule []Fault, stop <-chan struct{}) {
	var events []event
	nm.mu.Lock()
	for i, f := range schedule {
		nm.records = append(nm.records, FaultRecord{Fault: f})
		events = append(events, event{f.At, i, true}, event{f.End(), i, false})
	}
	nm.mu.Unlock()
	slices.SortStableFunc(events, func(a, b event) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		// At the same instant, heal before the next fault begins.
		switch {
		case !a.begin && b.begin:
			return -1
		case a.begin && !b.begin:
			return 1
		}
		return 0
	})
	began := map[int]bool{}
	for _, ev := range events {
		if !ev.begin && !began[ev.fault] {
			continue
		}
		if ev.begin {
			wait := time.NewTimer(time.Until(nm.start.Add(ev.at)))
			select {
			case <-stop:
				wait.Stop()
				nm.healBegun(began)
				return
			case <-wait.C:
			}
		} else {
			wait := time.NewTimer(time.Until(nm.start.Add(ev.at)))
			select {
			case <-stop:
			case <-wait.C:
			}
			wait.Stop()
		}
		if ev.begin {
			began[ev.fault] = true
			nm.begin(ev.fault)
		} else {
			delete(began, ev.fault)
			nm.end(ev.fault)
		}
	}
}

// healBegun ends the faults that began and were not healed yet.
func (nm *nemesis) healBegun(began map[int]bool) {
	var idx []int
	for i := range began {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	for _, i := range idx {
		nm.end(i)
	}
}

func (nm *nemesis) record(i int, f func(r *FaultRecord)) {
	nm.mu.Lock()
	defer nm.mu.Unlock()
	f(&nm.records[i])
}

func (nm *nemesis) begin(i int) {
	nm.mu.Lock()
	f := nm.records[i].Fault
	nm.mu.Unlock()
	at := time.Since(nm.start)
	var errs []error
	switch f.Kind {
	case FaultKill:
		errs = append(errs, nm.nodes.Kill(f.Nodes[0]))
	case FaultPause:
		errs = append(errs, nm.nodes.Pause(f.Nodes[0]))
	case FaultWipe:
		errs = append(errs, nm.nodes.Kill(f.Nodes[0]), nm.nodes.Wipe(f.Nodes[0]))
	case FaultPartition, FaultIsolate:
		if nm.net == nil {
			errs = append(errs, errors.New("chaos: no network namespaces"))
		} else {
			errs = append(errs, nm.net.Partition(f.Nodes))
		}
	}
	err := errors.Join(errs...)
	nm.record(i, func(r *FaultRecord) {
		r.Began, r.Done = at, true
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
		}
	})
	nm.logf("%-44s (for %s)", f.String(), f.For.Round(100*time.Millisecond))
	if err != nil {
		nm.logf("  ! %v", err)
	}
}

func (nm *nemesis) end(i int) {
	nm.mu.Lock()
	f := nm.records[i].Fault
	nm.mu.Unlock()
	var err error
	var what string
	switch f.Kind {
	case FaultKill, FaultWipe:
		what = fmt.Sprintf("restart node-%d", f.Nodes[0]+1)
		if f.Kind == FaultWipe {
			what += " on an empty directory"
		}
		err = nm.nodes.Start(f.Nodes[0])
	case FaultPause:
		what = fmt.Sprintf("resume node-%d", f.Nodes[0]+1)
		err = nm.nodes.Resume(f.Nodes[0])
	case FaultPartition, FaultIsolate:
		what = "heal " + f.String()
		if nm.net != nil {
			err = nm.net.Heal()
		}
	}
	at := time.Since(nm.start)
	nm.record(i, func(r *FaultRecord) {
		r.Ended = at
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
		}
	})
	nm.logf("%s", what)
	if err != nil {
		nm.logf("  ! %v", err)
	}
}

// healAll makes sure, after the schedule, that every node runs and is not
// paused and no traffic is dropped: the final heal. Nodes an operator
// restarted by hand are left alone and named in notes.
func (nm *nemesis) healAll() (notes []string, err error) {
	var errs []error
	for i := range nm.nodes.lc.Nodes {
		if nm.nodes.Running(i) {
			nm.nodes.Resume(i)
			continue
		}
		if err := nm.nodes.Start(i); errors.Is(err, errExternal) {
			notes = append(notes, err.Error())
		} else if err != nil {
			errs = append(errs, err)
		}
	}
	if nm.net != nil {
		errs = append(errs, nm.net.Heal())
	}
	return notes, errors.Join(errs...)
}

// Records returns the faults as played.
func (nm *nemesis) Records() []FaultRecord {
	nm.mu.Lock()
	defer nm.mu.Unlock()
	return slices.Clone(nm.records)
}
