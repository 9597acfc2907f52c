package bench

// Ownership-transfer phase (issue 7): a 4th node joins the ae cluster
// (about --ae-keys keys); measured: time from its start until every node
// sees it active (it is active once it holds every partition it owns),
// and the transfer rate from its transfer_*_received figures.

import (
	"context"
	"fmt"
	"time"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/poll"
)

func (b *bench) transferPhase(ctx context.Context, bc *benchCluster) error {
	o := b.o
	n1, _, err := bc.info(ctx, 0)
	if err != nil {
		return err
	}
	before, err := bc.infos(ctx)
	if err != nil {
		return err
	}
	idx, err := bc.Add()
	if err != nil {
		return err
	}
	p := bc.Nodes[idx]
	t := &benchTransfer{KeysInCluster: n1.Keys}
	b.progress("transfer: starting %s to join %d nodes holding %d keys", p.ID, idx, n1.Keys)
	m := b.startMeter("transfer: add node-4", bc.procs())
	t0 := time.Now()
	if err := bc.Start(idx); err != nil {
		return err
	}
	var first, lastMove time.Time
	var keys, bytes float64
	err = poll.Until(ctx, o.WaitTimeout, 100*time.Millisecond, p.ID+" active in every node's ring", func() (bool, string) {
		tp := time.Now()
		in, st4, err := bc.info(ctx, idx)
		if err != nil {
			return false, err.Error()
		}
		k, by := float64(in.Ownership.KeysReceived), float64(in.Ownership.BytesReceived)
		if k > 0 && first.IsZero() {
			first = tp
		}
		if k != keys {
			lastMove = tp
		}
		keys, bytes = k, by
		seen := fmt.Sprintf("%s received %.0f keys, %.0f bytes, %.0f partitions syncing", p.ID, k, by, float64(in.Ownership.PartitionsSyncing))
		if !benchAllActive(st4, len(bc.Nodes)) {
			return false, seen + "; " + p.ID + " does not see every node active yet"
		}
		for i := range idx {
			_, st, err := bc.info(ctx, i)
			if err != nil {
				return false, err.Error()
			}
			if !benchAllActive(st, len(bc.Nodes)) {
				return false, seen + "; " + bc.Nodes[i].ID + " does not see every node active yet"
			}
		}
		return true, seen
	})
	el := time.Since(t0)
	m.stop(int(keys), 0)
	if err != nil {
		return err
	}
	after, err := bc.infos(ctx)
	if err != nil {
		return err
	}
	// Keys and bytes received by every node: the joiner's from zero, the
	// others' as deltas (a join moves data to the joiner only, normally).
	t.KeysReceived, t.BytesReceived = float64(after[idx].Ownership.KeysReceived), float64(after[idx].Ownership.BytesReceived)
	for i, in := range before {
		t.KeysReceived += float64(after[i].Ownership.KeysReceived) - float64(in.Ownership.KeysReceived)
		t.BytesReceived += float64(after[i].Ownership.BytesReceived) - float64(in.Ownership.BytesReceived)
	}
	t.SecondsToActive = el.Seconds()
	t.MBPerSec, t.KeysPerSec = t.BytesReceived/1e6/el.Seconds(), t.KeysReceived/el.Seconds()
	if !first.IsZero() && lastMove.After(first) {
		w := lastMove.Sub(first)
		t.WindowSeconds = w.Seconds()
		t.MBPerSecWindow, t.KeysPerSecWindow = bytes/1e6/w.Seconds(), keys/w.Seconds()
	}
	t.Node4Keys = after[idx].Keys
	b.rep.Transfer = t
	b.progress("transfer: %s active after %.2f s; %.0f keys, %.1f MB received (%.1f MB/s, %.0f keys/s)",
		p.ID, t.SecondsToActive, t.KeysReceived, t.BytesReceived/1e6, t.MBPerSec, t.KeysPerSec)
	return nil
}

// benchAllActive reports whether st shows n members, all alive and active.
func benchAllActive(st *client.Status, n int) bool {
	if st == nil || len(st.Members) != n {
		return false
	}
	for _, m := range st.Members {
		if m.Liveness != "alive" || m.Ring != "active" {
			return false
		}
	}
	return true
}
