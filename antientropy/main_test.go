package antientropy

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mnemo-kv/mnemo/internal/testutil"
	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
	"github.com/mnemo-kv/mnemo/version"
)

var seedFlag = flag.Uint64("seed", 0, "seed for randomized tests (0: pick one and print it)")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newRand returns a seeded generator and logs the seed, so a failure
// replays with -seed.
func newRand(t testing.TB) *rand.Rand {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -seed=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// testCluster runs nodes in process: each a real Pebble store in a temp
// directory, its trees, its AntiEntropy and a real wire server on
// 127.0.0.1; calls go through one real wire.Pool. The ring is a real
// rendezvous ring of all nodes with N home replicas.
type testCluster struct {
	t    testing.TB
	q    int
	segs int
	n    int
	pool *wire.Pool

	mu    sync.Mutex
	nodes map[ring.NodeID]*testNode
	dead  map[ring.NodeID]bool
	ring  *ring.Ring

	// bytes counts every message both ways (payload plus the wire's
	// 16-byte header); calls counts requests by kind.
	bytes atomic.Int64
	// waitBytes counts, within bytes, the roots calls (both ways) every
	// partition of which the responder answered not built yet or busy:
	// an initiator polling, every RetryDelay, a peer whose trees are still
	// building or whose partitions another exchange is repairing, however
	// long that takes.
	waitBytes atomic.Int64
	calls     sync.Map // Kind -> *atomic.Int64
	kindBytes sync.Map // Kind -> *[3]atomic.Int64 (request bytes, reply bytes, nanoseconds)
}

type testNode struct {
	id    ring.NodeID
	dir   string // the store's data directory
	st    *store.Store
	trees *Trees
	ae    *AntiEntropy
	srv   *wire.Server
	addr  string
	done  chan error
}

// clusterOpts tune newCluster.
type clusterOpts struct {
	Q, Segments, N int
	// Config is applied to every node's Config (Store, Trees, Cluster are
	// set by the harness). Zero Interval means one hour (no periodic
	// rounds in the test).
	Config Config
	// NodeConfig, when set, edits one node's Config.
	NodeConfig func(id ring.NodeID, cfg *Config)
	// BeforeAE runs after a node's store opened and before its
	// AntiEntropy starts (to hold off its tree build).
	BeforeAE func(id ring.NodeID, st *store.Store)
}

func newCluster(t testing.TB, o clusterOpts, ids ...ring.NodeID) *testCluster {
	t.Helper()
	if o.Q == 0 {
		o.Q = 16
	}
	if o.Segments == 0 {
		o.Segments = 1024
	}
	if o.N == 0 {
		o.N = len(ids)
	}
	c := &testCluster{
		t: t, q: o.Q, segs: o.Segments, n: o.N,
		pool:  wire.NewPool(wire.ClientConfig{}),
		nodes: map[ring.NodeID]*testNode{},
		dead:  map[ring.NodeID]bool{},
	}
	var rn []ring.Node
	for _, id := range ids {
		rn = append(rn, ring.Node{ID: id})
	}
	r, err := ring.New(o.Q, rn)
	if err != nil {
		t.Fatal(err)
	}
	c.ring = r
	t.Cleanup(func() {
		for _, n := range c.nodes {
			c.stop(n)
		}
		_ = c.pool.Close()
	})
	for _, id := range ids {
		c.start(id, o)
	}
	return c
}

func (c *testCluster) start(id ring.NodeID, o clusterOpts) *testNode {
	c.t.Helper()
	return c.startIn(id, o, c.t.TempDir())
}

// restart stops a node and starts it again on the same data directory, as
// a process restart would: its trees are rebuilt from its store.
func (c *testCluster) restart(id ring.NodeID, o clusterOpts) *testNode {
	c.t.Helper()
	n := c.node(id)
	c.mu.Lock()
	delete(c.nodes, id)
	c.mu.Unlock()
	c.stop(n)
	return c.startIn(id, o, n.dir)
}

func (c *testCluster) startIn(id ring.NodeID, o clusterOpts, dir string) *testNode {
	t := c.t
	t.Helper()
	n := &testNode{id: id, dir: dir, trees: NewTrees(c.q, c.segs), done: make(chan error, 1)}
	st, err := store.Open(store.Options{
		Dir: dir, NodeID: string(id), Partitions: c.q, Segments: c.segs,
		Sync: store.SyncNone, CacheSize: 64 << 20, MemTableSize: 32 << 20, Observer: n.trees,
		Digest: LeafHash, DigestName: LeafHashName,
	})
	if err != nil {
		t.Fatal(err)
	}
	n.st = st
	if o.BeforeAE != nil {
		o.BeforeAE(id, st)
	}
	cfg := o.Config
	cfg.Store, cfg.Trees, cfg.Cluster = st, n.trees, &nodeView{c: c, self: id}
	if cfg.Interval == 0 {
		cfg.Interval = time.Hour
	}
	if o.NodeConfig != nil {
		o.NodeConfig(id, &cfg)
	}
	n.ae, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.addr = l.Addr().String()
	n.srv = wire.NewServer(wire.ServerConfig{}, func(ctx context.Context, kind wire.Kind, p []byte) (wire.Kind, []byte, error) {
		b, err := n.ae.Handle(ctx, Kind(kind), p)
		return kind, b, err
	})
	go func() { n.done <- n.srv.Serve(l) }()
	c.mu.Lock()
	c.nodes[id] = n
	c.mu.Unlock()
	return n
}

func (c *testCluster) stop(n *testNode) {
	_ = n.ae.Close()
	_ = n.srv.Close()
	if err := <-n.done; err != nil {
		c.t.Errorf("serve %s: %v", n.id, err)
	}
	_ = n.st.Close()
}

func (c *testCluster) node(id ring.NodeID) *testNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

func (c *testCluster) kindCalls(k Kind) int64 {
	v, ok := c.calls.Load(k)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

// traffic describes the calls and bytes so far, by kind.
func (c *testCluster) traffic() string {
	s := ""
	for _, k := range []Kind{KindRoots, KindSegments, KindKeys, KindPush} {
		kb, ok := c.kindBytes.Load(k)
		if !ok {
			continue
		}
		b := kb.(*[3]atomic.Int64)
		s += fmt.Sprintf(" kind %d: %d calls, %d bytes out, %d back, %v;", k, c.kindCalls(k), b[0].Load(), b[1].Load(), time.Duration(b[2].Load()).Round(time.Millisecond))
	}
	return s
}

// nodeView is one node's Cluster.
type nodeView struct {
	c    *testCluster
	self ring.NodeID
}

func (v *nodeView) Self() ring.NodeID { return v.self }

func (v *nodeView) Alive(id ring.NodeID) bool {
	v.c.mu.Lock()
	defer v.c.mu.Unlock()
	_, ok := v.c.nodes[id]
	return !v.c.dead[id] && (ok || id == v.self)
}

func (v *nodeView) Replicas(p ring.Partition) []ring.NodeID { return v.c.ring.Home(p, v.c.n) }

func (v *nodeView) Call(ctx context.Context, to ring.NodeID, kind Kind, payload []byte) ([]byte, error) {
	n := v.c.node(to)
	if n == nil {
		return nil, fmt.Errorf("test: no node %s", to)
	}
	ctr, _ := v.c.calls.LoadOrStore(kind, new(atomic.Int64))
	ctr.(*atomic.Int64).Add(1)
	kb, _ := v.c.kindBytes.LoadOrStore(kind, new([3]atomic.Int64))
	v.c.bytes.Add(int64(len(payload) + frameHeader))
	kb.(*[3]atomic.Int64)[0].Add(int64(len(payload) + frameHeader))
	t0 := time.Now()
	_, resp, err := v.c.pool.Call(ctx, n.addr, wire.Kind(kind), payload)
	kb.(*[3]atomic.Int64)[2].Add(int64(time.Since(t0)))
	if err == nil {
		v.c.bytes.Add(int64(len(resp) + frameHeader))
		kb.(*[3]atomic.Int64)[1].Add(int64(len(resp) + frameHeader))
		if kind == KindRoots {
			if r, derr := decodeRootsReply(resp); derr == nil && len(r.Status) > 0 &&
				!slices.ContainsFunc(r.Status, func(s byte) bool { return s != statusNotReady && s != statusBusy }) {
				v.c.waitBytes.Add(int64(len(payload) + len(resp) + 2*frameHeader))
			}
		}
	}
	return resp, err
}

// waitBuilt waits until every node's trees are built.
func (c *testCluster) waitBuilt(ids ...ring.NodeID) {
	c.t.Helper()
	for _, id := range ids {
		n := c.node(id)
		testutil.Eventually(c.t, 30*time.Second, "trees built on "+string(id), func() (bool, string) {
			b := n.trees.BuiltCount()
			return b == c.q, fmt.Sprintf("%d of %d built", b, c.q)
		})
	}
}

// put writes key=value at a node (versioned there, superseding what it
// holds, as a Redis SET).
func put(t testing.TB, n *testNode, key, value string) *version.Object {
	t.Helper()
	o, err := n.st.Put(store.PutRequest{Key: []byte(key), Value: []byte(value), SupersedeLocal: true})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// putSibling writes key=value without a context: a new sibling.
func putSibling(t testing.TB, n *testNode, key, value string) {
	t.Helper()
	if _, err := n.st.Put(store.PutRequest{Key: []byte(key), Value: []byte(value)}); err != nil {
		t.Fatal(err)
	}
}

func del(t testing.TB, n *testNode, key string) {
	t.Helper()
	if _, err := n.st.Put(store.PutRequest{Key: []byte(key), Tombstone: true, SupersedeLocal: true}); err != nil {
		t.Fatal(err)
	}
}

// dump returns every object a node stores.
func dump(t testing.TB, n *testNode) map[string]*version.Object {
	t.Helper()
	out := map[string]*version.Object{}
	for p := range n.st.Partitions() {
		err := n.st.ScanPartition(ring.Partition(p), 0, uint32(n.st.Segments()), func(e store.Entry) bool {
			out[string(e.Key)] = e.Object
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// sameData fails unless two nodes hold the same objects (dots, tombstones
// and values) and equal roots for every partition.
func sameData(t testing.TB, a, b *testNode) {
	t.Helper()
	da, db := dump(t, a), dump(t, b)
	if len(da) != len(db) {
		t.Errorf("%s holds %d keys, %s %d", a.id, len(da), b.id, len(db))
	}
	bad := 0
	for k, oa := range da {
		ob, ok := db[k]
		if !ok || !version.Equal(oa, ob) || !sameValues(oa, ob) {
			if bad++; bad <= 5 {
				t.Errorf("key %q: %s has %v, %s has %v", k, a.id, describe(oa), b.id, describe(ob))
			}
		}
	}
	for p := range a.st.Partitions() {
		ra, oka := a.trees.Root(ring.Partition(p))
		rb, okb := b.trees.Root(ring.Partition(p))
		if !oka || !okb || ra != rb {
			t.Errorf("partition %d: root %x (built %v) on %s, %x (built %v) on %s", p, ra, oka, a.id, rb, okb, b.id)
		}
	}
}

func sameValues(a, b *version.Object) bool {
	return slices.EqualFunc(a.Siblings, b.Siblings, version.ValueEqual)
}

func describe(o *version.Object) string {
	if o == nil {
		return "nothing"
	}
	s := fmt.Sprintf("ctx=%v [", o.Context)
	for _, sb := range o.Siblings {
		if sb.Tombstone {
			s += fmt.Sprintf(" %s:%d=<del>", sb.Dot.Actor, sb.Dot.Counter)
		} else {
			s += fmt.Sprintf(" %s:%d=%q", sb.Dot.Actor, sb.Dot.Counter, sb.Value)
		}
	}
	return s + " ]"
}

// rootsEqual reports whether two nodes have equal built roots everywhere.
func rootsEqual(a, b *testNode) (bool, string) {
	diff := 0
	for p := range a.trees.Partitions() {
		ra, oka := a.trees.Root(ring.Partition(p))
		rb, okb := b.trees.Root(ring.Partition(p))
		if !oka || !okb || ra != rb {
			diff++
		}
	}
	return diff == 0, fmt.Sprintf("%d partitions differ between %s and %s", diff, a.id, b.id)
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func wireCode(err error) wire.Code {
	var we *wire.Error
	if errors.As(err, &we) {
		return we.Code
	}
	return 0
}
