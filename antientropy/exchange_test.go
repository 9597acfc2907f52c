package antientropy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/mnemo-kv/mnemo/internal/testutil"
	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
	"github.com/mnemo-kv/mnemo/version"
)

// TestExchangeRepairsWritesUpdatesDeletes: B missed new keys, updates and
// deletes that A has. Reference: Dynamo §4.7, replicas synchronize by
// comparing Merkle trees and exchanging the keys that differ.
func TestExchangeRepairsWritesUpdatesDeletes(t *testing.T) {
	c := newCluster(t, clusterOpts{}, "a", "b")
	a, b := c.node("a"), c.node("b")
	c.waitBuilt("a", "b")
	for i := range 500 {
		o := put(t, a, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
		if _, err := b.st.MergeMany([]store.KeyObject{{Key: []byte(fmt.Sprintf("k%d", i)), Object: o}}); err != nil {
			t.Fatal(err)
		}
	}
	if ok, seen := rootsEqual(a, b); !ok {
		t.Fatalf("before the divergence: %s", seen)
	}
	for i := range 200 {
		put(t, a, fmt.Sprintf("new%d", i), "fresh")
	}
	for i := range 100 {
		put(t, a, fmt.Sprintf("k%d", i), "updated")
	}
	for i := 100; i < 150; i++ {
		del(t, a, fmt.Sprintf("k%d", i))
	}
	res, err := a.ae.ExchangeNow(ctxTimeout(t, 30*time.Second), "b", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	sameData(t, a, b)
	if res.KeysSent != 350 || res.KeysReceived != 0 {
		t.Errorf("sent %d received %d objects, want 350 and 0", res.KeysSent, res.KeysReceived)
	}
	if len(res.Repaired) == 0 || res.Converged != len(res.Repaired) || len(res.NotReady) != 0 {
		t.Errorf("repaired %v converged %d not ready %v", res.Repaired, res.Converged, res.NotReady)
	}
	o, err := b.st.Get([]byte("k120"))
	if !errors.Is(err, store.ErrNotFound) && (err != nil || !o.Deleted()) {
		t.Errorf("k120 on b: %v %v, want the tombstone", describe(o), err)
	}
	// The next exchange finds everything in sync.
	res, err = a.ae.ExchangeNow(ctxTimeout(t, 30*time.Second), "b", nil)
	if err != nil || res.InSync != c.q || len(res.Repaired) != 0 {
		t.Fatalf("second exchange: %+v %v", res, err)
	}
}

// TestExchangeWipedPeer: a node whose disk was wiped is refilled, whether
// the full node initiates (push) or the empty one does (pull; with a
// small reply cap, so replies are cut and come back in more passes).
func TestExchangeWipedPeer(t *testing.T) {
	for _, initiator := range []ring.NodeID{"a", "b"} {
		t.Run("initiator "+string(initiator), func(t *testing.T) {
			c := newCluster(t, clusterOpts{Q: 4}, "a", "b")
			a, b := c.node("a"), c.node("b")
			a.ae.replyCap, b.ae.replyCap = 16<<10, 16<<10
			c.waitBuilt("a", "b")
			for i := range 3000 {
				put(t, a, fmt.Sprintf("key-%d", i), strings.Repeat("x", 100))
			}
			for i := range 100 {
				del(t, a, fmt.Sprintf("key-%d", i))
			}
			peer := map[ring.NodeID]ring.NodeID{"a": "b", "b": "a"}[initiator]
			res, err := c.node(initiator).ae.ExchangeNow(ctxTimeout(t, 30*time.Second), peer, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", res)
			sameData(t, a, b)
		})
	}
}

// TestExchangeSiblingsBothWays: each side holds writes the other lacks,
// and some keys were written concurrently on both (siblings), one of them
// a delete concurrent with a write. Both end with the union. Reference:
// Dynamo §4.4, concurrent versions are kept and reconciled by the reader.
func TestExchangeSiblingsBothWays(t *testing.T) {
	c := newCluster(t, clusterOpts{}, "a", "b")
	a, b := c.node("a"), c.node("b")
	c.waitBuilt("a", "b")
	for i := range 300 {
		put(t, a, fmt.Sprintf("a-only-%d", i), "A")
		put(t, b, fmt.Sprintf("b-only-%d", i), "B")
	}
	for i := range 50 {
		k := fmt.Sprintf("both-%d", i)
		putSibling(t, a, k, "from a")
		putSibling(t, b, k, "from b")
	}
	put(t, a, "racy", "before")
	o, _ := a.st.Get([]byte("racy"))
	if _, err := b.st.MergeMany([]store.KeyObject{{Key: []byte("racy"), Object: o}}); err != nil {
		t.Fatal(err)
	}
	del(t, a, "racy")
	putSibling(t, b, "racy", "concurrent write")

	res, err := a.ae.ExchangeNow(ctxTimeout(t, 30*time.Second), "b", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	sameData(t, a, b)
	if res.KeysSent < 351 || res.KeysReceived < 351 {
		t.Errorf("sent %d, received %d objects; want at least 351 each way", res.KeysSent, res.KeysReceived)
	}
	for i := range 50 {
		o, err := b.st.Get([]byte(fmt.Sprintf("both-%d", i)))
		if err != nil || len(o.Live()) != 2 {
			t.Fatalf("both-%d on b: %s %v, want two siblings", i, describe(o), err)
		}
	}
	o, err = a.st.Get([]byte("racy"))
	if err != nil || len(o.Siblings) != 2 || len(o.Live()) != 1 || string(o.Live()[0].Value) != "concurrent write" {
		t.Fatalf("racy on a: %s %v, want the tombstone and the concurrent write", describe(o), err)
	}
}

// TestInSyncRoundCostsOnlyRoots: a full round between replicas in sync is
// one roots message each way: for Q=256, a few KiB.
func TestInSyncRoundCostsOnlyRoots(t *testing.T) {
	c := newCluster(t, clusterOpts{Q: 256}, "a", "b")
	a, b := c.node("a"), c.node("b")
	c.waitBuilt("a", "b")
	for i := range 2000 {
		k := fmt.Sprintf("k%d", i)
		o := put(t, a, k, "v")
		if _, err := b.st.MergeMany([]store.KeyObject{{Key: []byte(k), Object: o}}); err != nil {
			t.Fatal(err)
		}
	}
	before := c.bytes.Load()
	t0 := time.Now()
	res, err := a.ae.ExchangeNow(ctxTimeout(t, 30*time.Second), "b", nil)
	took := time.Since(t0)
	if err != nil {
		t.Fatal(err)
	}
	spent := c.bytes.Load() - before
	t.Logf("in-sync round of %d partitions: %d bytes in %v (%d calls)", c.q, spent, took, c.kindCalls(KindRoots))
	if res.InSync != 256 || len(res.Repaired) != 0 {
		t.Fatalf("result %+v", res)
	}
	if spent > 16<<10 {
		t.Fatalf("in-sync round cost %d bytes, want <= 16 KiB", spent)
	}
	if c.kindCalls(KindSegments) != 0 || c.kindCalls(KindRoots) != 1 {
		t.Fatalf("calls: %d roots, %d segments", c.kindCalls(KindRoots), c.kindCalls(KindSegments))
	}
	if got := res.BytesSent + res.BytesReceived; got != spent {
		t.Fatalf("result counts %d bytes, the network %d", got, spent)
	}
	// Both sides recorded the pairs as in sync.
	for _, n := range []*testNode{a, b} {
		st := n.ae.Stats()
		synced := 0
		for _, ps := range st.Pairs {
			if ps.InSync && !ps.LastInSync.IsZero() {
				synced++
			}
		}
		if synced != 256 {
			t.Errorf("%s: %d pairs in sync, want 256", n.id, synced)
		}
	}
}

// TestRejoinTriggersExchange: when B comes back, A and C repair it at
// once, each partition by one of them only, so every missing object
// travels once and the bytes per missing byte stay within the budget.
func TestRejoinTriggersExchange(t *testing.T) {
	rng := newRand(t)
	c := newCluster(t, clusterOpts{Q: 4}, "a", "b", "c")
	a, b, cn := c.node("a"), c.node("b"), c.node("c")
	c.waitBuilt("a", "b", "c")
	missing, missingBytes := fillRandom(t, rng, 12_000, 100, 10, []*testNode{a, cn}, []*testNode{b})
	before := c.bytes.Load()
	a.ae.NodeRejoined("b")
	cn.ae.NodeRejoined("b")
	testutil.Eventually(t, 30*time.Second, "b repaired", func() (bool, string) { return rootsEqual(a, b) })
	testutil.Eventually(t, 30*time.Second, "both repairers done", func() (bool, string) {
		sa, sc := a.ae.Stats(), cn.ae.Stats()
		return sa.Exchanges+sc.Exchanges >= 4, fmt.Sprintf("a %d c %d exchanges", sa.Exchanges, sc.Exchanges)
	})
	sameData(t, a, b)
	sa, sc := a.ae.Stats(), cn.ae.Stats()
	spent := c.bytes.Load() - before
	ratio := float64(spent) / float64(missingBytes)
	t.Logf("a sent %d objects, c %d; %d bytes on the network, %.3f per missing byte;%s", sa.KeysSent, sc.KeysSent, spent, ratio, c.traffic())
	if sa.KeysSent+sc.KeysSent != uint64(len(missing)) || sa.KeysSent == 0 || sc.KeysSent == 0 {
		t.Fatalf("a sent %d, c sent %d objects; want %d in all, shared", sa.KeysSent, sc.KeysSent, len(missing))
	}
	// The non-designated side postponed its own exchanges with b.
	if sa.Exchanges+sc.Exchanges != 4 {
		t.Fatalf("a %d + c %d exchanges, want 4", sa.Exchanges, sc.Exchanges)
	}
	if ratio > 1.5 {
		t.Fatalf("%.3f bytes per missing byte, want <= 1.5", ratio)
	}
	if got := sa.BytesSent + sc.BytesSent + b.ae.Stats().BytesSent; got != uint64(spent) {
		t.Fatalf("nodes count %d bytes sent, the network carried %d", got, spent)
	}
}

// TestExchangeFailure: a peer that cannot be reached fails the exchange
// and is counted.
func TestExchangeFailure(t *testing.T) {
	c := newCluster(t, clusterOpts{Q: 4}, "a")
	a := c.node("a")
	c.waitBuilt("a")
	if _, err := a.ae.ExchangeNow(ctxTimeout(t, 10*time.Second), "nobody", []ring.Partition{0, 1}); err == nil {
		t.Fatal("exchange with an unknown peer succeeded")
	}
	if st := a.ae.Stats(); st.Failures != 1 || st.Exchanges != 0 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := a.ae.ExchangeNow(ctxTimeout(t, 10*time.Second), "nobody", []ring.Partition{9}); err == nil {
		t.Fatal("partition out of range accepted")
	}
}

// TestRejoinWaitsForPeerTrees: a rejoin trigger that finds the peer's trees
// still building retries until they are built.
func TestRejoinWaitsForPeerTrees(t *testing.T) {
	var hold func()
	c := newCluster(t, clusterOpts{Q: 8, Config: Config{RetryDelay: 20 * time.Millisecond},
		BeforeAE: func(id ring.NodeID, st *store.Store) {
			if id == "b" {
				hold = st.LockPartition(0) // b's build stops at partition 0
			}
		}}, "a", "b")
	var once sync.Once
	unlock := func() { once.Do(hold) }
	t.Cleanup(unlock) // before the cluster stops, should the test fail early
	a, b := c.node("a"), c.node("b")
	c.waitBuilt("a")
	for i := range 500 {
		put(t, a, fmt.Sprintf("k%d", i), "v")
	}
	a.ae.NodeRejoined("b")
	testutil.Eventually(t, 10*time.Second, "a retrying", func() (bool, string) {
		n := c.kindCalls(KindRoots)
		return n >= 3, fmt.Sprintf("%d roots calls", n)
	})
	if b.trees.BuiltCount() != 0 || a.ae.Stats().Exchanges != 0 {
		t.Fatalf("b built %d, a exchanged %d", b.trees.BuiltCount(), a.ae.Stats().Exchanges)
	}
	unlock()
	testutil.Eventually(t, 10*time.Second, "b repaired", func() (bool, string) { return rootsEqual(a, b) })
	sameData(t, a, b)
}

// TestPeriodicExchange: without any trigger, replicas converge within a
// few Intervals, and the lower id initiates.
func TestPeriodicExchange(t *testing.T) {
	c := newCluster(t, clusterOpts{Q: 8, Config: Config{Interval: 30 * time.Millisecond}}, "a", "b")
	a, b := c.node("a"), c.node("b")
	c.waitBuilt("a", "b")
	for i := range 300 {
		put(t, a, fmt.Sprintf("k%d", i), "v")
		put(t, b, fmt.Sprintf("j%d", i), "w")
	}
	testutil.Eventually(t, 20*time.Second, "converged", func() (bool, string) { return rootsEqual(a, b) })
	sameData(t, a, b)
	testutil.Eventually(t, 20*time.Second, "rounds recorded", func() (bool, string) {
		sa, sb := a.ae.Stats(), b.ae.Stats()
		return sa.Exchanges >= 6*8 && len(sb.Pairs) == 8, fmt.Sprintf("a: %d exchanges; b: %d pairs", sa.Exchanges, len(sb.Pairs))
	})
	// Nobody called ExchangeNow: the periodic rounds did the repairs. Which
	// side repaired a given partition depends on scheduling (b steps in
	// when a's round is late by an Interval, as on a loaded CI machine), so
	// the test asserts the sum, and that the lower id led the rounds.
	sa, sb := a.ae.Stats(), b.ae.Stats()
	if sa.Repairs+sb.Repairs == 0 {
		t.Fatalf("no periodic round repaired anything: a %+v, b %+v", sa, sb)
	}
	if sa.Exchanges <= sb.Exchanges {
		t.Fatalf("a (the lower id, every Interval) initiated %d exchanges, b (every 2 Intervals) %d", sa.Exchanges, sb.Exchanges)
	}
}

// TestMetrics: the Prometheus series exist and move.
func TestMetrics(t *testing.T) {
	regs := map[ring.NodeID]*prometheus.Registry{"a": prometheus.NewRegistry(), "b": prometheus.NewRegistry()}
	c := newCluster(t, clusterOpts{Q: 4, NodeConfig: func(id ring.NodeID, cfg *Config) { cfg.Registerer = regs[id] }}, "a", "b")
	a, b := c.node("a"), c.node("b")
	c.waitBuilt("a", "b")
	for i := range 100 {
		put(t, a, fmt.Sprintf("k%d", i), "v")
	}
	if _, err := b.ae.ExchangeNow(ctxTimeout(t, 10*time.Second), "a", nil); err != nil {
		t.Fatal(err)
	}
	mfs, err := regs["b"].Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			if m.Counter != nil {
				got[name] = m.Counter.GetValue()
			} else if m.Gauge != nil {
				got[name] = m.Gauge.GetValue()
			}
		}
	}
	t.Logf("%v", got)
	if got["mnemo_ae_keys_repaired_total/received"] != 100 || got["mnemo_ae_bytes_total/sent"] == 0 ||
		got["mnemo_ae_exchanges_total/repaired"] == 0 || got["mnemo_ae_partitions_in_sync"] != 4 || got["mnemo_ae_trees_built"] != 4 {
		t.Fatalf("metrics: %v", got)
	}
	// Registering twice on one registry fails cleanly.
	if _, err := New(Config{Store: b.st, Trees: b.trees, Cluster: &nodeView{c: c, self: "b"}, Registerer: regs["b"]}); err == nil {
		t.Fatal("second registration succeeded")
	}
}

// TestHandleRejects: garbage gets CodeBadRequest, unknown kinds
// CodeUnknownKind, and a closed instance CodeUnavailable.
func TestHandleRejects(t *testing.T) {
	c := newCluster(t, clusterOpts{Q: 4}, "a")
	a := c.node("a")
	c.waitBuilt("a")
	ctx := context.Background()
	for _, k := range a.ae.Kinds() {
		for _, p := range [][]byte{nil, {0}, {9, 1, 2}, {1, 0xff, 0xff}, {0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}} {
			if _, err := a.ae.Handle(ctx, k, p); wireCode(err) != wire.CodeBadRequest {
				t.Errorf("kind %d payload %x: %v, want bad request", k, p, err)
			}
		}
	}
	// Out-of-range partitions and segments.
	bad := [][2]any{
		{KindSegments, (&segmentsRequest{Part: 9, Branches: make([]uint64, 32)}).encode()},
		{KindSegments, (&segmentsRequest{Part: 1, Branches: make([]uint64, 7)}).encode()},
		{KindKeys, (&keysRequest{Part: 9}).encode()},
		{KindKeys, (&keysRequest{Part: 1, Segs: []uint32{5000}, Counts: []int{0}}).encode()},
		{KindPush, (&pushRequest{Part: 9}).encode()},
		{KindPush, (&pushRequest{Part: 3, Objects: []store.KeyObject{{Key: []byte("k1"), Object: put(t, a, "k1", "v")}}}).encode()},
	}
	for i, b := range bad {
		if p, _ := a.st.Locate([]byte("k1")); p == 3 && i == 5 {
			continue
		}
		if _, err := a.ae.Handle(ctx, b[0].(Kind), b[1].([]byte)); wireCode(err) != wire.CodeBadRequest {
			t.Errorf("case %d: %v, want bad request", i, err)
		}
	}
	if _, err := a.ae.Handle(ctx, KindPush+10, nil); wireCode(err) != wire.CodeUnknownKind {
		t.Errorf("unknown kind: %v", err)
	}
	_ = a.ae.Close()
	_ = a.ae.Close()
	if _, err := a.ae.Handle(ctx, KindRoots, nil); wireCode(err) != wire.CodeUnavailable {
		t.Errorf("after close: %v", err)
	}
	if _, err := a.ae.ExchangeNow(ctx, "b", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("exchange after close: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Interval: -1, RetryDelay: -1, CallTimeout: -1, CPUShare: math.NaN()}.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"Store", "Trees", "Cluster", "Interval", "RetryDelay", "CallTimeout", "CPUShare"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if _, err := New(Config{}); err == nil {
		t.Fatal("New accepted an empty config")
	}
}

func TestLimiter(t *testing.T) {
	if err := newLimiter(-1).Wait(context.Background(), 1<<30); err != nil {
		t.Fatal(err)
	}
	if newLimiter(-1) != nil {
		t.Fatal("negative rate must mean no limit")
	}
	now := time.Unix(0, 0)
	l := newLimiter(1 << 20) // 1 MiB/s, 256 KiB burst
	l.SetClock(func() time.Time { return now })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Wait(ctx, 200<<10); err != nil {
		t.Fatalf("within the burst: %v", err)
	}
	if err := l.Wait(ctx, 200<<10); !errors.Is(err, context.Canceled) {
		t.Fatalf("over the burst: %v, want to wait", err)
	}
	now = now.Add(time.Second) // refilled (to the burst)
	if err := l.Wait(ctx, 100<<10); err != nil {
		t.Fatalf("after a refill: %v", err)
	}
}

// fillRandom gives every node in full the same n keys of valueLen random
// bytes, versioned by one actor as puts would, and the nodes in partial
// all but every missingEvery-th key. It returns the missing keys' count
// and bytes (key plus value). Keys are written in storage order, which
// keeps Pebble's memtable inserts cache-friendly.
func fillRandom(t testing.TB, rng *rand.Rand, n, valueLen, missingEvery int, full, partial []*testNode) (missingKeys [][]byte, missingBytes int) {
	t.Helper()
	type item struct {
		kv      store.KeyObject
		p       ring.Partition
		seg     uint32
		missing bool
	}
	actor := version.NewActor("node-1", "0123456789abcdef")
	ts := time.Now().UnixNano()
	items := make([]item, n)
	for i := range items {
		key := []byte(fmt.Sprintf("key-%08d", i))
		val := make([]byte, valueLen)
		for j := 0; j < len(val); j += 8 {
			u := rng.Uint64()
			for b := 0; b < 8 && j+b < len(val); b++ {
				val[j+b] = byte(u >> (8 * b))
			}
		}
		// Each key versioned by its own put: counters as in real use.
		dot := version.Dot{Actor: actor, Counter: uint64(i + 1)}
		o := &version.Object{
			Context:  version.VV{{Actor: actor, Counter: dot.Counter}},
			Siblings: []version.Sibling{{Dot: dot, Value: val, Timestamp: ts + int64(i)*1000}},
		}
		it := item{kv: store.KeyObject{Key: key, Object: o}}
		it.p, it.seg = full[0].st.Locate(key)
		if missingEvery > 0 && i%missingEvery == missingEvery/2 {
			it.missing = true
			missingKeys = append(missingKeys, key)
			missingBytes += len(key) + len(val)
		}
		items[i] = it
	}
	slices.SortFunc(items, func(x, y item) int {
		if x.p != y.p {
			return int(x.p) - int(y.p)
		}
		if x.seg != y.seg {
			return int(x.seg) - int(y.seg)
		}
		return bytes.Compare(x.kv.Key, y.kv.Key)
	})
	const batch = 1000
	for lo := 0; lo < n; lo += batch {
		all := make([]store.KeyObject, 0, batch)
		var some []store.KeyObject
		for _, it := range items[lo:min(n, lo+batch)] {
			all = append(all, it.kv)
			if !it.missing {
				some = append(some, it.kv)
			}
		}
		for _, nd := range full {
			if _, err := nd.st.MergeMany(all); err != nil {
				t.Fatal(err)
			}
		}
		for _, nd := range partial {
			if _, err := nd.st.MergeMany(some); err != nil {
				t.Fatal(err)
			}
		}
	}
	return missingKeys, missingBytes
}

// TestRepairCost measures the bytes an exchange spends per byte of missing
// data (key plus value of the keys missing), at the bench's density of
// about 3 to 4 keys per segment: 100k keys of 100 random (incompressible)
// bytes over 32 partitions of 1024 segments, 10% missing on B (under the
// race detector, 32k keys over 8 partitions).
func TestRepairCost(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100k keys to two stores; skipped in -short")
	}
	keys, q := 100_000, 32
	if raceEnabled {
		keys, q = 32_000, 8
	}
	rng := newRand(t)
	c := newCluster(t, clusterOpts{Q: q, Config: Config{Logger: zerolog.Nop()}}, "a", "b")
	a, b := c.node("a"), c.node("b")
	c.waitBuilt("a", "b")
	t0 := time.Now()
	missingKeys, missingBytes := fillRandom(t, rng, keys, 100, 10, []*testNode{a}, []*testNode{b})
	missing := len(missingKeys)
	t.Logf("filled in %v", time.Since(t0))
	before := c.bytes.Load()
	t0 = time.Now()
	res, err := a.ae.ExchangeNow(ctxTimeout(t, 60*time.Second), "b", nil)
	if err != nil {
		t.Fatal(err)
	}
	spent := c.bytes.Load() - before
	ratio := float64(spent) / float64(missingBytes)
	t.Logf("%d keys missing (%d bytes): exchange sent %d bytes both ways in %v: %.3f bytes per missing byte;%s",
		missing, missingBytes, spent, time.Since(t0), ratio, c.traffic())
	if res.KeysSent != missing {
		t.Errorf("sent %d objects, %d were missing", res.KeysSent, missing)
	}
	if ok, seen := rootsEqual(a, b); !ok {
		t.Fatal(seen)
	}
	if ratio > 1.5 {
		t.Fatalf("%.3f bytes per missing byte, want <= 1.5", ratio)
	}
}
