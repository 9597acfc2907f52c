package antientropy

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/ring"
)

// leaseNode is an AntiEntropy with only what the lease methods use.
func leaseNode(self ring.NodeID, clk *fakeClock) *AntiEntropy {
	a := &AntiEntropy{cfg: Config{Now: clk.Now}, cl: &nodeView{self: self}, leaseTTL: 10 * time.Second}
	a.mu.leases = map[ring.Partition]*lease{}
	return a
}

// TestLeases walks one node's repair leases through the cases of lease.go:
// one exchange per partition at a time, renewals, releases, expiry, and
// two nodes starting an exchange with each other at once.
func TestLeases(t *testing.T) {
	clk := newFakeClock()
	b := leaseNode("b", clk) // the rejoined node, say
	const p, q = ring.Partition(1), ring.Partition(2)
	steps := []struct {
		what string
		do   func() bool
		want bool
	}{
		{"a's exchange finds p different: granted", func() bool { return b.grant(p, "a") }, true},
		{"c's exchange finds p different: busy", func() bool { return b.grant(p, "c") }, false},
		{"a again (next pass): renewed", func() bool { return b.grant(p, "a") }, true},
		{"other partitions are free", func() bool { return b.grant(q, "c") }, true},
		{"b itself may not start p with c", func() bool { return b.pin(p, "c") }, false},
		{"nor with a, who is repairing it", func() bool { return b.pin(p, "a") }, false},
		{"a's segments request renews: 9 s later still a's", func() bool {
			clk.Advance(9 * time.Second)
			b.renew(p)
			clk.Advance(9 * time.Second)
			return b.grant(p, "c")
		}, false},
		{"a finds p equal: released, c may go", func() bool { b.releaseRemote(p, "a"); return b.grant(p, "c") }, true},
		{"c vanished: its lease lapses after the TTL", func() bool {
			clk.Advance(b.leaseTTL)
			return b.grant(p, "a")
		}, true},
		{"a releases; b pins p for its exchange with c", func() bool { b.releaseRemote(p, "a"); return b.pin(p, "c") }, true},
		{"a, a third node, is busy while b's exchange runs", func() bool { return b.grant(p, "a") }, false},
		{"c (higher id) starting p with b at once: busy", func() bool { return b.grant(p, "c") }, false},
		{"b unpins: a is granted", func() bool { b.unpin(p); return b.grant(p, "a") }, true},
	}
	for _, s := range steps {
		if got := s.do(); got != s.want {
			t.Fatalf("%s: got %v, want %v", s.what, got, s.want)
		}
	}
	// Two nodes start an exchange of p with each other at once: the lower
	// id's goes on, the other's is busy, whichever request lands first.
	x, y := leaseNode("x", clk), leaseNode("y", clk)
	if !x.pin(p, "y") || !y.pin(p, "x") {
		t.Fatal("pins refused")
	}
	if !y.grant(p, "x") {
		t.Fatal("y refused x (the lower id) while pinned for x")
	}
	if x.grant(p, "y") {
		t.Fatal("x granted y (the higher id) while pinned for y")
	}
	y.unpin(p)
	x.unpin(p)
	if len(x.mu.leases) != 0 {
		t.Fatalf("x keeps %d lease records after its exchange", len(x.mu.leases))
	}
}

// TestExchangeBusy: an exchange skips, as Busy, a partition another
// exchange is repairing at the peer, and repairs it once that is over.
func TestExchangeBusy(t *testing.T) {
	c := newCluster(t, clusterOpts{Q: 4}, "a", "b", "c")
	a, b, cn := c.node("a"), c.node("b"), c.node("c")
	c.waitBuilt("a", "b", "c")
	for i := range 200 {
		put(t, a, fmt.Sprintf("k%d", i), "v")
	}
	const p = ring.Partition(0)
	if !b.ae.grant(p, "c") { // c is repairing p with b
		t.Fatal("grant refused")
	}
	res, err := a.ae.ExchangeNow(ctxTimeout(t, 10*time.Second), "b", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Busy) != 1 || res.Busy[0] != p || len(res.Done) != 3 {
		t.Fatalf("result %+v, want partition 0 busy and the 3 others done", res)
	}
	if cn.ae.Stats().KeysSent != 0 {
		t.Fatal("c sent objects")
	}
	b.ae.releaseRemote(p, "c")
	res, err = a.ae.ExchangeNow(ctxTimeout(t, 10*time.Second), "b", []ring.Partition{p})
	if err != nil || len(res.Repaired) != 1 {
		t.Fatalf("after the release: %+v %v", res, err)
	}
	sameData(t, a, b)
}

// TestPacer: the share is enforced over the pacer's clock, and turns are
// taken one at a time.
func TestPacer(t *testing.T) {
	now := time.Unix(0, 0)
	p := newPacer(0.5, nil) // 0.5 s of work per second, 20 ms banked
	p.b.SetClock(func() time.Time { return now })
	done, cancel := context.WithCancel(context.Background())
	cancel()
	work := func(d time.Duration) error {
		if err := p.begin(context.Background(), &turn{}); err != nil {
			return err
		}
		<-p.cpu // the turn ends: account d of work
		return p.b.Wait(done, int(d))
	}
	if err := work(15 * time.Millisecond); err != nil {
		t.Fatalf("within the burst: %v", err)
	}
	if err := work(15 * time.Millisecond); !errors.Is(err, context.Canceled) {
		t.Fatalf("over the burst: %v, want a pause", err)
	}
	now = now.Add(time.Second) // 0.5 s of work earned, 20 ms banked
	if err := work(10 * time.Millisecond); err != nil {
		t.Fatalf("after a pause: %v", err)
	}
	// One turn at a time: a second begin waits for the first turn's end.
	var t1, t2 turn
	if err := p.begin(context.Background(), &t1); err != nil {
		t.Fatal(err)
	}
	if err := p.begin(done, &t2); !errors.Is(err, context.Canceled) || t2.held {
		t.Fatalf("second turn began while the first ran: %v", err)
	}
	now = now.Add(time.Second)
	if err := p.end(context.Background(), &t1); err != nil {
		t.Fatal(err)
	}
	if err := p.begin(context.Background(), &t2); err != nil {
		t.Fatal(err)
	}
	_ = p.end(done, &t2)
	// A nil pacer (Trees.Build) never waits.
	var np *pacer
	var tn turn
	if np.begin(context.Background(), &tn) != nil || np.pause(context.Background(), &tn) != nil || np.end(context.Background(), &tn) != nil {
		t.Fatal("nil pacer failed")
	}
}

// TestPacerHoldsBackOnlyWhileBusy: a second of work is paused for while
// the node serves foreground requests, and not while it is idle.
func TestPacerHoldsBackOnlyWhileBusy(t *testing.T) {
	busy := false
	p := newPacer(0.25, func() bool { return busy })
	work := func() error {
		tn := &turn{}
		if err := p.begin(context.Background(), tn); err != nil {
			return err
		}
		tn.start = tn.start.Add(-time.Second) // the turn took a second
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return p.end(ctx, tn)
	}
	if err := work(); err != nil {
		t.Fatalf("idle: a turn was held back: %v", err)
	}
	busy = true
	if err := work(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("busy: a second of work at a quarter share was not paused: %v", err)
	}
}
