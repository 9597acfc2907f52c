package hintedhandoff

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
	"github.com/mnemo-kv/mnemo/version"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testCluster is a set of in-process nodes, each a real Pebble store, a
// Handoff and a wire server on 127.0.0.1, reached through one real
// wire.Pool. The test decides who is alive and who is home.
type testCluster struct {
	t    testing.TB
	pool *wire.Pool

	// calls counts Calls made, all nodes.
	calls atomic.Int64
	// inflight and maxInflight track concurrent calls per target.
	inflight, maxInflight sync.Map // ring.NodeID -> *atomic.Int64

	mu struct {
		sync.Mutex
		nodes map[ring.NodeID]*testNode
		alive map[ring.NodeID]bool
		// home lists "node/key" pairs where the node is a home replica;
		// by default no node is home for any key (every holder of a hint
		// is a pure fallback).
		home map[string]bool
		// hook runs before each call (n counts calls from 1); an error
		// fails the call without sending it.
		hook func(n int64, from, to ring.NodeID) error
	}
}

// testNode is one node of a testCluster.
type testNode struct {
	id   ring.NodeID
	dir  string
	st   *store.Store
	h    *Handoff
	reg  *prometheus.Registry
	srv  *wire.Server
	addr string
	cfg  Config // as given to New, for restarts
	// opts adjusts the store's options (limits, sync mode); may be nil.
	opts func(*store.Options)

	// mu guards srv, addr and serve, which change when the server stops
	// or restarts while calls are made.
	mu    sync.Mutex
	serve chan error // Serve's result
}

func newTestCluster(t testing.TB) *testCluster {
	c := &testCluster{t: t, pool: wire.NewPool(wire.ClientConfig{})}
	c.mu.nodes = map[ring.NodeID]*testNode{}
	c.mu.alive = map[ring.NodeID]bool{}
	c.mu.home = map[string]bool{}
	t.Cleanup(func() {
		c.mu.Lock()
		nodes := c.mu.nodes
		c.mu.Unlock()
		for _, n := range nodes {
			n.stop(t)
		}
		_ = c.pool.Close()
	})
	return c
}

// view is a node's Cluster.
type view struct {
	c    *testCluster
	self ring.NodeID
}

func (v view) Self() ring.NodeID { return v.self }

func (v view) Alive(id ring.NodeID) bool {
	v.c.mu.Lock()
	defer v.c.mu.Unlock()
	return v.c.mu.alive[id]
}

func (v view) IsHome(key []byte, id ring.NodeID) bool {
	v.c.mu.Lock()
	defer v.c.mu.Unlock()
	return v.c.mu.home[string(id)+"/"+string(key)]
}

func (v view) Call(ctx context.Context, to ring.NodeID, kind Kind, payload []byte) ([]byte, error) {
	n := v.c.calls.Add(1)
	v.c.mu.Lock()
	hook := v.c.mu.hook
	node := v.c.mu.nodes[to]
	v.c.mu.Unlock()
	if hook != nil {
		if err := hook(n, v.self, to); err != nil {
			return nil, err
		}
	}
	if node == nil {
		return nil, fmt.Errorf("test: no node %s", to)
	}
	node.mu.Lock()
	addr := node.addr
	node.mu.Unlock()
	cur := counter(&v.c.inflight, to)
	now, hi := cur.Add(1), counter(&v.c.maxInflight, to)
	for m := hi.Load(); now > m && !hi.CompareAndSwap(m, now); m = hi.Load() {
	}
	defer cur.Add(-1)
	_, resp, err := v.c.pool.Call(ctx, addr, wire.Kind(kind), payload)
	return resp, err
}

func counter(m *sync.Map, id ring.NodeID) *atomic.Int64 {
	c, _ := m.LoadOrStore(id, new(atomic.Int64))
	return c.(*atomic.Int64)
}

func (c *testCluster) setAlive(id ring.NodeID, alive bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.alive[id] = alive
}

func (c *testCluster) setHome(id ring.NodeID, key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.home[string(id)+"/"+key] = true
}

func (c *testCluster) setHook(f func(n int64, from, to ring.NodeID) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.hook = f
}

// testConfig is the base config of test nodes: replays only on demand
// (long intervals) unless a test shortens them.
func testConfig(t testing.TB) Config {
	return Config{
		CheckInterval: time.Hour,
		SweepInterval: time.Hour,
		CallTimeout:   5 * time.Second,
		Rate:          1 << 30,
		Logger:        zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel),
	}
}

// add starts node id, alive, with cfg (Store, Cluster and Registerer are
// filled in).
func (c *testCluster) add(id ring.NodeID, cfg Config) *testNode {
	c.t.Helper()
	return c.addWith(id, cfg, nil)
}

// addWith is add with adjusted store options.
func (c *testCluster) addWith(id ring.NodeID, cfg Config, opts func(*store.Options)) *testNode {
	c.t.Helper()
	n := &testNode{id: id, dir: c.t.TempDir(), cfg: cfg, opts: opts}
	c.mu.Lock()
	c.mu.nodes[id] = n
	c.mu.alive[id] = true
	c.mu.Unlock()
	c.start(n)
	return n
}

// start opens n's store and Handoff and serves them.
func (c *testCluster) start(n *testNode) {
	c.t.Helper()
	so := store.Options{Dir: n.dir, NodeID: string(n.id), Partitions: 16, Segments: 16, Sync: store.SyncNone}
	if n.opts != nil {
		n.opts(&so)
	}
	st, err := store.Open(so)
	if err != nil {
		c.t.Fatalf("open store %s: %v", n.id, err)
	}
	cfg := n.cfg
	cfg.Store = st
	cfg.Cluster = view{c, n.id}
	if n.reg == nil {
		n.reg = prometheus.NewRegistry() // kept across restarts: Close unregisters
	}
	cfg.Registerer = n.reg
	h, err := New(cfg)
	if err != nil {
		c.t.Fatalf("new handoff %s: %v", n.id, err)
	}
	n.st, n.h = st, h
	c.serve(n)
}

// serve starts n's wire server on a fresh port.
func (c *testCluster) serve(n *testNode) {
	c.t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	h := n.h
	srv := wire.NewServer(wire.ServerConfig{}, func(ctx context.Context, kind wire.Kind, p []byte) (wire.Kind, []byte, error) {
		resp, err := h.Handle(ctx, Kind(kind), p)
		return kind, resp, err
	})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	n.mu.Lock()
	n.srv, n.addr, n.serve = srv, l.Addr().String(), errc
	n.mu.Unlock()
}

// stopServer closes n's wire server: calls to it fail.
func (n *testNode) stopServer(t testing.TB) {
	n.mu.Lock()
	srv, errc := n.srv, n.serve
	n.srv = nil
	n.mu.Unlock()
	if srv == nil {
		return
	}
	_ = srv.Close()
	if err := <-errc; err != nil {
		t.Errorf("Serve returned %v after Close", err)
	}
}

// stop closes n's server, Handoff and store, in the node's order.
func (n *testNode) stop(t testing.TB) {
	n.stopServer(t)
	if n.h != nil {
		_ = n.h.Close()
		_ = n.h.Close() // idempotent
		n.h = nil
	}
	if n.st != nil {
		if err := n.st.Close(); err != nil {
			t.Errorf("close store %s: %v", n.id, err)
		}
		n.st = nil
	}
}

// restart stops n and starts it again on the same data directory.
func (c *testCluster) restart(n *testNode) {
	c.t.Helper()
	n.stop(c.t)
	c.start(n)
}

// obj builds objects for tests: a write by actor on top of prev (nil for a
// first write), superseding what prev holds.
func obj(prev *version.Object, actor, value string) *version.Object {
	var ctx version.VV
	if prev != nil {
		ctx = prev.Context
	}
	o, _ := version.Update(prev, ctx, version.Actor(actor), []byte(value), false, time.Now().UnixNano())
	return o
}

// tomb is a delete by actor on top of prev.
func tomb(prev *version.Object, actor string) *version.Object {
	o, _ := version.Update(prev, prev.Context, version.Actor(actor), nil, true, time.Now().UnixNano())
	return o
}

// values lists an object's siblings, tombstones as "<del>".
func values(o *version.Object) string {
	if o == nil {
		return "<absent>"
	}
	var out []string
	for _, s := range o.Siblings {
		if s.Tombstone {
			out = append(out, "<del>")
		} else {
			out = append(out, string(s.Value))
		}
	}
	return "[" + strings.Join(out, " ") + "]"
}

// get returns n's stored object for key, nil when absent.
func get(t testing.TB, n *testNode, key string) *version.Object {
	t.Helper()
	o, err := n.st.Get([]byte(key))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("get %s from %s: %v", key, n.id, err)
	}
	return o
}

// mustAdd adds a hint or fails the test.
func mustAdd(t testing.TB, n *testNode, target ring.NodeID, key string, o *version.Object) {
	t.Helper()
	if err := n.h.Add(target, []byte(key), o); err != nil {
		t.Fatalf("Add(%s, %s): %v", target, key, err)
	}
}

// hold makes n a fallback holding o for key: stored, then hinted for target
// (the node's order: the data first, then the hint).
func hold(t testing.TB, n *testNode, target ring.NodeID, key string, o *version.Object) {
	t.Helper()
	if _, _, err := n.st.Merge([]byte(key), o); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, n, target, key, o)
}
