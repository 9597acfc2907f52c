package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/testutil"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
)

// addNode starts one more node that joins through the first.
func (tc *testCluster) addNode(id string, mod func(*Config)) *Node {
	cfg := testConfig(tc.t, id, []string{tc.nodes[0].GossipAddr()}, mod)
	nd, err := New(cfg, testLogger(tc.t, id))
	if err != nil {
		tc.t.Fatalf("start %s: %v", id, err)
	}
	tc.t.Cleanup(func() { nd.Close() })
	tc.nodes = append(tc.nodes, nd)
	tc.cfgs = append(tc.cfgs, cfg)
	return nd
}

// checkPlacement waits until every key is held by exactly its home
// replicas (per the given node's ring) with the written value.
func checkPlacement(t *testing.T, tc *testCluster, keys int, live []*Node) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, "every key on exactly its home replicas", func() (bool, string) {
		v := live[0].view.Load()
		for i := range keys {
			key := []byte(fmt.Sprint("k", i))
			home := v.ring.Home(v.ring.PartitionForKey(key), 3)
			for _, nd := range live {
				o, err := nd.store.Get(key)
				isHome := false
				for _, h := range home {
					isHome = isHome || h == nd.self
				}
				switch {
				case isHome && err != nil:
					return false, fmt.Sprintf("%s lacks %s (home replicas %v): %v", nd.self, key, home, err)
				case isHome && string(o.Siblings[0].Value) != fmt.Sprint("v", i):
					return false, fmt.Sprintf("%s holds %s = %q", nd.self, key, o.Siblings[0].Value)
				case !isHome && err == nil:
					return false, fmt.Sprintf("%s still holds %s, not a home replica (%v)", nd.self, key, home)
				case !isHome && !errors.Is(err, store.ErrNotFound):
					return false, err.Error()
				}
			}
		}
		return true, ""
	})
}

// Reference: Dynamo §4.9 (adding and removing storage nodes).
func TestJoinLeaveRemoveMoveData(t *testing.T) {
	tc := startCluster(t, 3, nil)
	ctx := ctxFor(t)
	const keys = 300
	for i := range keys {
		if _, err := tc.client(i%3).Put(ctx, []byte(fmt.Sprint("k", i)), []byte(fmt.Sprint("v", i)), client.W(3)); err != nil {
			t.Fatal(err)
		}
	}
	events := tc.client(0).WatchOwnership(ctx, tc.nodes[0].RPCAddr())

	// Grow 3 -> 4: the new node joins, pulls what it will own, turns active.
	n4 := tc.addNode("n4", nil)
	tc.waitRing(4)
	if m, _ := tc.nodes[0].view.Load().state.Member("n4"); m.Status != ring.Active {
		t.Fatalf("n4 is %s after joining", m.Status)
	}
	checkPlacement(t, tc, keys, tc.nodes)
	// n1 reports which partitions it lost to n4 (after the ones it gained
	// when it founded the cluster).
	for ev := range events {
		if ev.Kind == "lost" {
			if ev.Node != "n1" || !slices.Contains(ev.Peers, "n4") {
				t.Fatalf("n1's lost event: %+v", ev)
			}
			break
		}
	}
	// Every key still reads back at R=3.
	for i := range keys {
		res, err := tc.client(3).Get(ctx, []byte(fmt.Sprint("k", i)), client.R(3))
		if err != nil || string(res.Value()) != fmt.Sprint("v", i) {
			t.Fatalf("k%d after join: %v", i, err)
		}
	}

	// Shrink 4 -> 3 with leave: n2 hands off and says it is done.
	if err := tc.client(1).Leave(ctx, tc.nodes[1].RPCAddr()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-tc.nodes[1].Done():
		if !errors.Is(err, ErrLeft) {
			t.Fatalf("n2 done with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("n2 did not finish leaving in 30s")
	}
	tc.nodes[1].Close()
	live := []*Node{tc.nodes[0], tc.nodes[2], n4}
	testutil.Eventually(t, 10*time.Second, "n2 removed everywhere", func() (bool, string) {
		for _, nd := range live {
			if m, _ := nd.view.Load().state.Member("n2"); m.Status != ring.Removed {
				return false, fmt.Sprintf("%s sees n2 %s", nd.self, m.Status)
			}
		}
		return true, ""
	})
	checkPlacement(t, tc, keys, live)

	// Kill n3 for good and remove it: the two survivors hold everything.
	tc.nodes[2].Close()
	testutil.Eventually(t, 15*time.Second, "n3 seen dead", func() (bool, string) {
		return !tc.nodes[0].alive("n3"), ""
	})
	if err := tc.client(0).Remove(ctx, "n3"); err != nil {
		t.Fatal(err)
	}
	checkPlacement(t, tc, keys, []*Node{tc.nodes[0], n4})
	if err := tc.client(0).Remove(ctx, "n4"); err == nil {
		t.Fatal("removing a live member without force succeeded")
	}
}

func TestOwnershipEventsLongPoll(t *testing.T) {
	one := func(c *Config) { c.N, c.R, c.W = 1, 1, 1 }
	tc := startCluster(t, 1, one)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ch := tc.client(0).WatchOwnership(ctx, tc.nodes[0].RPCAddr())
	tc.addNode("n2", one)
	seen := 0
	for ev := range ch {
		if ev.Kind == "lost" && len(ev.Peers) > 0 {
			seen++
		}
		if seen == 3 {
			cancel()
		}
	}
	if seen < 3 {
		t.Fatalf("saw %d lost events", seen)
	}
}
