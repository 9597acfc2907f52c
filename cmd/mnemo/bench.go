package main

// `mnemo bench`: the numbers of issue 6 (and the rejoin figures of issues
// 3, 4 and 7) from one run of real processes. This file holds the command,
// its options, the run's order and the report; the phases are in
// bench_sdk.go, bench_redis.go, bench_handoff.go, bench_ae.go,
// bench_transfer.go and bench_peer.go, the cluster and /proc plumbing in
// bench_cluster.go.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mnemo-kv/mnemo/internal/benchutil"
)

func init() { extraCommands = append(extraCommands, benchCmd) }

// benchPhases are the phase groups --only selects from, in run order.
var benchPhases = []string{"sdk", "redis", "hints", "ae", "transfer", "peer"}

// benchOpts configure `mnemo bench`. Sizes are counts of keys or requests,
// durations wall-clock time.
type benchOpts struct {
	dir, out string
	// binary is the mnemo executable the nodes run; empty: this one.
	binary   string
	only     []string
	seed     uint64
	keep     bool
	nodeArgs []string // extra `mnemo node` flags for every node, last (they win)

	// Go SDK phases.
	duration     time.Duration // each closed-loop phase
	openDuration time.Duration // each open-loop phase
	concurrency  int
	valueSize    int
	keys         int
	sync         string
	quorums      []string
	target       []string
	openRates    []int // extra open-loop rates, ops/s
	profile      bool

	// redis-benchmark phases.
	redisRequests  int
	redisKeys      int
	redisClients   int
	redisPipelines []int

	// Rejoin phases.
	hintKeys        int
	aeKeys          int
	aeMissing       int
	aeInterval      time.Duration
	loadConcurrency int
	lightRate       int
	lightDuration   time.Duration
	waitTimeout     time.Duration // bound of every wait for convergence
	quietLimit      time.Duration // bound of every wait for quiet nodes (then go on)

	// Peer comparison (also the redis-benchmark sizes above).
	peerRounds       int           // rounds, each running every system once
	peerOpenDuration time.Duration // each open loop of the light-load tail
	olricBin         string        // olric-server to run; empty: go install it
}

// defaultBenchOpts are `make bench`'s sizes: about 15 minutes on 2 cores.
func defaultBenchOpts() benchOpts {
	return benchOpts{
		dir: ".bench", out: "bench-results.json",
		duration: 10 * time.Second, openDuration: 10 * time.Second,
		concurrency: 64, valueSize: 100, keys: 100000, sync: "always",
		quorums: []string{"3,2,2", "3,1,1", "3,3,3"}, profile: true,
		redisRequests: 100000, redisKeys: 100000, redisClients: 50, redisPipelines: []int{1, 16},
		hintKeys: 100000, aeKeys: 1000000, aeMissing: 100000, aeInterval: 20 * time.Second,
		loadConcurrency: 256, lightRate: 1000, lightDuration: time.Minute,
		waitTimeout: 5 * time.Minute, quietLimit: 3 * time.Minute,
		peerRounds: 2, peerOpenDuration: 20 * time.Second, olricBin: os.Getenv("MNEMO_BENCH_OLRIC"),
	}
}

// quickBenchOpts shrink every size for a smoke run of about two minutes.
func quickBenchOpts(o benchOpts) benchOpts {
	o.duration, o.openDuration = 2*time.Second, 2*time.Second
	o.keys, o.redisRequests, o.redisKeys = 5000, 20000, 5000
	o.hintKeys, o.aeKeys, o.aeMissing, o.aeInterval = 5000, 50000, 5000, 5*time.Second
	o.lightDuration, o.waitTimeout, o.quietLimit = 2*time.Second, 2*time.Minute, 20*time.Second
	o.peerRounds, o.peerOpenDuration = 1, 3*time.Second
	o.profile = false
	return o
}

func benchCmd() *cobra.Command {
	o := defaultBenchOpts()
	var quick bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Start local nodes and measure throughput, latency, resources and rejoins",
		Long: `Start local clusters of real mnemo processes and measure, in one run:

  sdk       Go SDK puts and gets (64 callers, 100-byte values) at each
            --quorum, closed loop (ops/s, p50, p99, p99.9), then an open
            loop at half the peak of the first quorum (latency from the
            scheduled send, so queueing counts)
  redis     redis-benchmark SET and GET against node-1's Redis port (nodes
            --sync always, then --sync none) and against a local
            redis-server (no persistence, then appendfsync always), with
            the ratios mnemo/redis
  hints     hinted handoff: node-3 misses --hint-keys writes (killed), then
            restarts; time until it holds them all, hints replayed/s
  ae        anti-entropy on --ae-keys keys (hints and read repair off): an
            in-sync round, a node missing --ae-missing keys (time to equal
            Merkle roots, bytes per missing byte), foreground p99 during
            the repair vs without
  transfer  add a 4th node to the ae cluster: time and MB/s, keys/s
  peer      redis-benchmark SET and GET against mnemo (--sync none, then
            --sync always), 3 Olric v0.7.4 nodes (DM.PUT/DM.GET, 3
            replicas, quorums of 2) and redis-server, in --peer-rounds
            alternating rounds with fresh processes: ops/s, p50, p99, CPU
            per operation, RSS and the ratios mnemo/Olric, mnemo/redis;
            then mnemo's light-load tail (SDK open loop at 200 and 1,000
            ops/s). Olric: --olric-bin, else go install into .bench-tools/

Every phase also reports each process's CPU seconds per 1,000 operations
and RSS (from /proc). The clusters of the load-heavy phases (ae, transfer)
run with --sync none so 1M keys load in a few minutes; the table says
which setting each figure was measured with. Results go to a table on
stdout and a JSON file; progress goes to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if quick {
				q := quickBenchOpts(o)
				// Flags given explicitly win over --quick.
				cmd.Flags().Visit(func(f *pflagFlag) {
					switch f.Name {
					case "duration":
						q.duration = o.duration
					case "open-duration":
						q.openDuration = o.openDuration
					case "keys":
						q.keys = o.keys
					case "redis-requests":
						q.redisRequests = o.redisRequests
					case "redis-keys":
						q.redisKeys = o.redisKeys
					case "hint-keys":
						q.hintKeys = o.hintKeys
					case "ae-keys":
						q.aeKeys = o.aeKeys
					case "ae-missing":
						q.aeMissing = o.aeMissing
					case "ae-interval":
						q.aeInterval = o.aeInterval
					case "light-duration":
						q.lightDuration = o.lightDuration
					case "wait-timeout":
						q.waitTimeout = o.waitTimeout
					case "profile":
						q.profile = o.profile
					case "peer-rounds":
						q.peerRounds = o.peerRounds
					case "peer-open-duration":
						q.peerOpenDuration = o.peerOpenDuration
					}
				})
				o = q
			}
			ctx, cancel := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer cancel()
			_, err := runBench(ctx, o)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dir, "dir", o.dir, "directory for the nodes' data and logs (emptied first)")
	f.StringVar(&o.out, "out", o.out, "JSON results file (in --dir's parent when relative)")
	f.StringVar(&o.binary, "node-binary", o.binary, "the mnemo binary the nodes run (default: this one), to measure another build with this harness")
	f.StringSliceVar(&o.only, "only", nil, "phases to run, comma-separated: "+strings.Join(benchPhases, ",")+" (rejoin = hints); default all")
	f.BoolVar(&quick, "quick", false, "small sizes and 2 s phases, for a smoke run (explicit size flags still win)")
	f.Uint64Var(&o.seed, "seed", o.seed, "seed of the keys and values drawn (0: from the clock; printed)")
	f.BoolVar(&o.keep, "keep", false, "keep the nodes' data directories after the run")
	f.StringArrayVar(&o.nodeArgs, "node-arg", nil, "extra node flag for every node of every cluster, e.g. --node-arg=--hint-rate=50000 (repeat; wins over the bench's own)")
	f.DurationVar(&o.duration, "duration", o.duration, "length of each closed-loop SDK phase")
	f.DurationVar(&o.openDuration, "open-duration", o.openDuration, "length of each open-loop SDK phase")
	f.IntVar(&o.concurrency, "concurrency", o.concurrency, "concurrent SDK callers")
	f.IntVar(&o.valueSize, "value-size", o.valueSize, "value size in bytes (every phase)")
	f.IntVar(&o.keys, "keys", o.keys, "distinct keys of the SDK phases (preloaded)")
	f.StringVar(&o.sync, "sync", o.sync, "the nodes' --sync mode in the SDK phases")
	f.StringArrayVar(&o.quorums, "quorum", o.quorums, "an N,R,W setting to measure (repeat for several; the first gets the open loop)")
	f.IntSliceVar(&o.openRates, "open-rate", nil, "also run the SDK open loop at these rates (ops/s, comma-separated): latency against load")
	f.StringSliceVar(&o.target, "target", nil, "RPC addresses of a running cluster: run only the SDK phases, against it")
	f.BoolVar(&o.profile, "profile", o.profile, "take CPU profiles of node-1 during the first quorum's phases and redis SET (the summary needs the go tool)")
	f.IntVar(&o.redisRequests, "redis-requests", o.redisRequests, "redis-benchmark -n (requests per test)")
	f.IntVar(&o.redisKeys, "redis-keys", o.redisKeys, "redis-benchmark -r (key space)")
	f.IntVar(&o.redisClients, "redis-clients", o.redisClients, "redis-benchmark -c")
	f.IntSliceVar(&o.redisPipelines, "redis-pipeline", o.redisPipelines, "redis-benchmark -P values")
	f.IntVar(&o.hintKeys, "hint-keys", o.hintKeys, "keys node-3 misses in the hinted-handoff phase")
	f.IntVar(&o.aeKeys, "ae-keys", o.aeKeys, "keys loaded in the anti-entropy and transfer cluster")
	f.IntVar(&o.aeMissing, "ae-missing", o.aeMissing, "keys node-3 misses in each anti-entropy repair")
	f.DurationVar(&o.aeInterval, "ae-interval", o.aeInterval, "the ae cluster's --ae-interval (the in-sync round waits for one)")
	f.IntVar(&o.loadConcurrency, "load-concurrency", o.loadConcurrency, "concurrent SDK callers when loading keys")
	f.IntVar(&o.lightRate, "light-rate", o.lightRate, "ops/s of the light foreground load (half gets, half puts) around the repair")
	f.DurationVar(&o.lightDuration, "light-duration", o.lightDuration, "length of the light load's baseline (long enough to span the periodic anti-entropy rounds and Pebble flushes a repair window also spans)")
	f.DurationVar(&o.waitTimeout, "wait-timeout", o.waitTimeout, "bound of each wait for a rejoin, repair or join to complete")
	f.IntVar(&o.peerRounds, "peer-rounds", o.peerRounds, "rounds of the peer comparison, each running mnemo --sync none, mnemo --sync always, Olric and redis-server once")
	f.DurationVar(&o.peerOpenDuration, "peer-open-duration", o.peerOpenDuration, "length of each open loop of the peer phase's light-load tail")
	f.StringVar(&o.olricBin, "olric-bin", o.olricBin, "olric-server v0.7.4 for the peer phase (default $MNEMO_BENCH_OLRIC; unset: go install it into .bench-tools/ beside --dir)")
	return cmd
}

// bench is one run.
type bench struct {
	o      benchOpts
	dir    string // absolute --dir
	binary string
	rep    *benchReport
	only   map[string]bool
}

// runBench runs the phases o selects and returns the report; the error
// joins every phase that could not be measured (a target missed is not an
// error: it is in the report).
func runBench(ctx context.Context, o benchOpts) (*benchReport, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	b := &bench{o: o, only: map[string]bool{}}
	for _, p := range o.only {
		p = strings.TrimSpace(strings.ToLower(p))
		if p == "rejoin" || p == "handoff" {
			p = "hints"
		}
		b.only[p] = true
	}
	var err error
	if b.dir, err = filepath.Abs(o.dir); err != nil {
		return nil, err
	}
	if b.binary = o.binary; b.binary == "" {
		if b.binary, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	if len(o.target) == 0 {
		os.RemoveAll(b.dir)
		if err := os.MkdirAll(b.dir, 0o755); err != nil {
			return nil, err
		}
		if !o.keep {
			defer os.RemoveAll(b.dir)
		}
	}
	b.rep = &benchReport{
		Started: time.Now(), Seed: o.seed,
		Machine: benchMachine{Cores: runtime.NumCPU(), LoadAvgStart: benchutil.LoadAvg(), Go: runtime.Version()},
		Settings: map[string]any{
			"duration_s": o.duration.Seconds(), "open_duration_s": o.openDuration.Seconds(), "concurrency": o.concurrency,
			"value_size": o.valueSize, "keys": o.keys, "sdk_sync": o.sync, "quorums": o.quorums,
			"redis_requests": o.redisRequests, "redis_keys": o.redisKeys, "redis_clients": o.redisClients, "redis_pipelines": o.redisPipelines,
			"hint_keys": o.hintKeys, "ae_keys": o.aeKeys, "ae_missing": o.aeMissing, "ae_interval_s": o.aeInterval.Seconds(),
			"load_concurrency": o.loadConcurrency, "light_rate": o.lightRate, "node_args": o.nodeArgs,
			"peer_rounds": o.peerRounds, "peer_open_duration_s": o.peerOpenDuration.Seconds(), "olric_bin": o.olricBin,
		},
	}
	b.progress("mnemo bench: seed %d, %d cores, load average %s; data in %s", o.seed, b.rep.Machine.Cores, b.rep.Machine.LoadAvgStart, b.dir)

	var errs []error
	run := func(name string, selected bool, fn func(context.Context) error) {
		if !selected || ctx.Err() != nil {
			return
		}
		b.progress("== %s", name)
		if err := fn(ctx); err != nil {
			b.progress("%s: %v", name, err)
			b.rep.Errors = append(b.rep.Errors, fmt.Sprintf("%s: %v", name, err))
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if len(o.target) > 0 {
		run("sdk", b.selected("sdk"), b.sdkAgainstTarget)
		for _, p := range benchPhases[1:] {
			if b.selected(p) {
				b.rep.Skipped = append(b.rep.Skipped, p+": not with --target (it starts its own processes)")
			}
		}
	} else {
		// sdk and redis share a cluster: the redis phase restarts it with
		// --sync none half-way.
		run("sdk+redis", b.selected("sdk") || b.selected("redis"), b.sdkAndRedis)
		run("hints", b.selected("hints"), b.handoffPhase)
		run("ae+transfer", b.selected("ae") || b.selected("transfer"), b.aeAndTransfer)
		run("peer", b.selected("peer"), b.peerPhase)
	}
	if ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	b.rep.LoadAvgEnd = benchutil.LoadAvg()
	b.rep.Seconds = time.Since(b.rep.Started).Seconds()
	b.rep.Targets = b.rep.checkTargets(o)
	b.rep.print(os.Stdout, o)
	out := o.out
	if !filepath.IsAbs(out) {
		out = filepath.Join(filepath.Dir(b.dir), out)
	}
	if js, err := json.MarshalIndent(b.rep, "", "  "); err != nil {
		errs = append(errs, err)
	} else if err := os.WriteFile(out, append(js, '\n'), 0o644); err != nil {
		errs = append(errs, err)
	} else {
		fmt.Println("\nwrote", out)
	}
	return b.rep, errors.Join(errs...)
}

func (o benchOpts) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("bench: "+format, args...)) }
	for _, p := range o.only {
		p = strings.TrimSpace(strings.ToLower(p))
		if !slices.Contains(benchPhases, p) && p != "rejoin" && p != "handoff" {
			bad("--only %q: want some of %s", p, strings.Join(benchPhases, ","))
		}
	}
	if o.duration <= 0 || o.openDuration <= 0 || o.lightDuration <= 0 {
		bad("--duration, --open-duration and --light-duration must be positive")
	}
	if o.concurrency < 1 || o.loadConcurrency < 1 || o.redisClients < 1 {
		bad("--concurrency, --load-concurrency and --redis-clients must be at least 1")
	}
	if o.valueSize < 1 || o.keys < 1 || o.hintKeys < 1 || o.aeKeys < 1 || o.aeMissing < 1 || o.redisRequests < 1 || o.redisKeys < 1 {
		bad("--value-size and every key and request count must be at least 1")
	}
	if o.lightRate < 1 {
		bad("--light-rate must be at least 1")
	}
	if o.peerRounds < 1 || o.peerOpenDuration <= 0 {
		bad("--peer-rounds must be at least 1 and --peer-open-duration positive")
	}
	if o.aeInterval <= 0 || o.waitTimeout <= 0 {
		bad("--ae-interval and --wait-timeout must be positive")
	}
	if len(o.quorums) == 0 {
		bad("--quorum: at least one N,R,W")
	}
	for _, q := range o.quorums {
		if _, _, _, err := parseBenchNRW(q); err != nil {
			bad("%v", err)
		}
	}
	return errors.Join(errs...)
}

func parseBenchNRW(q string) (n, r, w int, err error) {
	if _, err := fmt.Sscanf(q, "%d,%d,%d", &n, &r, &w); err != nil || n < 1 || r < 1 || w < 1 || r > n || w > n {
		return 0, 0, 0, fmt.Errorf("--quorum %q: want N,R,W with 1 <= R,W <= N", q)
	}
	return n, r, w, nil
}

func (b *bench) selected(phase string) bool { return len(b.only) == 0 || b.only[phase] }

// progress prints a line of the run's progress on stderr, stamped with the
// time since the start.
func (b *bench) progress(format string, args ...any) {
	el := time.Duration(0)
	if b.rep != nil {
		el = time.Since(b.rep.Started).Truncate(time.Second)
	}
	fmt.Fprintf(os.Stderr, "[%6s] %s\n", el, fmt.Sprintf(format, args...))
}

func (b *bench) skip(what string) {
	b.progress("skipped: %s", what)
	b.rep.Skipped = append(b.rep.Skipped, what)
}
