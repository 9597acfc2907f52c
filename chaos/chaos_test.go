package chaos

// End-to-end: real `mnemo node` processes, real faults, the real checker.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/localcluster"
)

var mnemoBin string

func TestMain(m *testing.M) {
	code := localcluster.RunTests(m, "chaos", &mnemoBin)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// logWriter sends a run's progress lines to the test log.
type logWriter struct {
	t   testing.TB
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line)
			return len(p), nil
		}
		w.t.Log(strings.TrimRight(line, "\n"))
	}
}

// testSeed is CHAOS_SEED when set, else def; the seed is logged either way
// so a failure can be replayed.
func testSeed(t *testing.T, def int64) int64 {
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED=%q: %v", s, err)
		}
		return v
	}
	return def
}

// TestChaosShort is the short seeded run of `make test`: kills, restarts,
// pauses, a wipe, and (as root) partitions and an isolated node, under the
// three workloads; then heal, converge and check, with sloppy quorum and
// convergence by hinted handoff and anti-entropy themselves.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of real processes")
	}
	cfg := ShortConfig()
	cfg.Binary = mnemoBin
	cfg.Dir = t.TempDir()
	cfg.Seed = testSeed(t, 20261125)
	cfg.Out = &logWriter{t: t}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("seed %d: %v", cfg.Seed, err)
	}
	if rep.Failed() {
		t.Fatalf("seed %d failed (replay: CHAOS_SEED=%d go test ./chaos -run TestChaosShort): %s", rep.Seed, rep.Seed, strings.Join(rep.Failures, "; "))
	}
	played := map[FaultKind]int{}
	for _, f := range rep.Faults {
		if f.Played {
			played[f.Kind]++
		}
	}
	for _, k := range rep.FaultKinds {
		if played[k] == 0 {
			t.Errorf("no %s was played: %+v", k, rep.Faults)
		}
	}
	if os.Geteuid() == 0 && (played[FaultPartition] == 0 || played[FaultIsolate] == 0) {
		t.Errorf("running as root, partitions must be played: %s", rep.Partitions)
	}
	if rep.Check.Set.Acked < 100 || rep.Check.Register.Acked < 50 || rep.Check.Delete.AckedDeletes < 10 {
		t.Errorf("too little was acknowledged to prove anything: %+v", rep.Check)
	}
}

// TestPlantedBugsAreCaught shows that the checker catches what it claims
// to: a client layer that acknowledges adds and deletes it never sent, and
// writes without the context it read, makes the check fail with exactly
// those operations named.
func TestPlantedBugsAreCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes")
	}
	cfg := ShortConfig()
	cfg.Binary = mnemoBin
	cfg.Dir = t.TempDir()
	cfg.Seed = testSeed(t, 5)
	cfg.Out = &logWriter{t: t}
	cfg.Duration = 8 * time.Second
	cfg.Faults = nil
	cfg.Netns = "off"
	// Many register keys: a blind write leaves a stale sibling only when it
	// is its key's last write, which about one key in ten sees.
	cfg.RegisterKeys = 200
	cfg.PlantBugs = []string{BugLoseAdd, BugSkipDelete, BugDropContext}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Failed() {
		t.Fatal("the check passed with planted bugs")
	}
	c := rep.Check
	if c.Set.Lost == 0 || c.Delete.Resurrected == 0 || c.Register.Stale == 0 {
		t.Fatalf("planted bugs not all caught: lost adds %d, resurrected %d, stale %d", c.Set.Lost, c.Delete.Resurrected, c.Register.Stale)
	}
	if c.Unexpected != 0 || c.Unreadable != 0 || c.Register.Lost != 0 || c.Delete.Lost != 0 {
		t.Errorf("the bugs plant only lost adds, resurrections and stale values: %+v", c)
	}
	// Every problem names a planted operation, and every planted add and
	// delete is reported.
	hist, err := os.ReadFile(rep.Files["history"])
	if err != nil {
		t.Fatal(err)
	}
	planted := map[int64]bool{}
	addsPlanted, delsPlanted := 0, 0
	for _, line := range strings.Split(string(hist), "\n") {
		if !strings.Contains(line, `"planted":true`) || strings.HasPrefix(line, `{"type":"invoke"`) {
			continue
		}
		var id int64
		fmt.Sscanf(line[strings.Index(line, `"id":`)+5:], "%d", &id)
		planted[id] = true
		switch {
		case strings.Contains(line, `"f":"add"`):
			addsPlanted++
		case strings.Contains(line, `"f":"delete"`):
			delsPlanted++
		}
	}
	if c.Set.Lost != addsPlanted || c.Delete.Resurrected != delsPlanted {
		t.Errorf("lost %d adds and resurrected %d values; planted %d and %d", c.Set.Lost, c.Delete.Resurrected, addsPlanted, delsPlanted)
	}
	for _, p := range c.Problems {
		if !planted[p.Op] {
			t.Errorf("problem not caused by a planted op: %+v", p)
		}
	}
	if !strings.Contains(strings.Join(rep.Failures, ";"), "acknowledged writes lost") {
		t.Errorf("failures %q", rep.Failures)
	}
}

// TestLWWExperiment runs the workloads on an lww cluster: concurrent set
// adds are lost, and that is reported as the experiment's figure, not as a
// failure.
func TestLWWExperiment(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes")
	}
	cfg := ShortConfig()
	cfg.Binary = mnemoBin
	cfg.Dir = t.TempDir()
	cfg.Seed = testSeed(t, 3)
	cfg.Out = &logWriter{t: t}
	cfg.Duration = 6 * time.Second
	cfg.Faults = nil
	cfg.Netns = "off"
	cfg.Conflicts = "lww"
	// Sixteen clients adding to one key: their read-modify-writes overlap
	// all the time, so last-write-wins must drop some adds. (With 4
	// clients on 4 keys a run once saw no overlap at all.) NB: the rate
	// must release operations faster than one read-modify-write takes,
	// or the limiter serializes them: at ShortConfig's 150 ops/s and a
	// 2-3 ms read-modify-write, 688 adds overlapped not once.
	cfg.SetWorkers, cfg.SetKeys = 16, 1
	cfg.Rate = 2000
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.LWW == nil || rep.LWW.AckedAdds == 0 {
		t.Fatalf("no LWW figure: %+v", rep.LWW)
	}
	t.Logf("LWW lost %d of %d acknowledged set adds (%.1f%%)", rep.LWW.LostAdds, rep.LWW.AckedAdds, rep.LWW.LostPct)
	if rep.LWW.LostAdds == 0 {
		t.Errorf("LWW lost no concurrent set adds with %d set clients on %d keys: the experiment shows nothing", cfg.SetWorkers, cfg.SetKeys)
	}
	if rep.Failed() {
		t.Errorf("LWW losses must not fail the run: %v", rep.Failures)
	}
}

// TestNetnsPartitionAndHeal runs three real nodes in namespaces, isolates
// one (the others see it dead; the harness still reaches it), heals (all
// alive again), and leaves no namespace or link behind.
func TestNetnsPartitionAndHeal(t *testing.T) {
	if ok, why := netnsUsable(); !ok {
		t.Skip(why)
	}
	nn, _, err := setupNetns(3)
	if err != nil {
		t.Fatal(err)
	}
	lc, err := localcluster.New(nodeOptions(localcluster.Options{Binary: mnemoBin, Dir: t.TempDir(), Nodes: 3, Args: []string{"--gossip-profile", "local", "--insecure"}}, nn.wrap))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range lc.Nodes {
		p.RPC, p.Gossip = nn.ips[i]+":"+netnsRPCPort, nn.ips[i]+":"+netnsGossipPort
	}
	ns := newNodes(lc)
	closed := false
	cleanup := func() {
		if !closed {
			closed = true
			ns.Close()
			if err := nn.Close(); err != nil {
				t.Error(err)
			}
		}
	}
	defer cleanup()
	for i := range lc.Nodes {
		if err := ns.Start(i); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := lc.WaitConverged(ctx, 0, 1, 2); err != nil {
		t.Fatalf("nodes in namespaces: %v%s", err, bridgeFilterHint())
	}
	cl, err := lc.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Put(ctx, []byte("k"), []byte("v"), client.W(3)); err != nil {
		t.Fatal(err)
	}

	if err := nn.Partition([]int{2}); err != nil {
		t.Fatal(err)
	}
	if err := lc.WaitConverged(ctx, 0, 1); err != nil {
		t.Fatalf("after isolating node-3: %v", err)
	}
	// The harness still reaches the isolated node, which sees itself alone.
	if err := lc.WaitConverged(ctx, 2); err != nil {
		t.Fatalf("node-3 cut off: %v", err)
	}
	if _, err := cl.Put(ctx, []byte("k"), []byte("v2"), client.W(3), client.Strict(), client.Node(lc.Nodes[0].RPC)); err == nil {
		t.Fatal("a strict W=3 write succeeded with node-3 cut off")
	}

	if err := nn.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := lc.WaitConverged(ctx, 0, 1, 2); err != nil {
		t.Fatalf("after heal: %v", err)
	}
	if _, err := cl.Put(ctx, []byte("k"), []byte("v3"), client.W(3), client.Strict()); err != nil {
		t.Fatalf("a strict W=3 write after heal: %v", err)
	}

	cleanup()
	out, _ := ipOutput("-o", "link", "show")
	nsList, _ := ipOutput("netns", "list")
	if strings.Contains(out, nn.name) || strings.Contains(nsList, nn.name) {
		t.Fatalf("left behind:\n%s\n%s", out, nsList)
	}
}

// TestStaleNetnsAreRemoved: names left by a run whose process is gone are
// removed; a live run's are not.
func TestStaleNetnsAreRemoved(t *testing.T) {
	if ok, why := netnsUsable(); !ok {
		t.Skip(why)
	}
	// A pid that is surely gone: a process that has exited.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	done := cmd.Process.Pid
	deadNS := fmt.Sprintf("%s%dzn0", netnsPrefix, done)
	deadBr := fmt.Sprintf("%s%dzb", netnsPrefix, done)
	live, _, err := setupNetns(1)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if err := ipCmd("netns", "add", deadNS); err != nil {
		t.Fatal(err)
	}
	defer ipCmd("netns", "del", deadNS)
	if err := ipCmd("link", "add", deadBr, "type", "bridge"); err != nil {
		t.Fatal(err)
	}
	defer ipCmd("link", "del", deadBr)
	removed := cleanStaleNetns()
	if !slices.Contains(removed, deadNS) || !slices.Contains(removed, deadBr) {
		t.Fatalf("removed %v, want %s and %s", removed, deadNS, deadBr)
	}
	for _, r := range removed {
		if strings.HasPrefix(r, live.name) {
			t.Fatalf("removed %s of a live run", r)
		}
	}
}
