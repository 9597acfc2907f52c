package bench

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mnemo-kv/mnemo/internal/benchutil"
)

func TestPeerStat(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want benchPeerStat
	}{
		{nil, benchPeerStat{}},
		{[]float64{5}, benchPeerStat{5, 5, 5}},
		{[]float64{4, 2}, benchPeerStat{3, 2, 4}},             // even: mean of the middle two
		{[]float64{9, 1, 3}, benchPeerStat{3, 1, 9}},          // odd: the middle one
		{[]float64{1, 100, 2, 3}, benchPeerStat{2.5, 1, 100}}, // an outlier moves min-max, not the median
	} {
		in := slices.Clone(tc.in)
		if got := peerStat(tc.in); got != tc.want {
			t.Errorf("peerStat(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("peerStat reordered its argument: %v", tc.in)
		}
	}
}

func TestPeerSummarizeAndRatios(t *testing.T) {
	run := func(round int, system, test string, p int, rps, p99, cpu float64) benchPeerRun {
		return benchPeerRun{Round: round, System: system, Test: test, Pipeline: p, RPS: rps, P99Ms: p99, CPUMsPerOp: cpu, MaxRSSMiB: float64(10 * round)}
	}
	runs := []benchPeerRun{
		run(1, peerMnemoNone, "SET", 1, 100, 2, 0.04), run(1, peerMnemoAlways, "SET", 1, 50, 4, 0.08),
		run(1, peerOlric, "SET", 1, 200, 1, 0.02), run(1, peerRedis, "SET", 1, 1000, 0.5, 0.004),
		run(2, peerMnemoNone, "SET", 1, 120, 4, 0.06), run(2, peerMnemoAlways, "SET", 1, 70, 6, 0.10),
		run(2, peerOlric, "SET", 1, 200, 3, 0.04), run(2, peerRedis, "SET", 1, 1000, 0.5, 0.006),
		// A test only mnemo ran: summarized, but no ratio.
		run(1, peerMnemoNone, "GET", 16, 300, 1, 0.01),
	}
	sum := peerSummarize(runs)
	if len(sum) != 5 {
		t.Fatalf("%d summaries, want 5: %+v", len(sum), sum)
	}
	// In the order first seen.
	if s := sum[0]; s.System != peerMnemoNone || s.Test != "SET" || s.Rounds != 2 ||
		s.RPS != (benchPeerStat{110, 100, 120}) || s.P99Ms != (benchPeerStat{3, 2, 4}) || s.MaxRSSMiB != (benchPeerStat{15, 10, 20}) {
		t.Errorf("mnemo --sync none SET -P 1: %+v", s)
	}
	if s := sum[4]; s.System != peerMnemoNone || s.Test != "GET" || s.Pipeline != 16 || s.Rounds != 1 {
		t.Errorf("the last summary: %+v", s)
	}

	got := map[string]benchPeerRatio{}
	for _, r := range peerRatios(sum) {
		got[r.Pairing+" "+r.Test] = r
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	for _, w := range []struct {
		key           string
		rps, p99, cpu float64
	}{
		// Medians: mnemo none 110 ops/s, p99 3, cpu 0.05; always 60, 5, 0.09;
		// olric 200, 2, 0.03; redis 1000, 0.5, 0.005.
		{"mnemo --sync none / olric SET", 110.0 / 200, 3.0 / 2, 0.05 / 0.03},
		{"mnemo --sync always / olric SET", 60.0 / 200, 5.0 / 2, 0.09 / 0.03},
		{"mnemo --sync none / redis SET", 110.0 / 1000, 3.0 / 0.5, 0.05 / 0.005},
		{"mnemo --sync always / redis SET", 60.0 / 1000, 5.0 / 0.5, 0.09 / 0.005},
	} {
		r, ok := got[w.key]
		if !ok {
			t.Errorf("no ratio %q", w.key)
			continue
		}
		if !near(r.RPS, w.rps) || !near(r.P99, w.p99) || !near(r.CPUPerOp, w.cpu) {
			t.Errorf("%s: ops/s %.4f p99 %.4f cpu %.4f, want %.4f %.4f %.4f", w.key, r.RPS, r.P99, r.CPUPerOp, w.rps, w.p99, w.cpu)
		}
	}
	if len(got) != 4 {
		t.Errorf("%d ratios, want 4 (no GET -P 16: only mnemo ran it): %v", len(got), got)
	}

	// Olric not available: only the ratios over redis; a zero divisor
	// gives 0, not Inf.
	var noOlric []benchPeerSummary
	for _, s := range sum {
		if s.System != peerOlric {
			if s.System == peerRedis {
				s.CPUMsPerOp = benchPeerStat{}
			}
			noOlric = append(noOlric, s)
		}
	}
	for _, r := range peerRatios(noOlric) {
		if strings.Contains(r.Pairing, "olric") {
			t.Errorf("a ratio over a system that did not run: %+v", r)
		}
		if r.CPUPerOp != 0 {
			t.Errorf("%s: cpu ratio over 0 = %v, want 0", r.Pairing, r.CPUPerOp)
		}
	}
}

func TestPeerTailSummarize(t *testing.T) {
	tail := []benchPeerTail{
		{Round: 1, Sync: "none", RatePerSec: 200, P99Ms: 1, Errors: 1},
		{Round: 1, Sync: "none", RatePerSec: 1000, P99Ms: 2},
		{Round: 2, Sync: "none", RatePerSec: 200, P99Ms: 3, Errors: 2},
	}
	got := peerTailSummarize(tail)
	if len(got) != 2 || got[0].RatePerSec != 200 || got[0].Rounds != 2 || got[0].Errors != 3 || got[0].P99Ms != (benchPeerStat{2, 1, 3}) {
		t.Errorf("peerTailSummarize: %+v", got)
	}
}

func TestOlricConfigYAML(t *testing.T) {
	first := olricConfigYAML(olricNode{BindPort: 3320, MemberlistPort: 3322})
	for _, want := range []string{
		"server:\n  bindAddr: 127.0.0.1\n  bindPort: 3320\n",
		"  replicaCount: 3\n", "  writeQuorum: 2\n", "  readQuorum: 2\n", "  readRepair: false\n",
		"  replicationMode: 0\n", "  memberCountQuorum: 1\n", "  partitionCount: 271\n",
		"memberlist:\n  environment: local\n  bindAddr: 127.0.0.1\n  bindPort: 3322\n",
		"  joinRetryInterval: 100ms\n", "  maxJoinAttempts: 50\n",
		"logging:\n  level: WARN\n",
		"dmaps:\n  engine:\n    name: kvstore\n    config:\n      tableSize: 524288\n",
	} {
		if !strings.Contains(first, want) {
			t.Errorf("node 1's config lacks %q:\n%s", want, first)
		}
	}
	// Olric will not start with itself as a peer: node 1 has none.
	if strings.Contains(first, "peers") {
		t.Errorf("node 1's config lists peers:\n%s", first)
	}
	second := olricConfigYAML(olricNode{BindPort: 3330, MemberlistPort: 3332, Peers: []string{"127.0.0.1:3322"}})
	want := "  bindPort: 3332\n  joinRetryInterval: 100ms\n  maxJoinAttempts: 50\n  peers:\n    - \"127.0.0.1:3322\"\nlogging:\n"
	if !strings.Contains(second, want) {
		t.Errorf("node 2's memberlist section: want %q in\n%s", want, second)
	}
	// Every line is indented by a multiple of two spaces, without tabs.
	for _, l := range strings.Split(strings.TrimSpace(second), "\n") {
		n := len(l) - len(strings.TrimLeft(l, " "))
		if n%2 != 0 || strings.Contains(l, "\t") {
			t.Errorf("bad indentation: %q", l)
		}
	}
}

func TestPeerLabel(t *testing.T) {
	// redis-benchmark 7 with a custom command: the test column is the
	// command line.
	csv := `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"DM.PUT bench key:__rand_int__ xxxxxxxxxx","16666.67","2.922","0.408","2.719","4.311","5.599","13.007"
`
	rows, err := benchutil.ParseRedisBenchmarkCSV(strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	got, err := peerLabel(rows, "SET")
	if err != nil {
		t.Fatal(err)
	}
	if got.Test != "SET" || got.RPS != 16666.67 || got.P50Ms != 2.719 || got.P99Ms != 5.599 {
		t.Errorf("peerLabel: %+v", got)
	}
	if _, err := peerLabel(append(rows, rows...), "SET"); err == nil {
		t.Error("two results labelled as one")
	}
	if _, err := peerLabel(nil, "GET"); err == nil {
		t.Error("no result labelled")
	}
}

func TestPeerPreloadCommand(t *testing.T) {
	v := []byte("xyz")
	enc := func(args [][]byte) string { return string(benchutil.AppendRESPCommand(nil, args...)) }
	if got, want := enc(peerPreloadCommand(peerOlric, 42, v)),
		"*4\r\n$6\r\nDM.PUT\r\n$5\r\nbench\r\n$16\r\nkey:000000000042\r\n$3\r\nxyz\r\n"; got != want {
		t.Errorf("olric: %q, want %q", got, want)
	}
	// The last key redis-benchmark -r 100000 can draw.
	for _, s := range []string{peerMnemoNone, peerMnemoAlways, peerRedis} {
		if got, want := enc(peerPreloadCommand(s, 99999, v)), "*3\r\n$3\r\nSET\r\n$16\r\nkey:000000099999\r\n$3\r\nxyz\r\n"; got != want {
			t.Errorf("%s: %q, want %q", s, got, want)
		}
	}
}

func TestPeerBenchmarkArgs(t *testing.T) {
	common := "-h 127.0.0.1 -p 6379 -c 50 -n 1000 -r 100000 -P 16 --csv"
	for _, tc := range []struct{ system, test, want string }{
		{peerMnemoNone, "SET", common + " -d 3 -t set"},
		{peerRedis, "GET", common + " -d 3 -t get"},
		{peerOlric, "SET", common + " DM.PUT bench key:__rand_int__ xyz"},
		{peerOlric, "GET", common + " DM.GET bench key:__rand_int__"},
	} {
		got := strings.Join(peerBenchmarkArgs(tc.system, tc.test, "127.0.0.1", "6379", 50, 1000, 100000, 16, "xyz"), " ")
		if got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.system, tc.test, got, tc.want)
		}
	}
}

// TestOlricBinaryUnavailable: a --olric-bin that is not there is an error
// that names it, not a go install.
func TestOlricBinaryUnavailable(t *testing.T) {
	dir := t.TempDir()
	b := &bench{o: DefaultConfig(), dir: filepath.Join(dir, "bench")}
	b.o.OlricBin = filepath.Join(dir, "no-such-olric-server")
	_, err := b.olricBinary(context.Background())
	if err == nil || !strings.Contains(err.Error(), "--olric-bin") || !strings.Contains(err.Error(), "no-such-olric-server") {
		t.Errorf("olricBinary: %v", err)
	}
	b.o.OlricBin = dir // a directory
	if _, err := b.olricBinary(context.Background()); err == nil {
		t.Error("a directory accepted as olric-server")
	}
}

// TestPeerTargets: issue 12's targets read the peer phase's ratios and
// tail; a run without the peer says n/a, not MISS.
func TestPeerTargets(t *testing.T) {
	r := &Report{Peer: &benchPeer{
		Ratios: []benchPeerRatio{
			{Pairing: "mnemo --sync none / " + peerOlric, Test: "SET", Pipeline: 1, RPS: 2.1, P99: 1.2, CPUPerOp: 0.4},
			{Pairing: "mnemo --sync none / " + peerOlric, Test: "GET", Pipeline: 16, RPS: 1.9},
		},
		TailSummary: []benchPeerTailStat{{Sync: "none", RatePerSec: 1000, P99Ms: benchPeerStat{Median: 2.5}}},
	}}
	got := map[string]string{}
	r.peerTargets(func(issue int, what, target, value string, ok, measured bool) {
		st := "n/a"
		if measured {
			st = map[bool]string{true: "PASS", false: "MISS"}[ok]
		}
		got[what] = st + " " + value
	})
	for what, want := range map[string]string{
		"redis-benchmark SET -P 1 ops/s, mnemo --sync none / Olric":   "PASS 2.10x",
		"redis-benchmark GET -P 16 ops/s, mnemo --sync none / Olric":  "MISS 1.90x",
		"redis-benchmark SET -P 1 ops/s, mnemo --sync always / Olric": "n/a -",
		"p99 SET -P 1, mnemo --sync none / Olric":                     "MISS 1.20x",
		"CPU per SET -P 1 (all nodes), mnemo --sync none / Olric":     "PASS 0.40x",
		"open loop 1,000 ops/s (3,2,2) p99, --sync none":              "PASS 2.50 ms",
		"open loop 1,000 ops/s (3,2,2) p99, --sync always":            "n/a -",
	} {
		if got[what] != want {
			t.Errorf("%s: %q, want %q", what, got[what], want)
		}
	}
}
