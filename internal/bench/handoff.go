package bench

// Hinted-handoff phase (issue 3): node-3 is killed, misses --hint-keys
// writes, and restarts with anti-entropy and read repair off, so only hint
// replay can bring it up to date. Measured: time from its restart until it
// holds every key (hints pending 0 and its key count), and hints replayed
// per second.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/poll"
)

func (b *bench) handoffPhase(ctx context.Context) error {
	o := b.o
	bc, err := b.startCluster(ctx, "hints", false, "--anti-entropy=false", "--read-repair=false")
	if err != nil {
		return err
	}
	defer bc.Close()
	const down = 2 // node-3
	target := bc.Nodes[down].ID
	if err := bc.Kill(down); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = bc.WaitConverged(wctx, 0, 1)
	cancel()
	if err != nil {
		return err
	}
	cl, err := bc.client(0, 1)
	if err != nil {
		return err
	}
	defer cl.Close()
	seed := o.Seed ^ 0x68696e7473 // "hints"
	b.progress("hints: node-3 down; writing %d keys through node-1 and node-2", o.HintKeys)
	m := b.startMeter("hints: load, node-3 down", bc.procs())
	lf, _ := b.load(ctx, cl, "hint", seed, 0, o.HintKeys)
	m.stop(lf.Keys, 0)
	lf.Sync, lf.Callers = bc.flag("sync", "always"), o.LoadConcurrency
	h := &benchHandoff{Keys: o.HintKeys, Load: lf, Sync: lf.Sync}
	b.rep.Handoff = h
	if lf.Failed > 0 {
		return fmt.Errorf("%d of %d writes failed with node-3 down", lf.Failed, o.HintKeys)
	}
	before, err := bc.infos(ctx, 0, 1)
	if err != nil {
		return err
	}
	replayed0 := 0.0
	for _, in := range before {
		h.HintsStored += benchPendingHints(in, target)
		replayed0 += float64(in.Handoff.Replayed)
	}
	b.progress("hints: %.0f hints held for node-3 (%.0f keys/s written); restarting node-3", h.HintsStored, lf.KeysPerSec)

	m = b.startMeter("hints: replay to node-3", bc.procs())
	t0 := time.Now()
	if err := bc.Start(down); err != nil {
		return err
	}
	var alive, firstReplay time.Time
	var replayed float64
	err = poll.Until(ctx, o.WaitTimeout, 100*time.Millisecond, "node-3 holding every key by hint replay", func() (bool, string) {
		pollStart := time.Now()
		_, st, err := bc.info(ctx, 0)
		if err != nil {
			return false, err.Error()
		}
		if alive.IsZero() {
			for _, mem := range st.Members {
				if mem.ID == target && mem.Liveness == "alive" {
					alive = pollStart
				}
			}
		}
		infos, err := bc.infos(ctx, 0, 1, down)
		if err != nil {
			return false, err.Error()
		}
		pending := 0.0
		replayed = -replayed0
		for _, in := range infos[:2] {
			pending += benchPendingHints(in, target)
			replayed += float64(in.Handoff.Replayed)
		}
		if replayed > 0 && firstReplay.IsZero() {
			firstReplay = pollStart
		}
		n3 := infos[2]
		h.Node3Keys = n3.Keys
		seen := fmt.Sprintf("%.0f hints pending, %.0f replayed, node-3 holds %d keys", pending, replayed, n3.Keys)
		return pending == 0 && n3.Keys >= int64(o.HintKeys), seen
	})
	done := time.Since(t0)
	m.stop(int(replayed), 0)
	if err != nil {
		return err
	}
	h.HintsReplayed = replayed
	h.SecondsToComplete = done.Seconds()
	h.ReplayedPerSec = replayed / done.Seconds()
	if !alive.IsZero() {
		h.SecondsToSeenAlive = alive.Sub(t0).Seconds()
	}
	if !firstReplay.IsZero() {
		h.SecondsToFirstHint = firstReplay.Sub(t0).Seconds()
		if w := done - firstReplay.Sub(t0); w > 0 {
			h.ReplayedPerSecWindow = replayed / w.Seconds()
		}
	}
	b.progress("hints: node-3 complete %.2f s after restart; %.0f hints replayed, %.0f/s (%.0f/s while replaying)",
		h.SecondsToComplete, replayed, h.ReplayedPerSec, h.ReplayedPerSecWindow)

	// Check a sample of node-3's own copies against what was written.
	rnd := rand.New(rand.NewPCG(seed, 1))
	cl3, err := bc.client(down)
	if err != nil {
		return err
	}
	defer cl3.Close()
	var wrong []string
	for range min(1000, o.HintKeys) {
		i := rnd.IntN(o.HintKeys)
		k := benchKey("hint", i)
		gctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		res, err := cl3.Get(gctx, k, client.Local(), client.Node(bc.Nodes[down].RPC))
		cancel()
		h.SampleChecked++
		if err != nil || len(res.Values) != 1 || !bytes.Equal(res.Values[0], keyValue(seed, i, o.ValueSize)) {
			h.SampleWrong++
			if len(wrong) < 3 {
				wrong = append(wrong, fmt.Sprintf("%s (%v)", k, err))
			}
		}
	}
	if h.SampleWrong > 0 {
		return fmt.Errorf("node-3's local copy is missing or wrong for %d of %d sampled keys, e.g. %v", h.SampleWrong, h.SampleChecked, wrong)
	}
	return nil
}
