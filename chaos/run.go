package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/localcluster"
	"github.com/mnemo-kv/mnemo/internal/poll"
	"github.com/mnemo-kv/mnemo/internal/ratelimit"
)

// Fixed ports of a node in its namespace (each namespace has its own
// address, so every node can use the same ones).
const (
	netnsRPCPort    = "7000"
	netnsGossipPort = "7946"
)

// ErrInterrupted is returned by Run when its context ended before the
// check.
var ErrInterrupted = errors.New("chaos: interrupted")

// run is the state of one Run.
type run struct {
	cfg   Config
	out   io.Writer
	start time.Time // of the workloads; zero before
	rep   *Report
}

// logf prints a progress line, with the time since the workloads started.
func (r *run) logf(format string, args ...any) {
	prefix := "         "
	if !r.start.IsZero() {
		prefix = fmt.Sprintf("%7.1fs  ", time.Since(r.start).Seconds())
	}
	fmt.Fprintf(r.out, prefix+format+"\n", args...)
}

// Run does one chaos run as cfg says and returns its report. A run that
// found violations returns a report whose Failed is true and a nil error;
// the error is for a harness that could not do its job (a cluster that
// would not start, a directory it could not write) or ErrInterrupted.
// However Run ends, it stops every process and removes every namespace it
// made (unless cfg.Hold keeps them until ctx ends).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Seed == 0 {
		cfg.Seed = time.Now().UnixNano()%1_000_000_000 + 1
	}
	r := &run{cfg: cfg, out: cfg.Out}
	if r.out == nil {
		r.out = io.Discard
	}
	return r.run(ctx)
}

func (r *run) run(ctx context.Context) (*Report, error) {
	cfg := r.cfg
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(nodeDir(dir), 0o755); err != nil {
		return nil, err
	}
	rep := &Report{
		Seed: cfg.Seed, Started: time.Now().UTC(), Nodes: cfg.Nodes, N: cfg.N, R: cfg.R, W: cfg.W,
		Conflicts: cfg.Conflicts, Strict: cfg.Strict, DurationS: cfg.Duration.Seconds(),
		ConvergenceTargetS: cfg.ConvergeTarget.Seconds(), PlantBugs: cfg.PlantBugs,
		Failures: []string{},
		Files: map[string]string{
			"report":  filepath.Join(dir, "report.json"),
			"svg":     filepath.Join(dir, "report.svg"),
			"history": filepath.Join(dir, "history.jsonl"),
			"logs":    nodeDir(dir),
		},
	}
	r.rep = rep

	// The network: namespaces when they can be had.
	var nn *netnsNet
	reason := "disabled (--netns off)"
	if cfg.Netns != "off" {
		if ok, why := netnsUsable(); !ok {
			reason = why
		} else {
			var removed []string
			nn, removed, err = setupNetns(cfg.Nodes)
			if len(removed) > 0 {
				r.logf("removed leftovers of an earlier run: %s", strings.Join(removed, " "))
			}
			if err != nil {
				reason = "network namespaces could not be set up: " + err.Error()
			}
		}
		if nn == nil && cfg.Netns == "on" {
			return nil, fmt.Errorf("chaos: --netns on: %s", reason)
		}
	}
	if nn != nil {
		defer func() {
			if err := nn.Close(); err != nil {
				r.logf("! removing the namespaces: %v", err)
			}
		}()
	}
	kinds := slices.Clone(cfg.Faults)
	if nn != nil {
		rep.Network = nn.String()
		rep.Partitions = "on (network namespaces, neighbour-table drops)"
	} else {
		rep.Network = "loopback"
		if slices.ContainsFunc(kinds, FaultKind.network) {
			rep.Partitions = "OFF, left out of this run: " + reason
			kinds = slices.DeleteFunc(kinds, FaultKind.network)
		} else {
			rep.Partitions = "not requested"
		}
	}
	rep.FaultKinds = kinds
	schedule := NewSchedule(cfg.Seed, ScheduleParams{
		Nodes: cfg.Nodes, Duration: cfg.Duration, GapMin: cfg.FaultGapMin, GapMax: cfg.FaultGapMax,
		Kinds: kinds, MaxConcurrent: cfg.MaxConcurrentFaults, WipeGap: cfg.WipeGap,
	})
	rep.Replay = replayCommand(cfg, kinds)
	fmt.Fprintf(r.out, "mnemo chaos: seed %d: %d nodes, %s, %d faults scheduled (%s) in %v\n",
		cfg.Seed, cfg.Nodes, rep.Network, len(schedule), joinKinds(kinds), cfg.Duration)
	if nn == nil && rep.Partitions != "not requested" {
		fmt.Fprintf(r.out, "mnemo chaos: partitions %s\n", rep.Partitions)
	}
	fmt.Fprintf(r.out, "mnemo chaos: run directory %s\n", dir)

	// The cluster.
	args := []string{"--gossip-profile", "local", "--n", fmt.Sprint(cfg.N), "--r", fmt.Sprint(cfg.R), "--w", fmt.Sprint(cfg.W), "--conflicts", cfg.Conflicts}
	if nn != nil {
		// Namespace addresses (10.77.x) are outside loopback: an open
		// node there needs --insecure (the harness's private network).
		args = append(args, "--insecure")
	}
	args = append(args, cfg.NodeFlags...)
	var wrap func(int) []string
	if nn != nil {
		wrap = nn.wrap
	}
	lc, err := localcluster.New(nodeOptions(localcluster.Options{Binary: cfg.Binary, Dir: nodeDir(dir), Nodes: cfg.Nodes, Args: args}, wrap))
	if err != nil {
		return nil, err
	}
	if nn != nil {
		for i, p := range lc.Nodes {
			p.RPC = nn.ips[i] + ":" + netnsRPCPort
			p.Gossip = nn.ips[i] + ":" + netnsGossipPort
		}
	}
	ns := newNodes(lc)
	defer func() {
		ns.Close()
		if !cfg.Keep {
			for _, p := range lc.Nodes {
				os.RemoveAll(p.DataDir)
			}
		}
	}()
	if err := writeClusterEnv(dir, lc, nn); err != nil {
		return nil, err
	}
	for i := range lc.Nodes {
		if err := ns.Start(i); err != nil {
			return nil, err
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err = lc.WaitConverged(sctx, lc.Indexes()...)
	cancel()
	if err != nil {
		hint := ""
		if nn != nil {
			hint = bridgeFilterHint()
		}
		return nil, fmt.Errorf("chaos: the cluster did not start: %w%s\n%s", err, hint, ns.logTail(0, 10))
	}
	admin, err := client.New(lc.Addrs()...)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	st, err := admin.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("chaos: status: %w", err)
	}
	var ids []string
	for _, p := range lc.Nodes {
		ids = append(ids, p.ID)
	}
	view, err := newClusterView(admin, ids, lc.Addrs(), st.Partitions, cfg.N)
	if err != nil {
		return nil, err
	}
	sctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	err = view.waitRingActive(sctx)
	cancel()
	if err != nil {
		return nil, err
	}
	r.logf("%d nodes up, each sees all alive; %d partitions", cfg.Nodes, st.Partitions)

	// Workloads and faults.
	r.start = time.Now()
	rec, err := NewRecorder(r.start, rep.Files["history"])
	if err != nil {
		return nil, err
	}
	defer rec.Close()
	wl := &workloads{cfg: cfg, rec: rec}
	if cfg.Rate > 0 {
		wl.limit = ratelimit.NewWithBurst(cfg.Rate, 1)
	}
	for range cfg.SetWorkers + cfg.RegisterWorkers + cfg.DeleteWorkers {
		c, err := client.NewWithConfig(client.Config{Addrs: lc.Addrs(), Timeout: cfg.OpTimeout})
		if err != nil {
			return nil, err
		}
		defer c.Close()
		wl.clients = append(wl.clients, newKV(c, cfg))
	}
	nm := &nemesis{nodes: ns, net: nn, start: r.start, logf: r.logf}
	// stop ends the nemesis and the workloads at the end of the run.
	stop, stopAll := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		nm.run(schedule, stop.Done())
	}()
	go func() {
		defer wg.Done()
		wl.run(ctx, stop, cfg.Seed)
	}()
	r.logf("workloads started: %d set, %d register, %d delete clients", cfg.SetWorkers, cfg.RegisterWorkers, cfg.DeleteWorkers)
	progress := time.NewTicker(max(10*time.Second, cfg.Duration/20))
	deadline := time.NewTimer(cfg.Duration)
wait:
	for {
		select {
		case <-deadline.C:
			break wait
		case <-ctx.Done():
			break wait
		case <-progress.C:
			ok, info, fail := rec.Counts()
			r.logf("progress: %d acknowledged, %d indeterminate, %d failed", ok, info, fail)
		}
	}
	progress.Stop()
	deadline.Stop()
	stopAll()
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ErrInterrupted
	}

	// The final heal.
	notes, err := nm.healAll()
	rep.Notes = append(rep.Notes, notes...)
	if err != nil {
		rep.Failures = append(rep.Failures, "final heal: "+err.Error())
	}
	healAt := time.Now()
	rep.HealS = round(healAt.Sub(r.start).Seconds(), 3)
	rep.Faults = faultSummaries(nm.Records())
	r.logf("workloads stopped; final heal done")
	ops := rec.Ops()
	rep.Ops, rep.Timeline = summarizeOps(ops)
	sctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	err = lc.WaitConverged(sctx, lc.Indexes()...)
	cancel()
	settled := err == nil
	if err != nil {
		rep.Failures = append(rep.Failures, fmt.Sprintf("membership after the final heal: %v [%s]", err, view.livenessViews(ctx)))
	} else {
		sctx, cancel = context.WithTimeout(ctx, 60*time.Second)
		err = view.waitRingActive(sctx)
		cancel()
		if err != nil {
			settled = false
			rep.Failures = append(rep.Failures, "ring after the final heal: "+err.Error())
		}
	}
	if !settled {
		// Once the check is done, the nodes' goroutines go to their logs.
		defer func() {
			ns.dumpStacks()
			r.logf("the cluster did not settle: goroutine dumps of every node are in %s", nodeDir(dir))
		}()
	}

	// Convergence.
	keys := opKeys(ops)
	rep.Keys = len(keys)
	cctx, cancel := context.WithTimeout(ctx, cfg.ConvergeTimeout)
	var last string
	err = poll.Until(cctx, 0, 200*time.Millisecond, "replicas converged", func() (bool, string) {
		if cfg.RepairSweep {
			view.sweep(cctx, keys)
		}
		ok, detail, used, err := view.Converged(cctx, cfg.Convergence, keys)
		rep.ConvergenceCriterion = used
		switch {
		case ok:
			return true, ""
		case err != nil && cctx.Err() == nil:
			last = err.Error()
		case err == nil:
			last = detail
		}
		return false, last
	})
	rep.Converged = err == nil
	cancel()
	if ctx.Err() != nil {
		return nil, ErrInterrupted
	}
	rep.ConvergenceS = round(time.Since(healAt).Seconds(), 2)
	if rep.Converged {
		r.logf("converged %.1fs after the final heal (%s)", rep.ConvergenceS, rep.ConvergenceCriterion)
	} else {
		rep.ConvergenceDetail = last
		r.logf("NOT converged %.0fs after the final heal: %s", rep.ConvergenceS, last)
	}

	// The final reads and the check.
	final := r.observeAll(ctx, view, keys)
	rep.Check = Check(ops, final)
	var aeOn bool
	rep.Stats, aeOn = nodeStats(ctx, admin, lc)
	r.verdict(ops, aeOn)
	if err := rep.writeJSON(rep.Files["report"]); err != nil {
		return nil, err
	}
	if err := rep.writeSVG(rep.Files["svg"]); err != nil {
		return nil, err
	}
	rep.Summary(r.out)
	if cfg.Hold {
		fmt.Fprintf(r.out, "\nThe cluster is held for the scripts in chaos/ (cluster.env in %s), e.g.\n  chaos/kill.sh %s node-2\n  chaos/partition.sh %s node-1 node-2\nInterrupt (Ctrl-C) to stop it.\n", dir, dir, dir)
		<-ctx.Done()
	}
	return rep, nil
}

// observeAll reads every key's views, eight at a time.
func (r *run) observeAll(ctx context.Context, view *clusterView, keys []string) map[string][]Observation {
	final := make(map[string][]Observation, len(keys))
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(8)
	for _, k := range keys {
		g.Go(func() error {
			obs := view.observe(ctx, k, r.cfg.Conflicts == "lww")
			mu.Lock()
			final[k] = obs
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait() // observations carry their own errors
	return final
}

// verdict turns the check into the report's failures and notes; aeOn says
// whether a node reported running anti-entropy.
func (r *run) verdict(ops []*Op, aeOn bool) {
	rep, c := r.rep, r.rep.Check
	fail := func(format string, args ...any) { rep.Failures = append(rep.Failures, fmt.Sprintf(format, args...)) }
	lost := c.Lost
	if r.cfg.Conflicts == "lww" {
		// The experiment: what LWW drops of concurrent writes is its
		// documented behaviour, reported and not failed.
		lost -= c.Set.Lost + c.Register.Lost
		rep.LWW = &LWWResult{AckedAdds: c.Set.Acked, LostAdds: c.Set.Lost, LostWrites: c.Register.Lost}
		if c.Set.Acked > 0 {
			rep.LWW.LostPct = round(100*float64(c.Set.Lost)/float64(c.Set.Acked), 1)
		}
	}
	if lost > 0 {
		fail("%d acknowledged writes lost", lost)
	}
	if c.Resurrected > 0 {
		fail("%d deleted values resurrected", c.Resurrected)
	}
	if c.Stale > 0 {
		fail("%d stale register values (superseded by an acknowledged write)", c.Stale)
	}
	if c.Unexpected > 0 {
		fail("%d values that were never written", c.Unexpected)
	}
	if c.Unreadable > 0 {
		fail("%d final reads failed, so their keys are unchecked", c.Unreadable)
	}
	if !rep.Converged {
		fail("replicas did not converge within %.0f s of the final heal: %s", rep.ConvergenceS, rep.ConvergenceDetail)
	} else if rep.ConvergenceS > rep.ConvergenceTargetS {
		fail("convergence took %.1f s, more than the %.0f s target", rep.ConvergenceS, rep.ConvergenceTargetS)
	}
	if r.cfg.SetWorkers > 0 && c.Set.Acked == 0 {
		fail("no set add was acknowledged: the run checked nothing")
	}
	for _, f := range rep.Faults {
		for _, e := range f.Errors {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: %s", f.What, e))
		}
	}
	if !strings.HasPrefix(rep.Partitions, "on") && rep.Partitions != "not requested" {
		rep.Notes = append(rep.Notes, "partitions "+rep.Partitions)
	}
	planted := 0
	for _, op := range ops {
		if op.Planted {
			planted++
		}
	}
	if planted > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("planted bugs %s changed %d operations: the check must fail", strings.Join(r.cfg.PlantBugs, ","), planted))
	}
	if !aeOn {
		rep.Notes = append(rep.Notes, "the nodes report no anti-entropy counters: a replica that missed writes catches up only by read repair")
	}
}

// nodeStats sums the nodes' subsystem counters by name, and says whether
// any node runs anti-entropy.
func nodeStats(ctx context.Context, cl *client.Client, lc *localcluster.Cluster) (sums map[string]float64, aeOn bool) {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := cl.Status(sctx)
	if err != nil {
		return nil, false
	}
	sums = map[string]float64{}
	for _, m := range st.Members {
		if m.Info == nil {
			continue
		}
		aeOn = aeOn || m.Info.AntiEntropy.On
		for _, c := range m.Info.Counters() {
			sums[c.Name] += c.Value
		}
	}
	return sums, aeOn
}

// opKeys lists the keys the history touched, sorted.
func opKeys(ops []*Op) []string {
	seen := map[string]bool{}
	var keys []string
	for _, op := range ops {
		if !seen[op.Key] {
			seen[op.Key] = true
			keys = append(keys, op.Key)
		}
	}
	slices.Sort(keys)
	return keys
}

// replayCommand is the command line that replays the run's schedule.
func replayCommand(cfg Config, kinds []FaultKind) string {
	faults := joinKinds(kinds)
	if faults == "" {
		faults = "none"
	}
	return fmt.Sprintf("mnemo chaos --seed %d --nodes %d --duration %v --faults %s --fault-gap-min %v --fault-gap-max %v --max-concurrent-faults %d --wipe-gap %v",
		cfg.Seed, cfg.Nodes, cfg.Duration, faults, cfg.FaultGapMin, cfg.FaultGapMax, cfg.MaxConcurrentFaults, cfg.WipeGap)
}

// writeClusterEnv writes cluster.env, which the operator scripts read.
func writeClusterEnv(dir string, lc *localcluster.Cluster, nn *netnsNet) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by mnemo chaos for the scripts in chaos/. Sourced by sh.\n")
	fmt.Fprintf(&b, "CHAOS_DIR=%s\n", shellQuote(dir))
	var ids []string
	for _, p := range lc.Nodes {
		ids = append(ids, p.ID)
	}
	fmt.Fprintf(&b, "CHAOS_NODES=%s\n", shellQuote(strings.Join(ids, " ")))
	fmt.Fprintf(&b, "CHAOS_BLACKHOLE_MAC=%s\n", netnsBlackholeMAC)
	if nn != nil {
		fmt.Fprintf(&b, "CHAOS_NETNS=1\n")
	} else {
		fmt.Fprintf(&b, "CHAOS_NETNS=0\n")
	}
	for i, p := range lc.Nodes {
		v := strings.ToUpper(strings.ReplaceAll(p.ID, "-", "_"))
		fmt.Fprintf(&b, "%s_RPC=%s\n", v, p.RPC)
		fmt.Fprintf(&b, "%s_PIDFILE=%s\n", v, shellQuote(p.PIDFile))
		fmt.Fprintf(&b, "%s_CMD=%s\n", v, shellQuote(strings.TrimSuffix(p.LogFile, ".log")+".cmd"))
		fmt.Fprintf(&b, "%s_LOG=%s\n", v, shellQuote(p.LogFile))
		fmt.Fprintf(&b, "%s_DATA=%s\n", v, shellQuote(p.DataDir))
		if nn != nil {
			fmt.Fprintf(&b, "%s_NS=%s\n%s_IP=%s\n%s_DEV=%s\n", v, nn.ns[i], v, nn.ips[i], v, nn.nodeIf[i])
		}
	}
	return os.WriteFile(filepath.Join(dir, "cluster.env"), []byte(b.String()), 0o644)
}
