package bench

// The bench's configuration, the run's order and its report; the phases
// are in sdk.go, redis.go, handoff.go, ae.go, transfer.go and peer.go, the
// cluster and /proc plumbing in cluster.go. `mnemo bench` (cmd/mnemo) is
// the command that sets a Config from its flags and calls Run: the numbers
// of issue 6 (and the rejoin figures of issues 3, 4 and 7) from one run of
// real processes.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/mnemo-kv/mnemo/internal/benchutil"
)

// Phases are the phase groups Config.Only selects from, in run order.
var Phases = []string{"sdk", "redis", "hints", "ae", "transfer", "peer"}

// Config configures a run of the bench; `mnemo bench`'s flags set it, each
// field from the flag named in its comment. Sizes are counts of keys or
// requests, durations wall-clock time; the defaults are DefaultConfig's
// (QuickConfig's for --quick).
type Config struct {
	// Dir holds the nodes' data and logs; emptied first (--dir, ".bench").
	// Out is the JSON results file, in Dir's parent when relative (--out,
	// "bench-results.json").
	Dir, Out string
	// Binary is the mnemo executable the nodes run; empty: this one
	// (--node-binary).
	Binary string
	// Only selects phase groups of Phases ("rejoin" and "handoff" mean
	// hints); empty: all (--only).
	Only []string
	// Seed draws the keys and values; 0: from the clock (--seed).
	Seed uint64
	// Keep leaves Dir in place after the run (--keep, false).
	Keep     bool
	NodeArgs []string // extra `mnemo node` flags for every node, last (they win) (--node-arg)

	// Go SDK phases.
	Duration     time.Duration // each closed-loop phase (--duration, 10 s)
	OpenDuration time.Duration // each open-loop phase (--open-duration, 10 s)
	Concurrency  int           // concurrent SDK callers (--concurrency, 64)
	ValueSize    int           // value size in bytes, every phase (--value-size, 100)
	Keys         int           // distinct keys, preloaded (--keys, 100,000)
	Sync         string        // the nodes' --sync mode (--sync, "always")
	Quorums      []string      // N,R,W settings; the first gets the open loop (--quorum, 3,2,2 3,1,1 3,3,3)
	Target       []string      // RPC addresses of a running cluster: only the SDK phases, against it (--target)
	OpenRates    []int         // extra open-loop rates, ops/s (--open-rate)
	Profile      bool          // CPU profiles of node-1 in the first quorum's phases and redis SET (--profile, true)

	// redis-benchmark phases.
	RedisRequests  int   // -n, requests per test (--redis-requests, 100,000)
	RedisKeys      int   // -r, key space (--redis-keys, 100,000)
	RedisClients   int   // -c (--redis-clients, 50)
	RedisPipelines []int // -P values (--redis-pipeline, 1 and 16)

	// Rejoin phases.
	HintKeys        int           // keys node-3 misses in the hinted-handoff phase (--hint-keys, 100,000)
	AeKeys          int           // keys of the anti-entropy and transfer cluster (--ae-keys, 1,000,000)
	AeMissing       int           // keys node-3 misses in each repair (--ae-missing, 100,000)
	AeInterval      time.Duration // the ae cluster's --ae-interval (--ae-interval, 20 s)
	LoadConcurrency int           // concurrent SDK callers loading keys (--load-concurrency, 256)
	LightRate       int           // ops/s of the light foreground load around the repair (--light-rate, 1,000)
	LightDuration   time.Duration // the light load's baseline (--light-duration, 1 min)
	WaitTimeout     time.Duration // bound of every wait for convergence (--wait-timeout, 5 min)
	QuietLimit      time.Duration // bound of every wait for quiet nodes, then go on (no flag; 3 min)

	// Peer comparison (also the redis-benchmark sizes above).
	PeerRounds       int           // rounds, each running every system once (--peer-rounds, 2)
	PeerOpenDuration time.Duration // each open loop of the light-load tail (--peer-open-duration, 20 s)
	OlricBin         string        // olric-server to run; empty: go install it (--olric-bin, $MNEMO_BENCH_OLRIC)
}

// DefaultConfig returns `make bench`'s sizes: about 15 minutes on 2 cores.
func DefaultConfig() Config {
	return Config{
		Dir: ".bench", Out: "bench-results.json",
		Duration: 10 * time.Second, OpenDuration: 10 * time.Second,
		Concurrency: 64, ValueSize: 100, Keys: 100000, Sync: "always",
		Quorums: []string{"3,2,2", "3,1,1", "3,3,3"}, Profile: true,
		RedisRequests: 100000, RedisKeys: 100000, RedisClients: 50, RedisPipelines: []int{1, 16},
		HintKeys: 100000, AeKeys: 1000000, AeMissing: 100000, AeInterval: 20 * time.Second,
		LoadConcurrency: 256, LightRate: 1000, LightDuration: time.Minute,
		WaitTimeout: 5 * time.Minute, QuietLimit: 3 * time.Minute,
		PeerRounds: 2, PeerOpenDuration: 20 * time.Second, OlricBin: os.Getenv("MNEMO_BENCH_OLRIC"),
	}
}

// QuickConfig shrinks every size of o for a smoke run of about two
// minutes (--quick), except those whose flag explicit reports as given on
// the command line (nil: none): explicit size flags win over --quick.
func QuickConfig(o Config, explicit func(flag string) bool) Config {
	q := o
	q.Duration, q.OpenDuration = 2*time.Second, 2*time.Second
	q.Keys, q.RedisRequests, q.RedisKeys = 5000, 20000, 5000
	q.HintKeys, q.AeKeys, q.AeMissing, q.AeInterval = 5000, 50000, 5000, 5*time.Second
	q.LightDuration, q.WaitTimeout, q.QuietLimit = 2*time.Second, 2*time.Minute, 20*time.Second
	q.PeerRounds, q.PeerOpenDuration = 1, 3*time.Second
	q.Profile = false
	if explicit == nil {
		return q
	}
	for flag, keep := range map[string]func(){
		"duration":           func() { q.Duration = o.Duration },
		"open-duration":      func() { q.OpenDuration = o.OpenDuration },
		"keys":               func() { q.Keys = o.Keys },
		"redis-requests":     func() { q.RedisRequests = o.RedisRequests },
		"redis-keys":         func() { q.RedisKeys = o.RedisKeys },
		"hint-keys":          func() { q.HintKeys = o.HintKeys },
		"ae-keys":            func() { q.AeKeys = o.AeKeys },
		"ae-missing":         func() { q.AeMissing = o.AeMissing },
		"ae-interval":        func() { q.AeInterval = o.AeInterval },
		"light-duration":     func() { q.LightDuration = o.LightDuration },
		"wait-timeout":       func() { q.WaitTimeout = o.WaitTimeout },
		"profile":            func() { q.Profile = o.Profile },
		"peer-rounds":        func() { q.PeerRounds = o.PeerRounds },
		"peer-open-duration": func() { q.PeerOpenDuration = o.PeerOpenDuration },
	} {
		if explicit(flag) {
			keep()
		}
	}
	return q
}

// bench is one run.
type bench struct {
	o      Config
	dir    string // absolute --dir
	binary string
	rep    *Report
	only   map[string]bool
}

// Run runs the phases o selects and returns the report; the error
// joins every phase that could not be measured (a target missed is not an
// error: it is in the report).
func Run(ctx context.Context, o Config) (*Report, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	b := &bench{o: o, only: map[string]bool{}}
	for _, p := range o.Only {
		p = strings.TrimSpace(strings.ToLower(p))
		if p == "rejoin" || p == "handoff" {
			p = "hints"
		}
		b.only[p] = true
	}
	var err error
	if b.dir, err = filepath.Abs(o.Dir); err != nil {
		return nil, err
	}
	if b.binary = o.Binary; b.binary == "" {
		if b.binary, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	if len(o.Target) == 0 {
		os.RemoveAll(b.dir)
		if err := os.MkdirAll(b.dir, 0o755); err != nil {
			return nil, err
		}
		if !o.Keep {
			defer os.RemoveAll(b.dir)
		}
	}
	b.rep = &Report{
		Started: time.Now(), Seed: o.Seed,
		Machine: benchMachine{Cores: runtime.NumCPU(), LoadAvgStart: benchutil.LoadAvg(), Go: runtime.Version()},
		Settings: map[string]any{
			"duration_s": o.Duration.Seconds(), "open_duration_s": o.OpenDuration.Seconds(), "concurrency": o.Concurrency,
			"value_size": o.ValueSize, "keys": o.Keys, "sdk_sync": o.Sync, "quorums": o.Quorums,
			"redis_requests": o.RedisRequests, "redis_keys": o.RedisKeys, "redis_clients": o.RedisClients, "redis_pipelines": o.RedisPipelines,
			"hint_keys": o.HintKeys, "ae_keys": o.AeKeys, "ae_missing": o.AeMissing, "ae_interval_s": o.AeInterval.Seconds(),
			"load_concurrency": o.LoadConcurrency, "light_rate": o.LightRate, "node_args": o.NodeArgs,
			"peer_rounds": o.PeerRounds, "peer_open_duration_s": o.PeerOpenDuration.Seconds(), "olric_bin": o.OlricBin,
		},
	}
	b.progress("mnemo bench: seed %d, %d cores, load average %s; data in %s", o.Seed, b.rep.Machine.Cores, b.rep.Machine.LoadAvgStart, b.dir)

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
	if len(o.Target) > 0 {
		run("sdk", b.selected("sdk"), b.sdkAgainstTarget)
		for _, p := range Phases[1:] {
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
	out := o.Out
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

func (o Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("bench: "+format, args...)) }
	for _, p := range o.Only {
		p = strings.TrimSpace(strings.ToLower(p))
		if !slices.Contains(Phases, p) && p != "rejoin" && p != "handoff" {
			bad("--only %q: want some of %s", p, strings.Join(Phases, ","))
		}
	}
	if o.Duration <= 0 || o.OpenDuration <= 0 || o.LightDuration <= 0 {
		bad("--duration, --open-duration and --light-duration must be positive")
	}
	if o.Concurrency < 1 || o.LoadConcurrency < 1 || o.RedisClients < 1 {
		bad("--concurrency, --load-concurrency and --redis-clients must be at least 1")
	}
	if o.ValueSize < 1 || o.Keys < 1 || o.HintKeys < 1 || o.AeKeys < 1 || o.AeMissing < 1 || o.RedisRequests < 1 || o.RedisKeys < 1 {
		bad("--value-size and every key and request count must be at least 1")
	}
	if o.LightRate < 1 {
		bad("--light-rate must be at least 1")
	}
	if o.PeerRounds < 1 || o.PeerOpenDuration <= 0 {
		bad("--peer-rounds must be at least 1 and --peer-open-duration positive")
	}
	if o.AeInterval <= 0 || o.WaitTimeout <= 0 {
		bad("--ae-interval and --wait-timeout must be positive")
	}
	if len(o.Quorums) == 0 {
		bad("--quorum: at least one N,R,W")
	}
	for _, q := range o.Quorums {
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
