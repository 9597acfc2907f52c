package transfer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/goleak"

	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testQ is the partition count of the test clusters: small enough to
// reason about, large enough that every member owns some.
const testQ = 16

// fakeCluster is an in-memory cluster of Transfers: each node a real store
// on an in-memory filesystem, calls routed straight to the callee's Handle
// (no network), ring state, liveness and the clock set by the test. Nothing
// runs unless the test calls step, so every decision is deterministic.
type fakeCluster struct {
	t   testing.TB
	n   int // replicas
	now time.Time

	mu struct {
		sync.Mutex
		members   map[ring.NodeID]ring.Member
		alive     map[ring.NodeID]bool
		deadSince map[ring.NodeID]time.Time
		nodes     map[ring.NodeID]*fakeNode
		// calls logs "from>to kind" for every call made.
		calls []string
		// fail, when set, is asked before each call; an error fails it
		// unsent.
		fail func(from, to ring.NodeID, kind Kind, payload []byte) error
	}
}

// fakeNode is one node of a fakeCluster; it is the Transfer's Cluster.
type fakeNode struct {
	c  *fakeCluster
	id ring.NodeID
	st *store.Store
	tr *Transfer
	fs vfs.FS

	mu struct {
		sync.Mutex
		joined   bool
		statuses []ring.Status // SetSelfStatus calls
		removes  []ring.NodeID // Remove calls
		left     int           // Leave calls
	}
}

func newFakeCluster(t testing.TB, n int) *fakeCluster {
	c := &fakeCluster{t: t, n: n, now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	c.mu.members = map[ring.NodeID]ring.Member{}
	c.mu.alive = map[ring.NodeID]bool{}
	c.mu.deadSince = map[ring.NodeID]time.Time{}
	c.mu.nodes = map[ring.NodeID]*fakeNode{}
	return c
}

// add makes a node of the given ring status, alive and joined, with a
// Transfer configured by cfg (Store, Cluster, N and Now are filled in).
func (c *fakeCluster) add(id ring.NodeID, status ring.Status, cfg Config) *fakeNode {
	c.t.Helper()
	fn := &fakeNode{c: c, id: id, fs: vfs.NewMem()}
	fn.mu.joined = true
	fn.open(cfg)
	c.mu.Lock()
	c.mu.members[id] = ring.Member{ID: id, Status: status, RPCAddr: "rpc-" + string(id)}
	c.mu.alive[id] = true
	c.mu.nodes[id] = fn
	c.mu.Unlock()
	return fn
}

// open opens (or reopens, after closeNode) the node's store and Transfer.
func (fn *fakeNode) open(cfg Config) {
	t := fn.c.t
	t.Helper()
	st, err := store.Open(store.Options{Dir: "/data", FS: fn.fs, NodeID: string(fn.id), Partitions: testQ, Segments: 4})
	if err != nil {
		t.Fatalf("open store of %s: %v", fn.id, err)
	}
	cfg.Store, cfg.Cluster, cfg.N = st, fn, fn.c.n
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return fn.c.now }
	}
	tr, err := New(cfg)
	if err != nil {
		st.Close()
		t.Fatalf("new transfer of %s: %v", fn.id, err)
	}
	fn.st, fn.tr = st, tr
	t.Cleanup(fn.close)
}

// close closes the node's Transfer and store; idempotent.
func (fn *fakeNode) close() {
	if fn.tr != nil {
		fn.tr.Close()
		fn.st.Close()
		fn.tr, fn.st = nil, nil
	}
}

func (c *fakeCluster) setStatus(id ring.NodeID, s ring.Status) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.mu.members[id]
	m.Status = s
	c.mu.members[id] = m
}

func (c *fakeCluster) status(id ring.NodeID) ring.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.members[id].Status
}

// kill makes id dead as of since.
func (c *fakeCluster) kill(id ring.NodeID, since time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.alive[id] = false
	c.mu.deadSince[id] = since
}

func (c *fakeCluster) revive(id ring.NodeID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.alive[id] = true
	delete(c.mu.deadSince, id)
}

// takeCalls returns the calls logged since the last takeCalls.
func (c *fakeCluster) takeCalls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.mu.calls
	c.mu.calls = nil
	return out
}

// view builds the rings from the members, as the node's publishView does.
func (c *fakeCluster) view() View {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := ring.NewState(testQ)
	members := map[ring.NodeID]ring.Member{}
	for id, m := range c.mu.members {
		st.Update(m)
		members[id] = m
	}
	now, err := ring.New(testQ, ring.NodesOf(st.WithStatus(ring.Active, ring.Leaving)))
	if err != nil {
		c.t.Fatalf("ring: %v", err)
	}
	future, err := ring.New(testQ, ring.NodesOf(st.WithStatus(ring.Active, ring.Joining)))
	if err != nil {
		c.t.Fatalf("future ring: %v", err)
	}
	return View{Ring: now, Future: future, Members: members}
}

// Cluster, as seen by fn.

func (fn *fakeNode) Self() ring.NodeID { return fn.id }
func (fn *fakeNode) View() View        { return fn.c.view() }

func (fn *fakeNode) Alive(id ring.NodeID) bool {
	fn.c.mu.Lock()
	defer fn.c.mu.Unlock()
	return id == fn.id || fn.c.mu.alive[id]
}

func (fn *fakeNode) DeadSince(id ring.NodeID) (time.Time, bool) {
	fn.c.mu.Lock()
	defer fn.c.mu.Unlock()
	since, ok := fn.c.mu.deadSince[id]
	return since, ok && !fn.c.mu.alive[id]
}

func (fn *fakeNode) Joined() bool {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	return fn.mu.joined
}

func (fn *fakeNode) Call(ctx context.Context, to ring.NodeID, kind Kind, payload []byte) ([]byte, error) {
	c := fn.c
	c.mu.Lock()
	c.mu.calls = append(c.mu.calls, fmt.Sprintf("%s>%s %s", fn.id, to, kindName(kind)))
	fail, alive, callee := c.mu.fail, c.mu.alive[to], c.mu.nodes[to]
	c.mu.Unlock()
	if fail != nil {
		if err := fail(fn.id, to, kind, payload); err != nil {
			return nil, err
		}
	}
	if !alive || callee == nil || callee.tr == nil {
		return nil, fmt.Errorf("fake: %s is down", to)
	}
	return callee.tr.Handle(ctx, kind, payload)
}

func (fn *fakeNode) SetSelfStatus(s ring.Status) {
	fn.mu.Lock()
	fn.mu.statuses = append(fn.mu.statuses, s)
	fn.mu.Unlock()
	fn.c.setStatus(fn.id, s)
	if err := fn.tr.PersistStatus(s); err != nil {
		fn.c.t.Errorf("persist status: %v", err)
	}
}

func (fn *fakeNode) Remove(id ring.NodeID) error {
	fn.mu.Lock()
	fn.mu.removes = append(fn.mu.removes, id)
	fn.mu.Unlock()
	if fn.Alive(id) {
		return errors.New("fake: alive")
	}
	fn.c.setStatus(id, ring.Removed)
	return nil
}

func (fn *fakeNode) Leave() {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	fn.mu.left++
}

func (fn *fakeNode) statuses() []ring.Status {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	return slices.Clone(fn.mu.statuses)
}

func (fn *fakeNode) removes() []ring.NodeID {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	return slices.Clone(fn.mu.removes)
}

func (fn *fakeNode) leaves() int {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	return fn.mu.left
}

// step runs one round of fn's loop, as the loop would.
func (fn *fakeNode) step() error { return fn.tr.step(context.Background()) }

func kindName(k Kind) string {
	switch k {
	case kindScan:
		return "scan"
	case kindSynced:
		return "synced"
	}
	return fmt.Sprint(k)
}
