package bench

// Anti-entropy phases (issue 4), on a cluster of --ae-keys keys with hints
// and read repair off so Merkle exchange alone is measured:
//
//	(a) one periodic round on the cluster in sync: bytes per node pair and
//	    a bound of the time it took;
//	(b) node-3 killed, --ae-missing new keys written, node-3 restarted:
//	    time to equal roots on every partition, bytes sent per missing byte;
//	(c) a light open-loop load without a repair, then during a second such
//	    repair: the p99 ratio. The baseline lasts --light-duration (1 min),
//	    so that it spans what the repair window spans besides the repair
//	    (periodic exchange rounds, Pebble flushes, the same status polls):
//	    a p99 of a 10 s baseline at 1,000 ops/s varied from 14 to 24 ms
//	    between runs. The baseline and each restart of node-3 wait for
//	    quiet nodes (waitQuiet): right after loading 1M keys, Pebble's
//	    compactions made a one-minute baseline's p99 53 ms.
//
// The cluster then hosts the transfer phase (transfer.go).

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/benchutil"
	"github.com/mnemo-kv/mnemo/internal/poll"
)

func (b *bench) aeAndTransfer(ctx context.Context) error {
	o := b.o
	bc, err := b.startCluster(ctx, "ae", false, "--sync", "none", "--hints=false", "--read-repair=false",
		"--ae-interval", o.AeInterval.String())
	if err != nil {
		return err
	}
	defer bc.Close()
	_, st, err := bc.info(ctx, 0)
	if err != nil {
		return err
	}
	partitions := st.Partitions
	cl, err := bc.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	b.progress("ae: loading %d keys with %d callers (--sync none)", o.AeKeys, o.LoadConcurrency)
	m := b.startMeter(fmt.Sprintf("ae: load %d keys", o.AeKeys), bc.procs())
	lf, _ := b.load(ctx, cl, "ae", o.Seed^0x6165, 0, o.AeKeys)
	lf.Sync, lf.Callers = bc.flag("sync", "always"), o.LoadConcurrency
	m.stop(lf.Keys, 0)
	a := &benchAE{Keys: o.AeKeys, Load: lf}
	b.progress("ae: loaded %d keys at %.0f keys/s; waiting for equal roots", lf.Keys, lf.KeysPerSec)
	if lf.Failed > 0 {
		return fmt.Errorf("load: %d of %d puts failed", lf.Failed, o.AeKeys)
	}
	if err := bc.waitRootsEqual(ctx, partitions); err != nil {
		return fmt.Errorf("after the load: %w", err)
	}
	for _, p := range bc.procs() {
		if s, err := benchutil.ReadProc(p.pid()); err == nil {
			a.RSSLoaded = append(a.RSSLoaded, benchRSS{Name: p.name, RSSMiB: benchMiB(s.RSS), PeakRSSMiB: benchMiB(s.PeakRSS)})
		}
	}
	b.rep.AE = a
	var errs []error
	if b.selected("ae") {
		errs = append(errs, b.aePhases(ctx, bc, a, partitions))
	}
	if b.selected("transfer") && ctx.Err() == nil {
		errs = append(errs, b.transferPhase(ctx, bc))
	}
	return errors.Join(errs...)
}

func (b *bench) aePhases(ctx context.Context, bc *benchCluster, a *benchAE, partitions int) error {
	o := b.o
	// (a) the next periodic round, on a cluster in sync and idle.
	b.progress("ae: (a) waiting for a periodic round (--ae-interval %v)", o.AeInterval)
	round, err := b.measureRound(ctx, bc, partitions)
	if err != nil {
		return fmt.Errorf("in-sync round: %w", err)
	}
	a.Round = round
	b.progress("ae: (a) %.0f exchanges, %.1f KiB per pair, busy <= %.2f s (spread over %.2f s)", round.Exchanges, round.BytesPair/1024, round.BusySeconds, round.SpreadSeconds)

	// (c), first half: the light load without a repair.
	cl12, err := bc.client(0, 1)
	if err != nil {
		return err
	}
	defer cl12.Close()
	fore := &benchAEForeground{Rate: o.LightRate}
	b.waitQuiet(ctx, bc, "ae: (c) before the baseline")
	b.progress("ae: (c) light load %d/s for %v, no repair", o.LightRate, o.LightDuration)
	m := b.startMeter("ae: light load, no repair", bc.procs())
	// The repair's wait polls every node's status; the baseline carries
	// the same polls, so the ratio measures the repair, not the observer.
	stopPolls := b.pollLikeRepair(ctx, bc)
	base := b.lightLoad(ctx, cl12, o.LightDuration, nil)
	stopPolls()
	m.stop(base.all.Count, 0)
	fore.BaselineOps, fore.BaselineP99Ms = base.all.Count, benchutil.Ms(base.all.P99)
	fore.BaselineGetP99Ms, fore.BaselinePutP99Ms = benchutil.Ms(base.gets.P99), benchutil.Ms(base.puts.P99)
	for _, bk := range base.timeline {
		fore.BaselineTimeline = append(fore.BaselineTimeline, benchutil.Ms(bk.P99))
	}
	// The light load's puts must be on every replica before node-3 is
	// killed, or the repair would count them as missing data.
	if err := bc.waitRootsEqual(ctx, partitions); err != nil {
		return fmt.Errorf("after the light load: %w", err)
	}

	// (b) node-3 misses keys and is repaired, nothing else running.
	rep, err := b.repairNode3(ctx, bc, partitions, "ae-miss-b", nil)
	if err != nil {
		return fmt.Errorf("repair: %w", err)
	}
	a.Repair = rep
	b.progress("ae: (b) equal roots %.2f s after restart; %.2f bytes sent per missing byte", rep.SecondsToEqual, rep.BytesPerByte)

	// (c), second half: the same load during a second repair.
	b.progress("ae: (c) the light load during a second repair")
	if _, err := b.repairNode3(ctx, bc, partitions, "ae-miss-c", func(r *benchAERepair, during lightFigures, keysAt time.Duration) {
		fore.DuringOps, fore.DuringP99Ms, fore.DuringErrors = during.all.Count, benchutil.Ms(during.all.P99), during.all.Errors
		fore.DuringGetP99Ms, fore.DuringPutP99Ms = benchutil.Ms(during.gets.P99), benchutil.Ms(during.puts.P99)
		fore.DuringSeconds = during.elapsed.Seconds()
		fore.SecondsToKeys, fore.SecondsToEqual = keysAt.Seconds(), r.SecondsToEqual
		fore.TimelineSeconds = timelineWidth.Seconds()
		for _, bk := range during.timeline {
			fore.DuringTimeline = append(fore.DuringTimeline, benchutil.Ms(bk.P99))
		}
		if fore.BaselineP99Ms > 0 {
			fore.Ratio = fore.DuringP99Ms / fore.BaselineP99Ms
		}
	}); err != nil {
		return fmt.Errorf("repair under load: %w", err)
	}
	a.Fore = fore
	b.progress("ae: (c) p99 %.2f ms without repair, %.2f ms during (%.2fx)", fore.BaselineP99Ms, fore.DuringP99Ms, fore.Ratio)
	return nil
}

// lightFigures are the light load's latencies, together and per kind.
type lightFigures struct {
	all        benchutil.Summary
	gets, puts benchutil.Result
	elapsed    time.Duration
	// timeline is the p99 per timelineWidth of the load (scheduled time).
	timeline []benchutil.Bucket
}

// waitQuiet waits for bc's nodes to go quiet (see benchCluster.waitQuiet)
// and says how long that took, or that they were not quiet within
// o.QuietLimit (the run goes on: the figures then carry that load).
func (b *bench) waitQuiet(ctx context.Context, bc *benchCluster, what string) {
	took, err := bc.waitQuiet(ctx, b.o.QuietLimit)
	if err != nil {
		b.progress("%s: nodes not quiet, going on: %v", what, err)
		return
	}
	b.progress("%s: nodes quiet after %.1f s", what, took.Seconds())
}

// repairPollEvery is how often repairNode3 polls the nodes' status.
const repairPollEvery = 100 * time.Millisecond

// pollLikeRepair makes the status calls repairNode3's wait makes, at the
// same pace, until the returned func is called (which waits for them).
func (b *bench) pollLikeRepair(ctx context.Context, bc *benchCluster) (stop func()) {
	done := make(chan struct{})
	quit := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(repairPollEvery)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				_, _, _ = bc.info(ctx, 0)
				_, _ = bc.infos(ctx)
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// timelineWidth is the stretch of the light load's timeline.
const timelineWidth = 2 * time.Second

// lightLoad runs the light foreground load through cl for d or until stop
// closes: gets and puts of keys loaded in the ae key space, each at half
// the rate, as two open loops.
func (b *bench) lightLoad(ctx context.Context, cl *client.Client, d time.Duration, stop <-chan struct{}) lightFigures {
	o := b.o
	key := func(rnd *rand.Rand) []byte { return benchKey("ae", rnd.IntN(o.AeKeys)) }
	return b.mixedOpenLoop(ctx, cl, float64(o.LightRate), d, stop, key, nil, nil, o.Seed)
}

// mixedOpenLoop runs gets and puts of the keys key draws through cl for d or
// until stop closes, each as an open loop at half of rate (ops/s), gets
// with getOpts and puts with putOpts (and client.Overwrite). A get of a
// missing key fails. Worker w of the gets draws from the rand seeded with
// (seed^"get", w), of the puts (seed^"put", w).
func (b *bench) mixedOpenLoop(ctx context.Context, cl *client.Client, rate float64, d time.Duration, stop <-chan struct{},
	key func(*rand.Rand) []byte, getOpts, putOpts []client.Option, seed uint64) lightFigures {
	o := b.o
	half := rate / 2
	putOpts = append(slices.Clone(putOpts), client.Overwrite())
	var lf lightFigures
	done := make(chan struct{})
	go func() {
		defer close(done)
		lf.gets = benchutil.OpenLoopUntil(ctx, half, d, 32, seed^0x676574, stop, func(ctx context.Context, rnd *rand.Rand) error {
			_, err := cl.Get(ctx, key(rnd), getOpts...)
			return err
		})
	}()
	lf.puts = benchutil.OpenLoopUntil(ctx, half, d, 32, seed^0x707574, stop, func(ctx context.Context, rnd *rand.Rand) error {
		_, err := cl.Put(ctx, key(rnd), benchValue(rnd, o.ValueSize), putOpts...)
		return err
	})
	<-done
	lf.all = benchutil.Combine(lf.gets, lf.puts)
	lf.timeline = benchutil.Timeline(timelineWidth, lf.gets.Samples, lf.puts.Samples)
	lf.elapsed = max(lf.gets.Elapsed, lf.puts.Elapsed)
	return lf
}

// measureRound waits for the next periodic round of every pair and
// measures it. The round is complete when, for every partition and every
// pair of nodes, one side reports the pair last seen in sync after the
// start (Info.AntiEntropy.Pairs); the bytes are what all nodes
// sent meanwhile (ae_bytes_sent). A node exchanges each partition when it
// is due, so a round may be spread over several of the scheduler's ticks;
// the time it took is bounded by the polls during which the exchange
// counters moved (busy), and its spread is from the first to the last.
// NB: exchanges count when they end, so an exchange longer than a poll
// would be under-counted by busy; the bytes would show it.
func (b *bench) measureRound(ctx context.Context, bc *benchCluster, partitions int) (*benchAERound, error) {
	const every = 100 * time.Millisecond
	n := len(bc.Nodes)
	// Exchanges that were repairing when the roots became equal may still
	// be finishing: start once no anti-entropy byte has moved for 1 s.
	var before []*client.NodeInfo
	quietSince, lastBytes := time.Now(), -1.0
	err := poll.Until(ctx, time.Minute, 200*time.Millisecond, "anti-entropy quiet", func() (bool, string) {
		infos, err := bc.infos(ctx)
		if err != nil {
			return false, err.Error()
		}
		sum := 0.0
		for _, in := range infos {
			sum += float64(in.AntiEntropy.BytesSent)
		}
		if sum != lastBytes {
			quietSince, lastBytes = time.Now(), sum
		}
		before = infos
		return time.Since(quietSince) >= time.Second, fmt.Sprintf("%.0f bytes sent so far", sum)
	})
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	var first, lastChange time.Time
	var busy time.Duration
	prevT, prevSum := t0, 0.0
	for _, in := range before {
		prevSum += float64(in.AntiEntropy.Exchanges)
	}
	var now []*client.NodeInfo
	err = poll.Until(ctx, 2*b.o.AeInterval+time.Minute, every, "a full anti-entropy round", func() (bool, string) {
		infos, err := bc.infos(ctx)
		t := time.Now()
		if err != nil {
			return false, err.Error()
		}
		now = infos
		sum := 0.0
		for i := range n {
			sum += float64(infos[i].AntiEntropy.Exchanges)
		}
		if sum != prevSum {
			busy += t.Sub(prevT)
			if first.IsZero() {
				first = prevT
			}
			lastChange = t
		}
		prevT, prevSum = t, sum
		synced := make([]map[uint32]map[string]time.Time, n)
		for i := range n {
			synced[i] = lastInSync(infos[i])
		}
		pending := 0
		for p := range partitions {
			k := uint32(p)
			for i := range n {
				for j := i + 1; j < n; j++ {
					if !synced[i][k][bc.Nodes[j].ID].After(t0) && !synced[j][k][bc.Nodes[i].ID].After(t0) {
						pending++
					}
				}
			}
		}
		return pending == 0, fmt.Sprintf("%d partition pairs not compared in sync since the start", pending)
	})
	if err != nil {
		return nil, err
	}
	r := &benchAERound{Pairs: n * (n - 1) / 2, Partitions: partitions, PollMs: float64(every.Milliseconds()),
		BusySeconds: busy.Seconds()}
	if !first.IsZero() {
		r.SpreadSeconds = lastChange.Sub(first).Seconds()
	}
	for i := range n {
		r.Exchanges += float64(now[i].AntiEntropy.Exchanges) - float64(before[i].AntiEntropy.Exchanges)
		r.Bytes += float64(now[i].AntiEntropy.BytesSent) - float64(before[i].AntiEntropy.BytesSent)
	}
	// Partitions compared early in the round may come due again before
	// the last is compared: count the bytes of one exchange per partition
	// and pair.
	r.BytesPair = r.Bytes / float64(r.Pairs)
	if one := float64(r.Pairs * partitions); r.Exchanges > one {
		r.BytesPair *= one / r.Exchanges
	}
	return r, nil
}

// lastInSync reads a node's anti-entropy pairs: partition -> peer -> when
// their roots were last seen equal (absent: never).
func lastInSync(info *client.NodeInfo) map[uint32]map[string]time.Time {
	out := map[uint32]map[string]time.Time{}
	for _, pr := range info.AntiEntropy.Pairs {
		if pr.LastInSync.IsZero() {
			continue
		}
		if out[pr.Partition] == nil {
			out[pr.Partition] = map[string]time.Time{}
		}
		out[pr.Partition][pr.Peer] = pr.LastInSync
	}
	return out
}

// repairNode3 kills node-3, writes --ae-missing new keys of key space prefix
// through the others, restarts node-3 and waits for equal roots. With
// under set, the light load runs from the restart until node-3 holds as
// many keys as node-1, and under gets its figures.
func (b *bench) repairNode3(ctx context.Context, bc *benchCluster, partitions int, prefix string,
	under func(r *benchAERepair, during lightFigures, keysAt time.Duration)) (*benchAERepair, error) {
	o := b.o
	const down = 2
	if err := bc.Kill(down); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	err := bc.WaitConverged(wctx, 0, 1)
	cancel()
	if err != nil {
		return nil, err
	}
	cl, err := bc.client(0, 1)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	lf, missing := b.load(ctx, cl, prefix, o.Seed^0x6d697373, 0, o.AeMissing)
	if lf.Failed > 0 {
		return nil, fmt.Errorf("%d of %d writes failed with node-3 down", lf.Failed, o.AeMissing)
	}
	r := &benchAERepair{Missing: o.AeMissing, MissingBytes: missing}
	// Restart node-3 once node-1 and node-2 have flushed and compacted
	// the keys it missed: the window then holds the repair, not that.
	b.waitQuiet(ctx, bc, "ae: before restarting node-3")
	before, err := bc.infos(ctx, 0, 1)
	if err != nil {
		return nil, err
	}
	b.progress("ae: node-3 down, %d keys (%d bytes) written; restarting it", o.AeMissing, missing)
	phase := fmt.Sprintf("ae: repair of %d missing keys", o.AeMissing)
	if under != nil {
		phase += ", light load"
	}
	m := b.startMeter(phase, bc.procs())
	t0 := time.Now()
	if err := bc.Start(down); err != nil {
		return nil, err
	}
	stop := make(chan struct{})
	loadDone := make(chan lightFigures, 1)
	var keysAt time.Duration
	if under != nil {
		go func() { loadDone <- b.lightLoad(ctx, cl, o.WaitTimeout, stop) }()
	}
	stopLoad := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}
	defer stopLoad()
	var alive, trees time.Time
	var infos []*client.NodeInfo
	err = poll.Until(ctx, o.WaitTimeout, repairPollEvery, "equal Merkle roots after node-3's restart", func() (bool, string) {
		t := time.Now()
		_, st, err := bc.info(ctx, 0)
		if err != nil {
			return false, err.Error()
		}
		if alive.IsZero() {
			for _, mem := range st.Members {
				if mem.ID == bc.Nodes[down].ID && mem.Liveness == "alive" {
					alive = t
				}
			}
		}
		if infos, err = bc.infos(ctx); err != nil {
			return false, err.Error()
		}
		n3 := infos[down]
		if trees.IsZero() && float64(n3.AntiEntropy.TreesBuilt) >= float64(partitions) {
			trees = t
		}
		if under != nil && keysAt == 0 {
			if n1 := infos[0]; n3.Keys >= n1.Keys {
				keysAt = time.Since(t0)
				stopLoad()
			}
			return false, fmt.Sprintf("node-3 holds %d keys of node-1's %d", n3.Keys, infos[0].Keys)
		}
		return benchRootsEqual(infos, partitions)
	})
	el := time.Since(t0)
	m.stop(o.AeMissing, 0)
	stopLoad()
	if err != nil {
		return nil, err
	}
	r.SecondsToEqual = el.Seconds()
	if !alive.IsZero() {
		r.SecondsToAlive = alive.Sub(t0).Seconds()
	}
	if !trees.IsZero() {
		r.SecondsToTrees = trees.Sub(t0).Seconds()
	}
	for i, in := range before {
		r.BytesSent += float64(infos[i].AntiEntropy.BytesSent) - float64(in.AntiEntropy.BytesSent)
	}
	r.BytesSent += float64(infos[down].AntiEntropy.BytesSent) // a new process: from zero
	r.KeysReceived = float64(infos[down].AntiEntropy.KeysReceived)
	if missing > 0 {
		r.BytesPerByte = r.BytesSent / float64(missing)
	}
	if under != nil {
		under(r, <-loadDone, keysAt)
	}
	return r, nil
}
