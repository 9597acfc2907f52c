package main

// End-to-end tests of Merkle anti-entropy (issue 4) with real processes:
// hinted handoff and read repair are off, so anti-entropy alone is
// measured. Reference: Dynamo §4.7 ("Handling permanent failures: replica
// synchronization"): replicas compare Merkle trees per key range and
// exchange only what differs.

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/localcluster"
	"github.com/mnemo-kv/mnemo/internal/testutil"
	"github.com/mnemo-kv/mnemo/ring"
)

// aeOnly switches off the other repair paths and shortens the periodic
// round.
var aeOnly = []string{"--hints=false", "--read-repair=false", "--ae-interval=2s"}

// rootsAgree reports whether every given node has built the tree of every
// partition and each partition's root is the same on all of them (with 3
// nodes and N=3 every node is a home replica of every partition).
func rootsAgree(cl *client.Client, c *localcluster.Cluster, idx ...int) (bool, string) {
	var first map[uint32]uint64
	for j, i := range idx {
		info, err := selfInfo(context.Background(), cl, c, i)
		if err != nil {
			return false, err.Error()
		}
		roots := info.AntiEntropy.Roots
		if len(roots) != ring.DefaultPartitions {
			return false, fmt.Sprintf("%s has built %d of %d partition trees", c.Nodes[i].ID, len(roots), ring.DefaultPartitions)
		}
		if j == 0 {
			first = roots
			continue
		}
		var differ []uint32
		for p, r := range roots {
			if first[p] != r {
				differ = append(differ, p)
			}
		}
		if len(differ) > 0 {
			slices.Sort(differ)
			return false, fmt.Sprintf("%d partitions have different roots on %s and %s, e.g. partition %d: %016x vs %016x",
				len(differ), c.Nodes[idx[0]].ID, c.Nodes[i].ID, differ[0], first[differ[0]], roots[differ[0]])
		}
	}
	return true, ""
}

// node3Converged reports whether node-3's stored copy of every key is node-1's
// and every partition's root is equal on all three nodes.
func node3Converged(cl *client.Client, c *localcluster.Cluster, keys []string) (bool, string) {
	if ok, why := rootsAgree(cl, c, 0, 1, 2); !ok {
		return false, why
	}
	return sameCopies(cl, c, 0, 2, keys)
}

// aeCatchUp is the shared body of the missed-writes tests: node-3 misses
// writes, updates and deletes while down (its data directory wiped, if
// wipe), restarts, and must converge through anti-entropy alone.
func aeCatchUp(t *testing.T, wipe bool) {
	c := startCluster(t, localcluster.Options{Nodes: 3, Args: aeOnly})
	cl, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	before, err := selfInfo(context.Background(), cl, c, 2)
	if err != nil {
		t.Fatal(err)
	}
	m := writeWhileDown(t, c)
	if wipe {
		if err := c.Wipe(2); err != nil {
			t.Fatal(err)
		}
	}
	rejoined := restartNode3(t, c)

	// Bounded: the rejoin triggers an immediate exchange, well ahead of
	// the 2 s periodic round; the bound leaves room for a busy machine.
	testutil.Eventually(t, 20*time.Second, "node-3 matching node-1 key by key, and equal roots on all three nodes", func() (bool, string) {
		return node3Converged(cl, c, m.keys)
	})
	took := time.Since(rejoined)
	if ok, why := holdsValues(cl, c, 2, m.want); !ok {
		t.Fatalf("node-3 matches node-1 but not what was written: %s", why)
	}

	after, err := selfInfo(context.Background(), cl, c, 2)
	if err != nil {
		t.Fatal(err)
	}
	if wipe && after.Epoch == before.Epoch {
		t.Errorf("node-3 restarted on an empty data directory kept its actor epoch %s", before.Epoch)
	}
	if !wipe && after.Epoch != before.Epoch {
		t.Errorf("node-3 restarted on its data directory changed its actor epoch %s -> %s", before.Epoch, after.Epoch)
	}
	// Anti-entropy did it: node-3 received objects, and the other paths
	// stayed idle.
	received := nodeStats(t, cl, c, aeKeysReceived, 2)[0]
	want := float64(len(m.missed))
	if wipe {
		want = float64(len(m.keys)) // every key, the deleted ones' tombstones included
	}
	if received < want {
		t.Errorf("node-3 received %v objects by anti-entropy, want at least %v", received, want)
	}
	for _, f := range []figure{hintsReplayed, readRepairs} {
		if got := nodeStats(t, cl, c, f, 0, 1, 2); sumStats(got) != 0 {
			t.Errorf("%s per node = %v with hints and read repair off, want 0", f.name, got)
		}
	}
	// Nor ownership transfer: a restart, even on an empty directory, is
	// no ring change; the node keeps its place and anti-entropy refills it
	// (node.ownership.adopted: "there is nothing to pull").
	if got := after.Ownership.KeysReceived; got != 0 {
		t.Errorf("node-3 (wiped: %v) also pulled %v keys by ownership transfer (transfer_keys_received); a node that keeps its place should be refilled by anti-entropy alone", wipe, got)
	}
	t.Logf("node-3 (wiped: %v, epoch %s -> %s) converged in %v from its rejoin; it received %v objects (transfer: %v)",
		wipe, before.Epoch, after.Epoch, took.Round(time.Millisecond), received, after.Ownership.KeysReceived)
}

// node-3 misses writes, updates and deletes while down; after its restart
// anti-entropy alone brings it level.
func TestE2EAntiEntropyMissedWrites(t *testing.T) { aeCatchUp(t, false) }

// node-3's data directory is deleted while it is down: it comes back with
// a new actor epoch and anti-entropy refills every partition it owns.
func TestE2EAntiEntropyWipedNode(t *testing.T) { aeCatchUp(t, true) }

// Two replicas each hold writes the other lacks, with concurrent versions
// of the same keys; anti-entropy gives every replica the union, and the
// concurrent versions stay siblings everywhere (Dynamo §4.4).
func TestE2EAntiEntropyDivergedReplicas(t *testing.T) {
	c := startCluster(t, localcluster.Options{Nodes: 3, Args: aeOnly})
	cl, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := ctxT(t, 2*time.Minute)
	n1, n2 := c.Nodes[0].RPC, c.Nodes[1].RPC

	// node-1 alone: set X, and v-a of keys K.
	for _, i := range []int{1, 2} {
		if err := c.Kill(i); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WaitConverged(ctx, 0); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	var keys []string
	for i := range 60 {
		k := fmt.Sprintf("x-%d", i)
		if _, err := cl.Put(ctx, []byte(k), []byte("vx-"+k), client.W(1), client.Node(n1)); err != nil {
			t.Fatalf("put %s through node-1 alone: %v", k, err)
		}
		want[k] = []string{"vx-" + k}
	}
	for i := range 10 {
		k := fmt.Sprintf("k-%d", i)
		if _, err := cl.Put(ctx, []byte(k), []byte("v-a"), client.W(1), client.Node(n1)); err != nil {
			t.Fatalf("put %s through node-1 alone: %v", k, err)
		}
		want[k] = []string{"v-a", "v-b"}
	}

	// node-2 alone (node-1 killed before node-2 returns, so nothing is
	// exchanged yet): set Y, and v-b of K written blind.
	if err := c.Kill(0); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(1); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConverged(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		k := fmt.Sprintf("y-%d", i)
		if _, err := cl.Put(ctx, []byte(k), []byte("vy-"+k), client.W(1), client.Node(n2)); err != nil {
			t.Fatalf("put %s through node-2 alone: %v", k, err)
		}
		want[k] = []string{"vy-" + k}
	}
	for i := range 10 {
		k := fmt.Sprintf("k-%d", i)
		if _, err := cl.Put(ctx, []byte(k), []byte("v-b"), client.W(1), client.Node(n2)); err != nil {
			t.Fatalf("blind put %s through node-2 alone: %v", k, err)
		}
	}
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	// They have diverged: node-2 holds none of X and only v-b of K.
	for _, k := range keys {
		got, err := storedValues(ctx, cl, n2, k)
		if err != nil {
			t.Fatal(err)
		}
		var exp []string
		switch k[0] {
		case 'y':
			exp = want[k]
		case 'k':
			exp = []string{"v-b"}
		}
		if !slices.Equal(got, exp) {
			t.Fatalf("before the exchange node-2 holds %s = %q, want %q", k, got, exp)
		}
	}

	// Everyone back: all three end with the union and the same siblings.
	if err := c.Start(0); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(2); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConverged(ctx, 0, 1, 2); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	testutil.Eventually(t, 20*time.Second, "the union, with K's siblings v-a and v-b, on every node", func() (bool, string) {
		for i := range c.Nodes {
			if ok, why := holdsValues(cl, c, i, want); !ok {
				return false, why
			}
		}
		return true, ""
	})
	testutil.Eventually(t, 10*time.Second, "equal stored copies and roots on every node", func() (bool, string) {
		if ok, why := rootsAgree(cl, c, 0, 1, 2); !ok {
			return false, why
		}
		if ok, why := sameCopies(cl, c, 0, 1, keys); !ok {
			return false, why
		}
		return sameCopies(cl, c, 0, 2, keys)
	})
	t.Logf("diverged replicas converged in %v after every node was back", time.Since(back).Round(time.Millisecond))
	if got := nodeStats(t, cl, c, readRepairs, 0, 1, 2); sumStats(got) != 0 {
		t.Errorf("read_repairs per node = %v with read repair off", got)
	}
}

// In a cluster already in sync a periodic round compares roots and
// nothing else: a few KiB per pair of nodes for 256 partitions (the
// antientropy package measured about 2.4 KiB), never keys or objects.
func TestE2EAntiEntropyInSyncRoundSendsOnlyRoots(t *testing.T) {
	c := startCluster(t, localcluster.Options{Nodes: 3, Args: aeOnly})
	cl, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := ctxT(t, time.Minute)
	for i := range 300 {
		k := fmt.Sprintf("sync-%d", i)
		if _, err := cl.Put(ctx, []byte(k), []byte("v"), client.W(3)); err != nil {
			t.Fatalf("put %s at W=3: %v", k, err)
		}
	}
	testutil.Eventually(t, 20*time.Second, "equal roots on all three nodes", func() (bool, string) {
		return rootsAgree(cl, c, 0, 1, 2)
	})

	all := []int{0, 1, 2}
	figures := []figure{aeExchanges, aeBytesSent, aeRepairs, aeKeysSent}
	snapshot := func() map[string][]float64 {
		s := map[string][]float64{}
		for _, f := range figures {
			s[f.name] = nodeStats(t, cl, c, f, all...)
		}
		return s
	}
	before := snapshot()
	// Two periodic rounds of each of the three pairs: each round of a pair
	// is 256 partition exchanges, counted by the node that initiated it.
	const rounds = 2
	testutil.Eventually(t, 30*time.Second, fmt.Sprintf("%d more periodic rounds of the 3 pairs", rounds), func() (bool, string) {
		d := sumStats(nodeStats(t, cl, c, aeExchanges, all...)) - sumStats(before[aeExchanges.name])
		return d >= rounds*3*ring.DefaultPartitions, fmt.Sprintf("%v more partition exchanges, want %d", d, rounds*3*ring.DefaultPartitions)
	})
	after := snapshot()
	delta := func(f figure) (per []float64, total float64) {
		for j := range all {
			per = append(per, after[f.name][j]-before[f.name][j])
		}
		return per, sumStats(per)
	}
	_, exchanges := delta(aeExchanges)
	bytesPer, bytes := delta(aeBytesSent)
	_, repairs := delta(aeRepairs)
	_, keysSent := delta(aeKeysSent)
	pairRounds := exchanges / ring.DefaultPartitions
	perPairRound := bytes / pairRounds
	t.Logf("in sync: %v partition exchanges (%.1f pair rounds), %v bytes sent (per node %v): %.0f bytes per pair per round",
		exchanges, pairRounds, bytes, bytesPer, perPairRound)
	if repairs != 0 || keysSent != 0 {
		t.Errorf("an in-sync cluster repaired %v partitions and sent %v keys; want roots only", repairs, keysSent)
	}
	if perPairRound > 16<<10 {
		t.Errorf("a round of an in-sync pair cost %.0f bytes (%v bytes over %.1f pair rounds), want at most 16 KiB", perPairRound, bytes, pairRounds)
	}
}
