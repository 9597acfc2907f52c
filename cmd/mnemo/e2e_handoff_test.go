package main

// End-to-end tests of a rejoining node catching up (issue 3): sloppy
// quorum and hinted handoff (Dynamo §4.6), read repair (Dynamo §5) and
// siblings surviving a replay (Dynamo §4.4), with real processes. Each
// repair path is measured alone: the others are switched off by flag.
//
// The helpers at the top (node figures, a replica's stored copy, the
// writes node-3 misses while down) are shared with e2e_antientropy_test.go.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/localcluster"
	"github.com/mnemo-kv/mnemo/internal/testutil"
	"github.com/mnemo-kv/mnemo/ring"
)

// selfInfo returns node i's own figures (NodeInfo) from its status.
func selfInfo(ctx context.Context, cl *client.Client, c *localcluster.Cluster, i int) (*client.NodeInfo, error) {
	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := cl.Status(sctx, client.Node(c.Nodes[i].RPC))
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", c.Nodes[i].ID, err)
	}
	for _, m := range st.Members {
		if m.ID == st.Node && m.Info != nil {
			return m.Info, nil
		}
	}
	return nil, fmt.Errorf("%s reported no figures of its own", c.Nodes[i].ID)
}

// figure is one counter of a node's report (0 when its subsystem is off),
// with its name for messages.
type figure struct {
	name string
	get  func(*client.NodeInfo) float64
}

// The figures the end-to-end tests read.
var (
	aeKeysReceived       = figure{"ae_keys_received", func(i *client.NodeInfo) float64 { return float64(i.AntiEntropy.KeysReceived) }}
	hintsReplayed        = figure{"hints_replayed", func(i *client.NodeInfo) float64 { return float64(i.Handoff.Replayed) }}
	readRepairs          = figure{"read_repairs", func(i *client.NodeInfo) float64 { return float64(i.ReadRepairs) }}
	aeExchanges          = figure{"ae_exchanges", func(i *client.NodeInfo) float64 { return float64(i.AntiEntropy.Exchanges) }}
	transferKeysReceived = figure{"transfer_keys_received", func(i *client.NodeInfo) float64 { return float64(i.Ownership.KeysReceived) }}
	hintsStored          = figure{"hints_stored", func(i *client.NodeInfo) float64 { return float64(i.Handoff.Stored) }}
	aeBytesSent          = figure{"ae_bytes_sent", func(i *client.NodeInfo) float64 { return float64(i.AntiEntropy.BytesSent) }}
	aeRepairs            = figure{"ae_repairs", func(i *client.NodeInfo) float64 { return float64(i.AntiEntropy.Repairs) }}
	aeKeysSent           = figure{"ae_keys_sent", func(i *client.NodeInfo) float64 { return float64(i.AntiEntropy.KeysSent) }}
)

// nodeStats reads one figure from each given node, failing the test if a
// node does not answer.
func nodeStats(t *testing.T, cl *client.Client, c *localcluster.Cluster, f figure, idx ...int) []float64 {
	t.Helper()
	out := make([]float64, len(idx))
	for j, i := range idx {
		info, err := selfInfo(context.Background(), cl, c, i)
		if err != nil {
			t.Fatal(err)
		}
		out[j] = f.get(info)
	}
	return out
}

func sumStats(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}

// pendingHints is how many hints a node holds for target.
func pendingHints(info *client.NodeInfo, target string) float64 {
	return float64(info.Handoff.Pending[target])
}

// storedCopy is a replica's own copy of key (get --local, tombstones
// included) in a canonical form: the sorted siblings as value@actor:counter,
// a tombstone as (deleted)@actor:counter; "" when it holds nothing. Two
// replicas with equal storedCopy hold the same versions.
func storedCopy(ctx context.Context, cl *client.Client, addr, key string) (string, error) {
	res, err := cl.Get(ctx, []byte(key), client.Local(), client.Node(addr), client.IncludeTombstones())
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		return "", fmt.Errorf("get --local %s on %s: %w", key, addr, err)
	}
	var sibs []string
	for _, s := range res.Siblings {
		v := string(s.Value)
		if s.Tombstone {
			v = "(deleted)"
		}
		sibs = append(sibs, fmt.Sprintf("%s@%s:%d", v, s.Actor, s.Counter))
	}
	slices.Sort(sibs)
	return strings.Join(sibs, ", "), nil
}

// storedValues is a replica's own live values of key, sorted; nil when it
// holds none (never written, or deleted).
func storedValues(ctx context.Context, cl *client.Client, addr, key string) ([]string, error) {
	res, err := cl.Get(ctx, []byte(key), client.Local(), client.Node(addr))
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		return nil, fmt.Errorf("get --local %s on %s: %w", key, addr, err)
	}
	var vals []string
	for _, v := range res.Values {
		vals = append(vals, string(v))
	}
	slices.Sort(vals)
	return vals, nil
}

// sameCopies reports whether node b's stored copy of every key equals
// node a's, and the first difference.
func sameCopies(cl *client.Client, c *localcluster.Cluster, a, b int, keys []string) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, k := range keys {
		ca, err := storedCopy(ctx, cl, c.Nodes[a].RPC, k)
		if err != nil {
			return false, err.Error()
		}
		cb, err := storedCopy(ctx, cl, c.Nodes[b].RPC, k)
		if err != nil {
			return false, err.Error()
		}
		if ca != cb {
			return false, fmt.Sprintf("%s: %s holds [%s], %s holds [%s]", k, c.Nodes[a].ID, ca, c.Nodes[b].ID, cb)
		}
	}
	return true, ""
}

// holdsValues reports whether node i's own live values of every key are
// the wanted ones (nil: deleted or absent), and the first that is not.
func holdsValues(cl *client.Client, c *localcluster.Cluster, i int, want map[string][]string) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		got, err := storedValues(ctx, cl, c.Nodes[i].RPC, k)
		if err != nil {
			return false, err.Error()
		}
		if !slices.Equal(got, want[k]) {
			return false, fmt.Sprintf("%s holds %s = %q, want %q", c.Nodes[i].ID, k, got, want[k])
		}
	}
	return true, ""
}

// missedWrites is what node-3 missed while it was down, as written by
// writeWhileDown: the rejoin story of `mnemo demo`.
type missedWrites struct {
	keys   []string            // key-1 .. key-150
	want   map[string][]string // each key's live values after the story (nil: deleted)
	missed []string            // keys written, updated or deleted while node-3 was down
}

// writeWhileDown plays the rejoin story up to node-3's restart: keys 1-100
// written on all three replicas (W=3); node-3 killed with SIGKILL and seen
// dead by the others; keys 101-150 written, every 9th of 1-100 updated
// (read, then put with the read's context) and five deleted, through
// node-1 and node-2. node-3 is left down.
func writeWhileDown(t *testing.T, c *localcluster.Cluster) *missedWrites {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	cl, err := c.Client(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	m := &missedWrites{want: map[string][]string{}}
	for i := 1; i <= 150; i++ {
		m.keys = append(m.keys, string(demoKey(i)))
	}
	for i := 1; i <= 100; i++ {
		v := fmt.Sprintf("v1-of-%d", i)
		if _, err := cl.Put(ctx, demoKey(i), []byte(v), client.W(3)); err != nil {
			t.Fatalf("T0: put key-%d at W=3: %v", i, err)
		}
		m.want[string(demoKey(i))] = []string{v}
	}

	if err := c.Kill(2); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConverged(ctx, 0, 1); err != nil {
		t.Fatalf("T1: node-1 and node-2 do not see node-3 dead: %v", err)
	}

	for i := 101; i <= 150; i++ {
		v := fmt.Sprintf("v1-of-%d", i)
		if _, err := cl.Put(ctx, demoKey(i), []byte(v)); err != nil {
			t.Fatalf("T3: put key-%d with node-3 down: %v", i, err)
		}
		m.want[string(demoKey(i))] = []string{v}
		m.missed = append(m.missed, string(demoKey(i)))
	}
	for i := 1; i <= 100; i += 9 {
		res, err := cl.Get(ctx, demoKey(i))
		if err != nil {
			t.Fatalf("T3: read key-%d before updating it: %v", i, err)
		}
		v := fmt.Sprintf("v2-of-%d", i)
		if _, err := cl.Put(ctx, demoKey(i), []byte(v), client.WithContext(res.Context)); err != nil {
			t.Fatalf("T3: update key-%d: %v", i, err)
		}
		m.want[string(demoKey(i))] = []string{v}
		m.missed = append(m.missed, string(demoKey(i)))
	}
	for i := 5; i <= 100; i += 20 {
		if err := cl.Delete(ctx, demoKey(i)); err != nil {
			t.Fatalf("T3: delete key-%d: %v", i, err)
		}
		m.want[string(demoKey(i))] = nil
		m.missed = append(m.missed, string(demoKey(i)))
	}
	return m
}

// restartNode3 starts node-3 again on its data directory and waits until
// all three nodes see each other alive; it returns when that was seen.
func restartNode3(t *testing.T, c *localcluster.Cluster) time.Time {
	t.Helper()
	if err := c.Start(2); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitConverged(ctx, 0, 1, 2); err != nil {
		t.Fatalf("node-3 not seen alive after its restart: %v", err)
	}
	return time.Now()
}

// staleOnNode3 lists the keys whose stored copy on node-3 differs from
// node-1's.
func staleOnNode3(t *testing.T, cl *client.Client, c *localcluster.Cluster, keys []string) []string {
	t.Helper()
	var stale []string
	for _, k := range keys {
		if ok, _ := sameCopies(cl, c, 0, 2, []string{k}); !ok {
			stale = append(stale, k)
		}
	}
	return stale
}

// The rejoin story, caught up by hinted handoff alone. Reference: Dynamo
// §4.6: the coordinator keeps a hint for the dead home replica and
// delivers it when the replica recovers.
func TestE2EHandoffRejoinStory(t *testing.T) {
	c := startCluster(t, localcluster.Options{Nodes: 3, Args: []string{"--read-repair=false", "--anti-entropy=false"}})
	cl, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	m := writeWhileDown(t, c)

	// Each write node-3 missed left exactly one hint, on its coordinator.
	// (With 3 nodes and N=3 there is no fallback: the coordinator keeps
	// the hint itself.)
	if got := sumStats(nodeStats(t, cl, c, hintsStored, 0, 1)); got != float64(len(m.missed)) {
		t.Fatalf("node-1 and node-2 hold %v hints for node-3, want one per missed write: %d", got, len(m.missed))
	}
	replayedBefore := sumStats(nodeStats(t, cl, c, hintsReplayed, 0, 1))

	rejoined := restartNode3(t, c)
	// T5: a quorum read through node-3 right after its restart finds key 125.
	ctx := ctxT(t, time.Minute)
	res, err := cl.Get(ctx, demoKey(125), client.Node(c.Nodes[2].RPC), client.R(2))
	if err != nil || string(res.Value()) != "v1-of-125" || len(res.Values) != 1 {
		t.Fatalf("quorum read of key-125 through node-3 after its restart: %v %q, want [v1-of-125]", err, res.Values)
	}

	// Without reading any other key, node-3's own copy of all 150 keys
	// becomes node-1's (updates and deletions included) within 10 s.
	testutil.Eventually(t, 10*time.Second-time.Since(rejoined), "node-3 holding node-1's copy of all 150 keys", func() (bool, string) {
		return sameCopies(cl, c, 0, 2, m.keys)
	})
	took := time.Since(rejoined)
	if ok, why := holdsValues(cl, c, 2, m.want); !ok {
		t.Fatalf("node-3 matches node-1 but not the story: %s", why)
	}

	// It was hint replay, and nothing else: one object per missed write.
	testutil.Eventually(t, 5*time.Second, "every hint acknowledged", func() (bool, string) {
		replayed := sumStats(nodeStats(t, cl, c, hintsReplayed, 0, 1)) - replayedBefore
		stored := sumStats(nodeStats(t, cl, c, hintsStored, 0, 1))
		return replayed == float64(len(m.missed)) && stored == 0,
			fmt.Sprintf("%v hints replayed (want %d), %v still stored", replayed, len(m.missed), stored)
	})
	for _, f := range []figure{readRepairs, aeKeysReceived, aeExchanges, transferKeysReceived} {
		if got := nodeStats(t, cl, c, f, 0, 1, 2); sumStats(got) != 0 {
			t.Errorf("%s per node = %v with read repair and anti-entropy off (and no ring change), want 0", f.name, got)
		}
	}
	t.Logf("node-3 caught up %d missed writes by hint replay alone in %v from its rejoin", len(m.missed), took.Round(time.Millisecond))
}

// With hints off, quorum reads repair node-3 key by key. Reference: Dynamo
// §5: the coordinator of a read updates the replicas that returned stale
// versions (read repair).
func TestE2EHandoffReadRepair(t *testing.T) {
	// A read repairs the replicas that answered within --read-repair-wait;
	// 3 s leaves a busy machine room for node-3's reply.
	c := startCluster(t, localcluster.Options{Nodes: 3, Args: []string{"--hints=false", "--anti-entropy=false", "--read-repair-wait=3s"}})
	cl, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	m := writeWhileDown(t, c)
	restartNode3(t, c)

	// With hints off nothing was delivered: node-3 is stale for exactly
	// the keys it missed.
	stale := sortedKeys(staleOnNode3(t, cl, c, m.keys))
	if !slices.Equal(stale, sortedKeys(m.missed)) {
		t.Fatalf("after its restart node-3 is stale for %d keys %v, want the %d it missed %v", len(stale), stale, len(m.missed), sortedKeys(m.missed))
	}

	ctx := ctxT(t, time.Minute)
	missed := map[string]bool{}
	for _, k := range m.missed {
		missed[k] = true
	}
	for i, k := range m.keys {
		via := c.Nodes[i%3]
		// Until it is read, a missed key stays stale on node-3: only the
		// read repairs it.
		if same, _ := sameCopies(cl, c, 0, 2, []string{k}); missed[k] && same {
			info, _ := selfInfo(ctx, cl, c, 2)
			t.Fatalf("%s was already repaired on node-3 before it was read; by what? read_repairs per node %v; node-3's figures %+v",
				k, nodeStats(t, cl, c, readRepairs, 0, 1, 2), info)
		}
		res, err := cl.Get(ctx, []byte(k), client.R(2), client.Node(via.RPC))
		if err != nil && !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("quorum read of %s through %s: %v", k, via.ID, err)
		}
		var got []string
		for _, v := range res.Values {
			got = append(got, string(v))
		}
		if !slices.Equal(got, m.want[k]) {
			t.Fatalf("quorum read of %s through %s: %q, want %q", k, via.ID, got, m.want[k])
		}
		testutil.Eventually(t, 5*time.Second, fmt.Sprintf("%s repaired on node-3 after a read through %s", k, via.ID), func() (bool, string) {
			return sameCopies(cl, c, 0, 2, []string{k})
		})
	}
	if ok, why := holdsValues(cl, c, 2, m.want); !ok {
		t.Fatalf("node-3 after the reads: %s", why)
	}
	// One repair per stale key (counted by its coordinator once node-3
	// acknowledged it, a moment after node-3 shows it).
	testutil.Eventually(t, 5*time.Second, "one read repair counted per stale key", func() (bool, string) {
		repairs := nodeStats(t, cl, c, readRepairs, 0, 1, 2)
		return sumStats(repairs) == float64(len(m.missed)), fmt.Sprintf("read repairs per node %v, want %d in all", repairs, len(m.missed))
	})
	for _, f := range []figure{aeKeysReceived, transferKeysReceived} {
		if got := nodeStats(t, cl, c, f, 0, 1, 2); sumStats(got) != 0 {
			t.Errorf("%s per node = %v with anti-entropy off (and no ring change), want 0", f.name, got)
		}
	}
}

func sortedKeys(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// A fallback killed with SIGKILL and restarted before the home replica
// returns still delivers its hints: they are durable. Reference: Dynamo
// §4.6 (the hinted replica is kept in a separate local database).
func TestE2EHandoffFallbackRestart(t *testing.T) {
	c := startCluster(t, localcluster.Options{Nodes: 4, Args: []string{"--read-repair=false", "--anti-entropy=false"}})
	cl, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := ctxT(t, 2*time.Minute)
	st, err := cl.Status(ctx, client.Node(c.Nodes[0].RPC))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := ringOf(t, st)
	node3, node4 := ring.NodeID(c.Nodes[2].ID), ring.NodeID(c.Nodes[3].ID)

	// Keys with node-3 among their N=3 home replicas and node-4 the only
	// other node, so node-4 is their fallback while node-3 is down.
	want := map[string][]string{}
	for i := 0; len(want) < 60; i++ {
		key := fmt.Sprintf("fb-%d", i)
		home := r.Home(r.PartitionForKey([]byte(key)), 3)
		if slices.Contains(home, node3) && !slices.Contains(home, node4) {
			want[key] = []string{"v-" + key}
		}
	}

	if err := c.Kill(2); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConverged(ctx, 0, 1, 3); err != nil {
		t.Fatal(err)
	}
	writers, _ := c.Client(0, 1, 3)
	defer writers.Close()
	for key, v := range want {
		if _, err := writers.Put(ctx, []byte(key), []byte(v[0])); err != nil {
			t.Fatalf("put %s with node-3 down: %v", key, err)
		}
	}
	// The copies for node-3 reach node-4 in the background of the W=2 acks.
	testutil.Eventually(t, 10*time.Second, "node-4 holding a hint for node-3 per key", func() (bool, string) {
		info, err := selfInfo(ctx, cl, c, 3)
		if err != nil {
			return false, err.Error()
		}
		got := pendingHints(info, string(node3))
		return got == float64(len(want)), fmt.Sprintf("node-4 holds %v hints for node-3 (detail %v), want %d", got, info.Handoff.Pending, len(want))
	})

	// SIGKILL the fallback and restart it on its data directory while
	// node-3 is still down: its hints are still there.
	if err := c.Kill(3); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConverged(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(3); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConverged(ctx, 0, 1, 3); err != nil {
		t.Fatal(err)
	}
	info, err := selfInfo(ctx, cl, c, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := pendingHints(info, string(node3)); got != float64(len(want)) {
		t.Fatalf("after its kill -9 and restart node-4 holds %v hints for node-3 (detail %v), want %d", got, info.Handoff.Pending, len(want))
	}

	// node-3 returns; node-4 alone delivers.
	rejoined := time.Now()
	if err := c.Start(2); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConverged(ctx, 0, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 15*time.Second, "node-3 holding every key whose home set includes it", func() (bool, string) {
		return holdsValues(cl, c, 2, want)
	})
	t.Logf("node-3 received %d keys from a restarted fallback in %v", len(want), time.Since(rejoined).Round(time.Millisecond))
	testutil.Eventually(t, 5*time.Second, "node-4's hints acknowledged", func() (bool, string) {
		info, err := selfInfo(ctx, cl, c, 3)
		if err != nil {
			return false, err.Error()
		}
		return float64(info.Handoff.Replayed) == float64(len(want)) && pendingHints(info, string(node3)) == 0,
			fmt.Sprintf("node-4 replayed %v (want %d), pending %v", float64(info.Handoff.Replayed), len(want), info.Handoff.Pending)
	})
	// node-4 is no home replica of these keys: it drops its copies once
	// delivered.
	gone := map[string][]string{}
	for k := range want {
		gone[k] = nil
	}
	testutil.Eventually(t, 5*time.Second, "node-4 dropping its fallback copies", func() (bool, string) {
		return holdsValues(cl, c, 3, gone)
	})
}

// A write that reached only a fallback survives the home replica's return
// with an older version, and two concurrent versions stay siblings.
// Reference: Dynamo §4.6 (hinted handoff) and §4.4 (a replay merges by
// version: a newer version subsumes the old, concurrent ones are kept).
func TestE2EHandoffReplayMergesVersions(t *testing.T) {
	c := startCluster(t, localcluster.Options{Nodes: 3, Args: []string{"--read-repair=false", "--anti-entropy=false"}})
	cl, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := ctxT(t, 2*time.Minute)
	st, err := cl.Status(ctx, client.Node(c.Nodes[0].RPC))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := ringOf(t, st)
	node3 := ring.NodeID(c.Nodes[2].ID)
	n1 := c.Nodes[0].RPC
	one := []client.Option{client.N(1), client.W(1), client.R(1), client.Node(n1)}

	// Keys whose single home replica (N=1) is node-3: A keys get an update
	// with context, B keys a blind write, while node-3 is down.
	var keysA, keysB []string
	for i := 0; len(keysA)+len(keysB) < 6; i++ {
		key := fmt.Sprintf("solo-%d", i)
		if home := r.Home(r.PartitionForKey([]byte(key)), 1); len(home) == 1 && home[0] == node3 {
			if len(keysA) <= len(keysB) {
				keysA = append(keysA, key)
			} else {
				keysB = append(keysB, key)
			}
		}
	}
	contexts := map[string]client.Context{}
	for _, key := range append(slices.Clone(keysA), keysB...) {
		if _, err := cl.Put(ctx, []byte(key), []byte("v1"), one...); err != nil {
			t.Fatalf("put v1 of %s at N=1: %v", key, err)
		}
		res, err := cl.Get(ctx, []byte(key), one...)
		if err != nil || string(res.Value()) != "v1" {
			t.Fatalf("read v1 of %s at N=1: %v %q", key, err, res.Values)
		}
		contexts[key] = res.Context
		// N=1: node-3 holds it, node-1 does not.
		if got, err := storedValues(ctx, cl, c.Nodes[2].RPC, key); err != nil || !slices.Equal(got, []string{"v1"}) {
			t.Fatalf("node-3's copy of %s: %v %q, want [v1]", key, err, got)
		}
		if got, err := storedValues(ctx, cl, n1, key); err != nil || got != nil {
			t.Fatalf("node-1 holds %s = %q (%v), want nothing at N=1", key, got, err)
		}
	}

	if err := c.Kill(2); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConverged(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	// Through node-1, which stands in for node-3: v2 superseding v1 (with
	// the context read before the kill) for A, v2 blind for B.
	for _, key := range keysA {
		if _, err := cl.Put(ctx, []byte(key), []byte("v2"), append(one, client.WithContext(contexts[key]))...); err != nil {
			t.Fatalf("put v2 of %s with context while its home is down: %v", key, err)
		}
	}
	for _, key := range keysB {
		if _, err := cl.Put(ctx, []byte(key), []byte("v2"), one...); err != nil {
			t.Fatalf("blind put v2 of %s while its home is down: %v", key, err)
		}
	}
	info, err := selfInfo(ctx, cl, c, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := pendingHints(info, string(node3)); got != 6 {
		t.Fatalf("node-1 holds %v hints for node-3 (detail %v), want 6", got, info.Handoff.Pending)
	}

	// node-3 returns with v1 of every key; the replay must not lose v2.
	restartNode3(t, c)
	want := map[string][]string{}
	for _, key := range keysA {
		want[key] = []string{"v2"}
	}
	for _, key := range keysB {
		want[key] = []string{"v1", "v2"}
	}
	testutil.Eventually(t, 10*time.Second, "node-3 holding v2 for A keys and siblings v1, v2 for B keys", func() (bool, string) {
		return holdsValues(cl, c, 2, want)
	})
	// Exactly: v2 superseded v1 on node-3 (no tombstone, no leftover).
	for _, key := range keysA {
		res, err := cl.Get(ctx, []byte(key), client.Local(), client.Node(c.Nodes[2].RPC), client.IncludeTombstones())
		if err != nil || len(res.Siblings) != 1 || string(res.Siblings[0].Value) != "v2" {
			t.Fatalf("node-3's copy of %s after the replay: %v %+v, want only v2", key, err, res.Siblings)
		}
	}
	// A read at N=1 through any node sees the same.
	for i := range c.Nodes {
		for key, w := range want {
			res, err := cl.Get(ctx, []byte(key), client.N(1), client.R(1), client.Node(c.Nodes[i].RPC))
			var got []string
			if res != nil {
				for _, v := range res.Values {
					got = append(got, string(v))
				}
			}
			slices.Sort(got)
			if err != nil || !slices.Equal(got, w) {
				t.Fatalf("read of %s at N=1 through %s: %v %q, want %q", key, c.Nodes[i].ID, err, got, w)
			}
		}
	}
	if got := nodeStats(t, cl, c, hintsReplayed, 0); got[0] != 6 {
		t.Errorf("node-1 replayed %v hints, want 6", got[0])
	}
}
