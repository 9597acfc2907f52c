package transfer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/testutil"
	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
)

// put writes keys k0..k(n-1) = v0.. into st.
func put(t *testing.T, st *store.Store, n int) {
	t.Helper()
	for i := range n {
		if _, err := st.Put(store.PutRequest{Key: []byte(fmt.Sprint("k", i)), Value: []byte(fmt.Sprint("v", i))}); err != nil {
			t.Fatal(err)
		}
	}
}

// keys counts the live keys st holds of partition p.
func keys(st *store.Store, p ring.Partition) int64 { return st.PartitionCounts(p).Live }

// events returns every event fn's Transfer keeps.
func events(fn *fakeNode) []Event {
	out, _, _ := fn.tr.eventsAfter(0)
	return out
}

// eventLine is an event without its time, for comparison.
func eventLine(ev Event) string {
	return fmt.Sprintf("%d %s %s p%d %v", ev.Seq, ev.Node, ev.Kind, ev.Partition, ev.Peers)
}

// partitions of the given kind among evs.
func eventParts(evs []Event, kind string) []ring.Partition {
	var out []ring.Partition
	for _, ev := range evs {
		if ev.Kind == kind {
			out = append(out, ring.Partition(ev.Partition))
		}
	}
	return out
}

func ids(s ...string) []ring.NodeID {
	out := make([]ring.NodeID, len(s))
	for i, v := range s {
		out[i] = ring.NodeID(v)
	}
	return out
}

func mustStep(t *testing.T, fn *fakeNode) {
	t.Helper()
	if err := fn.step(); err != nil {
		t.Fatalf("step of %s: %v", fn.id, err)
	}
}

// Reference: Dynamo §4.9. A node that founds a cluster gains every
// partition with nobody to pull from: each is complete at once.
func TestFounderGainsEverythingSynced(t *testing.T) {
	c := newFakeCluster(t, 3)
	n1 := c.add("n1", ring.Active, Config{})
	mustStep(t, n1)
	evs := events(n1)
	if len(evs) != testQ {
		t.Fatalf("%d events, want %d", len(evs), testQ)
	}
	for i, ev := range evs {
		want := fmt.Sprintf("%d n1 gained p%d []", i+1, i)
		if got := eventLine(ev); got != want {
			t.Errorf("event %d = %q, want %q", i, got, want)
		}
		if ev.UnixMs != c.now.UnixMilli() {
			t.Errorf("event %d at %d, want the clock's %d", i, ev.UnixMs, c.now.UnixMilli())
		}
	}
	if s := n1.tr.Stats(); s.PartitionsHeld != testQ || s.PartitionsSyncing != 0 {
		t.Fatalf("stats %+v", s)
	}
	if calls := c.takeCalls(); len(calls) != 0 {
		t.Fatalf("calls %v", calls)
	}
	// A second round with the same ring decides nothing new.
	mustStep(t, n1)
	if len(events(n1)) != testQ {
		t.Fatalf("second round added events: %v", events(n1)[testQ:])
	}
}

// A joining node that has not reached the cluster yet sees a ring of
// itself alone: it must decide nothing from it (it would believe itself
// the owner of every partition, with nobody to pull from).
func TestJoinerDecidesNothingBeforeJoined(t *testing.T) {
	c := newFakeCluster(t, 1)
	n1 := c.add("n1", ring.Active, Config{})
	mustStep(t, n1)
	n2 := c.add("n2", ring.Joining, Config{})
	n2.mu.joined = false
	mustStep(t, n2)
	if evs := events(n2); len(evs) != 0 || len(n2.statuses()) != 0 {
		t.Fatalf("before joining: events %v, statuses %v", evs, n2.statuses())
	}
	n2.mu.joined = true
	mustStep(t, n2)
	if len(events(n2)) == 0 || !slices.Equal(n2.statuses(), []ring.Status{ring.Active}) {
		t.Fatalf("after joining: events %v, statuses %v", events(n2), n2.statuses())
	}
}

// Reference: Dynamo §4.9. A joining node pulls each partition it will
// own from the nodes that hold it now, and turns active only once all are
// complete.
func TestJoinerPullsThenTurnsActive(t *testing.T) {
	c := newFakeCluster(t, 2)
	n1 := c.add("n1", ring.Active, Config{})
	n2 := c.add("n2", ring.Active, Config{})
	mustStep(t, n1)
	mustStep(t, n2)
	put(t, n1.st, 300)
	put(t, n2.st, 300) // N=2 of 2: both hold everything
	c.takeCalls()

	n3 := c.add("n3", ring.Joining, Config{})
	v := c.view()
	willOwn := v.Future.Owned("n3", 2)
	if len(willOwn) == 0 {
		t.Fatal("n3 owns nothing in the future ring")
	}
	mustStep(t, n3)

	// Gained events: each partition n3 will own, from both holders.
	evs := events(n3)
	if got := eventParts(evs, "gained"); !slices.Equal(got, willOwn) {
		t.Fatalf("gained %v, want %v", got, willOwn)
	}
	var want []string
	for _, ev := range evs {
		holders := v.Ring.Home(ring.Partition(ev.Partition), 2) // n1 and n2, in preference order
		if !slices.Equal(ids(ev.Peers...), holders) {
			t.Errorf("gained p%d from %v, want %v", ev.Partition, ev.Peers, holders)
		}
		// Without anti-entropy every holder is read: one scan of each
		// partition at each (every partition fits a batch).
		for _, h := range holders {
			want = append(want, "n3>"+string(h)+" scan")
		}
	}
	if got := c.takeCalls(); !slices.Equal(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	var total int64
	for _, p := range willOwn {
		if got, want := keys(n3.st, p), keys(n1.st, p); got != want {
			t.Errorf("n3 holds %d keys of p%d, n1 %d", got, p, want)
		}
		total += keys(n1.st, p)
	}
	s := n3.tr.Stats()
	if s.PartitionsHeld != len(willOwn) || s.PartitionsSyncing != 0 || s.KeysReceived != 2*total || s.BytesReceived == 0 {
		t.Fatalf("stats %+v; want %d held, 0 syncing, %d keys received", s, len(willOwn), 2*total)
	}
	if got := n3.statuses(); !slices.Equal(got, []ring.Status{ring.Active}) {
		t.Fatalf("statuses %v, want [active]", got)
	}
	if s, ok := n3.tr.PersistedStatus(); !ok || s != ring.Active {
		t.Fatalf("persisted status %v %v", s, ok)
	}
}

// Which nodes a pull reads, and when it waits: every holder without
// anti-entropy (so one stale replica never stands for the whole), the
// first live one with it.
func TestPullSources(t *testing.T) {
	for _, tc := range []struct {
		name string
		ae   bool
		dead []string
		// want maps the holders (others than n4, in ring order) to the
		// sources, or to "" when the pull must wait.
		want func(holders []ring.NodeID) []ring.NodeID
	}{
		{"every holder", false, nil, func(h []ring.NodeID) []ring.NodeID { return h }},
		{"a holder down: wait", false, []string{"n2"}, func(h []ring.NodeID) []ring.NodeID {
			if slices.Contains(h, "n2") {
				return nil
			}
			return h
		}},
		{"anti-entropy: the first", true, nil, func(h []ring.NodeID) []ring.NodeID { return h[:1] }},
		{"anti-entropy: the first live", true, []string{"n1"}, func(h []ring.NodeID) []ring.NodeID {
			i := slices.IndexFunc(h, func(id ring.NodeID) bool { return id != "n1" })
			return h[i : i+1]
		}},
		{"anti-entropy: all down: wait", true, []string{"n1", "n2", "n3"}, func([]ring.NodeID) []ring.NodeID { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeCluster(t, 2)
			for _, id := range []string{"n1", "n2", "n3"} {
				c.add(ring.NodeID(id), ring.Active, Config{})
			}
			n4 := c.add("n4", ring.Joining, Config{AntiEntropy: tc.ae})
			for _, id := range tc.dead {
				c.kill(ring.NodeID(id), c.now)
			}
			v := c.view()
			for p := range ring.Partition(testQ) {
				holders := v.Ring.Home(p, 2)
				want := tc.want(holders)
				got, err := n4.tr.pullSources(v, p)
				if want == nil {
					if err == nil || !strings.Contains(err.Error(), "down") {
						t.Errorf("p%d (holders %v): sources %v, err %v; want to wait", p, holders, got, err)
					}
					continue
				}
				if err != nil || !slices.Equal(got, want) {
					t.Errorf("p%d (holders %v): sources %v, err %v; want %v", p, holders, got, err, want)
				}
			}
		})
	}
}

// A pull that waits for a dead holder leaves the partition incomplete and
// the joiner joining; once the holder is back, it completes.
func TestPullWaitsForDeadHolder(t *testing.T) {
	c := newFakeCluster(t, 1)
	n1 := c.add("n1", ring.Active, Config{})
	mustStep(t, n1)
	put(t, n1.st, 100)
	n2 := c.add("n2", ring.Joining, Config{})
	c.kill("n1", c.now)
	err := n2.step()
	if err == nil || !strings.Contains(err.Error(), "holder n1 is down") {
		t.Fatalf("step with the holder down: %v", err)
	}
	if s := n2.tr.Stats(); s.PartitionsSyncing != s.PartitionsHeld || s.PartitionsHeld == 0 || len(n2.statuses()) != 0 {
		t.Fatalf("stats %+v, statuses %v: want every partition still syncing, still joining", s, n2.statuses())
	}
	c.revive("n1")
	mustStep(t, n2)
	if s := n2.tr.Stats(); s.PartitionsSyncing != 0 || !slices.Equal(n2.statuses(), []ring.Status{ring.Active}) {
		t.Fatalf("after the holder is back: stats %+v, statuses %v", s, n2.statuses())
	}
}

// Reference: Dynamo §4.9 ("... transfer the keys ... then the old node
// removes them"). A node drops a partition it lost only once every owner
// of it, now and in the future ring, reports it complete.
func TestDropLostOnlyWhenOwnersSynced(t *testing.T) {
	failKind := func(c *fakeCluster, fail Kind) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.mu.fail = func(_, _ ring.NodeID, kind Kind, _ []byte) error {
			if kind == fail {
				return errors.New("fake: connection reset")
			}
			return nil
		}
	}
	for _, tc := range []struct {
		name string
		// prepare runs once n2 joins (as joining), before n1's round; it
		// leaves n2 active, whether or not n2 pulled.
		prepare  func(t *testing.T, c *fakeCluster, n2 *fakeNode)
		wantDrop bool
	}{
		{"new owner synced", func(t *testing.T, c *fakeCluster, n2 *fakeNode) { mustStep(t, n2) }, true},
		{"new owner has not pulled", func(t *testing.T, c *fakeCluster, n2 *fakeNode) {
			c.setStatus("n2", ring.Active)
		}, false},
		{"new owner's pull failed", func(t *testing.T, c *fakeCluster, n2 *fakeNode) {
			failKind(c, kindScan)
			if err := n2.step(); err == nil {
				t.Fatal("n2's pulls did not fail")
			}
			c.setStatus("n2", ring.Active)
		}, false},
		{"new owner dead", func(t *testing.T, c *fakeCluster, n2 *fakeNode) {
			mustStep(t, n2)
			c.kill("n2", c.now)
		}, false},
		{"new owner unreachable", func(t *testing.T, c *fakeCluster, n2 *fakeNode) {
			mustStep(t, n2)
			failKind(c, kindSynced)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeCluster(t, 1)
			n1 := c.add("n1", ring.Active, Config{})
			mustStep(t, n1)
			put(t, n1.st, 400)
			n2 := c.add("n2", ring.Joining, Config{})
			lost := c.view().Future.Owned("n2", 1)
			before := map[ring.Partition]int64{}
			for _, p := range lost {
				before[p] = keys(n1.st, p)
				if before[p] == 0 {
					t.Fatalf("p%d has no keys: the test needs more", p)
				}
			}
			// While n2 joins, n1 still owns everything in the current ring.
			mustStep(t, n1)
			if got := eventParts(events(n1), "lost"); len(got) != 0 {
				t.Fatalf("n1 lost %v to a node still joining", got)
			}
			tc.prepare(t, c, n2)
			n1.step()

			// n1's lost events name the new owner.
			var lostEv []Event
			for _, ev := range events(n1) {
				if ev.Kind == "lost" {
					lostEv = append(lostEv, ev)
				}
			}
			if got := eventParts(lostEv, "lost"); !slices.Equal(got, lost) {
				t.Fatalf("lost %v, want %v", got, lost)
			}
			for _, ev := range lostEv {
				if !slices.Equal(ev.Peers, []string{"n2"}) {
					t.Errorf("lost p%d to %v, want [n2]", ev.Partition, ev.Peers)
				}
			}
			for _, p := range lost {
				got := keys(n1.st, p)
				if tc.wantDrop && got != 0 {
					t.Errorf("n1 still holds %d keys of p%d", got, p)
				}
				if !tc.wantDrop && got != before[p] {
					t.Errorf("n1 holds %d keys of p%d, had %d: dropped too early", got, p, before[p])
				}
			}
			// A second round decides nothing new, and n1 no longer claims
			// what it lost.
			n := len(events(n1))
			n1.step()
			if len(events(n1)) != n {
				t.Errorf("second round added events %v", events(n1)[n:])
			}
			for _, p := range lost {
				if n1.tr.Synced(p) {
					t.Errorf("n1 says it holds p%d, which it lost", p)
				}
			}
			// What n1 kept is untouched.
			for p := range ring.Partition(testQ) {
				if !slices.Contains(lost, p) && keys(n1.st, p) == 0 {
					t.Errorf("n1 lost the keys of p%d, which it still owns", p)
				}
			}
		})
	}
}

// Reference: Dynamo §4.9. A leaving node marks itself removed once every
// partition it owns is complete at its future owners, then, after the
// grace, leaves.
func TestLeaveHandsOffThenLeaves(t *testing.T) {
	c := newFakeCluster(t, 1)
	n1 := c.add("n1", ring.Active, Config{})
	n2 := c.add("n2", ring.Active, Config{LeaveGrace: time.Millisecond})
	mustStep(t, n1)
	mustStep(t, n2)
	handed := c.view().Ring.Owned("n2", 1)
	for i := range 300 {
		k := []byte(fmt.Sprint("k", i))
		owner := n1
		if p, _ := n1.st.Locate(k); slices.Contains(handed, p) {
			owner = n2
		}
		if _, err := owner.st.Put(store.PutRequest{Key: k, Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	c.setStatus("n2", ring.Leaving)

	// n1 has not pulled yet: n2 must wait.
	mustStep(t, n2)
	if len(n2.statuses()) != 0 {
		t.Fatalf("n2 left before n1 held its partitions: %v", n2.statuses())
	}
	// n1 gains n2's partitions from n2 (still in the ring, leaving).
	mustStep(t, n1)
	if got := eventParts(events(n1), "gained"); len(got) != testQ {
		t.Fatalf("n1 gained %v, want all %d", got, testQ)
	}
	for _, p := range handed {
		if got, want := keys(n1.st, p), keys(n2.st, p); got != want || got == 0 {
			t.Errorf("n1 holds %d keys of p%d, n2 %d", got, p, want)
		}
	}
	// Now n2 is done.
	mustStep(t, n2)
	if got := n2.statuses(); !slices.Equal(got, []ring.Status{ring.Removed}) {
		t.Fatalf("statuses %v, want [removed]", got)
	}
	testutil.Eventually(t, 5*time.Second, "n2 leaves after the grace", func() (bool, string) {
		return n2.leaves() == 1, fmt.Sprintf("%d Leave calls", n2.leaves())
	})
	// A removed node decides nothing more.
	c.takeCalls()
	mustStep(t, n2)
	if calls := c.takeCalls(); len(calls) != 0 || n2.leaves() != 1 {
		t.Fatalf("after leaving: calls %v, %d Leave calls", calls, n2.leaves())
	}
}

// When auto-remove fires: a member dead longer than AutoRemoveAfter is
// removed, by the live member with the lowest id only.
func TestAutoRemove(t *testing.T) {
	const after = 10 * time.Minute
	for _, tc := range []struct {
		name    string
		after   time.Duration
		dead    map[string]time.Duration // member -> dead for
		removed []string                 // members already removed
		decider string                   // the node whose round runs
		want    []string                 // Remove calls
	}{
		{"off", 0, map[string]time.Duration{"n3": time.Hour}, nil, "n1", nil},
		{"dead longer", after, map[string]time.Duration{"n3": after + time.Second}, nil, "n1", []string{"n3"}},
		{"dead exactly the limit", after, map[string]time.Duration{"n3": after}, nil, "n1", nil},
		{"dead shorter", after, map[string]time.Duration{"n3": after - time.Second}, nil, "n1", nil},
		{"not the lowest live id", after, map[string]time.Duration{"n3": time.Hour}, nil, "n2", nil},
		{"lowest live after a dead one", after, map[string]time.Duration{"n1": time.Hour}, nil, "n2", []string{"n1"}},
		{"two dead", after, map[string]time.Duration{"n2": time.Hour, "n3": 2 * time.Hour}, nil, "n1", []string{"n2", "n3"}},
		{"already removed", after, map[string]time.Duration{"n3": time.Hour}, []string{"n3"}, "n1", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeCluster(t, 1)
			nodes := map[string]*fakeNode{}
			for _, id := range []string{"n1", "n2", "n3"} {
				nodes[id] = c.add(ring.NodeID(id), ring.Active, Config{AutoRemoveAfter: tc.after})
			}
			for id, d := range tc.dead {
				c.kill(ring.NodeID(id), c.now.Add(-d))
			}
			for _, id := range tc.removed {
				c.setStatus(ring.NodeID(id), ring.Removed)
			}
			nodes[tc.decider].step() // pulls from the dead may fail; only removals matter
			if got := nodes[tc.decider].removes(); !slices.Equal(got, ids(tc.want...)) {
				t.Fatalf("removed %v, want %v", got, tc.want)
			}
			for _, id := range tc.want {
				if s := c.status(ring.NodeID(id)); s != ring.Removed {
					t.Errorf("%s is %s", id, s)
				}
			}
		})
	}
}

// countingThrottle records what the pulls are charged.
type countingThrottle struct {
	mu    sync.Mutex
	sizes []int
}

func (c *countingThrottle) Wait(_ context.Context, n int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sizes = append(c.sizes, n)
	return nil
}

// keysIn returns n keys of partition p, each with a value of size bytes.
func keysIn(st *store.Store, p ring.Partition, n int) [][]byte {
	var out [][]byte
	for i := 0; len(out) < n; i++ {
		k := []byte(fmt.Sprint("big", i))
		if q, _ := st.Locate(k); q == p {
			out = append(out, k)
		}
	}
	return out
}

// Rate limiting: every scan reply a pull receives is charged to the
// throttle, byte for byte, once.
func TestThrottleChargesEveryReply(t *testing.T) {
	c := newFakeCluster(t, 1)
	n1 := c.add("n1", ring.Active, Config{})
	mustStep(t, n1)
	thr := &countingThrottle{}
	n2 := c.add("n2", ring.Joining, Config{Throttle: thr, BatchBytes: minScanBytes})
	p := c.view().Future.Owned("n2", 1)[0]
	value := make([]byte, 8<<10)
	for _, k := range keysIn(n1.st, p, 40) { // 320 KiB: several batches of 64 KiB
		if _, err := n1.st.Put(store.PutRequest{Key: k, Value: value}); err != nil {
			t.Fatal(err)
		}
	}
	mustStep(t, n2)
	scans := 0
	for _, call := range c.takeCalls() {
		if strings.HasSuffix(call, " scan") {
			scans++
		}
	}
	var sum int64
	for _, n := range thr.sizes {
		sum += int64(n)
	}
	s := n2.tr.Stats()
	if len(thr.sizes) != scans || sum != s.BytesReceived || s.KeysReceived != 40 {
		t.Fatalf("throttle charged %d times, %d bytes; %d scans, stats %+v", len(thr.sizes), sum, scans, s)
	}
	if scans < len(c.view().Future.Owned("n2", 1))+4 {
		t.Fatalf("%d scans: the big partition did not take several batches", scans)
	}
}

// A pull persists its cursor after each batch: after a failure and a
// restart, it resumes where it stopped instead of at the start.
func TestPullResumesFromCursor(t *testing.T) {
	c := newFakeCluster(t, 1)
	n1 := c.add("n1", ring.Active, Config{})
	mustStep(t, n1)
	n2 := c.add("n2", ring.Joining, Config{BatchBytes: minScanBytes})
	owned := c.view().Future.Owned("n2", 1)
	p := owned[0]
	big := keysIn(n1.st, p, 40)
	value := make([]byte, 8<<10)
	for _, k := range big {
		if _, err := n1.st.Put(store.PutRequest{Key: k, Value: value}); err != nil {
			t.Fatal(err)
		}
	}
	// The third scan of p fails.
	var scansOfP []scanRequest
	c.mu.Lock()
	c.mu.fail = func(_, _ ring.NodeID, kind Kind, payload []byte) error {
		var req scanRequest
		if kind != kindScan || wire.Unmarshal(payload, &req) != nil || ring.Partition(req.P) != p {
			return nil
		}
		scansOfP = append(scansOfP, req)
		if len(scansOfP) == 3 {
			return errors.New("fake: connection reset")
		}
		return nil
	}
	c.mu.Unlock()
	if err := n2.step(); err == nil {
		t.Fatal("step with a failing scan succeeded")
	}
	got := keys(n2.st, p)
	if got == 0 || got == int64(len(big)) {
		t.Fatalf("n2 holds %d of %d keys of p%d after the failure; want part", got, len(big), p)
	}

	// Restart n2: the bitmaps and the cursor come back from the store.
	n2.close()
	n2.open(Config{BatchBytes: minScanBytes})
	if s := n2.tr.Stats(); s.PartitionsHeld != len(owned) || s.PartitionsSyncing != 1 {
		t.Fatalf("after restart: stats %+v, want %d held, 1 (p%d) syncing", s, len(owned), p)
	}
	mustStep(t, n2)
	resumed := scansOfP[3]
	if !resumed.Started || resumed.After == nil || !slices.Equal(resumed.After, scansOfP[2].After) {
		t.Fatalf("resumed scan %+v; want the cursor of the failed one (%q)", resumed, scansOfP[2].After)
	}
	if got := keys(n2.st, p); got != int64(len(big)) {
		t.Fatalf("n2 holds %d of %d keys of p%d", got, len(big), p)
	}
	if _, err := n2.st.AuxGet(store.AuxTransfer, cursorKey(p, "n1")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cursor after the pull completed: %v", err)
	}
}

// The event log keeps the last MaxEvents; the events kind returns those
// after a sequence number, long-polling when there are none; Stats
// shows the last 20.
func TestEventLog(t *testing.T) {
	c := newFakeCluster(t, 1)
	n1 := c.add("n1", ring.Active, Config{})
	mustStep(t, n1)
	ctx := context.Background()
	ask := func(after uint64, waitMs int64) proto.EventsReply {
		t.Helper()
		body, _ := wire.Marshal(&proto.EventsRequest{After: after, WaitMs: waitMs})
		resp, err := n1.tr.Handle(ctx, kindEvents, body)
		if err != nil {
			t.Fatal(err)
		}
		var r proto.EventsReply
		if err := wire.Unmarshal(resp, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := ask(10, 0)
	if r.Next != testQ || len(r.Events) != testQ-10 || r.Events[0].Seq != 11 {
		t.Fatalf("after 10: next %d, %d events from %d", r.Next, len(r.Events), r.Events[0].Seq)
	}
	if r := ask(testQ, 0); r.Next != testQ || len(r.Events) != 0 {
		t.Fatalf("nothing new, no wait: %+v", r)
	}

	// A long poll returns at the next event: n2 joins the ring, n1 loses.
	got := make(chan proto.EventsReply, 1)
	go func() { got <- ask(testQ, 10000) }()
	n2 := c.add("n2", ring.Active, Config{})
	mustStep(t, n2)
	mustStep(t, n1)
	select {
	case r := <-got:
		if len(r.Events) == 0 || r.Events[0].Kind != "lost" || r.Events[0].Seq != testQ+1 {
			t.Fatalf("long poll got %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long poll did not return at the event")
	}

	// The log is bounded; Stats shows its tail.
	n1.tr.mu.Lock()
	for range MaxEvents + 100 {
		n1.tr.eventLocked("gained", 0, nil)
	}
	last := n1.tr.mu.seq
	n1.tr.mu.Unlock()
	evs := events(n1)
	if len(evs) != MaxEvents || evs[0].Seq != last-MaxEvents+1 || evs[len(evs)-1].Seq != last {
		t.Fatalf("%d events kept, %d..%d; want %d ending at %d", len(evs), evs[0].Seq, evs[len(evs)-1].Seq, MaxEvents, last)
	}
	if s := n1.tr.Stats(); len(s.Events) != 20 || s.Events[19].Seq != last {
		t.Fatalf("stats show %d events", len(s.Events))
	}
}

// Bad requests get a precise error, and a closed Transfer answers
// unavailable; none of them stops it.
func TestHandleRejects(t *testing.T) {
	c := newFakeCluster(t, 1)
	n1 := c.add("n1", ring.Active, Config{})
	scan := func(p uint32) []byte { b, _ := wire.Marshal(&scanRequest{P: p}); return b }
	for _, tc := range []struct {
		name    string
		kind    Kind
		payload []byte
		code    wire.Code
		msg     string
	}{
		{"malformed scan", kindScan, []byte{0xc1}, wire.CodeBadRequest, "malformed request"},
		{"partition out of range", kindScan, scan(testQ), wire.CodeBadRequest, "partition 16 out of range"},
		{"malformed synced", kindSynced, []byte{0xc1}, wire.CodeBadRequest, "malformed request"},
		{"malformed events", kindEvents, []byte{0xc1}, wire.CodeBadRequest, "malformed request"},
		{"unknown kind", Kind(proto.KindTransferBase) + 29, nil, wire.CodeUnknownKind, "transfer: kind 179"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := n1.tr.Handle(context.Background(), tc.kind, tc.payload)
			var we *wire.Error
			if !errors.As(err, &we) || we.Code != tc.code || !strings.Contains(we.Msg, tc.msg) {
				t.Fatalf("err %v, want code %v with %q", err, tc.code, tc.msg)
			}
		})
	}
	// Still serving.
	if _, err := n1.tr.Handle(context.Background(), kindScan, scan(0)); err != nil {
		t.Fatalf("a good scan after bad ones: %v", err)
	}
	n1.tr.Close()
	_, err := n1.tr.Handle(context.Background(), kindScan, scan(0))
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeUnavailable {
		t.Fatalf("after Close: %v", err)
	}
}

// A node restarted on an empty directory that keeps its place in the
// ring: with anti-entropy (which refills it) it pulls nothing; without,
// it pulls what it owns.
func TestAdopted(t *testing.T) {
	for _, ae := range []bool{true, false} {
		t.Run(fmt.Sprint("anti-entropy=", ae), func(t *testing.T) {
			c := newFakeCluster(t, 2)
			n1 := c.add("n1", ring.Active, Config{})
			n3 := c.add("n3", ring.Active, Config{})
			n2 := c.add("n2", ring.Active, Config{AntiEntropy: ae})
			mustStep(t, n1)
			mustStep(t, n3)
			put(t, n1.st, 100)
			if err := n2.tr.Adopted(ring.Active); err != nil {
				t.Fatal(err)
			}
			c.takeCalls()
			mustStep(t, n2)
			calls := c.takeCalls()
			if ae && len(calls) != 0 {
				t.Fatalf("adopted with anti-entropy, pulled anyway: %v", calls)
			}
			if !ae && len(calls) == 0 {
				t.Fatal("adopted without anti-entropy, pulled nothing")
			}
			if s, _ := n2.tr.PersistedStatus(); s != ring.Active {
				t.Fatalf("persisted %v", s)
			}
		})
	}
}

// The synced query says true only for partitions held completely.
func TestSyncedAnswers(t *testing.T) {
	c := newFakeCluster(t, 1)
	n1 := c.add("n1", ring.Active, Config{})
	n2 := c.add("n2", ring.Active, Config{})
	mustStep(t, n2)
	mine := c.view().Ring.Owned("n2", 1)
	theirs := c.view().Ring.Owned("n1", 1)
	for _, tc := range []struct {
		parts []ring.Partition
		want  bool
	}{
		{mine, true},
		{theirs[:1], false},
		{append(slices.Clone(mine), theirs[0]), false},
		{[]ring.Partition{testQ + 3}, false}, // out of range: not held
	} {
		got, err := n1.tr.askSynced(context.Background(), "n2", tc.parts)
		if err != nil || got != tc.want {
			t.Errorf("synced %v = %v, %v; want %v", tc.parts, got, err, tc.want)
		}
	}
}

func TestBitmap(t *testing.T) {
	for _, tc := range []struct {
		bits []bool
		want []byte
	}{
		{nil, []byte{}},
		{[]bool{true}, []byte{0x01}},
		{[]bool{false, true, false, false, false, false, false, false, true}, []byte{0x02, 0x01}},
		{[]bool{true, true, true, true, true, true, true, true}, []byte{0xff}},
	} {
		got := bitmap(tc.bits)
		if !slices.Equal(got, tc.want) {
			t.Errorf("bitmap(%v) = %x, want %x", tc.bits, got, tc.want)
		}
		if back := unbitmap(got, len(tc.bits)); !slices.Equal(back, tc.bits) && len(tc.bits) > 0 {
			t.Errorf("unbitmap(%x) = %v, want %v", got, back, tc.bits)
		}
	}
	// A short bitmap (fewer partitions persisted) reads as false beyond.
	if got := unbitmap([]byte{0x01}, 10); !got[0] || slices.Contains(got[1:], true) {
		t.Errorf("unbitmap short = %v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{N: -1, Interval: -1, AutoRemoveAfter: -1, ScanTimeout: -1, CheckTimeout: -1, LeaveGrace: -1, BatchBytes: -1}.Validate()
	for _, field := range []string{"Store", "Cluster", "N", "Interval", "AutoRemoveAfter", "ScanTimeout", "CheckTimeout", "LeaveGrace", "BatchBytes"} {
		if err == nil || !strings.Contains(err.Error(), "transfer: config: "+field+":") {
			t.Errorf("Validate does not report %s: %v", field, err)
		}
	}
	c := newFakeCluster(t, 1)
	n1 := c.add("n1", ring.Active, Config{})
	if err := (Config{Store: n1.st, Cluster: n1, N: 3}).Validate(); err != nil {
		t.Errorf("a good config: %v", err)
	}
}

// The loop steps on Signal (not only on its interval), and Close stops
// it; goleak (TestMain) checks nothing is left running.
func TestLoopStepsOnSignalAndStops(t *testing.T) {
	c := newFakeCluster(t, 1)
	n1 := c.add("n1", ring.Active, Config{Interval: time.Hour})
	n1.tr.Start()
	n1.tr.Start() // a second Start does nothing
	n1.tr.Signal()
	testutil.Eventually(t, 5*time.Second, "the loop's round after Signal", func() (bool, string) {
		n := len(events(n1))
		return n == testQ, fmt.Sprintf("%d events", n)
	})
	tr := n1.tr
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	tr.Start() // after Close: nothing
	tr.Signal()
}
