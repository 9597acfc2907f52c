package antientropy

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mnemo-kv/mnemo/internal/testutil"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
)

// fakeClock is a Config.Now the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// rejoinFigures are what one rejoin cost.
type rejoinFigures struct {
	missing, missingBytes int
	received              uint64        // objects node c received, in either role
	bytes                 int64         // all anti-entropy messages from the triggers on
	waitBytes             int64         // those of bytes that polled a peer building its trees or busy
	took                  time.Duration // from the start of c's build to equal roots
}

// rejoin runs the bench's rejoin story in process: three replicas of
// every partition (a, b, c); c misses one key in ten, then restarts, its
// trees rebuilt from its store and held unbuilt for a while (the
// start-up build of a big store); a and b see c rejoin, c sees them
// alive, and all four triggers fire as a node fires them. The follow-ups
// come due (the clock moves past FollowUp) while c's trees are still
// building. It returns once c has converged with both and no trigger has
// anything left to do.
func rejoin(t testing.TB, keys, q int) rejoinFigures {
	rng := newRand(t)
	clk := newFakeClock()
	holdC := false
	var hold func()
	o := clusterOpts{Q: q, Config: Config{RetryDelay: 10 * time.Millisecond, Now: clk.Now, Logger: zerolog.Nop()},
		BeforeAE: func(id ring.NodeID, st *store.Store) {
			if id == "c" && holdC {
				hold = st.LockPartition(0) // c's build stops at partition 0
			}
		}}
	c := newCluster(t, o, "a", "b", "c")
	a, b := c.node("a"), c.node("b")
	c.waitBuilt("a", "b", "c")
	missing, missingBytes := fillRandom(t, rng, keys, 100, 10, []*testNode{a, b}, []*testNode{c.node("c")})
	holdC = true
	cn := c.restart("c", o)
	var once sync.Once
	unlock := func() { once.Do(hold) }
	t.Cleanup(unlock) // before the cluster stops, should the test fail early
	before, waitBefore := c.bytes.Load(), c.waitBytes.Load()
	a.ae.NodeRejoined("c")
	b.ae.NodeRejoined("c")
	cn.ae.NodeRejoined("a") // c sees a and b alive after its restart
	cn.ae.NodeRejoined("b")

	// a and b find c's trees unbuilt and retry; then the follow-ups'
	// first due time passes, and they retry a while longer.
	retried := func(n int64) {
		t.Helper()
		from := c.kindCalls(KindRoots)
		testutil.Eventually(t, 10*time.Second, "a and b retrying", func() (bool, string) {
			got := c.kindCalls(KindRoots) - from
			return got >= n, fmt.Sprintf("%d roots calls", got)
		})
	}
	retried(6)
	clk.Advance(DefaultFollowUp + time.Second)
	retried(6)
	if built := cn.trees.BuiltCount(); built != 0 {
		t.Fatalf("c built %d partitions while held", built)
	}
	// Rejoining says who still has rejoin work with whom (the node's
	// reads ask every replica meanwhile).
	if !a.ae.Rejoining("c") || !b.ae.Rejoining("c") || !cn.ae.Rejoining("a") || a.ae.Rejoining("b") {
		t.Fatalf("while c's trees build: Rejoining a->c %v, b->c %v, c->a %v, a->b %v; want true, true, true, false",
			a.ae.Rejoining("c"), b.ae.Rejoining("c"), cn.ae.Rejoining("a"), a.ae.Rejoining("b"))
	}
	unlock()
	t0 := time.Now()
	testutil.Eventually(t, 2*time.Minute, "c repaired", func() (bool, string) {
		okA, seenA := rootsEqual(a, cn)
		okB, seenB := rootsEqual(b, cn)
		return okA && okB, seenA + "; " + seenB
	})
	f := rejoinFigures{took: time.Since(t0)}
	clk.Advance(DefaultFollowUp + time.Second) // the follow-ups come due
	testutil.Eventually(t, time.Minute, "triggers done", func() (bool, string) {
		pa, pb, pc := a.ae.Stats().RejoinPending, b.ae.Stats().RejoinPending, cn.ae.Stats().RejoinPending
		return pa+pb+pc == 0, fmt.Sprintf("partitions pending: a %d, b %d, c %d", pa, pb, pc)
	})
	testutil.Eventually(t, 10*time.Second, "Rejoining false once the triggers are done", func() (bool, string) {
		ra, rb, rc := a.ae.Rejoining("c"), b.ae.Rejoining("c"), cn.ae.Rejoining("a") || cn.ae.Rejoining("b")
		return !ra && !rb && !rc, fmt.Sprintf("a->c %v, b->c %v, c->a|b %v", ra, rb, rc)
	})
	sameData(t, a, cn)
	sameData(t, b, cn)
	f.missing, f.missingBytes, f.received = len(missing), missingBytes, cn.ae.Stats().KeysReceived
	f.bytes, f.waitBytes = c.bytes.Load()-before, c.waitBytes.Load()-waitBefore
	t.Logf("equal roots %v after c's build was let go; c received %d objects for %d missing (%.3f each); %d bytes on the network, %.3f per missing byte (%d of them polls answered not built or busy; without: %.3f); a sent %d, b %d;%s",
		f.took.Round(time.Millisecond), f.received, f.missing, float64(f.received)/float64(f.missing), f.bytes, float64(f.bytes)/float64(f.missingBytes),
		f.waitBytes, float64(f.bytes-f.waitBytes)/float64(f.missingBytes), a.ae.Stats().KeysSent, b.ae.Stats().KeysSent, c.traffic())
	return f
}

// TestRejoinRepairsOnce: a node that rejoins missing data receives each
// missing object about once, although four rejoin triggers cover each of
// its partitions and the follow-ups come due while its trees are still
// building: the follow-ups wait for the trees, and repair leases keep two
// exchanges from repairing one partition at once. Reference: Dynamo §4.7.
func TestRejoinRepairsOnce(t *testing.T) {
	keys, q := 64_000, 16 // about 4 keys per segment, as in the bench
	if raceEnabled || testing.Short() {
		keys, q = 16_000, 4
	}
	f := rejoin(t, keys, q)
	if limit := f.missing + f.missing/10; f.received > uint64(limit) {
		t.Errorf("c received %d objects for %d missing, want at most %d", f.received, f.missing, limit)
	}
	// Polls answered "not built" or "busy" are left out of the ratio: with
	// this test's 10 ms RetryDelay their bytes grow with the wall time of
	// c's build and of the repair another exchange holds the lease for
	// (up to 0.35 B/B when the race detector runs on a loaded machine),
	// not with the data; at the default 500 ms they are a few hundred
	// bytes, and the bench's figure (1.2 B/B) counts everything.
	if ratio := float64(f.bytes-f.waitBytes) / float64(f.missingBytes); ratio > 1.5 {
		t.Errorf("%.3f bytes per missing byte besides the polls, want <= 1.5", ratio)
	}
}
