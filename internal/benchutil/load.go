package benchutil

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Op is one operation of a load. rnd belongs to the calling goroutine.
// A non-nil error counts the operation as failed.
type Op func(ctx context.Context, rnd *rand.Rand) error

// Result is what a load phase measured.
type Result struct {
	Summary
	// Elapsed is from the first send to the last answer.
	Elapsed time.Duration
	// OpsPerSec is successful operations per second of Elapsed.
	OpsPerSec float64
	// Rate is the rate an open loop was asked for (0 for a closed loop).
	Rate float64
	// Latencies are the successful operations' latencies, sorted.
	Latencies []time.Duration
	// Samples are an open loop's successful operations with their
	// scheduled times (see Timeline); nil for a closed loop.
	Samples []Sample
}

func newRand(seed uint64, worker int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(worker)))
}

// ClosedLoop runs op from callers goroutines, each sending its next
// operation when the previous one answered, for d (or until ctx ends).
// Latency is each operation's own duration. Worker w's rand is seeded with
// (seed, w).
func ClosedLoop(ctx context.Context, callers int, d time.Duration, seed uint64, op Op) Result {
	var rec Recorder
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range callers {
		sh := rec.Shard()
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := newRand(seed, w)
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				if err := op(ctx, rnd); err != nil {
					sh.Error()
					continue
				}
				sh.Add(time.Since(t0))
			}
		}()
	}
	wg.Wait()
	return result(&rec, time.Since(start), 0)
}

// OpenLoop sends operations at a fixed rate (per second) for d, or until
// ctx ends, from up to workers goroutines. Each latency is measured from
// the operation's scheduled send time, so an operation that waited for a
// free worker (the server being slow) counts its wait: the figures are
// those a client sending at that rate would see. Worker w's rand is seeded
// with (seed, w).
func OpenLoop(ctx context.Context, rate float64, d time.Duration, workers int, seed uint64, op Op) Result {
	return OpenLoopUntil(ctx, rate, d, workers, seed, nil, op)
}

// OpenLoopUntil is OpenLoop that also stops sending when stop is closed
// (a nil stop never is); operations already sent finish and count.
func OpenLoopUntil(ctx context.Context, rate float64, d time.Duration, workers int, seed uint64, stop <-chan struct{}, op Op) Result {
	if rate <= 0 || workers <= 0 {
		return Result{Rate: rate}
	}
	var rec Recorder
	var wg sync.WaitGroup
	// NB: the queue is short on purpose: when every worker is busy the
	// dispatcher blocks, and the sends it holds keep their scheduled
	// times, so the backlog shows in the latencies.
	sched := make(chan time.Time, workers)
	start := time.Now()
	for w := range workers {
		sh := rec.Shard()
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := newRand(seed, w)
			for t := range sched {
				if ctx.Err() != nil {
					continue // drain
				}
				if err := op(ctx, rnd); err != nil {
					sh.Error()
					continue
				}
				sh.AddAt(t.Sub(start), time.Since(t))
			}
		}()
	}
	n := int(d.Seconds() * rate)
dispatch:
	for i := range n {
		t := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if wait := time.Until(t); wait > 0 {
			timer := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				break dispatch
			case <-stop:
				timer.Stop()
				break dispatch
			case <-timer.C:
			}
		}
		select {
		case sched <- t:
		case <-ctx.Done():
			break dispatch
		case <-stop:
			break dispatch
		}
	}
	close(sched)
	wg.Wait()
	r := result(&rec, time.Since(start), rate)
	r.Samples = rec.Samples()
	return r
}

func result(rec *Recorder, elapsed time.Duration, rate float64) Result {
	lat, errs := rec.Sorted()
	s := summarize(lat, errs)
	r := Result{Summary: s, Elapsed: elapsed, Rate: rate, Latencies: lat}
	if elapsed > 0 {
		r.OpsPerSec = float64(s.Count) / elapsed.Seconds()
	}
	return r
}

// EachResult is what Each did.
type EachResult struct {
	Done, Failed int
	Elapsed      time.Duration
	// PerSec is completed items per second of Elapsed.
	PerSec float64
}

// Each calls fn once for every i in [0, n), from callers goroutines, in
// about increasing i, until done or ctx ends. It is the loader: fn does
// its own retries, and a returned error counts the item as failed.
func Each(ctx context.Context, callers, n int, fn func(ctx context.Context, i int) error) EachResult {
	if callers <= 0 {
		return EachResult{}
	}
	var started int
	var failed atomic.Int64
	var g errgroup.Group
	g.SetLimit(callers)
	start := time.Now()
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		started++
		g.Go(func() error {
			if err := fn(ctx, i); err != nil {
				failed.Add(1)
			}
			return nil
		})
	}
	_ = g.Wait() // failures are counted, not returned
	r := EachResult{Failed: int(failed.Load()), Elapsed: time.Since(start)}
	r.Done = started - r.Failed
	if r.Elapsed > 0 {
		r.PerSec = float64(r.Done) / r.Elapsed.Seconds()
	}
	return r
}
