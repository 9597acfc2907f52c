package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/config"
	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/testutil"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
	"github.com/mnemo-kv/mnemo/version"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The HTTP server's idle keep-alive connections of the test client
		// close on their own schedule.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// testCluster is n nodes in this process, on real memberlist, real Pebble
// and real TCP on loopback.
type testCluster struct {
	t     *testing.T
	nodes []*Node
	cfgs  []Config
}

func testConfig(t *testing.T, id string, join []string, mod func(*Config)) Config {
	cfg := config.Default()
	cfg.ID = id
	cfg.Data = t.TempDir()
	cfg.Gossip = "127.0.0.1:0"
	cfg.RPC = "127.0.0.1:0"
	cfg.HTTP = "127.0.0.1:0"
	cfg.Join = join
	cfg.Partitions = 64
	cfg.Segments = 64
	cfg.Sync = 2 // none: these tests are about the protocol
	cfg.ReadRepairWait = 200 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	return cfg
}

// testLogger keeps a node's log lines and prints the last ones if the test
// fails, so a failure shows what the nodes saw.
func testLogger(t *testing.T, id string) zerolog.Logger {
	var mu sync.Mutex
	var lines []string
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			defer mu.Unlock()
			t.Logf("--- last log lines of %s:\n%s", id, strings.Join(lines[max(0, len(lines)-40):], ""))
		}
	})
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		lines = append(lines, string(p))
		mu.Unlock()
		return len(p), nil
	})
	return zerolog.New(w).Level(zerolog.InfoLevel).With().Timestamp().Logger()
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func startCluster(t *testing.T, n int, mod func(*Config)) *testCluster {
	tc := &testCluster{t: t}
	var join []string
	for i := range n {
		cfg := testConfig(t, fmt.Sprintf("n%d", i+1), join, mod)
		nd, err := New(cfg, testLogger(t, cfg.ID))
		if err != nil {
			t.Fatalf("start n%d: %v", i+1, err)
		}
		t.Cleanup(func() { nd.Close() })
		if i == 0 {
			join = []string{nd.GossipAddr()}
		}
		tc.nodes = append(tc.nodes, nd)
		tc.cfgs = append(tc.cfgs, cfg)
	}
	tc.waitRing(n)
	return tc
}

// waitRing waits until every running node has n active members, all alive.
func (tc *testCluster) waitRing(n int) {
	tc.t.Helper()
	testutil.Eventually(tc.t, 15*time.Second, "every node seeing the whole ring alive", func() (bool, string) {
		for _, nd := range tc.nodes {
			if nd == nil {
				continue
			}
			v := nd.view.Load()
			alive := 0
			for id := range v.members {
				if nd.alive(id) {
					alive++
				}
			}
			if len(v.ring.Nodes()) != n || alive != n {
				return false, fmt.Sprintf("%s: %d ring nodes, %d alive", nd.ID(), len(v.ring.Nodes()), alive)
			}
		}
		return true, ""
	})
}

func (tc *testCluster) client(i int) *client.Client {
	c, err := client.New(tc.nodes[i].RPCAddr())
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.t.Cleanup(func() { c.Close() })
	return c
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Reference: Dynamo §4.5 (quorum reads and writes through any node).
func TestPutGetThroughEveryNode(t *testing.T) {
	tc := startCluster(t, 3, nil)
	ctx := ctxFor(t)
	for i := range 30 {
		key := []byte(fmt.Sprint("k", i))
		if _, err := tc.client(i%3).Put(ctx, key, []byte(fmt.Sprint("v", i))); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	for c := range 3 {
		cl := tc.client(c)
		for i := range 30 {
			res, err := cl.Get(ctx, []byte(fmt.Sprint("k", i)), client.R(3))
			if err != nil || string(res.Value()) != fmt.Sprint("v", i) || res.Replies != 3 {
				t.Fatalf("get k%d via n%d: %v %q replies %d", i, c+1, err, res.Values, res.Replies)
			}
		}
	}
	if _, err := tc.client(0).Get(ctx, []byte("absent")); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("absent key: %v", err)
	}
}

// Reference: Dynamo §4.4 (reconciliation by the client with the context).
func TestSiblingsAndContext(t *testing.T) {
	tc := startCluster(t, 3, nil)
	ctx := ctxFor(t)
	key := []byte("cart")
	for i := range 3 {
		if _, err := tc.client(i).Put(ctx, key, []byte(fmt.Sprint("item", i))); err != nil {
			t.Fatal(err)
		}
	}
	res, err := tc.client(0).Get(ctx, key, client.R(3))
	if err != nil || len(res.Values) != 3 {
		t.Fatalf("three blind puts: %v %q", err, res.Values)
	}
	if _, err := tc.client(1).Put(ctx, key, []byte("merged"), client.WithContext(res.Context)); err != nil {
		t.Fatal(err)
	}
	res, err = tc.client(2).Get(ctx, key, client.R(3))
	if err != nil || len(res.Values) != 1 || string(res.Value()) != "merged" {
		t.Fatalf("after a put with context: %v %q", err, res.Values)
	}
	// A delete with that context leaves nothing; the key reads as not found
	// on every replica, while the tombstone is still there to replicate.
	if err := tc.client(0).Delete(ctx, key, client.WithContext(res.Context)); err != nil {
		t.Fatal(err)
	}
	// W=2 acks before the third replica has it: wait for all three.
	for i := range 3 {
		testutil.Eventually(t, 5*time.Second, fmt.Sprintf("n%d holding the tombstone", i+1), func() (bool, string) {
			got, err := tc.client(i).Get(ctx, key, client.Local(), client.IncludeTombstones())
			ok := errors.Is(err, client.ErrNotFound) && len(got.Siblings) == 1 && got.Siblings[0].Tombstone
			return ok, fmt.Sprintf("%v %+v", err, got)
		})
	}
}

func TestForwardingVersionsAtAHomeReplica(t *testing.T) {
	// With N=1 each key has one home replica; a put through any other node
	// is forwarded there and versioned by its actor.
	tc := startCluster(t, 3, func(c *Config) { c.N, c.R, c.W = 1, 1, 1 })
	ctx := ctxFor(t)
	for i := range 20 {
		key := []byte(fmt.Sprint("fw", i))
		if _, err := tc.client(i%3).Put(ctx, key, []byte("v")); err != nil {
			t.Fatal(err)
		}
		v := tc.nodes[0].view.Load()
		home := v.ring.Home(v.ring.PartitionForKey(key), 1)[0]
		res, err := tc.client(0).Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if actor := res.Siblings[0].Actor; !strings.HasPrefix(actor, string(home)+"#") {
			t.Fatalf("key %s versioned by %s, home replica is %s", key, actor, home)
		}
	}
}

func TestQuorumFailureSaysHowMany(t *testing.T) {
	tc := startCluster(t, 3, nil)
	ctx := ctxFor(t)
	tc.nodes[2].Close()
	tc.nodes[2] = nil
	testutil.Eventually(t, 15*time.Second, "n3 seen dead", func() (bool, string) {
		return !tc.nodes[0].alive("n3"), "n3 still alive"
	})
	_, err := tc.client(0).Put(ctx, []byte("k"), []byte("v"), client.W(3))
	var qe *client.QuorumError
	if !errors.As(err, &qe) || qe.Acked != 2 || qe.Asked != 2 || qe.Needed != 3 {
		t.Fatalf("W=3 with one of three down: %v", err)
	}
	if _, err := tc.client(0).Put(ctx, []byte("k"), []byte("v"), client.W(2)); err != nil {
		t.Fatalf("W=2 with one of three down: %v", err)
	}
	if _, err := tc.client(1).Get(ctx, []byte("k"), client.R(3)); !errors.As(err, &qe) || qe.Op != "get" {
		t.Fatalf("R=3 with one of three down: %v", err)
	}
	// An impossible quorum is a bad request, not a quorum failure.
	if _, err := tc.client(0).Put(ctx, []byte("k"), []byte("v"), client.W(4)); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("W=4 at N=3: %v", err)
	}
	// A deadline shorter than the work returns a timeout.
	short, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	if _, err := tc.client(0).Get(short, []byte("k")); !errors.Is(err, client.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expired deadline: %v, want ErrTimeout wrapping the context's DeadlineExceeded", err)
	}
}

// Reference: Dynamo §4.5 (read repair of stale replicas).
func TestReadRepair(t *testing.T) {
	tc := startCluster(t, 3, nil)
	ctx := ctxFor(t)
	key := []byte("rr")
	if _, err := tc.client(0).Put(ctx, key, []byte("old"), client.W(3)); err != nil {
		t.Fatal(err)
	}
	// Make n3 stale behind the cluster's back: newer data only on n1, n2.
	res, _ := tc.client(0).Get(ctx, key)
	v := tc.nodes[0].view.Load()
	stale := tc.nodes[2]
	other := []int{0, 1}
	if !v.ring.IsHome(v.ring.PartitionForKey(key), 3, "n3") {
		t.Fatal("n3 is not a home replica with N=3 on 3 nodes")
	}
	newer, err := tc.nodes[other[0]].store.Put(storePut(key, "new", res.Context))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tc.nodes[other[1]].store.Merge(key, newer); err != nil {
		t.Fatal(err)
	}
	got, err := tc.client(0).Get(ctx, key, client.R(3))
	if err != nil || string(got.Value()) != "new" {
		t.Fatalf("quorum read: %v %q", err, got.Values)
	}
	testutil.Eventually(t, 5*time.Second, "n3 repaired", func() (bool, string) {
		o, err := stale.store.Get(key)
		if err != nil {
			return false, err.Error()
		}
		return len(o.Siblings) == 1 && string(o.Siblings[0].Value) == "new", fmt.Sprintf("%d siblings", len(o.Siblings))
	})
	testutil.Eventually(t, 5*time.Second, "the repair counted", func() (bool, string) {
		c := counterValue(tc.nodes[0].metrics.readRepairs)
		return c >= 1, fmt.Sprint(c)
	})
}

func TestAdminHTTP(t *testing.T) {
	tc := startCluster(t, 3, nil)
	ctx := ctxFor(t)
	tc.client(0).Put(ctx, []byte("k"), []byte("v"))
	get := func(path string) string {
		resp, err := http.Get("http://" + tc.nodes[0].HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	if m := get("/metrics"); !strings.Contains(m, `mnemo_requests_total{op="put"} 1`) || !strings.Contains(m, "mnemo_request_duration_seconds_bucket") {
		t.Fatalf("/metrics lacks request series:\n%.2000s", m)
	}
	if s := get("/status"); !strings.Contains(s, `"liveness": "alive"`) || strings.Count(s, `"ring": "active"`) != 3 {
		t.Fatalf("/status: %s", s)
	}
	if h := get("/healthz"); h != "ok\n" {
		t.Fatalf("/healthz: %q", h)
	}
	if p := get("/"); !strings.Contains(p, "<svg") || !strings.Contains(p, "n3") {
		t.Fatal("ring page does not draw the ring")
	}
}

func TestRestartedNodeReassertsItsRingEntry(t *testing.T) {
	tc := startCluster(t, 3, nil)
	// Restart n3 on the same data dir and ports: its ring entry version
	// restarts at 1, below what the others hold; it must win back its
	// entry (with a new address would show it), and the ring stays whole.
	cfg := tc.cfgs[2]
	cfg.RPC, cfg.Gossip, cfg.HTTP = tc.nodes[2].RPCAddr(), tc.nodes[2].GossipAddr(), tc.nodes[2].HTTPAddr()
	cfg.Join = []string{tc.nodes[0].GossipAddr()}
	tc.nodes[2].Close()
	nd, err := New(cfg, zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.Close() })
	tc.nodes[2] = nd
	tc.waitRing(3)
	testutil.Eventually(t, 10*time.Second, "same ring digest everywhere", func() (bool, string) {
		d := tc.nodes[0].view.Load().state.Digest()
		for _, n := range tc.nodes[1:] {
			if n.view.Load().state.Digest() != d {
				return false, "digests differ"
			}
		}
		m, _ := tc.nodes[0].view.Load().state.Member("n3")
		return m.Status == ring.Active && m.RPCAddr == nd.RPCAddr(), fmt.Sprintf("%+v", m)
	})
}

func TestGetReplyModes(t *testing.T) {
	tc := startCluster(t, 1, func(c *Config) { c.N, c.R, c.W = 1, 1, 1 })
	ctx := ctxFor(t)
	cl := tc.client(0)
	// Two concurrent siblings: lww returns the deterministic winner.
	cl.Put(ctx, []byte("k"), []byte("a"))
	cl.Put(ctx, []byte("k"), []byte("b"))
	res, err := cl.Get(ctx, []byte("k"))
	if err != nil || len(res.Values) != 2 {
		t.Fatalf("siblings: %v %q", err, res.Values)
	}
	res, err = cl.Get(ctx, []byte("k"), client.LWW())
	if err != nil || len(res.Values) != 1 || string(res.Value()) != "b" {
		t.Fatalf("lww read: %v %q", err, res.Values)
	}
	if _, err := tc.nodes[0].Get(ctx, &proto.GetRequest{Key: []byte("k"), Mode: proto.ModeLWW}); err != nil {
		t.Fatal(err)
	}
}

func storePut(key []byte, v string, ctx client.Context) store.PutRequest {
	vv, _ := version.DecodeVV(ctx)
	return store.PutRequest{Key: key, Value: []byte(v), Context: vv}
}

// Concurrent state changes, each followed by publishView (gossip merging a
// peer's state while the node updates its own entry), must leave the
// published view at the latest state: a slower publisher must not swap in
// an older clone last. (A restarted node once kept routing with a ring of
// itself alone this way.)
func TestViewFollowsStateUnderConcurrentPublishes(t *testing.T) {
	tc := startCluster(t, 1, nil)
	nd := tc.nodes[0]
	var wg sync.WaitGroup
	var regressions atomic.Int64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				nd.stateMu.Lock()
				m := nd.selfEntry
				m.HTTPAddr = fmt.Sprintf("test-%d-%d", g, i)
				m = nd.state.Update(m)
				nd.stateMu.Unlock()
				nd.publishView()
				// Whatever else was published meanwhile came from a clone
				// at least as new as this update.
				if cur, _ := nd.view.Load().state.Member(nd.ID()); cur.Version < m.Version {
					regressions.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := regressions.Load(); n > 0 {
		t.Errorf("%d times the published view went back to a state older than an update already published", n)
	}
	nd.stateMu.Lock()
	want := nd.state.Digest()
	nd.stateMu.Unlock()
	if got := nd.view.Load().state.Digest(); got != want {
		t.Fatalf("published view has ring digest %d, the state %d: an older clone was published last", got, want)
	}
}

// A node that fails to start after its RPC server is up (here: its gossip
// port is taken) returns the error and stops what it started; the RPC
// goroutine must not see the node vanish under it (it once read the
// named result New had set to nil, and the process died of a nil
// dereference that hid the real error).
func TestNewFailsCleanlyAfterServingRPC(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for i := range 20 {
		cfg := testConfig(t, fmt.Sprintf("x%d", i), nil, func(c *Config) { c.Gossip = taken.Addr().String() })
		nd, err := New(cfg, zerolog.New(io.Discard))
		if err == nil {
			nd.Close()
			t.Fatalf("start %d with gossip on a taken port: no error", i)
		}
		if nd != nil {
			t.Fatalf("start %d: a node returned with the error %v", i, err)
		}
	}
}
