package bench

// Go SDK phases: closed-loop puts and gets per N,R,W, then an open loop at
// half the first quorum's peak (issue 6: "p99 under 2 ms at half of the
// peak throughput").

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/benchutil"
)

// sdkAndRedis runs the sdk and redis phases on one cluster with a Redis
// port; the redis phase restarts it with --sync none half-way.
func (b *bench) sdkAndRedis(ctx context.Context) error {
	bc, err := b.startCluster(ctx, "sdk", true, "--sync", b.o.Sync)
	if err != nil {
		return err
	}
	defer bc.Close()
	var errs []error
	if b.selected("sdk") {
		cl, err := bc.client()
		if err != nil {
			return err
		}
		errs = append(errs, b.sdkPhases(ctx, cl, bc))
		cl.Close()
	}
	if b.selected("redis") && ctx.Err() == nil {
		errs = append(errs, b.redisPhases(ctx, bc))
	}
	return errors.Join(errs...)
}

// sdkAgainstTarget runs the sdk phases against --target (no resources or
// profiles: the processes are not ours).
func (b *bench) sdkAgainstTarget(ctx context.Context) error {
	cl, err := client.NewWithConfig(client.Config{Addrs: b.o.Target})
	if err != nil {
		return err
	}
	defer cl.Close()
	return b.sdkPhases(ctx, cl, nil)
}

// sdkPhases preloads the key space, then measures each quorum. bc is nil
// against --target.
func (b *bench) sdkPhases(ctx context.Context, cl *client.Client, bc *benchCluster) error {
	o := b.o
	seed := o.Seed
	b.progress("sdk: preloading %d keys with %d callers", o.Keys, o.LoadConcurrency)
	m := b.meterOf(bc, "sdk: preload")
	lf, _ := b.load(ctx, cl, "bench", seed, 0, o.Keys, client.Overwrite())
	lf.Sync, lf.Callers = o.Sync, o.LoadConcurrency
	if bc == nil {
		lf.Sync = "(target)"
	}
	m.stop(lf.Keys)
	b.rep.Preload = &lf
	if lf.Failed > 0 {
		return fmt.Errorf("preload: %d of %d puts failed", lf.Failed, o.Keys)
	}
	key := func(rnd *rand.Rand) []byte { return benchKey("bench", rnd.IntN(o.Keys)) }
	peaks := map[string]float64{}
	var firstNRW [3]int
	for qi, q := range o.Quorums {
		n, r, w, _ := parseBenchNRW(q)
		if qi == 0 {
			firstNRW = [3]int{n, r, w}
		}
		put := func(ctx context.Context, rnd *rand.Rand) error {
			_, err := cl.Put(ctx, key(rnd), benchValue(rnd, o.ValueSize), client.N(n), client.W(w), client.Overwrite())
			return err
		}
		get := func(ctx context.Context, rnd *rand.Rand) error {
			_, err := cl.Get(ctx, key(rnd), client.N(n), client.R(r))
			if errors.Is(err, client.ErrNotFound) {
				return nil
			}
			return err
		}
		for _, ph := range []struct {
			op string
			fn benchutil.Op
		}{{"put", put}, {"get", get}} {
			name := fmt.Sprintf("sdk %s %s", ph.op, q)
			m := b.meterOf(bc, name)
			var prof func()
			if qi == 0 && bc != nil && o.Profile {
				prof = b.profile(ctx, bc, 0, name, o.Duration)
			}
			res := benchutil.ClosedLoop(ctx, o.Concurrency, o.Duration, seed+uint64(len(b.rep.SDK)+1)<<32, ph.fn)
			m.stop(res.Count)
			if prof != nil {
				prof()
			}
			pr := PhaseResult{Op: ph.op, NRW: q, Sync: lf.Sync, Ops: res.Count, Errors: res.Errors, OpsPerSec: res.OpsPerSec,
				P50Ms: benchutil.Ms(res.P50), P99Ms: benchutil.Ms(res.P99), P999Ms: benchutil.Ms(res.P999)}
			b.rep.SDK = append(b.rep.SDK, pr)
			b.progress("%s: %.0f ops/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, %d errors", name, pr.OpsPerSec, pr.P50Ms, pr.P99Ms, pr.P999Ms, pr.Errors)
			if qi == 0 {
				peaks[ph.op] = res.OpsPerSec
			}
		}
	}
	// The open loop at half the first quorum's peak (what the targets
	// read), then at each --open-rate: latency against load, below the
	// point where the machine's cores are the queue.
	n, r, w := firstNRW[0], firstNRW[1], firstNRW[2]
	type openPhase struct {
		op       string
		rate     float64
		halfPeak bool
	}
	var open []openPhase
	for _, op := range []string{"put", "get"} {
		open = append(open, openPhase{op, peaks[op] / 2, true})
	}
	for _, op := range []string{"put", "get"} {
		for _, rate := range o.OpenRates {
			open = append(open, openPhase{op, float64(rate), false})
		}
	}
	for _, ph := range open {
		op, rate := ph.op, ph.rate
		if rate < 1 {
			continue
		}
		fn := func(ctx context.Context, rnd *rand.Rand) error {
			if op == "put" {
				_, err := cl.Put(ctx, key(rnd), benchValue(rnd, o.ValueSize), client.N(n), client.W(w), client.Overwrite())
				return err
			}
			_, err := cl.Get(ctx, key(rnd), client.N(n), client.R(r))
			if errors.Is(err, client.ErrNotFound) {
				return nil
			}
			return err
		}
		name := fmt.Sprintf("sdk %s %s open loop %.0f/s", op, o.Quorums[0], rate)
		m := b.meterOf(bc, name)
		// Enough workers that the client, not the worker count, is what
		// limits: a send waiting for a worker counts as latency anyway.
		res := benchutil.OpenLoop(ctx, rate, o.OpenDuration, max(256, 4*o.Concurrency), seed+uint64(len(b.rep.OpenLoop)+100)<<32, fn)
		m.stop(res.Count)
		ol := benchOpenLoop{Op: op, NRW: o.Quorums[0], PeakOpsPerSec: peaks[op], RatePerSec: rate, HalfPeak: ph.halfPeak, AchievedPerSec: res.OpsPerSec,
			Ops: res.Count, Errors: res.Errors, P50Ms: benchutil.Ms(res.P50), P99Ms: benchutil.Ms(res.P99), P999Ms: benchutil.Ms(res.P999), MaxMs: benchutil.Ms(res.Max)}
		b.rep.OpenLoop = append(b.rep.OpenLoop, ol)
		b.progress("%s: achieved %.0f/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, %d errors", name, ol.AchievedPerSec, ol.P50Ms, ol.P99Ms, ol.P999Ms, ol.Errors)
	}
	return ctx.Err()
}

// meterOf meters a phase on bc's nodes; against --target (bc nil) it
// meters only the driver.
func (b *bench) meterOf(bc *benchCluster, name string) *benchPhaseMeter {
	var procs []benchProc
	if bc != nil {
		procs = bc.procs()
	}
	return &benchPhaseMeter{b.startMeter(name, procs)}
}

// benchPhaseMeter is a meter whose phase has no child processes.
type benchPhaseMeter struct{ m *benchMeter }

func (p *benchPhaseMeter) stop(ops int) { p.m.stop(ops, 0) }

// profile takes a CPU profile of node i over most of a phase of length d
// from its admin port, in the background; the returned func waits for it
// and adds it, with its top functions, to the report. Profiles are kept
// beside the JSON results (bench-profiles/).
func (b *bench) profile(ctx context.Context, bc *benchCluster, i int, phase string, d time.Duration) func() {
	p := bc.Nodes[i]
	secs := max(1, int(d.Seconds())-1)
	dir := filepath.Join(filepath.Dir(b.dir), "bench-profiles")
	// The phase's letters and digits, words joined by '-'.
	name := strings.Join(strings.FieldsFunc(phase, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}), "-")
	file := filepath.Join(dir, fmt.Sprintf("%s-%s.prof", p.ID, name))
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			pctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(pctx, "GET", fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.HTTP, secs), nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("pprof: %s", resp.Status)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			return os.WriteFile(file, body, 0o644)
		}()
	}()
	return func() {
		if err := <-done; err != nil {
			b.progress("profile of %s during %s: %v", p.ID, phase, err)
			return
		}
		b.rep.Profiles = append(b.rep.Profiles, benchProfile{Phase: phase, Node: p.ID, File: file, Top: benchPprofTop(file, 12)})
	}
}

// benchPprofTop returns the top n functions of a CPU profile by flat time, from
// `go tool pprof -top`, or nothing when go is not installed.
func benchPprofTop(file string, n int) []string {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return nil
	}
	out, err := exec.Command(gobin, "tool", "pprof", "-top", fmt.Sprintf("-nodecount=%d", n), file).Output()
	if err != nil {
		return nil
	}
	var lines []string
	started := false
	for _, l := range strings.Split(string(bytes.TrimSpace(out)), "\n") {
		if strings.HasPrefix(l, "Showing nodes") || strings.HasPrefix(strings.TrimSpace(l), "flat") {
			started = true
		}
		if started {
			lines = append(lines, l)
		}
	}
	return lines
}
