package benchutil

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		var out []time.Duration
		for _, x := range xs {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		d    []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{ms(7), 0.99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},     // rank ceil(2) = 2
		{ms(1, 2, 3, 4), 0.51, 3 * time.Millisecond},    // rank ceil(2.04) = 3
		{ms(hundred...), 0.99, 99 * time.Millisecond},   // rank 99
		{ms(hundred...), 0.999, 100 * time.Millisecond}, // rank ceil(99.9) = 100
		{ms(hundred...), 1, 100 * time.Millisecond},
	} {
		if got := Percentile(tc.d, tc.p); got != tc.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", tc.d, tc.p, got, tc.want)
		}
	}
}

func TestRecorderSummary(t *testing.T) {
	var r Recorder
	a, b := r.Shard(), r.Shard()
	for i := 1; i <= 50; i++ {
		a.Add(time.Duration(i) * time.Millisecond)
		b.Add(time.Duration(50+i) * time.Millisecond)
	}
	b.Error()
	s := r.Summary()
	if s.Count != 100 || s.Errors != 1 || s.P50 != 50*time.Millisecond || s.P99 != 99*time.Millisecond || s.Max != 100*time.Millisecond {
		t.Fatalf("summary %+v", s)
	}
}

// busy is an operation that takes d, or less if ctx ends first.
func busy(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestOpenLoopCountsQueueing: one worker, 100 sends a second, each taking
// 20 ms: the sends queue, and the latencies measured from the scheduled
// times must grow far past the 20 ms an operation takes.
func TestOpenLoopCountsQueueing(t *testing.T) {
	res := OpenLoop(context.Background(), 100, 300*time.Millisecond, 1, 1, func(ctx context.Context, rnd *rand.Rand) error {
		return busy(ctx, 20*time.Millisecond)
	})
	if res.Count != 30 {
		t.Fatalf("count %d, want 30", res.Count)
	}
	if len(res.Samples) != res.Count {
		t.Fatalf("%d samples for %d operations", len(res.Samples), res.Count)
	}
	// The last send is scheduled at 290 ms and starts after 30 x 20 ms.
	if res.Max < 250*time.Millisecond {
		t.Fatalf("max latency %v: queueing behind slow operations was not counted", res.Max)
	}
}

func TestClosedLoopAndEach(t *testing.T) {
	res := ClosedLoop(context.Background(), 4, 100*time.Millisecond, 1, func(ctx context.Context, rnd *rand.Rand) error {
		return busy(ctx, time.Millisecond)
	})
	if res.Count < 40 || res.OpsPerSec <= 0 {
		t.Fatalf("closed loop %+v", res)
	}
	seen := make([]bool, 1000)
	er := Each(context.Background(), 8, len(seen), func(ctx context.Context, i int) error {
		seen[i] = true // each i is given to exactly one goroutine
		if i%100 == 0 {
			return os.ErrInvalid
		}
		return nil
	})
	both := Combine(res, Result{Summary: Summary{Errors: 2}, Latencies: []time.Duration{time.Hour}})
	if both.Count != res.Count+1 || both.Max != time.Hour || both.Errors != res.Errors+2 {
		t.Fatalf("Combine: %+v", both)
	}
	if er.Done != 990 || er.Failed != 10 {
		t.Fatalf("each %+v", er)
	}
	for i, ok := range seen {
		if !ok {
			t.Fatalf("item %d not done", i)
		}
	}
}

func TestParseProc(t *testing.T) {
	cpu, err := parseStatCPU([]byte("1234 (a (weird) name) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20 0 1 0 0"))
	if err != nil || cpu != 4*time.Second {
		t.Fatalf("parseStatCPU = %v, %v; want 4s", cpu, err)
	}
	rss, hwm := parseStatusMem([]byte("Name:\tmnemo\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n"))
	if rss != 1<<20 || hwm != 2<<20 {
		t.Fatalf("parseStatusMem = %d, %d", rss, hwm)
	}
	m, err := parseMachineCPU([]byte("cpu  100 0 100 700 100 0 0 0 50 0\ncpu0 1 2 3\n"))
	if err != nil || m.Busy != 2*time.Second || m.Total != 10*time.Second {
		t.Fatalf("parseMachineCPU = %+v, %v", m, err)
	}
	self, err := ReadProc(0)
	if err != nil || self.RSS <= 0 {
		t.Fatalf("ReadProc(self) = %+v, %v", self, err)
	}
}

func TestParseRedisBenchmarkCSV(t *testing.T) {
	out := `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","6451.61","5.112","0.392","2.247","16.511","52.671","123.199"
"GET","4829.75","6.469","0.232","3.015","19.951","91.391","178.431"
`
	res, err := ParseRedisBenchmarkCSV(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Test != "SET" || res[0].RPS != 6451.61 || res[1].P99Ms != 91.391 || res[1].P50Ms != 3.015 {
		t.Fatalf("parsed %+v", res)
	}
	old, err := ParseRedisBenchmarkCSV(strings.NewReader(`"SET","100.5"` + "\n"))
	if err != nil || len(old) != 1 || old[0].RPS != 100.5 {
		t.Fatalf("old format: %+v, %v", old, err)
	}
	if _, err := ParseRedisBenchmarkCSV(strings.NewReader("")); err == nil {
		t.Fatal("empty output parsed")
	}
}

// TestTimeline: samples go to the bucket of their scheduled time, and each
// bucket has its own p99 and max, so a stall shows where it happened.
func TestTimeline(t *testing.T) {
	ms := time.Millisecond
	gets := []Sample{{At: 100 * ms, Latency: 1 * ms}, {At: 500 * ms, Latency: 2 * ms}}
	puts := []Sample{{At: 1200 * ms, Latency: 50 * ms}, {At: 2900 * ms, Latency: 3 * ms}}
	tl := Timeline(time.Second, gets, puts)
	want := []Bucket{
		{Start: 0, Count: 2, P99: 2 * ms, Max: 2 * ms},
		{Start: time.Second, Count: 1, P99: 50 * ms, Max: 50 * ms},
		{Start: 2 * time.Second, Count: 1, P99: 3 * ms, Max: 3 * ms},
	}
	if !slices.Equal(tl, want) {
		t.Fatalf("timeline %+v, want %+v", tl, want)
	}
}
