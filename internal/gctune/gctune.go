// Package gctune sets the Go collector's GOGC from the live heap, so that a
// node with a small heap collects less often and one with a large heap
// keeps Go's usual bound on memory.
//
// With GOGC=100 the heap may grow to twice what is live before the next
// collection. A node holding 100k keys has a live heap of about 25-33 MiB,
// so it collects after every 25-33 MiB of allocation: at 25k replicated
// writes per second that is several collections a second, and the
// collector's mark workers and assists took 7-9% of a replica's CPU.
// Raising GOGC for the whole process would cut that, but GOGC=200 took
// nodes holding 1M keys to 190-196 MiB RSS, near the 200 MiB budget. So
// the tuner gives the heap a fixed headroom instead of a fixed ratio: the
// next collection comes after max(live, Headroom) bytes of new
// allocation, which is GOGC = max(100, 100*Headroom/live), capped at
// MaxPercent. A heap larger than the headroom gets GOGC=100, as before.
//
// Measured with the default 48 MiB, alternating three rounds against
// --gc-headroom=0 (3 nodes, redis-benchmark -c 50, 100k keys): CPU per
// SET -P 1 0.0552 against 0.0581 ms, per GET -P 1 0.0428 against 0.0487,
// per SET -P 16 0.0332 against 0.0368. Its price is memory: with 1M keys
// (about 30 MiB live) the nodes' RSS was 171-177 MiB against 155-156
// (`mnemo bench --only ae`).
//
// The tuner re-reads the live heap after every collection (a cleanup on a
// sentinel object runs once per cycle) and changes GOGC only when the new
// value differs by more than a tenth. An operator's GOGC environment
// variable wins: the binary does not start the tuner then, and a
// GOMEMLIMIT still caps the heap as usual.
package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// MaxPercent bounds the GOGC the tuner sets, for a nearly empty heap.
const MaxPercent = 800

// Percent is the GOGC that gives a live heap of live bytes a headroom of
// headroom bytes, never below Go's default of 100.
func Percent(live, headroom uint64) int {
	if live == 0 {
		return MaxPercent
	}
	p := headroom * 100 / live
	return int(min(max(p, 100), MaxPercent))
}

// Tuner keeps GOGC at Percent(live heap, Headroom).
type Tuner struct {
	headroom uint64

	mu      sync.Mutex
	stopped bool
	percent int
	sample  []metrics.Sample
}

// Start sets GOGC from the live heap now and after every collection, until
// Stop. A headroom of zero returns nil: Go's defaults stay.
func Start(headroom uint64) *Tuner {
	if headroom == 0 {
		return nil
	}
	t := &Tuner{
		headroom: headroom,
		percent:  100,
		sample:   []metrics.Sample{{Name: "/gc/heap/live:bytes"}},
	}
	debug.SetGCPercent(100)
	t.tune()
	t.arm()
	return t
}

// arm registers a cleanup on a new sentinel: it runs once the collector
// has found the sentinel unreachable, that is after the next cycle.
func (t *Tuner) arm() {
	runtime.AddCleanup(new([16]byte), func(t *Tuner) {
		if t.tune() {
			t.arm()
		}
	}, t)
}

// tune sets GOGC for the live heap the last collection measured; it
// reports false once the tuner is stopped.
func (t *Tuner) tune() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	metrics.Read(t.sample)
	var live uint64
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	p := Percent(live, t.headroom)
	if d := p - t.percent; d*10 > t.percent || -d*10 > t.percent {
		debug.SetGCPercent(p)
		t.percent = p
	}
	return true
}

// GCPercent is the GOGC the tuner set last.
func (t *Tuner) GCPercent() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.percent
}

// Stop ends the tuning and restores GOGC=100. Safe on a nil Tuner.
func (t *Tuner) Stop() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	t.percent = 100
	debug.SetGCPercent(100)
}
