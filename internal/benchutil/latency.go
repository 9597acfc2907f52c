package benchutil

import (
	"slices"
	"sync"
	"time"
)

// Recorder collects the latencies of one phase. Each goroutine records into
// its own Shard, so recording takes no lock; Summary merges the shards once
// their goroutines have stopped. Latencies are kept exactly (8 bytes each),
// which suits phases of up to some millions of operations.
type Recorder struct {
	mu     sync.Mutex // guards shards
	shards []*Shard
}

// Shard is one goroutine's part of a Recorder; not safe for concurrent use.
type Shard struct {
	d    []time.Duration
	at   []Sample // open loops: when each operation was scheduled
	errs int64
}

// Sample is one operation of an open loop: when it was scheduled (from the
// loop's start) and its latency.
type Sample struct {
	At, Latency time.Duration
}

// Shard returns a new shard of r. Safe for concurrent use.
func (r *Recorder) Shard() *Shard {
	s := &Shard{d: make([]time.Duration, 0, 1024)}
	r.mu.Lock()
	r.shards = append(r.shards, s)
	r.mu.Unlock()
	return s
}

// Add records one successful operation's latency.
func (s *Shard) Add(d time.Duration) { s.d = append(s.d, d) }

// AddAt records one successful operation scheduled at offset at.
func (s *Shard) AddAt(at, d time.Duration) {
	s.d = append(s.d, d)
	s.at = append(s.at, Sample{At: at, Latency: d})
}

// Samples returns the operations recorded with AddAt, in no order. Call it
// after every goroutine recording into r has stopped.
func (r *Recorder) Samples() []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []Sample
	for _, sh := range r.shards {
		all = append(all, sh.at...)
	}
	return all
}

// Bucket is one stretch of a Timeline.
type Bucket struct {
	Start time.Duration // from the loop's start
	Count int
	P99   time.Duration
	Max   time.Duration
}

// Timeline groups samples into buckets of width by scheduled time, each
// with its p99 and max: where in a phase the slow operations fall.
func Timeline(width time.Duration, samples ...[]Sample) []Bucket {
	if width <= 0 {
		return nil
	}
	var by [][]time.Duration
	for _, ss := range samples {
		for _, x := range ss {
			i := int(x.At / width)
			for len(by) <= i {
				by = append(by, nil)
			}
			by[i] = append(by[i], x.Latency)
		}
	}
	out := make([]Bucket, len(by))
	for i, d := range by {
		slices.Sort(d)
		out[i] = Bucket{Start: time.Duration(i) * width, Count: len(d)}
		if len(d) > 0 {
			out[i].P99, out[i].Max = Percentile(d, 0.99), d[len(d)-1]
		}
	}
	return out
}

// Error records one failed operation (its latency is not kept).
func (s *Shard) Error() { s.errs++ }

// Summary of a phase's latencies. Percentiles are nearest-rank over the
// successful operations.
type Summary struct {
	Count  int   // successful operations
	Errors int64 // failed operations
	Mean   time.Duration
	P50    time.Duration
	P99    time.Duration
	P999   time.Duration
	Max    time.Duration
}

// Summary merges the shards. Call it after every goroutine recording into r
// has stopped.
func (r *Recorder) Summary() Summary {
	return summarize(r.Sorted())
}

// Sorted returns every latency recorded, sorted, and the errors. Call it
// after every goroutine recording into r has stopped.
func (r *Recorder) Sorted() ([]time.Duration, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []time.Duration
	var errs int64
	for _, sh := range r.shards {
		all = append(all, sh.d...)
		errs += sh.errs
	}
	slices.Sort(all)
	return all, errs
}

// Combine summarizes several phases' latencies together (say, the gets
// and the puts of a mixed load run as two open loops).
func Combine(rs ...Result) Summary {
	var all []time.Duration
	var errs int64
	for _, r := range rs {
		all = append(all, r.Latencies...)
		errs += r.Errors
	}
	slices.Sort(all)
	return summarize(all, errs)
}

// summarize summarizes sorted latencies.
func summarize(d []time.Duration, errs int64) Summary {
	s := Summary{Count: len(d), Errors: errs}
	if len(d) == 0 {
		return s
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	s.Mean = sum / time.Duration(len(d))
	s.P50 = Percentile(d, 0.50)
	s.P99 = Percentile(d, 0.99)
	s.P999 = Percentile(d, 0.999)
	s.Max = d[len(d)-1]
	return s
}

// Percentile returns the nearest-rank p-quantile (0 < p <= 1) of sorted:
// the smallest value with at least p of the values at or below it. Zero for
// an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// rank = ceil(p*n), computed without float error for p*n whole.
	rank := int(p * float64(n))
	if float64(rank) < p*float64(n) {
		rank++
	}
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// Ms converts a duration to milliseconds, for reports.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
