package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/localcluster"
)

func init() { extraCommands = append(extraCommands, benchCmd) }

// benchOpts configure `mnemo bench`.
type benchOpts struct {
	dir         string
	nodes       int
	duration    time.Duration
	concurrency int
	valueSize   int
	keys        int
	sync        string
	out         string
	quorums     []string
	target      []string
}

func benchCmd() *cobra.Command {
	var o benchOpts
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Start local nodes and measure throughput and latency",
		Long: `Start a local cluster of real mnemo processes and measure Go SDK puts and
gets (64 concurrent callers, 100-byte values by default) at several N,R,W,
printing a table and writing JSON.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runBench(cmd.Context(), o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.dir, "dir", ".bench", "directory for the nodes' data and logs (emptied first)")
	f.IntVar(&o.nodes, "nodes", 3, "nodes to start")
	f.DurationVar(&o.duration, "duration", 10*time.Second, "length of each measured phase")
	f.IntVar(&o.concurrency, "concurrency", 64, "concurrent SDK callers")
	f.IntVar(&o.valueSize, "value-size", 100, "value size in bytes")
	f.IntVar(&o.keys, "keys", 100000, "distinct keys")
	f.StringVar(&o.sync, "sync", "always", "the nodes' --sync mode")
	f.StringVar(&o.out, "out", "bench-results.json", "JSON results file (in --dir's parent when relative)")
	f.StringSliceVar(&o.target, "target", nil, "RPC addresses of a running cluster to measure instead of starting one")
	f.StringArrayVar(&o.quorums, "quorum", []string{"3,2,2", "3,1,1", "3,3,3"}, "an N,R,W setting to measure (repeat the flag for several)")
	return cmd
}

// latencies collects per-operation latencies of one phase.
type latencies struct {
	mu  sync.Mutex
	d   []time.Duration
	err atomic.Int64
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d...)
	l.mu.Unlock()
}

// PhaseResult is one measured phase.
type PhaseResult struct {
	Op        string  `json:"op"`
	N, R, W   int     `json:"-"`
	NRW       string  `json:"nrw"`
	Ops       int     `json:"ops"`
	Errors    int64   `json:"errors"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	P999Ms    float64 `json:"p999_ms"`
}

func percentile(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	i := min(len(d)-1, int(float64(len(d))*p))
	return float64(d[i].Microseconds()) / 1000
}

// runPhase drives op from concurrency callers for duration.
func runPhase(ctx context.Context, name string, concurrency int, duration time.Duration, op func(ctx context.Context, rnd *rand.Rand) error) PhaseResult {
	var l latencies
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			local := make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				if err := op(ctx, rnd); err != nil {
					l.err.Add(1)
					continue
				}
				local = append(local, time.Since(t0))
			}
			l.add(local)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(l.d)
	return PhaseResult{
		Op: name, Ops: len(l.d), Errors: l.err.Load(),
		OpsPerSec: float64(len(l.d)) / elapsed.Seconds(),
		P50Ms:     percentile(l.d, 0.50), P99Ms: percentile(l.d, 0.99), P999Ms: percentile(l.d, 0.999),
	}
}

func runBench(ctx context.Context, o benchOpts) error {
	if ctx == nil {
		ctx = context.Background()
	}
	dir, _ := filepath.Abs(o.dir)
	addrs := o.target
	if len(addrs) == 0 {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		c, err := localcluster.New(localcluster.Options{Binary: self, Dir: dir, Nodes: o.nodes, HTTP: true,
			Args: []string{"--sync", o.sync, "--log-level", "warn"}})
		if err != nil {
			return err
		}
		defer c.Close()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := c.StartAll(sctx); err != nil {
			return err
		}
		addrs = c.Addrs()
	}
	cl, err := client.NewWithConfig(client.Config{Addrs: addrs, ConnsPerAddr: 4})
	if err != nil {
		return err
	}
	defer cl.Close()
	value := make([]byte, o.valueSize)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	key := func(rnd *rand.Rand) []byte { return fmt.Appendf(nil, "bench-%08d", rnd.IntN(o.keys)) }

	fmt.Printf("mnemo bench: %d nodes, %d callers, %d-byte values, %d keys, sync=%s, %v per phase\n\n",
		o.nodes, o.concurrency, o.valueSize, o.keys, o.sync, o.duration)
	var results []PhaseResult
	for _, q := range o.quorums {
		var n, r, w int
		if _, err := fmt.Sscanf(q, "%d,%d,%d", &n, &r, &w); err != nil {
			return fmt.Errorf("--quorum %q: want N,R,W", q)
		}
		put := runPhase(ctx, "put", o.concurrency, o.duration, func(ctx context.Context, rnd *rand.Rand) error {
			_, err := cl.Put(ctx, key(rnd), value, client.N(n), client.W(w), client.Overwrite())
			return err
		})
		get := runPhase(ctx, "get", o.concurrency, o.duration, func(ctx context.Context, rnd *rand.Rand) error {
			_, err := cl.Get(ctx, key(rnd), client.N(n), client.R(r))
			if err == client.ErrNotFound {
				return nil
			}
			return err
		})
		for _, p := range []*PhaseResult{&put, &get} {
			p.N, p.R, p.W, p.NRW = n, r, w, q
			results = append(results, *p)
		}
	}
	sort.SliceStable(results, func(i, j int) bool { return results[i].Op > results[j].Op })
	fmt.Printf("%-4s %-7s %10s %9s %9s %9s %7s\n", "op", "N,R,W", "ops/s", "p50 ms", "p99 ms", "p99.9 ms", "errors")
	for _, r := range results {
		fmt.Printf("%-4s %-7s %10.0f %9.2f %9.2f %9.2f %7d\n", r.Op, r.NRW, r.OpsPerSec, r.P50Ms, r.P99Ms, r.P999Ms, r.Errors)
	}
	out := o.out
	if !filepath.IsAbs(out) {
		out = filepath.Join(filepath.Dir(dir), out)
	}
	b, _ := json.MarshalIndent(map[string]any{"sdk": results}, "", "  ")
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return err
	}
	fmt.Println("\nwrote", out)
	return nil
}
