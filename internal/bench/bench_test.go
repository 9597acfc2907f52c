package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mnemo-kv/mnemo/internal/localcluster"
)

// mnemoBin is the binary the smoke test's nodes run: $MNEMO_BIN (make test
// sets it to the binary it just built), else one built for the test.
var mnemoBin string

func TestMain(m *testing.M) {
	code := localcluster.RunTests(m, "bench", &mnemoBin)
	// Every goroutine a run starts (load drivers, meters, log readers)
	// must have ended when Run returned.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// TestBenchSmoke runs every phase of `mnemo bench` with tiny sizes and 1 s
// phases against real processes, so `make test` proves the harness runs
// end to end (the figures themselves are not checked: the machine is
// shared). The redis phase is skipped, with a message, when
// redis-benchmark is not installed.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three clusters of real processes")
	}
	dir := t.TempDir()
	o := DefaultConfig()
	o.Binary = mnemoBin
	o.Dir = filepath.Join(dir, "bench")
	o.Out = filepath.Join(dir, "bench.json")
	o.Seed = uint64(time.Now().UnixNano())
	o.Profile = false
	o.Duration, o.OpenDuration, o.LightDuration = time.Second, time.Second, time.Second
	o.Quorums = []string{"3,2,2"}
	o.Keys, o.LoadConcurrency = 500, 64
	o.RedisRequests, o.RedisKeys, o.RedisPipelines = 2000, 500, []int{1}
	o.HintKeys, o.AeKeys, o.AeMissing = 300, 3000, 300
	o.AeInterval, o.LightRate, o.WaitTimeout = 2*time.Second, 200, time.Minute
	o.PeerRounds, o.PeerOpenDuration, o.QuietLimit = 1, time.Second, 10*time.Second
	// Olric only when given (MNEMO_BENCH_OLRIC): the test does not go
	// install it, and without it checks that the report says so.
	if o.OlricBin == "" {
		o.OlricBin = filepath.Join(dir, "no-olric-server")
	}
	t.Logf("seed %d", o.Seed)
	_, haveRedis := exec.LookPath("redis-benchmark")
	if haveRedis != nil {
		t.Log("redis-benchmark not installed: the redis phase will be skipped (apt-get install -y redis-server redis-tools)")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	if len(rep.SDK) != 2 || len(rep.OpenLoop) != 2 {
		t.Errorf("sdk: %d closed-loop and %d open-loop phases, want 2 and 2", len(rep.SDK), len(rep.OpenLoop))
	}
	for _, p := range rep.SDK {
		if p.Ops == 0 || p.Errors > 0 {
			t.Errorf("sdk %s %s: %d ops, %d errors", p.Op, p.NRW, p.Ops, p.Errors)
		}
	}
	if haveRedis == nil {
		// SET and GET on mnemo (--sync always, then none) and on redis
		// (two configurations), when redis-server is there too.
		want := 4
		if _, err := exec.LookPath("redis-server"); err == nil {
			want = 8
		}
		if len(rep.Redis) != want {
			t.Errorf("redis: %d rows, want %d: %+v", len(rep.Redis), want, rep.Redis)
		}
	}
	if h := rep.Handoff; h == nil || h.HintsReplayed < float64(o.HintKeys) || h.SampleWrong > 0 {
		t.Errorf("hinted handoff: %+v", h)
	}
	if a := rep.AE; a == nil || a.Round == nil || a.Repair == nil || a.Fore == nil || a.Repair.KeysReceived < float64(o.AeMissing) {
		t.Errorf("anti-entropy: %+v", a)
	}
	if x := rep.Transfer; x == nil || x.KeysReceived == 0 {
		t.Errorf("transfer: %+v", x)
	}
	if haveRedis == nil {
		checkPeerSmoke(t, rep.Peer, o)
	}
	if len(rep.Resources) == 0 || len(rep.Resources[0].Procs) != 3 {
		t.Errorf("resources: %+v", rep.Resources)
	}
	// The SDK puts run --sync always: every node fsynced its WAL, and the
	// figures come from its /metrics.
	found := false
	for _, x := range rep.Resources {
		if x.Phase != "sdk put 3,2,2" {
			continue
		}
		found = true
		for _, p := range x.Procs {
			if p.WALFsyncs < 1 || p.WALFsyncMeanMs <= 0 || p.WALFsyncMeanMs > 10_000 {
				t.Errorf("%s during %s: %d WAL fsyncs, mean %.3f ms", p.Name, x.Phase, p.WALFsyncs, p.WALFsyncMeanMs)
			}
		}
	}
	if !found {
		t.Error("no resources of the phase sdk put 3,2,2")
	}
	b, err := os.ReadFile(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("results file: %v", err)
	}
	if len(back.Targets) == 0 {
		t.Error("results file without targets")
	}
}

// checkPeerSmoke checks the peer phase of a smoke run: one round of
// SET and GET per system that ran, the light-load tail of both mnemo
// modes, and Olric either measured or said to be unavailable.
func checkPeerSmoke(t *testing.T, p *benchPeer, o Config) {
	t.Helper()
	if p == nil {
		t.Error("no peer phase in the report")
		return
	}
	if len(p.Errors) > 0 {
		t.Errorf("peer errors: %v", p.Errors)
	}
	olric := p.Olric != ""
	if !olric && (len(p.Unavailable) == 0 || !strings.HasPrefix(p.Unavailable[0], "olric: not available: ")) {
		t.Errorf("olric neither measured nor said unavailable: %v", p.Unavailable)
	}
	want := map[string]bool{peerMnemoNone: true, peerMnemoAlways: true, peerOlric: olric}
	if _, err := exec.LookPath("redis-server"); err == nil {
		want[peerRedis] = true
	}
	got := map[string]int{}
	for _, r := range p.Runs {
		got[r.System]++
		if r.RPS <= 0 || r.P99Ms <= 0 || r.MaxRSSMiB <= 0 {
			t.Errorf("peer run %+v", r)
		}
	}
	for system, ran := range want {
		if n := got[system]; ran && n != 2*len(o.RedisPipelines) || !ran && n > 0 {
			t.Errorf("%s: %d runs, want SET and GET per pipeline depth (ran: %v)", system, n, ran)
		}
	}
	if len(p.Tail) != 2*len(peerTailRates) {
		t.Errorf("light-load tail: %d open loops, want %d: %+v", len(p.Tail), 2*len(peerTailRates), p.Tail)
	}
	for _, x := range p.Tail {
		if x.Ops == 0 || x.Errors > 0 {
			t.Errorf("tail %s %.0f/s: %d ops, %d errors", x.Sync, x.RatePerSec, x.Ops, x.Errors)
		}
	}
	if want[peerRedis] && len(p.Ratios) == 0 {
		t.Error("no mnemo/redis ratios")
	}
}
