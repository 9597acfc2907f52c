package hintedhandoff

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/mnemo-kv/mnemo/internal/testutil"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
	"github.com/mnemo-kv/mnemo/version"
)

const wait = 20 * time.Second // generous: -race on a loaded 2-CPU machine

// storedHint reads n's hint for (target, key) straight from the store.
func storedHint(t testing.TB, n *testNode, target ring.NodeID, key string) (created int64, o *version.Object) {
	t.Helper()
	v, err := n.st.AuxGet(store.AuxHints, hintKey(target, []byte(key)))
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	created, o, err = decodeHint(v)
	if err != nil {
		t.Fatal(err)
	}
	return created, o
}

// waitDelivered waits until from holds no hint for target.
func waitDelivered(t testing.TB, from *testNode, target ring.NodeID) {
	t.Helper()
	testutil.Eventually(t, wait, fmt.Sprintf("all hints for %s delivered", target), func() (bool, string) {
		s := from.h.Stats()
		return s.Pending[target] == 0 && s.Replaying == 0, fmt.Sprintf("%+v", s)
	})
}

// Reference: Dynamo §4.6: the hinted replica "will keep them in a separate
// local database": hints are durable, and one per key.
func TestHintsSurviveRestartAndMerge(t *testing.T) {
	c := newTestCluster(t)
	a := c.add("a", testConfig(t))
	b := c.add("b", testConfig(t))
	c.setAlive("b", false)

	o1 := obj(nil, "x#1", "v1")
	o2 := obj(o1, "x#1", "v2")          // supersedes o1
	o3 := obj(nil, "y#1", "concurrent") // concurrent with both
	mustAdd(t, a, "b", "k", o1)
	mustAdd(t, a, "b", "k", o2)
	mustAdd(t, a, "b", "k", o3)
	mustAdd(t, a, "b", "k", o1) // already covered: no change
	tomb1 := tomb(obj(nil, "x#1", "gone"), "x#1")
	mustAdd(t, a, "b", "deleted", tomb1)
	for i := range 10 {
		mustAdd(t, a, "b", fmt.Sprintf("other-%d", i), obj(nil, "x#1", "v"))
	}
	want := version.Merge(o2, o3)
	created, got := storedHint(t, a, "b", "k")
	if !version.Equal(got, want) {
		t.Fatalf("merged hint %s, want %s", values(got), values(want))
	}
	if s := a.h.Stats(); s.Stored != 12 || s.Pending["b"] != 12 {
		t.Fatalf("stats before restart: %+v, want 12 hints for b", s)
	}
	if !a.h.HasHints("b") || a.h.HasHints("a") || a.h.HasHints("c") {
		t.Fatalf("HasHints b, a, c = %v, %v, %v; want only b", a.h.HasHints("b"), a.h.HasHints("a"), a.h.HasHints("c"))
	}

	c.restart(a)
	if s := a.h.Stats(); s.Stored != 12 || s.Pending["b"] != 12 {
		t.Fatalf("stats after restart: %+v, want 12 hints for b (counted at start)", s)
	}
	if !a.h.HasHints("b") {
		t.Fatal("HasHints(b) false after a restart with 12 hints for b")
	}
	created2, got := storedHint(t, a, "b", "k")
	if !version.Equal(got, want) || created2 != created {
		t.Fatalf("after restart: hint %s created %d, want %s created %d", values(got), created2, values(want), created)
	}
	if _, got := storedHint(t, a, "b", "deleted"); !got.Deleted() {
		t.Fatalf("tombstone hint after restart: %s", values(got))
	}

	// And they are delivered from the restarted node.
	c.setAlive("b", true)
	a.h.NodeRejoined("b")
	waitDelivered(t, a, "b")
	if a.h.HasHints("b") {
		t.Fatal("HasHints(b) true after every hint for b was delivered")
	}
	if got := get(t, b, "k"); !version.Equal(got, want) {
		t.Fatalf("b holds %s, want %s", values(got), values(want))
	}
	if got := get(t, b, "deleted"); !version.Equal(got, tomb1) || !got.Deleted() {
		t.Fatalf("b holds %s for the deleted key, want the tombstone", values(got))
	}
}

func TestAddEdgeCases(t *testing.T) {
	c := newTestCluster(t)
	a := c.add("a", testConfig(t))
	o := obj(nil, "x#1", "v")
	for _, bad := range []ring.NodeID{"", "has\x00nul", ring.NodeID(strings.Repeat("n", 256))} {
		if err := a.h.Add(bad, []byte("k"), o); !errors.Is(err, ErrBadTarget) {
			t.Errorf("Add(%q) = %v, want ErrBadTarget", bad, err)
		}
	}
	if err := a.h.Add("b", nil, o); !errors.Is(err, store.ErrEmptyKey) {
		t.Errorf("Add with empty key = %v, want store.ErrEmptyKey", err)
	}
	if err := a.h.Add("b", []byte("k"), nil); err != nil {
		t.Errorf("Add of an empty object = %v, want a no-op", err)
	}
	if err := a.h.Add("a", []byte("k"), o); err != nil {
		t.Errorf("Add for self = %v, want a no-op", err)
	}
	if s := a.h.Stats(); s.Stored != 0 {
		t.Errorf("no-op Adds stored hints: %+v", s)
	}
	_ = a.h.Close()
	if err := a.h.Add("b", []byte("k"), o); !errors.Is(err, ErrClosed) {
		t.Errorf("Add after Close = %v, want ErrClosed", err)
	}
}

// Reference: Dynamo §4.6: once the hinted replica "detects that [the home
// replica] has recovered, it will attempt to deliver the replica".
// Delivery is a merge: a newer value at the target stays, concurrent ones
// become siblings.
func TestReplayDeliversAndMerges(t *testing.T) {
	c := newTestCluster(t)
	cfg := testConfig(t)
	cfg.BatchSize = 3 // several batches
	a := c.add("a", cfg)
	b := c.add("b", testConfig(t))
	c.setAlive("b", false)

	want := map[string]*version.Object{}
	// Plain values, some updated after the first hint.
	for i := range 10 {
		k := fmt.Sprintf("value-%d", i)
		o := obj(nil, "x#1", k)
		mustAdd(t, a, "b", k, o)
		if i%2 == 0 {
			o = obj(o, "x#1", k+"-updated")
			mustAdd(t, a, "b", k, o)
		}
		want[k] = o
	}
	// A delete of a value b already has.
	old := obj(nil, "x#1", "old")
	if _, _, err := b.st.Merge([]byte("del"), old); err != nil {
		t.Fatal(err)
	}
	del := tomb(old, "x#1")
	mustAdd(t, a, "b", "del", del)
	want["del"] = del
	// b holds a newer value than the hint: the hint must not overwrite it.
	stale := obj(nil, "x#1", "stale")
	newer := obj(stale, "x#1", "newer")
	if _, _, err := b.st.Merge([]byte("newer-at-b"), newer); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, a, "b", "newer-at-b", stale)
	want["newer-at-b"] = newer
	// b holds a concurrent write: both survive as siblings.
	mine := obj(nil, "x#1", "from-hint")
	theirs, err := b.st.Put(store.PutRequest{Key: []byte("concurrent"), Value: []byte("at-b")})
	if err != nil {
		t.Fatal(err)
	}
	mustAdd(t, a, "b", "concurrent", mine)
	want["concurrent"] = version.Merge(mine, theirs)

	c.setAlive("b", true)
	a.h.NodeRejoined("b")
	waitDelivered(t, a, "b")
	for k, w := range want {
		if got := get(t, b, k); !version.Equal(got, w) {
			t.Errorf("b[%s] = %s, want %s", k, values(got), values(w))
		}
	}
	if got := get(t, b, "concurrent"); len(got.Siblings) != 2 {
		t.Errorf("concurrent key has %d siblings, want 2: %s", len(got.Siblings), values(got))
	}
	s := a.h.Stats()
	if s.Replayed != uint64(len(want)) || s.Batches != 5 || s.BytesSent == 0 || s.Stored != 0 {
		t.Errorf("stats %+v, want %d replayed in 5 batches", s, len(want))
	}
	if s.Last.Target != "b" || s.Last.Replayed != len(want) || s.Last.Err != "" || s.Last.Duration <= 0 {
		t.Errorf("last replay %+v", s.Last)
	}
	if n := counter(&c.maxInflight, "b").Load(); n != 1 {
		t.Errorf("%d concurrent batches to b, want 1 (one replay per target)", n)
	}
}

// A write hinted while its key's batch is in flight keeps the hint: the
// acknowledged batch carried the older object.
func TestHintUpdatedInFlightIsKept(t *testing.T) {
	c := newTestCluster(t)
	cfg := testConfig(t)
	cfg.BatchSize = 2
	a := c.add("a", cfg)
	b := c.add("b", testConfig(t))
	c.setAlive("b", false)
	first := obj(nil, "x#1", "first")
	mustAdd(t, a, "b", "k0", first)
	for i := 1; i < 5; i++ {
		mustAdd(t, a, "b", fmt.Sprintf("k%d", i), obj(nil, "x#1", "v"))
	}
	later := obj(first, "x#1", "later")
	var seenKept atomic.Bool
	c.setHook(func(n int64, from, to ring.NodeID) error {
		switch n {
		case 1: // the batch with k0 and k1 is about to go
			if err := a.h.Add("b", []byte("k0"), later); err != nil {
				return err
			}
		case 2: // the first batch was acknowledged: k0 must still be hinted
			_, o := storedHint(t, a, "b", "k0")
			seenKept.Store(version.Equal(o, later))
		}
		return nil
	})
	c.setAlive("b", true)
	a.h.NodeRejoined("b")
	waitDelivered(t, a, "b")
	if !seenKept.Load() {
		t.Error("hint for k0 was not kept (with the later write) after its first delivery")
	}
	if got := get(t, b, "k0"); !version.Equal(got, later) {
		t.Errorf("b[k0] = %s, want the later write", values(got))
	}
	if s := a.h.Stats(); s.Superseded != 1 || s.Replayed != 6 {
		t.Errorf("stats %+v, want 1 superseded and 6 objects replayed (k0 twice)", s)
	}
}

// The target goes away mid-replay (its server stops): the replay stops,
// what was acknowledged is gone, the rest stays and goes on the next
// rejoin.
func TestInterruptedReplayResumesOnRejoin(t *testing.T) {
	c := newTestCluster(t)
	cfg := testConfig(t)
	cfg.BatchSize = 5
	a := c.add("a", cfg)
	b := c.add("b", testConfig(t))
	c.setAlive("b", false)
	for i := range 50 {
		mustAdd(t, a, "b", fmt.Sprintf("k%02d", i), obj(nil, "x#1", fmt.Sprint(i)))
	}
	c.setHook(func(n int64, from, to ring.NodeID) error {
		if n == 3 {
			b.stopServer(t) // this call and the ones after it fail
		}
		return nil
	})
	c.setAlive("b", true)
	a.h.NodeRejoined("b")
	testutil.Eventually(t, wait, "the replay to stop on the failure", func() (bool, string) {
		s := a.h.Stats()
		return s.Failures == 1 && s.Replaying == 0, fmt.Sprintf("%+v", s)
	})
	s := a.h.Stats()
	if s.Pending["b"] != 40 || s.Replayed != 10 || s.Last.Err == "" {
		t.Fatalf("after interruption: %+v, want 10 delivered and 40 pending", s)
	}

	c.setHook(nil)
	c.serve(b)
	a.h.NodeRejoined("b")
	waitDelivered(t, a, "b")
	for i := range 50 {
		k := fmt.Sprintf("k%02d", i)
		if got := get(t, b, k); got == nil || string(got.Siblings[0].Value) != fmt.Sprint(i) {
			t.Fatalf("b[%s] = %s after the resumed replay", k, values(got))
		}
	}
}

// Calls that fail (a flaky target) stop the replay; the periodic check
// resumes it without any rejoin event.
func TestPeriodicCheckResumes(t *testing.T) {
	c := newTestCluster(t)
	cfg := testConfig(t)
	cfg.BatchSize = 4
	cfg.CheckInterval = 20 * time.Millisecond
	a := c.add("a", cfg)
	b := c.add("b", testConfig(t))
	c.setAlive("b", false)
	for i := range 20 {
		mustAdd(t, a, "b", fmt.Sprintf("k%02d", i), obj(nil, "x#1", "v"))
	}
	c.setHook(func(n int64, from, to ring.NodeID) error {
		if n%2 == 0 && n < 8 {
			return errors.New("test: injected call failure")
		}
		return nil
	})
	c.setAlive("b", true) // no NodeRejoined: the check must find it
	waitDelivered(t, a, "b")
	if s := a.h.Stats(); s.Failures < 3 || s.Replayed != 20 {
		t.Errorf("stats %+v, want >= 3 failures and 20 replayed", s)
	}
	for i := range 20 {
		if get(t, b, fmt.Sprintf("k%02d", i)) == nil {
			t.Fatalf("b lacks k%02d", i)
		}
	}
}

// clock is a settable Now for expiry tests.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestSweepDropsExpiredHints(t *testing.T) {
	var clk clock
	clk.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	c := newTestCluster(t)
	cfg := testConfig(t)
	cfg.Now = clk.now
	cfg.Window = 3 * time.Hour
	cfg.SweepInterval = 10 * time.Millisecond
	a := c.add("a", cfg)
	c.setAlive("b", false)
	c.setAlive("c", false)
	for i := range 5 {
		mustAdd(t, a, "b", fmt.Sprintf("old-%d", i), obj(nil, "x#1", "v"))
	}
	mustAdd(t, a, "c", "old-c", obj(nil, "x#1", "v"))
	clk.advance(2 * time.Hour)
	for i := range 3 {
		mustAdd(t, a, "b", fmt.Sprintf("new-%d", i), obj(nil, "x#1", "v"))
	}
	// A later write to an old key does not extend its hint's life.
	_, o := storedHint(t, a, "b", "old-0")
	mustAdd(t, a, "b", "old-0", obj(o, "x#1", "v2"))
	clk.advance(time.Hour + time.Second)
	testutil.Eventually(t, wait, "old hints swept", func() (bool, string) {
		s := a.h.Stats()
		return s.Expired == 6 && s.Stored == 3 && s.Pending["b"] == 3 && s.Pending["c"] == 0, fmt.Sprintf("%+v", s)
	})
	if _, o := storedHint(t, a, "b", "new-0"); o == nil {
		t.Error("a hint inside the window was swept")
	}
	if !a.h.HasHints("b") || a.h.HasHints("c") {
		t.Errorf("HasHints b, c = %v, %v after c's only hint expired; want true, false", a.h.HasHints("b"), a.h.HasHints("c"))
	}
}

// A write merged into a hint that has expired but is not swept yet starts a
// new window instead of being dropped with the old content.
func TestAddToExpiredHintRestartsItsWindow(t *testing.T) {
	var clk clock
	clk.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	c := newTestCluster(t)
	cfg := testConfig(t)
	cfg.Now = clk.now
	cfg.Window = time.Hour
	a := c.add("a", cfg)
	o := obj(nil, "x#1", "v1")
	mustAdd(t, a, "b", "k", o)
	created0, _ := storedHint(t, a, "b", "k")
	clk.advance(30 * time.Minute)
	mustAdd(t, a, "b", "k", obj(o, "x#1", "v2"))
	if created, _ := storedHint(t, a, "b", "k"); created != created0 {
		t.Errorf("a live hint's creation moved from %d to %d", created0, created)
	}
	clk.advance(time.Hour)
	mustAdd(t, a, "b", "k", obj(obj(o, "x#1", "v2"), "x#1", "v3"))
	if created, _ := storedHint(t, a, "b", "k"); created != clk.now().UnixNano() {
		t.Errorf("an expired hint's creation stayed at %d, want now %d", created, clk.now().UnixNano())
	}
	if n, err := a.h.sweep(); err != nil || n != 0 {
		t.Errorf("sweep dropped %d (%v), want the renewed hint kept", n, err)
	}
}

func TestReplayDropsExpiredHints(t *testing.T) {
	var clk clock
	clk.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	c := newTestCluster(t)
	cfg := testConfig(t)
	cfg.Now = clk.now
	cfg.Window = time.Hour
	cfg.BatchSize = 2
	a := c.add("a", cfg)
	b := c.add("b", testConfig(t))
	c.setAlive("b", false)
	for i := range 5 {
		mustAdd(t, a, "b", fmt.Sprintf("old-%d", i), obj(nil, "x#1", "v"))
	}
	clk.advance(59 * time.Minute)
	mustAdd(t, a, "b", "fresh", obj(nil, "x#1", "v"))
	clk.advance(2 * time.Minute)
	c.setAlive("b", true)
	a.h.NodeRejoined("b")
	waitDelivered(t, a, "b")
	s := a.h.Stats()
	if s.Expired != 5 || s.Replayed != 1 || s.Last.Expired != 5 || s.Last.Replayed != 1 {
		t.Fatalf("stats %+v, want 5 expired and 1 replayed", s)
	}
	if get(t, b, "old-0") != nil || get(t, b, "fresh") == nil {
		t.Fatal("b got an expired hint or missed the fresh one")
	}
}

// Reference: Dynamo §4.6: "Once the transfer succeeds, [the fallback] may
// delete the object from its local store without decreasing the total
// number of replicas in the system."
func TestFallbackDropsItsCopy(t *testing.T) {
	c := newTestCluster(t)
	a := c.add("a", testConfig(t))
	b := c.add("b", testConfig(t))
	cn := c.add("c", testConfig(t))
	c.setAlive("b", false)
	c.setAlive("c", false)

	plain := obj(nil, "x#1", "plain")
	hold(t, a, "b", "plain", plain) // a is a pure fallback: the copy goes
	homeObj := obj(nil, "x#1", "home")
	c.setHome("a", "home-key")
	hold(t, a, "b", "home-key", homeObj) // a is also home: the copy stays
	racy := obj(nil, "x#1", "racy")
	hold(t, a, "b", "racy", racy) // a newer write reaches a meanwhile: stays
	racyNewer := obj(racy, "x#1", "racy-newer")
	two := obj(nil, "x#1", "two")
	hold(t, a, "b", "two", two) // hinted for b and c: stays until c has it
	mustAdd(t, a, "c", "two", two)

	c.setHook(func(n int64, from, to ring.NodeID) error {
		if n == 1 { // the write a read repair (no hint) would make
			_, _, err := a.st.Merge([]byte("racy"), racyNewer)
			return err
		}
		return nil
	})
	c.setAlive("b", true)
	a.h.NodeRejoined("b")
	waitDelivered(t, a, "b")

	if got := get(t, a, "plain"); got != nil {
		t.Errorf("a still holds plain: %s", values(got))
	}
	if got := get(t, a, "home-key"); !version.Equal(got, homeObj) {
		t.Errorf("a (a home replica) lost home-key: %s", values(got))
	}
	if got := get(t, a, "racy"); !version.Equal(got, racyNewer) {
		t.Errorf("a holds %s for racy, want the newer write kept", values(got))
	}
	if got := get(t, a, "two"); !version.Equal(got, two) {
		t.Errorf("a dropped two while c's hint remains: %s", values(got))
	}
	for _, k := range []string{"plain", "home-key", "racy", "two"} {
		if get(t, b, k) == nil {
			t.Errorf("b lacks %s", k)
		}
	}
	if s := a.h.Stats(); s.CopiesDropped != 1 || s.Pending["c"] != 1 {
		t.Errorf("stats %+v, want 1 copy dropped and c's hint left", s)
	}

	c.setHook(nil)
	c.setAlive("c", true)
	a.h.NodeRejoined("c")
	waitDelivered(t, a, "c")
	if got := get(t, a, "two"); got != nil {
		t.Errorf("a still holds two after c got it: %s", values(got))
	}
	if got := get(t, cn, "two"); !version.Equal(got, two) {
		t.Errorf("c holds %s", values(got))
	}
	if s := a.h.Stats(); s.CopiesDropped != 2 {
		t.Errorf("stats %+v, want 2 copies dropped", s)
	}
}

// Many writers hint while replays run (the periodic check keeps
// triggering them): nothing is lost, the target ends with exactly the
// merge of every write, and the fallback ends with no copies.
func TestConcurrentAddsDuringReplayLoseNothing(t *testing.T) {
	c := newTestCluster(t)
	cfg := testConfig(t)
	cfg.BatchSize = 8
	cfg.CheckInterval = 5 * time.Millisecond
	a := c.add("a", cfg)
	b := c.add("b", testConfig(t))

	const writers, writes, keys = 4, 150, 40
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	finals := make([]map[string]*version.Object, writers)
	var wg sync.WaitGroup
	for w := range writers {
		finals[w] = map[string]*version.Object{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			actor := fmt.Sprintf("w%d#1", w)
			for i := range writes {
				k := fmt.Sprintf("k%02d", rng.IntN(keys))
				o := obj(finals[w][k], actor, fmt.Sprintf("w%d-%d", w, i))
				finals[w][k] = o
				// As the node does: hint what the store holds after the
				// merge, so the hint covers the whole local copy.
				merged, _, err := a.st.Merge([]byte(k), o)
				if err != nil {
					t.Error(err)
					return
				}
				if err := a.h.Add("b", []byte(k), merged); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	want := map[string]*version.Object{}
	for _, f := range finals {
		for k, o := range f {
			want[k] = version.Merge(want[k], o)
		}
	}
	waitDelivered(t, a, "b")
	for k, w := range want {
		if got := get(t, b, k); !version.Equal(got, w) {
			t.Errorf("b[%s] = %s, want %s", k, values(got), values(w))
		}
		if got := get(t, a, k); got != nil {
			t.Errorf("fallback a still holds %s: %s", k, values(got))
		}
	}
	if n := counter(&c.maxInflight, "b").Load(); n != 1 {
		t.Errorf("%d concurrent batches to b, want 1", n)
	}
	t.Logf("%+v", a.h.Stats())
}

// The throttle: with Rate R and a burst of one batch, K hints take at
// least (K-batch)/R.
func TestReplayIsThrottled(t *testing.T) {
	c := newTestCluster(t)
	cfg := testConfig(t)
	cfg.Rate = 2000
	cfg.BatchSize = 50
	a := c.add("a", cfg)
	c.add("b", testConfig(t))
	c.setAlive("b", false)
	const k = 600
	for i := range k {
		mustAdd(t, a, "b", fmt.Sprintf("k%04d", i), obj(nil, "x#1", "v"))
	}
	c.setAlive("b", true)
	a.h.NodeRejoined("b")
	waitDelivered(t, a, "b")
	floor := time.Duration(float64(k-cfg.BatchSize) / float64(cfg.Rate) * float64(time.Second))
	last := a.h.Stats().Last
	if last.Replayed != k || last.Duration < floor*9/10 {
		t.Fatalf("replayed %d in %v, want %d in at least ~%v at %d/s", last.Replayed, last.Duration, k, floor, cfg.Rate)
	}
	t.Logf("replayed %d hints in %v at rate %d/s (floor %v)", k, last.Duration, cfg.Rate, floor)
}

// A target that refuses a hint as invalid (here: a value over its limit)
// gets the rest of the batch; the refused hint stays until it expires.
func TestRejectedHintDoesNotBlockTheRest(t *testing.T) {
	c := newTestCluster(t)
	a := c.add("a", testConfig(t))
	b := c.addWith("b", testConfig(t), func(o *store.Options) { o.MaxValueSize = 100 })
	c.setAlive("b", false)
	mustAdd(t, a, "b", "k1", obj(nil, "x#1", "small"))
	mustAdd(t, a, "b", "k2", obj(nil, "x#1", strings.Repeat("big", 100)))
	mustAdd(t, a, "b", "k3", obj(nil, "x#1", "small"))
	c.setAlive("b", true)
	a.h.NodeRejoined("b")
	testutil.Eventually(t, wait, "the good hints delivered", func() (bool, string) {
		s := a.h.Stats()
		return s.Replaying == 0 && s.Pending["b"] == 1, fmt.Sprintf("%+v", s)
	})
	if s := a.h.Stats(); s.Rejected != 1 || s.Replayed != 2 || s.Failures != 0 {
		t.Errorf("stats %+v, want 1 rejected, 2 replayed", s)
	}
	if get(t, b, "k1") == nil || get(t, b, "k3") == nil || get(t, b, "k2") != nil {
		t.Error("b should hold k1 and k3 only")
	}

	// The periodic check does not resend what b refused...
	calls := c.calls.Load()
	a.h.wantPending()
	a.h.schedule()
	if s := a.h.Stats(); s.Replaying != 0 || c.calls.Load() != calls {
		t.Errorf("a replay started for a refused hint only: %+v", s)
	}
	// ...but a rejoin does: b may have restarted with other limits. Here
	// it has.
	b.opts = nil
	c.restart(b)
	a.h.NodeRejoined("b")
	waitDelivered(t, a, "b")
	if get(t, b, "k2") == nil {
		t.Error("b lacks k2 after rejoining with a larger value limit")
	}
}

// Replays to different targets run concurrently, each alone.
func TestReplaysToSeveralTargets(t *testing.T) {
	c := newTestCluster(t)
	cfg := testConfig(t)
	cfg.BatchSize = 2
	a := c.add("a", cfg)
	targets := []ring.NodeID{"b", "c", "d"}
	for _, id := range targets {
		c.add(id, testConfig(t))
		c.setAlive(id, false)
		for i := range 20 {
			mustAdd(t, a, id, fmt.Sprintf("k%d", i), obj(nil, "x#1", "v"))
		}
	}
	for _, id := range targets {
		c.setAlive(id, true)
		for range 5 {
			a.h.NodeRejoined(id) // repeated events start one replay
		}
	}
	for _, id := range targets {
		waitDelivered(t, a, id)
		if n := counter(&c.maxInflight, id).Load(); n != 1 {
			t.Errorf("%d concurrent batches to %s, want 1", n, id)
		}
	}
	if s := a.h.Stats(); s.Replayed != 60 || s.Stored != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestMetrics(t *testing.T) {
	c := newTestCluster(t)
	a := c.add("a", testConfig(t))
	c.add("b", testConfig(t))
	c.setAlive("b", false)
	for i := range 3 {
		mustAdd(t, a, "b", fmt.Sprintf("k%d", i), obj(nil, "x#1", "v"))
	}
	metric := func(name, label string) float64 {
		mfs, err := a.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				if label != "" && !hasLabel(m, "target", label) {
					continue
				}
				switch {
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
		return -1
	}
	if got := metric("mnemo_hints_stored", ""); got != 3 {
		t.Errorf("mnemo_hints_stored = %v, want 3", got)
	}
	if got := metric("mnemo_hints_pending", "b"); got != 3 {
		t.Errorf("mnemo_hints_pending{target=b} = %v, want 3", got)
	}
	c.setAlive("b", true)
	a.h.NodeRejoined("b")
	waitDelivered(t, a, "b")
	for name, want := range map[string]float64{
		"mnemo_hints_stored":                  0,
		"mnemo_hints_replayed_total":          3,
		"mnemo_hints_batches_total":           1,
		"mnemo_hints_expired_total":           0,
		"mnemo_hints_replay_duration_seconds": 1,
	} {
		if got := metric(name, ""); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := metric("mnemo_hints_pending", "b"); got != -1 {
		t.Errorf("mnemo_hints_pending{target=b} still exported as %v", got)
	}
	// Close unregisters: a new Handoff can register on the same registry.
	c.restart(a)
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

func TestConfigValidate(t *testing.T) {
	err := Config{Window: -1, Rate: -5, BatchSize: MaxBatchItems + 1, BatchBytes: MaxBatchBytes + 1}.Validate()
	if err == nil {
		t.Fatal("Validate accepted a bad config")
	}
	for _, field := range []string{"Store", "Cluster", "Window", "Rate", "BatchSize", "BatchBytes"} {
		if !strings.Contains(err.Error(), field+":") {
			t.Errorf("Validate did not report %s: %v", field, err)
		}
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New accepted a config without Store and Cluster")
	}
}
