package bench

// The peer comparison (issue 12): mnemo (--sync none and --sync always),
// Olric v0.7.4 and redis-server, each driven by redis-benchmark over RESP
// in the same run, in alternating rounds so that drift of the machine
// (other work, thermal, page cache) falls on every system alike; then the
// light-load tail of mnemo from the Go SDK. Per system: ops/s, p50 and
// p99, the server processes' CPU per operation and their peak RSS, and
// the ratios mnemo/Olric and mnemo/redis.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/benchutil"
	"github.com/mnemo-kv/mnemo/internal/localcluster"
	"github.com/mnemo-kv/mnemo/internal/poll"
)

// The systems of the peer phase, in the order each round runs them.
const (
	peerMnemoNone   = "mnemo --sync none"
	peerMnemoAlways = "mnemo --sync always"
	peerOlric       = "olric"
	peerRedis       = "redis"
)

var peerSystems = []string{peerMnemoNone, peerMnemoAlways, peerOlric, peerRedis}

// The Olric the comparison is with, installed with go install when
// --olric-bin is not given.
const (
	olricModule  = "github.com/olric-data/olric/cmd/olric-server"
	olricVersion = "v0.7.4"
	// olricDMap is the DMap the benchmark's keys go in.
	olricDMap = "bench"
)

// peerTailRates are the light-load tail's open-loop rates, ops/s.
var peerTailRates = []float64{200, 1000}

// Preloading pipelines this many commands on each of this many
// connections.
const (
	peerPreloadConns = 8
	peerPreloadDepth = 64
)

// benchPeer is the peer phase's part of the report.
type benchPeer struct {
	Rounds    int      `json:"rounds"`
	Order     []string `json:"order"` // the systems in the order each round ran them
	Clients   int      `json:"clients"`
	Requests  int      `json:"requests"`
	Keys      int      `json:"keys"`
	ValueSize int      `json:"value_size"`
	Olric     string   `json:"olric_binary,omitempty"`
	OlricVer  string   `json:"olric_version,omitempty"`
	// Unavailable says, per system left out, why: "olric: not available:
	// <reason>".
	Unavailable []string            `json:"unavailable,omitempty"`
	Preloads    []benchPeerPreload  `json:"preloads"`
	Runs        []benchPeerRun      `json:"runs"`
	Summary     []benchPeerSummary  `json:"summary"`
	Ratios      []benchPeerRatio    `json:"ratios"`
	Tail        []benchPeerTail     `json:"light_load_tail"`
	TailSummary []benchPeerTailStat `json:"light_load_tail_summary"`
	Errors      []string            `json:"errors,omitempty"`
}

// benchPeerPreload is the preload of one system in one round.
type benchPeerPreload struct {
	Round      int     `json:"round"`
	System     string  `json:"system"`
	Keys       int     `json:"keys"`
	Seconds    float64 `json:"seconds"`
	KeysPerSec float64 `json:"keys_per_sec"`
}

// benchPeerRun is one redis-benchmark test of one system in one round.
type benchPeerRun struct {
	Round    int     `json:"round"`
	System   string  `json:"system"`
	Test     string  `json:"test"` // SET or GET
	Pipeline int     `json:"pipeline"`
	RPS      float64 `json:"rps"`
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
	// CPUMsPerOp is the server processes' CPU (user + system), summed,
	// per operation.
	CPUMsPerOp float64 `json:"cpu_ms_per_op"`
	// MaxRSSMiB is the largest peak RSS (VmHWM) of the server processes
	// at the end of the test; SumRSSMiB their RSS summed.
	MaxRSSMiB float64 `json:"max_rss_mib"`
	SumRSSMiB float64 `json:"sum_rss_mib"`
}

// benchPeerStat is a figure over the rounds.
type benchPeerStat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// benchPeerSummary is one system's test over the rounds.
type benchPeerSummary struct {
	System     string        `json:"system"`
	Test       string        `json:"test"`
	Pipeline   int           `json:"pipeline"`
	Rounds     int           `json:"rounds"`
	RPS        benchPeerStat `json:"rps"`
	P50Ms      benchPeerStat `json:"p50_ms"`
	P99Ms      benchPeerStat `json:"p99_ms"`
	CPUMsPerOp benchPeerStat `json:"cpu_ms_per_op"`
	MaxRSSMiB  benchPeerStat `json:"max_rss_mib"`
}

// benchPeerRatio is a mnemo mode's medians over another system's, for one
// test: above 1 is more ops/s, a longer p99 and more CPU per operation.
type benchPeerRatio struct {
	Pairing  string  `json:"pairing"` // "mnemo --sync none / olric"
	Test     string  `json:"test"`
	Pipeline int     `json:"pipeline"`
	RPS      float64 `json:"rps_ratio"`
	P99      float64 `json:"p99_ratio"`
	CPUPerOp float64 `json:"cpu_per_op_ratio"`
}

// benchPeerTail is one open loop of the light-load tail.
type benchPeerTail struct {
	Round          int     `json:"round"`
	Sync           string  `json:"sync"`
	RatePerSec     float64 `json:"rate_per_sec"`
	AchievedPerSec float64 `json:"achieved_per_sec"`
	Ops            int     `json:"ops"`
	Errors         int64   `json:"errors"`
	P50Ms          float64 `json:"p50_ms"`
	P99Ms          float64 `json:"p99_ms"`
	P999Ms         float64 `json:"p999_ms"`
	MaxMs          float64 `json:"max_ms"`
}

// benchPeerTailStat is one rate and mode of the tail over the rounds.
type benchPeerTailStat struct {
	Sync       string        `json:"sync"`
	RatePerSec float64       `json:"rate_per_sec"`
	Rounds     int           `json:"rounds"`
	Errors     int64         `json:"errors"`
	Achieved   benchPeerStat `json:"achieved_per_sec"`
	P50Ms      benchPeerStat `json:"p50_ms"`
	P99Ms      benchPeerStat `json:"p99_ms"`
	P999Ms     benchPeerStat `json:"p999_ms"`
}

// peerTarget is one system running, ready for redis-benchmark.
type peerTarget struct {
	system string
	addr   string // RESP
	procs  []benchProc
	// bc is mnemo's cluster (nil for the others): the tail's SDK load.
	bc   *benchCluster
	stop func()
}

// peerPhase runs the peer comparison: --peer-rounds rounds of every
// system available, then the summaries and ratios.
func (b *bench) peerPhase(ctx context.Context) error {
	o := b.o
	rbench, err := exec.LookPath("redis-benchmark")
	if err != nil {
		b.skip("peer: redis-benchmark not found (" + benchRedisInstall + ")")
		return nil
	}
	p := &benchPeer{Rounds: o.PeerRounds, Clients: o.RedisClients, Requests: o.RedisRequests, Keys: o.RedisKeys, ValueSize: o.ValueSize,
		Preloads: []benchPeerPreload{}, Runs: []benchPeerRun{}, Tail: []benchPeerTail{}}
	b.rep.Peer = p
	systems := slices.Clone(peerSystems)
	drop := func(system, why string) {
		systems = slices.DeleteFunc(systems, func(s string) bool { return s == system })
		msg := system + ": not available: " + why
		p.Unavailable = append(p.Unavailable, msg)
		b.progress("peer: %s", msg)
	}
	olricBin, err := b.olricBinary(ctx)
	if err != nil {
		drop(peerOlric, err.Error())
	} else {
		p.Olric, p.OlricVer = olricBin, olricServerVersion(ctx, olricBin)
		b.progress("peer: olric-server %s (%s)", olricBin, p.OlricVer)
	}
	rserver, err := exec.LookPath("redis-server")
	if err != nil {
		drop(peerRedis, "redis-server not found ("+benchRedisInstall+")")
	}
	p.Order = systems
	var errs []error
	for round := 1; round <= o.PeerRounds && ctx.Err() == nil; round++ {
		for _, system := range systems {
			if ctx.Err() != nil {
				break
			}
			b.progress("peer round %d of %d: %s", round, o.PeerRounds, system)
			err := b.peerRound(ctx, p, round, system, rbench, olricBin, rserver)
			if err != nil && system != peerMnemoNone && system != peerMnemoAlways && ctx.Err() == nil {
				// A peer's own hiccup (Olric now and then answers
				// READQUORUM under this load, its routing table briefly
				// short of a member): its round runs once more, afresh,
				// and its failed rows are dropped.
				b.progress("peer: %s failed in round %d (%v); running its round again", system, round, err)
				p.Errors = append(p.Errors, fmt.Sprintf("round %d, %s (run again): %v", round, system, err))
				p.Runs = slices.DeleteFunc(p.Runs, func(r benchPeerRun) bool { return r.Round == round && r.System == system })
				err = b.peerRound(ctx, p, round, system, rbench, olricBin, rserver)
			}
			if err != nil {
				// The other systems are still measured; the error is in
				// the report.
				err = fmt.Errorf("round %d, %s: %w", round, system, err)
				b.progress("peer: %v", err)
				p.Errors = append(p.Errors, err.Error())
				errs = append(errs, err)
			}
		}
	}
	p.Summary = peerSummarize(p.Runs)
	p.Ratios = peerRatios(p.Summary)
	p.TailSummary = peerTailSummarize(p.Tail)
	return errors.Join(errs...)
}

// peerRound starts system with fresh state, preloads the key space,
// measures SET and GET at each pipeline depth and, for mnemo, the light-load
// tail, and stops everything it started.
func (b *bench) peerRound(ctx context.Context, p *benchPeer, round int, system, rbench, olricBin, rserver string) error {
	o := b.o
	dir := filepath.Join(b.dir, fmt.Sprintf("peer-%d-%s", round, strings.NewReplacer(" --", "-", " ", "-").Replace(system)))
	var t *peerTarget
	var err error
	switch system {
	case peerMnemoNone, peerMnemoAlways:
		t, err = b.startPeerMnemo(ctx, filepath.Base(dir), strings.TrimPrefix(system, "mnemo --sync "))
	case peerOlric:
		t, err = b.startOlric(ctx, olricBin, dir)
	case peerRedis:
		t, err = b.startPeerRedis(ctx, rserver, dir)
	default:
		err = fmt.Errorf("unknown system %q", system)
	}
	if err != nil {
		return err
	}
	t.system = system
	defer func() {
		t.stop()
		if !o.Keep {
			os.RemoveAll(dir)
		}
	}()

	value := bytes.Repeat([]byte("x"), o.ValueSize)
	t0 := time.Now()
	err = benchutil.RESPPreload(ctx, t.addr, o.RedisKeys, peerPreloadConns, peerPreloadDepth, func(i int) [][]byte {
		return peerPreloadCommand(system, i, value)
	})
	if err != nil {
		return fmt.Errorf("preload: %w", err)
	}
	el := time.Since(t0)
	pl := benchPeerPreload{Round: round, System: system, Keys: o.RedisKeys, Seconds: el.Seconds(), KeysPerSec: float64(o.RedisKeys) / el.Seconds()}
	p.Preloads = append(p.Preloads, pl)
	b.progress("peer %s: preloaded %d keys in %.1f s (%.0f keys/s)", system, pl.Keys, pl.Seconds, pl.KeysPerSec)

	host, port, err := net.SplitHostPort(t.addr)
	if err != nil {
		return err
	}
	for _, pipe := range o.RedisPipelines {
		for _, test := range []string{"SET", "GET"} {
			phase := fmt.Sprintf("peer r%d %s %s -P %d", round, system, test, pipe)
			args := peerBenchmarkArgs(system, test, host, port, o.RedisClients, o.RedisRequests, o.RedisKeys, pipe, string(value))
			rows, res, err := b.redisBenchmark(ctx, rbench, phase, args, t.procs, o.RedisRequests)
			if err != nil {
				return err
			}
			x, err := peerLabel(rows, test)
			if err != nil {
				return fmt.Errorf("%s: %w", phase, err)
			}
			run := benchPeerRun{Round: round, System: system, Test: test, Pipeline: pipe, RPS: x.RPS, P50Ms: x.P50Ms, P99Ms: x.P99Ms,
				CPUMsPerOp: res.nodesCPUPer1k()}
			for _, f := range res.Procs {
				run.MaxRSSMiB = max(run.MaxRSSMiB, f.PeakRSSMiB)
				run.SumRSSMiB += f.RSSMiB
			}
			p.Runs = append(p.Runs, run)
			b.progress("%s: %.0f ops/s, p50 %.3f ms, p99 %.3f ms, %.4f CPU ms/op, max RSS %.0f MiB",
				phase, run.RPS, run.P50Ms, run.P99Ms, run.CPUMsPerOp, run.MaxRSSMiB)
		}
	}
	if t.bc != nil {
		return b.peerTail(ctx, p, round, t)
	}
	return nil
}

// peerTail runs the light-load tail against mnemo after the benchmarks:
// once the nodes are quiet, gets and puts (N=3, R=2, W=2) of the preloaded
// keys from the Go SDK, an open loop at each of peerTailRates.
func (b *bench) peerTail(ctx context.Context, p *benchPeer, round int, t *peerTarget) error {
	o := b.o
	b.waitQuiet(ctx, t.bc, "peer "+t.system+" tail")
	cl, err := t.bc.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	sync := strings.TrimPrefix(t.system, "mnemo --sync ")
	key := func(rnd *rand.Rand) []byte { return peerKey(rnd.IntN(o.RedisKeys)) }
	for ri, rate := range peerTailRates {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		seed := o.Seed + uint64(round)<<40 + uint64(ri)<<32
		lf := b.mixedOpenLoop(ctx, cl, rate, o.PeerOpenDuration, nil, key,
			[]client.Option{client.N(3), client.R(2)}, []client.Option{client.N(3), client.W(2)}, seed)
		x := benchPeerTail{Round: round, Sync: sync, RatePerSec: rate, Ops: lf.all.Count, Errors: lf.all.Errors,
			P50Ms: benchutil.Ms(lf.all.P50), P99Ms: benchutil.Ms(lf.all.P99), P999Ms: benchutil.Ms(lf.all.P999), MaxMs: benchutil.Ms(lf.all.Max)}
		if lf.elapsed > 0 {
			x.AchievedPerSec = float64(lf.all.Count) / lf.elapsed.Seconds()
		}
		p.Tail = append(p.Tail, x)
		b.progress("peer %s tail %.0f/s: achieved %.0f/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, %d errors",
			t.system, rate, x.AchievedPerSec, x.P50Ms, x.P99Ms, x.P999Ms, x.Errors)
	}
	return nil
}

// startPeerMnemo starts a fresh 3-node cluster with a Redis port,
// N=3 R=2 W=2 and --sync sync.
func (b *bench) startPeerMnemo(ctx context.Context, name, sync string) (*peerTarget, error) {
	bc, err := b.startCluster(ctx, name, true, "--sync", sync, "--n", "3", "--r", "2", "--w", "2")
	if err != nil {
		return nil, err
	}
	return &peerTarget{addr: bc.Nodes[0].RESP, procs: bc.procs(), bc: bc, stop: bc.Close}, nil
}

// startPeerRedis starts a redis-server without persistence.
func (b *bench) startPeerRedis(ctx context.Context, rserver, dir string) (*peerTarget, error) {
	srv, err := startBenchRedis(ctx, rserver, dir, benchRedisConfigs[0].args)
	if err != nil {
		return nil, err
	}
	return &peerTarget{addr: srv.addr, procs: []benchProc{{name: "redis-server", pid: srv.pid}}, stop: srv.stop}, nil
}

// peerKey is key i of the key space redis-benchmark's -r draws from:
// key:__rand_int__ becomes "key:" and 12 digits, zero padded.
func peerKey(i int) []byte { return fmt.Appendf(nil, "key:%012d", i) }

// peerPreloadCommand is the command that writes key i with value to
// system: a DM.PUT into the bench DMap for Olric, a SET for the others.
func peerPreloadCommand(system string, i int, value []byte) [][]byte {
	if system == peerOlric {
		return [][]byte{[]byte("DM.PUT"), []byte(olricDMap), peerKey(i), value}
	}
	return [][]byte{[]byte("SET"), peerKey(i), value}
}

// peerBenchmarkArgs are redis-benchmark's arguments for test (SET or GET)
// against system: -t set/get with -d for mnemo and redis, and the
// equivalent custom DM.PUT/DM.GET command for Olric (which has no SET).
func peerBenchmarkArgs(system, test, host, port string, clients, requests, keys, pipeline int, value string) []string {
	args := []string{"-h", host, "-p", port, "-c", strconv.Itoa(clients), "-n", strconv.Itoa(requests),
		"-r", strconv.Itoa(keys), "-P", strconv.Itoa(pipeline), "--csv"}
	if system != peerOlric {
		return append(args, "-d", strconv.Itoa(len(value)), "-t", strings.ToLower(test))
	}
	if test == "SET" {
		return append(args, "DM.PUT", olricDMap, "key:__rand_int__", value)
	}
	return append(args, "DM.GET", olricDMap, "key:__rand_int__")
}

// peerLabel returns the one result of a redis-benchmark run of test,
// labelled test: with a custom command the CSV's test column is the whole
// command line.
func peerLabel(rows []benchutil.RedisResult, test string) (benchutil.RedisResult, error) {
	if len(rows) != 1 {
		var names []string
		for _, r := range rows {
			names = append(names, r.Test)
		}
		return benchutil.RedisResult{}, fmt.Errorf("redis-benchmark printed %d results (%q), want 1", len(rows), names)
	}
	r := rows[0]
	r.Test = test
	return r, nil
}

// peerStat is the median, min and max of xs (zeros when empty); the median
// of an even count is the mean of the middle two.
func peerStat(xs []float64) benchPeerStat {
	if len(xs) == 0 {
		return benchPeerStat{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return benchPeerStat{Median: m, Min: s[0], Max: s[len(s)-1]}
}

// peerSummarize groups the runs by system, test and pipeline, in the order
// they first appear.
func peerSummarize(runs []benchPeerRun) []benchPeerSummary {
	type key struct {
		system, test string
		pipeline     int
	}
	var order []key
	groups := map[key][]benchPeerRun{}
	for _, r := range runs {
		k := key{r.System, r.Test, r.Pipeline}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := []benchPeerSummary{}
	for _, k := range order {
		g := groups[k]
		col := func(f func(benchPeerRun) float64) benchPeerStat {
			xs := make([]float64, len(g))
			for i, r := range g {
				xs[i] = f(r)
			}
			return peerStat(xs)
		}
		out = append(out, benchPeerSummary{System: k.system, Test: k.test, Pipeline: k.pipeline, Rounds: len(g),
			RPS:        col(func(r benchPeerRun) float64 { return r.RPS }),
			P50Ms:      col(func(r benchPeerRun) float64 { return r.P50Ms }),
			P99Ms:      col(func(r benchPeerRun) float64 { return r.P99Ms }),
			CPUMsPerOp: col(func(r benchPeerRun) float64 { return r.CPUMsPerOp }),
			MaxRSSMiB:  col(func(r benchPeerRun) float64 { return r.MaxRSSMiB }),
		})
	}
	return out
}

// peerPairings are the ratios reported: each mnemo mode over Olric, then
// over redis.
var peerPairings = [][2]string{
	{peerMnemoNone, peerOlric}, {peerMnemoAlways, peerOlric},
	{peerMnemoNone, peerRedis}, {peerMnemoAlways, peerRedis},
}

// peerRatios divides mnemo's medians by Olric's and redis's for every test
// both measured; a ratio whose divisor is 0 is left 0.
func peerRatios(sum []benchPeerSummary) []benchPeerRatio {
	find := func(system, test string, p int) (benchPeerSummary, bool) {
		for _, s := range sum {
			if s.System == system && s.Test == test && s.Pipeline == p {
				return s, true
			}
		}
		return benchPeerSummary{}, false
	}
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	out := []benchPeerRatio{}
	for _, pr := range peerPairings {
		for _, m := range sum {
			if m.System != pr[0] {
				continue
			}
			other, ok := find(pr[1], m.Test, m.Pipeline)
			if !ok {
				continue
			}
			out = append(out, benchPeerRatio{Pairing: pr[0] + " / " + pr[1], Test: m.Test, Pipeline: m.Pipeline,
				RPS: div(m.RPS.Median, other.RPS.Median), P99: div(m.P99Ms.Median, other.P99Ms.Median),
				CPUPerOp: div(m.CPUMsPerOp.Median, other.CPUMsPerOp.Median)})
		}
	}
	return out
}

// peerTailSummarize groups the tail's open loops by mode and rate.
func peerTailSummarize(tail []benchPeerTail) []benchPeerTailStat {
	type key struct {
		sync string
		rate float64
	}
	var order []key
	groups := map[key][]benchPeerTail{}
	for _, x := range tail {
		k := key{x.Sync, x.RatePerSec}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], x)
	}
	out := []benchPeerTailStat{}
	for _, k := range order {
		g := groups[k]
		col := func(f func(benchPeerTail) float64) benchPeerStat {
			xs := make([]float64, len(g))
			for i, x := range g {
				xs[i] = f(x)
			}
			return peerStat(xs)
		}
		st := benchPeerTailStat{Sync: k.sync, RatePerSec: k.rate, Rounds: len(g),
			Achieved: col(func(x benchPeerTail) float64 { return x.AchievedPerSec }),
			P50Ms:    col(func(x benchPeerTail) float64 { return x.P50Ms }),
			P99Ms:    col(func(x benchPeerTail) float64 { return x.P99Ms }),
			P999Ms:   col(func(x benchPeerTail) float64 { return x.P999Ms })}
		for _, x := range g {
			st.Errors += x.Errors
		}
		out = append(out, st)
	}
	return out
}

// olricNode is one olric-server's place in the bench's cluster.
type olricNode struct {
	BindPort       int      // RESP, server.bindPort
	MemberlistPort int      // memberlist.bindPort (UDP and TCP)
	Peers          []string // memberlist addresses to join; none for the first node
}

// olricConfigYAML is node's olric-server configuration: a 3-replica DMap
// with read and write quorums of 2 and synchronous replication (mnemo's
// N=3 R=2 W=2), read repair off, on loopback.
// NB: Olric refuses to start with its own address among its peers
// ("cannot be peer with itself"), so the first node lists none.
func olricConfigYAML(node olricNode) string {
	var b strings.Builder
	fmt.Fprintf(&b, `server:
  bindAddr: 127.0.0.1
  bindPort: %d
  replicaCount: 3
  writeQuorum: 2
  readQuorum: 2
  readRepair: false
  replicationMode: 0
  memberCountQuorum: 1
  partitionCount: 271
memberlist:
  environment: local
  bindAddr: 127.0.0.1
  bindPort: %d
  joinRetryInterval: 100ms
  maxJoinAttempts: 50
`, node.BindPort, node.MemberlistPort)
	if len(node.Peers) > 0 {
		b.WriteString("  peers:\n")
		for _, p := range node.Peers {
			fmt.Fprintf(&b, "    - %q\n", p)
		}
	}
	b.WriteString(`logging:
  level: WARN
  output: stderr
dmaps:
  engine:
    name: kvstore
    config:
      tableSize: 524288
`)
	return b.String()
}

// olricBinary finds olric-server: --olric-bin (or MNEMO_BENCH_OLRIC), else
// the one in the bench's tools folder (.bench-tools beside --dir), else it
// go-installs olricModule@olricVersion there. The error says why none is
// usable.
func (b *bench) olricBinary(ctx context.Context) (string, error) {
	executable := func(path string) error {
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return fmt.Errorf("%s is not an executable file", path)
		}
		return nil
	}
	if bin := b.o.OlricBin; bin != "" {
		if err := executable(bin); err != nil {
			return "", fmt.Errorf("--olric-bin: %w", err)
		}
		return filepath.Abs(bin)
	}
	tools := filepath.Join(filepath.Dir(b.dir), ".bench-tools")
	bin := filepath.Join(tools, "olric-server")
	if executable(bin) == nil {
		return bin, nil
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("no --olric-bin or MNEMO_BENCH_OLRIC, and no go to install %s@%s", olricModule, olricVersion)
	}
	if err := os.MkdirAll(tools, 0o755); err != nil {
		return "", err
	}
	b.progress("peer: go install %s@%s into %s", olricModule, olricVersion, tools)
	ictx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ictx, gobin, "install", olricModule+"@"+olricVersion)
	// Outside this module, so its go.mod and go.work play no part.
	cmd.Dir = tools
	cmd.Env = append(os.Environ(), "GOBIN="+tools, "GOWORK=off", "GOFLAGS=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %v: %s (or give --olric-bin)", olricModule, olricVersion, err, benchLastLines(out, 3))
	}
	if err := executable(bin); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w", olricModule, olricVersion, err)
	}
	return bin, nil
}

// olricServerVersion is what `olric-server -v` prints, or why not.
func olricServerVersion(ctx context.Context, bin string) string {
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(vctx, bin, "-v").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("unknown version (%v)", err)
	}
	return benchLastLines(out, 1)
}

// benchLastLines is the last n non-empty lines of out, joined by " | ".
func benchLastLines(out []byte, n int) string {
	var lines []string
	for l := range strings.SplitSeq(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// startOlric starts a 3-node Olric cluster under dir: node 1, then once it
// answers, nodes 2 and 3 joining it. It returns once node 1 lists 3
// members and a DM.PUT and DM.GET round trip through it works.
func (b *bench) startOlric(ctx context.Context, bin, dir string) (*peerTarget, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ports, err := benchFreePorts(6)
	if err != nil {
		return nil, err
	}
	var srvs []*benchRedisServer
	stop := func() {
		for _, s := range srvs {
			s.stop()
		}
	}
	t := &peerTarget{stop: stop}
	start := func(i int, node olricNode) error {
		name := fmt.Sprintf("olric-%d", i+1)
		conf := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(conf, []byte(olricConfigYAML(node)), 0o644); err != nil {
			return err
		}
		logPath := filepath.Join(dir, name+".log")
		log, err := os.Create(logPath)
		if err != nil {
			return err
		}
		defer log.Close() // the child has its own descriptor
		cmd := exec.Command(bin, "-c", conf)
		cmd.Dir, cmd.Stdout, cmd.Stderr = dir, log, log
		// Like the nodes: the server dies with the bench if the bench is
		// killed.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		s := &benchRedisServer{addr: fmt.Sprintf("127.0.0.1:%d", node.BindPort), cmd: cmd, done: make(chan struct{})}
		go func() { cmd.Wait(); close(s.done) }()
		srvs = append(srvs, s)
		t.procs = append(t.procs, benchProc{name: name, pid: s.pid})
		return nil
	}
	// exited reports a server that has ended, with the tail of its log.
	exited := func() string {
		for i, s := range srvs {
			select {
			case <-s.done:
				logb, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("olric-%d.log", i+1)))
				return fmt.Sprintf("olric-%d exited: %s", i+1, benchLastLines(logb, 3))
			default:
			}
		}
		return ""
	}
	members := func() (int, string) {
		if why := exited(); why != "" {
			return -1, why
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		v, err := benchutil.RESPDo(rctx, srvs[0].addr, "CLUSTER.MEMBERS")
		if err != nil {
			return 0, err.Error()
		}
		arr, _ := v.([]any)
		return len(arr), fmt.Sprintf("%d members: %v", len(arr), v)
	}
	first := olricNode{BindPort: ports[0], MemberlistPort: ports[1]}
	if err := start(0, first); err != nil {
		return nil, err
	}
	const timeout = time.Minute
	err = poll.Until(ctx, timeout, 50*time.Millisecond, "olric-1 answering CLUSTER.MEMBERS", func() (bool, string) {
		n, seen := members()
		if n < 0 {
			return false, seen
		}
		return n >= 1, seen
	})
	for i := 1; i < 3 && err == nil; i++ {
		err = start(i, olricNode{BindPort: ports[2*i], MemberlistPort: ports[2*i+1], Peers: []string{fmt.Sprintf("127.0.0.1:%d", first.MemberlistPort)}})
	}
	if err == nil {
		t.addr = srvs[0].addr
		probe := "bench-probe"
		err = poll.Until(ctx, timeout, 100*time.Millisecond, "a 3-member Olric cluster answering DM.PUT and DM.GET", func() (bool, string) {
			n, seen := members()
			if n != 3 {
				return false, seen
			}
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if _, err := benchutil.RESPDo(rctx, t.addr, "DM.PUT", olricDMap, probe, "1"); err != nil {
				return false, "DM.PUT: " + err.Error()
			}
			v, err := benchutil.RESPDo(rctx, t.addr, "DM.GET", olricDMap, probe)
			if err != nil {
				return false, "DM.GET: " + err.Error()
			}
			return v == "1", fmt.Sprintf("DM.GET %s: %v", probe, v)
		})
	}
	if err != nil {
		stop()
		return nil, fmt.Errorf("olric: %w (logs in %s)", err, dir)
	}
	b.progress("olric cluster up: 3 nodes, RESP on %s", t.addr)
	return t, nil
}

// benchFreePorts returns n distinct free loopback TCP ports.
func benchFreePorts(n int) ([]int, error) {
	var out []int
	for tries := 0; len(out) < n; tries++ {
		if tries > 10*n {
			return nil, errors.New("bench: no distinct free ports")
		}
		addr, err := localcluster.FreePort()
		if err != nil {
			return nil, err
		}
		_, ps, _ := net.SplitHostPort(addr)
		port, err := strconv.Atoi(ps)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, port) {
			out = append(out, port)
		}
	}
	return out, nil
}

// print writes the peer phase's tables.
func (p *benchPeer) print(w io.Writer) {
	fmt.Fprintf(w, "\nPeer comparison (issue 12): %d alternating round(s), each running %s with fresh processes;\n",
		p.Rounds, strings.Join(p.Order, ", "))
	fmt.Fprintf(w, "  redis-benchmark -c %d -n %d -r %d, %d-byte values, every key preloaded; median over the rounds (min-max)\n",
		p.Clients, p.Requests, p.Keys, p.ValueSize)
	fmt.Fprintln(w, "  mnemo: 3 nodes, N=3 R=2 W=2, node-1's Redis port; redis: one redis-server, no persistence")
	if p.Olric != "" {
		fmt.Fprintf(w, "  olric: 3 olric-server, replicaCount 3, writeQuorum 2, readQuorum 2, sync replication, read repair off; DM.PUT/DM.GET via node 1\n")
		note := ""
		if strings.Contains(p.OlricVer, "0.7.3") {
			// NB: the v0.7.4 tag's ReleaseVersion constant still says 0.7.3.
			note = " (the v0.7.4 tag still calls itself 0.7.3)"
		}
		fmt.Fprintf(w, "    %s: %s%s\n", p.Olric, p.OlricVer, note)
	}
	for _, u := range p.Unavailable {
		fmt.Fprintln(w, "  "+u)
	}
	if len(p.Summary) > 0 {
		fmt.Fprintln(w, "  cpu ms/op: the server processes' CPU (user + system, 10 ms ticks) summed, per operation; peak RSS: the largest VmHWM of one server process, max over the rounds")
		tw := newTextTable(w, 2)
		tw.add("system\ttest\t-P\tops/s\t(min-max)\tp50 ms\tp99 ms\t(min-max)\tcpu ms/op\t(min-max)\tpeak RSS MiB\t")
		for _, s := range p.Summary {
			tw.addf("%s\t%s\t%d\t%.0f\t%s\t%.3f\t%.3f\t%s\t%.4f\t%s\t%.0f\t\n", s.System, s.Test, s.Pipeline,
				s.RPS.Median, peerRange(s.RPS, "%.0f"), s.P50Ms.Median, s.P99Ms.Median, peerRange(s.P99Ms, "%.3f"),
				s.CPUMsPerOp.Median, peerRange(s.CPUMsPerOp, "%.4f"), s.MaxRSSMiB.Max)
		}
		tw.flush()
	}
	if len(p.Ratios) > 0 {
		fmt.Fprintln(w, "\nmnemo / peer, of the medians (ops/s: above 1 is faster; p99 and cpu/op: above 1 is slower, costlier)")
		tw := newTextTable(w, 2)
		tw.add("pairing\ttest\t-P\tops/s\tp99\tcpu/op\t")
		for _, r := range p.Ratios {
			tw.addf("%s\t%s\t%d\t%.2fx\t%.2fx\t%.2fx\t\n", r.Pairing, r.Test, r.Pipeline, r.RPS, r.P99, r.CPUPerOp)
		}
		tw.flush()
	}
	if len(p.TailSummary) > 0 {
		fmt.Fprintln(w, "\nmnemo's light-load tail: Go SDK open loop (half gets R=2, half puts W=2, N=3, preloaded keys), latency from the scheduled send, after the benchmarks once the nodes are quiet")
		tw := newTextTable(w, 1)
		tw.add("sync\trate/s\tachieved/s\tp50 ms\tp99 ms\t(min-max)\tp99.9 ms\t(min-max)\terrors\t")
		for _, s := range p.TailSummary {
			tw.addf("%s\t%.0f\t%.0f\t%.2f\t%.2f\t%s\t%.2f\t%s\t%d\t\n", s.Sync, s.RatePerSec, s.Achieved.Median, s.P50Ms.Median,
				s.P99Ms.Median, peerRange(s.P99Ms, "%.2f"), s.P999Ms.Median, peerRange(s.P999Ms, "%.2f"), s.Errors)
		}
		tw.flush()
	}
	for _, e := range p.Errors {
		fmt.Fprintln(w, "  peer error:", e)
	}
}

// peerRange formats a stat's min-max with format.
func peerRange(s benchPeerStat, format string) string {
	return "(" + fmt.Sprintf(format, s.Min) + "-" + fmt.Sprintf(format, s.Max) + ")"
}
