package main

// End-to-end tests of ring changes: real processes join, leave and are
// removed under a write load; every acknowledged write must end on exactly
// its N home replicas.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/localcluster"
	"github.com/mnemo-kv/mnemo/internal/testutil"
	"github.com/mnemo-kv/mnemo/ring"
)

// writeLoad writes unique keys in the background and remembers which were
// acknowledged.
type writeLoad struct {
	mu    sync.Mutex
	acked map[string]string
	fails int
	stop  chan struct{}
	done  chan struct{}
}

func startLoad(t *testing.T, addrs []string) *writeLoad {
	cl, err := client.New(addrs...)
	if err != nil {
		t.Fatal(err)
	}
	l := &writeLoad{acked: map[string]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		defer cl.Close()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			key, val := fmt.Sprintf("load-%06d", i), fmt.Sprintf("v%d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err := cl.Put(ctx, []byte(key), []byte(val))
			cancel()
			l.mu.Lock()
			if err == nil {
				l.acked[key] = val
			} else {
				l.fails++
			}
			l.mu.Unlock()
		}
	}()
	t.Cleanup(l.halt)
	return l
}

func (l *writeLoad) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

func (l *writeLoad) snapshot() (map[string]string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]string, len(l.acked))
	for k, v := range l.acked {
		out[k] = v
	}
	return out, l.fails
}

// ringOf builds the ring the cluster computes, from a node's status.
func ringOf(t *testing.T, st *client.Status) (*ring.Ring, map[string]string) {
	var nodes []ring.Node
	addrs := map[string]string{}
	for _, m := range st.Members {
		if m.Ring == "active" || m.Ring == "leaving" {
			nodes = append(nodes, ring.Node{ID: ring.NodeID(m.ID), Zone: m.Zone})
		}
		addrs[m.ID] = m.RPCAddr
	}
	r, err := ring.New(st.Partitions, nodes)
	if err != nil {
		t.Fatal(err)
	}
	return r, addrs
}

// waitSettled waits until the given nodes are active, see each other and
// have no partition left to pull.
func waitSettled(t *testing.T, c *localcluster.Cluster, idx ...int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := c.WaitConverged(ctx, idx...); err != nil {
		t.Fatal(err)
	}
	cl, _ := c.Client(idx...)
	defer cl.Close()
	testutil.Eventually(t, 90*time.Second, "the ring settled", func() (bool, string) {
		for _, i := range idx {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			st, err := cl.Status(ctx, client.Node(c.Nodes[i].RPC))
			cancel()
			if err != nil {
				return false, err.Error()
			}
			active := 0
			for _, m := range st.Members {
				if m.Ring == "active" {
					active++
				}
				if m.ID == st.Node && (m.Info == nil || m.Info.Ownership.PartitionsSyncing != 0 || m.Ring != "active") {
					return false, fmt.Sprintf("%s is %s, syncing %v", m.ID, m.Ring, m.Info.Ownership.PartitionsSyncing)
				}
			}
			if active != len(idx) {
				return false, fmt.Sprintf("%s sees %d active members, want %d", st.Node, active, len(idx))
			}
		}
		return true, ""
	})
}

// checkReplicas waits until every acknowledged write is on each of its N
// home replicas' own storage (get --local).
func checkReplicas(t *testing.T, c *localcluster.Cluster, via int, acked map[string]string) {
	t.Helper()
	cl, _ := c.Client(via)
	defer cl.Close()
	testutil.Eventually(t, 60*time.Second, "every acknowledged write on its N home replicas", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st, err := cl.Status(ctx)
		if err != nil {
			return false, err.Error()
		}
		r, addrs := ringOf(t, st)
		for key, val := range acked {
			home := r.Home(r.PartitionForKey([]byte(key)), 3)
			if len(home) != min(3, len(r.Nodes())) {
				return false, fmt.Sprintf("%s has %d home replicas", key, len(home))
			}
			for _, h := range home {
				res, err := cl.Get(ctx, []byte(key), client.Local(), client.Node(addrs[string(h)]))
				if err != nil || string(res.Value()) != val {
					return false, fmt.Sprintf("%s on %s: %v %q, want %q", key, h, err, res.Values, val)
				}
			}
		}
		return true, ""
	})
}

func partitionsHeld(t *testing.T, c *localcluster.Cluster, i int) float64 {
	cl, _ := c.Client(i)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := cl.Status(ctx, client.Node(c.Nodes[i].RPC))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st.Members {
		if m.ID == st.Node && m.Info != nil {
			return float64(m.Info.Ownership.PartitionsHeld)
		}
	}
	t.Fatalf("no figures from %s", c.Nodes[i].ID)
	return 0
}

// Reference: Dynamo §4.9. Grow 3 -> 5, shrink 5 -> 3 with leave, then
// kill a node for good and remove it, all under a write load.
func TestE2ERingChanges(t *testing.T) {
	c := startCluster(t, localcluster.Options{Nodes: 3, Args: []string{"--transfer-interval", "500ms"}})
	load := startLoad(t, c.Addrs()[:2])
	ctx := ctxT(t, 5*time.Minute)
	for c.Nodes[0].Running() {
		if acked, _ := load.snapshot(); len(acked) >= 300 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("load did not start")
		}
		waitAWhile(ctx, 20*time.Millisecond)
	}

	// Grow 3 -> 5; each addition moves at most 1.1 x N*Q/(n+1) replicas,
	// all of them to the new node.
	for n := 3; n < 5; n++ {
		i, err := c.Add()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(i); err != nil {
			t.Fatal(err)
		}
		waitSettled(t, c, c.Indexes()...)
		moved := partitionsHeld(t, c, i)
		bound := 1.1 * 3 * 256 / float64(n+1)
		t.Logf("adding node %d to %d moved %v partition replicas (N*Q/(n+1) = %.1f, bound %.1f)", i+1, n, moved, 3*256/float64(n+1), bound)
		if moved > bound {
			t.Fatalf("adding a node to %d moved %v partition replicas, more than %.1f", n, moved, bound)
		}
	}
	acked, _ := load.snapshot()
	checkReplicas(t, c, 0, acked)

	// Shrink 5 -> 3: node-5 and node-4 leave (the CLI waits for each to exit).
	for _, i := range []int{4, 3} {
		if _, errOut, code := cli(t, "leave", "--addr", c.Nodes[i].RPC); code != 0 {
			t.Fatalf("leave %s: exit %d %s", c.Nodes[i].ID, code, errOut)
		}
		testutil.Eventually(t, 30*time.Second, c.Nodes[i].ID+" exited", func() (bool, string) {
			return !c.Nodes[i].Running(), "still running"
		})
	}
	waitSettled(t, c, 0, 1, 2)
	acked, _ = load.snapshot()
	checkReplicas(t, c, 0, acked)

	// Kill node-3 for good and remove it; add node-6 so N=3 replicas exist.
	if err := c.Kill(2); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConverged(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := cli(t, "remove", "--addr", c.Nodes[0].RPC, c.Nodes[2].ID); code != 0 {
		t.Fatalf("remove: exit %d %s", code, errOut)
	}
	i, _ := c.Add()
	if err := c.Start(i); err != nil {
		t.Fatal(err)
	}
	waitSettled(t, c, 0, 1, i)
	load.halt()
	acked, fails := load.snapshot()
	t.Logf("%d writes acknowledged, %d failed during the changes", len(acked), fails)
	checkReplicas(t, c, 0, acked)
}

// A key deleted while a node is down past the (shortened) tombstone grace
// stays deleted after the node returns: it finds it was away too long and
// rejoins empty.
func TestE2ETombstoneGrace(t *testing.T) {
	c := startCluster(t, localcluster.Options{Nodes: 3, Args: []string{
		"--tombstone-grace", "3s", "--stale-data", "rejoin-empty", "--transfer-interval", "500ms"}})
	ctx := ctxT(t, 2*time.Minute)
	cl, _ := c.Client(0, 1)
	defer cl.Close()
	for _, k := range []string{"doomed", "kept"} {
		if _, err := cl.Put(ctx, []byte(k), []byte("v"), client.W(3)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Kill(2); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConverged(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := cl.Delete(ctx, []byte("doomed")); err != nil {
		t.Fatal(err)
	}
	// Wait until node-1 and node-2 have reaped the tombstone.
	testutil.Eventually(t, 30*time.Second, "the tombstone reaped on node-1 and node-2", func() (bool, string) {
		for i := range 2 {
			res, err := cl.Get(ctx, []byte("doomed"), client.Local(), client.Node(c.Nodes[i].RPC), client.IncludeTombstones())
			if !errors.Is(err, client.ErrNotFound) || len(res.Siblings) != 0 {
				return false, fmt.Sprintf("node-%d: %v %d siblings", i+1, err, len(res.Siblings))
			}
		}
		return true, ""
	})
	if err := c.Start(2); err != nil {
		t.Fatal(err)
	}
	waitSettled(t, c, 0, 1, 2)
	for i := range 3 {
		if _, err := cl.Get(ctx, []byte("doomed"), client.R(3), client.Node(c.Nodes[i].RPC)); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("deleted key through node-%d after node-3 returned: %v", i+1, err)
		}
		if _, err := cl.Get(ctx, []byte("doomed"), client.Local(), client.Node(c.Nodes[i].RPC)); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("deleted key on node-%d's own storage: %v", i+1, err)
		}
	}
	// node-3 was refilled: it holds the live key again.
	testutil.Eventually(t, 30*time.Second, "node-3 refilled", func() (bool, string) {
		res, err := cl.Get(ctx, []byte("kept"), client.Local(), client.Node(c.Nodes[2].RPC))
		return err == nil && string(res.Value()) == "v", fmt.Sprint(err)
	})
}

// waitAWhile waits d or until ctx ends; for pacing a loop, not for
// waiting on a condition.
func waitAWhile(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
