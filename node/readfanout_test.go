package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/antientropy"
	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/testutil"
	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/version"
)

// TestReadOrder: the data replica first, then the others from the key's
// rotation in plan order; every target once.
func TestReadOrder(t *testing.T) {
	for _, tc := range []struct {
		n, data int
		h       uint64
		want    []uint8
	}{
		{3, 0, 0, []uint8{0, 1, 2}},
		{3, 0, 1, []uint8{0, 1, 2}}, // rotation at 1: 1, 2, (0)
		{3, 0, 2, []uint8{0, 2, 1}}, // rotation at 2: 2, (0), 1
		{3, 1, 0, []uint8{1, 0, 2}},
		{3, 1, 2, []uint8{1, 2, 0}},
		{3, 2, 4, []uint8{2, 1, 0}}, // 4 % 3 = 1: 1, (2), 0
		{1, 0, 7, []uint8{0}},
		{5, 3, 3, []uint8{3, 4, 0, 1, 2}},
	} {
		if got := readOrder(nil, tc.n, tc.data, tc.h); !slices.Equal(got, tc.want) {
			t.Errorf("readOrder(n=%d, data=%d, h=%d) = %v, want %v", tc.n, tc.data, tc.h, got, tc.want)
		}
	}
}

// served counts the replica reads one node serves, and can make it slow
// or failing (its testServe hook).
type served struct {
	gets, digests, batches, batchKeys atomic.Int64
	// act, when set, runs for every replica read; what it returns is the
	// answer (nil: serve it).
	act atomic.Pointer[func() error]
}

func (s *served) total() int64 { return s.gets.Load() + s.batchKeys.Load() }

// serveCounter counts nd's replica reads from now on.
func serveCounter(nd *Node) *served {
	s := &served{}
	hook := s.hook(nil)
	nd.testServe.Store(&hook)
	return s
}

// refuseKinds makes nd answer the given kinds with an error (those of
// anti-entropy and hinted handoff, to keep them from repairing what a test
// wants only read repair to repair); its replica reads are counted in the
// served it returns.
func refuseKinds(nd *Node, kinds []wire.Kind) *served {
	s := &served{}
	hook := s.hook(kinds)
	nd.testServe.Store(&hook)
	return s
}

// hook is a testServe hook that refuses kinds and counts replica reads.
func (s *served) hook(refuse []wire.Kind) func(wire.Kind, []byte) error {
	return func(kind wire.Kind, payload []byte) error {
		switch {
		case slices.Contains(refuse, kind):
			return wire.Errorf(wire.CodeUnavailable, "test: kind %d refused", kind)
		case kind == proto.KindReplicaGet:
			var req proto.ReplicaGet
			if err := req.DecodeMsgpack(payload); err == nil && req.Digest {
				s.digests.Add(1)
			}
			s.gets.Add(1)
		case kind == proto.KindReplicaGetBatch:
			var req proto.ReplicaGetBatch
			if err := req.DecodeMsgpack(payload); err == nil {
				s.batchKeys.Add(int64(len(req.Keys)))
			}
			s.batches.Add(1)
		default:
			return nil
		}
		if act := s.act.Load(); act != nil {
			return (*act)()
		}
		return nil
	}
}

// repairKinds are the request kinds with which anti-entropy and hinted
// handoff bring a replica data.
func repairKinds(nd *Node) []wire.Kind {
	var ks []wire.Kind
	for _, k := range nd.ae.Kinds() {
		ks = append(ks, wire.Kind(k))
	}
	for _, k := range nd.handoff.Kinds() {
		ks = append(ks, wire.Kind(k))
	}
	return ks
}

// fanoutConfig: anti-entropy rounds every 200 ms, so the start-up's
// rejoin window (two rounds) closes soon; no sampled reads, so that a
// test sees exactly the reads it makes.
func fanoutConfig(c *Config) {
	c.AEInterval = 200 * time.Millisecond
	c.ReadRepairChance = 0
}

// fanouts is how many reads nd counted with each reason.
func fanouts(nd *Node) map[string]float64 {
	out := map[string]float64{}
	for r := range nFanoutReasons {
		if v := counterValue(nd.metrics.readFanout[r]); v > 0 {
			out[r.String()] = v
		}
	}
	return out
}

// waitSteady waits until a read coordinated by nd asks R replicas.
func waitSteady(t *testing.T, nd *Node) {
	t.Helper()
	ctx := ctxFor(t)
	testutil.Eventually(t, 20*time.Second, string(nd.ID())+"'s reads asking R replicas", func() (bool, string) {
		before := counterValue(nd.metrics.readFanout[fanoutQuorum])
		if _, err := nd.Get(ctx, &proto.GetRequest{Key: []byte("probe")}); err != nil {
			return false, err.Error()
		}
		return counterValue(nd.metrics.readFanout[fanoutQuorum]) > before, fmt.Sprint(fanouts(nd))
	})
}

// digestPeer is the replica nd asks for key's digest in steady state
// (N=3, R=2, nd a replica).
func digestPeer(nd *Node, key []byte) ring.NodeID {
	v := nd.view.Load()
	pl := nd.plan(v, v.ring.PartitionForKey(key), nd.cfg.N, false, false)
	self := slices.IndexFunc(pl.targets, func(t target) bool { return t.id == nd.self })
	return pl.targets[readOrder(nil, len(pl.targets), max(self, 0), ring.KeyHash(key))[1]].id
}

// putAll writes keys at W=3, so every replica holds them.
func putAll(t *testing.T, nd *Node, prefix string, k int) [][]byte {
	t.Helper()
	ctx := ctxFor(t)
	var keys [][]byte
	for i := range k {
		key := []byte(fmt.Sprint(prefix, i))
		if _, err := nd.Put(ctx, &proto.PutRequest{Key: key, Value: []byte("v-" + string(key)), W: 3}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
		keys = append(keys, key)
	}
	return keys
}

// checkGet reads key through nd and checks the one value putAll wrote.
func checkGet(t *testing.T, ctx context.Context, nd *Node, key []byte) *proto.GetReply {
	t.Helper()
	rep, err := nd.Get(ctx, &proto.GetRequest{Key: key})
	if err != nil || !rep.Found || len(rep.Siblings) != 1 || string(rep.Siblings[0].Value) != "v-"+string(key) {
		t.Fatalf("get %s through %s: %v %+v", key, nd.ID(), err, rep)
	}
	return rep
}

// TestQuorumReadsAskR: in steady state (N=3, R=2, nothing suspect) a read
// coordinated at a replica asks exactly one other replica, for a digest,
// and both others serve about half of the keys; a pipeline's reads send
// one batch per replica with one digest per key in all; an R=1 read asks
// no one; the answers are right. Reference: Dynamo §4.5 (a read waits for
// R responses); Cassandra 4 asks only the replicas the consistency level
// needs.
func TestQuorumReadsAskR(t *testing.T) {
	tc := startCluster(t, 3, fanoutConfig)
	ctx := ctxFor(t)
	n1 := tc.nodes[0]
	keys := putAll(t, n1, "q", 60)
	waitSteady(t, n1)
	s2, s3 := serveCounter(tc.nodes[1]), serveCounter(tc.nodes[2])
	before := fanouts(n1)

	for _, key := range keys {
		if rep := checkGet(t, ctx, n1, key); rep.Replies != 2 {
			t.Fatalf("get %s: %d replies, want R=2", key, rep.Replies)
		}
	}
	after := fanouts(n1)
	if q := after["steady"] - before["steady"]; q != float64(len(keys)) {
		t.Fatalf("%v reads counted fan-out quorum of %d; fan-outs before %v, after %v", q, len(keys), before, after)
	}
	// Exactly one replica read per GET, a digest, and the rotation spreads
	// them: each peer serves the keys it is the digest replica of.
	want2 := 0
	for _, key := range keys {
		if digestPeer(n1, key) == "n2" {
			want2++
		}
	}
	got2, got3 := s2.gets.Load(), s3.gets.Load()
	if got2+got3 != int64(len(keys)) || s2.digests.Load()+s3.digests.Load() != int64(len(keys)) {
		t.Fatalf("%d GETs sent n2 %d replica reads (%d digests) and n3 %d (%d digests); want %d digest reads in all",
			len(keys), got2, s2.digests.Load(), got3, s3.digests.Load(), len(keys))
	}
	if got2 != int64(want2) || want2 == 0 || want2 == len(keys) {
		t.Fatalf("n2 served %d digest reads, n3 %d; the key rotation gives n2 %d of %d", got2, got3, want2, len(keys))
	}

	// A pipeline (GetMany): one batch per peer, one digest per key.
	var reqs []*proto.GetRequest
	for _, key := range keys {
		reqs = append(reqs, &proto.GetRequest{Key: key})
	}
	replies, errs := n1.GetMany(ctx, reqs)
	for i, key := range keys {
		if errs[i] != nil || len(replies[i].Siblings) != 1 || string(replies[i].Siblings[0].Value) != "v-"+string(key) {
			t.Fatalf("GetMany %s: %v %+v", key, errs[i], replies[i])
		}
	}
	if b2, b3, k := s2.batches.Load(), s3.batches.Load(), s2.batchKeys.Load()+s3.batchKeys.Load(); b2 != 1 || b3 != 1 || k != int64(len(keys)) {
		t.Fatalf("GetMany of %d keys: n2 %d batches, n3 %d, %d keys in all; want one each, %d keys", len(keys), b2, b3, k, len(keys))
	}
	if got := s2.gets.Load() + s3.gets.Load(); got != int64(len(keys)) {
		t.Fatalf("GetMany sent %d single replica reads besides its batches", got-int64(len(keys)))
	}

	// R=1 at a replica: its own copy is the quorum.
	for _, key := range keys[:10] {
		rep, err := n1.Get(ctx, &proto.GetRequest{Key: key, R: 1})
		if err != nil || rep.Replies != 1 || string(rep.Siblings[0].Value) != "v-"+string(key) {
			t.Fatalf("R=1 get %s: %v %+v", key, err, rep)
		}
	}
	if got := s2.total() + s3.total(); got != 2*int64(len(keys)) {
		t.Fatalf("R=1 reads sent %d replica reads, want none", got-2*int64(len(keys)))
	}
	// R=3 needs every one.
	if rep, err := n1.Get(ctx, &proto.GetRequest{Key: keys[0], R: 3}); err != nil || rep.Replies != 3 {
		t.Fatalf("R=3 get: %v %+v", err, rep)
	}
	if got := fanouts(n1)["r"] - after["r"]; got != 1 {
		t.Fatalf("an R=3 read counted %v times with reason r", got)
	}
}

// TestQuorumReadsFromANonReplica: a coordinator that holds no copy reads
// the first target whole and one other replica's digest.
func TestQuorumReadsFromANonReplica(t *testing.T) {
	tc := startCluster(t, 4, fanoutConfig)
	ctx := ctxFor(t)
	n4 := tc.nodes[3]
	var keys [][]byte
	v := n4.view.Load()
	for i := 0; len(keys) < 20; i++ {
		key := []byte(fmt.Sprint("nr", i))
		if !v.ring.IsHome(v.ring.PartitionForKey(key), 3, "n4") {
			keys = append(keys, key)
		}
	}
	for _, key := range keys {
		if _, err := tc.nodes[0].Put(ctx, &proto.PutRequest{Key: key, Value: []byte("v-" + string(key)), W: 3}); err != nil {
			t.Fatal(err)
		}
	}
	waitSteady(t, n4)
	var ss []*served
	for _, nd := range tc.nodes[:3] {
		ss = append(ss, serveCounter(nd))
	}
	for _, key := range keys {
		if rep := checkGet(t, ctx, n4, key); rep.Replies != 2 {
			t.Fatalf("get %s through a non-replica: %d replies, want 2", key, rep.Replies)
		}
	}
	var gets, digests int64
	for _, s := range ss {
		gets += s.gets.Load()
		digests += s.digests.Load()
	}
	if gets != 2*int64(len(keys)) || digests != int64(len(keys)) {
		t.Fatalf("%d reads through a non-replica sent %d replica reads, %d of them digests; want %d and %d", len(keys), gets, digests, 2*len(keys), len(keys))
	}
}

// onTwo writes 20 keys (prefix0, prefix1, ...) to n1's and n2's stores
// only, as writes a third replica missed.
func onTwo(t *testing.T, n1, n2 *Node, prefix string) [][]byte {
	t.Helper()
	var keys [][]byte
	for i := range 20 {
		key := []byte(fmt.Sprint(prefix, i))
		o, err := n1.store.Put(storePut(key, "v-"+string(key), nil))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := n2.store.Merge(key, o); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	return keys
}

// someDigestVia fails the test unless nd would ask peer for the digest of
// one of keys at least: without a guard those reads would not reach the
// third replica, so a test of the guard could not pass without it.
func someDigestVia(t *testing.T, nd *Node, keys [][]byte, peer ring.NodeID) {
	t.Helper()
	for _, key := range keys {
		if digestPeer(nd, key) == peer {
			return
		}
	}
	t.Fatalf("no key has %s for its digest replica: the test would pass without the guard", peer)
}

// readRepairOnly starts three nodes that refuse anti-entropy's and hinted
// handoff's requests, so that only read repair can bring a replica data,
// and waits until n1's reads ask R replicas.
func readRepairOnly(t *testing.T) (ctx context.Context, n1, n2, n3 *Node) {
	tc := startCluster(t, 3, fanoutConfig)
	for _, nd := range tc.nodes {
		refuseKinds(nd, repairKinds(nd))
	}
	waitSteady(t, tc.nodes[0])
	return ctxFor(t), tc.nodes[0], tc.nodes[1], tc.nodes[2]
}

// TestReadsAskAllWhileHintsAreHeld: a coordinator that holds hints for a
// replica asks every replica, so reads repair that replica wherever it is
// not the digest replica the key would choose. Anti-entropy and hint
// delivery are refused, so only read repair can bring n3 the keys.
// Reference: Dynamo §4.5 (read repair).
func TestReadsAskAllWhileHintsAreHeld(t *testing.T) {
	ctx, n1, n2, n3 := readRepairOnly(t)
	// The keys are on n1 and n2 only; n1 holds a hint for n3.
	keys := onTwo(t, n1, n2, "h")
	someDigestVia(t, n1, keys, "n2")
	o, _ := n1.store.Get(keys[0])
	if err := n1.handoff.Add("n3", []byte("hinted"), o); err != nil {
		t.Fatal(err)
	}
	before := fanouts(n1)
	for _, key := range keys {
		checkGet(t, ctx, n1, key)
	}
	if got := fanouts(n1)["hints"] - before["hints"]; got != float64(len(keys)) {
		t.Fatalf("%v of %d reads counted fan-out all for hints; fan-outs %v", got, len(keys), fanouts(n1))
	}
	waitHolds(t, n3, keys)
}

// waitHolds waits until nd's own copy of every key (as `get --local`
// reads it) is the one value putAll or the test wrote.
func waitHolds(t *testing.T, nd *Node, keys [][]byte) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, fmt.Sprintf("%s holding all %d keys", nd.ID(), len(keys)), func() (bool, string) {
		for _, key := range keys {
			rep, err := nd.Get(context.Background(), &proto.GetRequest{Key: key, Local: true})
			if err != nil || len(rep.Siblings) != 1 || string(rep.Siblings[0].Value) != "v-"+string(key) {
				return false, fmt.Sprintf("%s: %v %+v", key, err, rep)
			}
		}
		return true, ""
	})
}

// TestReadsAskAllAfterARejoin: once a node is seen back (the rejoin hook
// the gossip events run), reads everywhere ask every replica and repair
// it, for rejoinWindow; then they ask R again. Anti-entropy and hints are
// refused, as above. The real restart is TestReadsRepairARestartedNode.
func TestReadsAskAllAfterARejoin(t *testing.T) {
	ctx, n1, n2, n3 := readRepairOnly(t)
	keys := onTwo(t, n1, n2, "rj")
	n1.noteRejoin("n3")
	before := fanouts(n1)
	for _, key := range keys {
		checkGet(t, ctx, n1, key)
	}
	if got := fanouts(n1)["rejoin"] - before["rejoin"]; got != float64(len(keys)) {
		t.Fatalf("%v of %d reads counted fan-out all for a rejoin; fan-outs %v", got, len(keys), fanouts(n1))
	}
	waitHolds(t, n3, keys)
	// After the window, steady state again, and the entry is gone.
	waitSteady(t, n1)
	if m := n1.rejoins.at.Load(); m != nil {
		t.Fatalf("rejoin entries left after the window: %v", *m)
	}
}

// TestReadsRepairARestartedNode: the rejoin story (docs/design.md T0-T5)
// in process. n3 is stopped; keys are written to n1 and n2 behind the
// cluster's back (no hints); n3 restarts; reads through n1 ask every
// replica and repair n3, including the keys whose digest replica would be
// n2. Anti-entropy is off, so only read repair can; its rejoin window is
// then the hint window, shortened here so that the start-up's closes
// before n3 stops.
func TestReadsRepairARestartedNode(t *testing.T) {
	tc := startCluster(t, 3, func(c *Config) {
		fanoutConfig(c)
		c.AntiEntropy = false
		c.HintWindow = 6 * time.Second
	})
	ctx := ctxFor(t)
	n1, n2 := tc.nodes[0], tc.nodes[1]
	waitSteady(t, n1)
	cfg := tc.cfgs[2]
	cfg.RPC, cfg.Gossip = tc.nodes[2].RPCAddr(), tc.nodes[2].GossipAddr()
	cfg.HTTP = ""
	cfg.Join = []string{n1.GossipAddr()}
	tc.nodes[2].Close()
	tc.nodes[2] = nil
	testutil.Eventually(t, 15*time.Second, "n3 seen dead", func() (bool, string) {
		return !n1.alive("n3") && !n2.alive("n3"), "n3 still alive"
	})
	keys := onTwo(t, n1, n2, "rs")
	n3, err := New(cfg, testLogger(t, cfg.ID))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n3.Close() })
	tc.nodes[2] = n3
	tc.waitRing(3)
	someDigestVia(t, n1, keys, "n2")
	before := fanouts(n1)
	for _, key := range keys {
		checkGet(t, ctx, n1, key)
	}
	if got := fanouts(n1)["rejoin"] - before["rejoin"]; got != float64(len(keys)) {
		t.Fatalf("%v of %d reads right after n3's restart counted fan-out all for a rejoin; fan-outs %v", got, len(keys), fanouts(n1))
	}
	waitHolds(t, n3, keys)
}

// TestSlowReplicaIsRetried: a replica that does not answer (its replica
// read handler held) does not hold the reads whose digest replica it is:
// after read-retry-after they ask the third replica, for a single read
// and a pipeline alike.
func TestSlowReplicaIsRetried(t *testing.T) {
	tc := startCluster(t, 3, func(c *Config) {
		fanoutConfig(c)
		c.ReadRetryAfter = 20 * time.Millisecond
	})
	ctx := ctxFor(t)
	n1 := tc.nodes[0]
	keys := putAll(t, n1, "s", 20)
	waitSteady(t, n1)
	slowKeys := 0
	for _, key := range keys {
		if digestPeer(n1, key) == "n2" {
			slowKeys++
		}
	}
	if slowKeys == 0 {
		t.Fatal("no key has n2 for its digest replica")
	}
	release := make(chan struct{})
	var once sync.Once
	// Registered after the cluster's cleanups, so it runs before them:
	// the held reads are answered before the nodes close.
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	s2 := serveCounter(tc.nodes[1])
	hold := func() error { <-release; return nil }
	s2.act.Store(&hold)
	retriesBefore := counterValue(n1.metrics.readRetries[retrySlow])

	for _, key := range keys {
		start := time.Now()
		checkGet(t, ctx, n1, key)
		if took := time.Since(start); took > time.Second {
			t.Fatalf("get %s took %v with n2 not answering (timeout %v)", key, took, n1.cfg.Timeout)
		}
	}
	if got := counterValue(n1.metrics.readRetries[retrySlow]) - retriesBefore; got != float64(slowKeys) {
		t.Fatalf("%v slow retries, want one for each of the %d keys whose digest replica is n2", got, slowKeys)
	}
	getManyWithin(t, ctx, n1, keys, "with n2 not answering")
	if got := counterValue(n1.metrics.readRetries[retrySlow]) - retriesBefore; got != 2*float64(slowKeys) {
		t.Fatalf("%v slow retries after the pipeline, want %d", got, 2*slowKeys)
	}
}

// getManyWithin reads keys through nd in one GetMany, which must answer
// each with the one value putAll wrote, within a second (while, says
// what is wrong with a peer).
func getManyWithin(t *testing.T, ctx context.Context, nd *Node, keys [][]byte, while string) {
	t.Helper()
	var reqs []*proto.GetRequest
	for _, key := range keys {
		reqs = append(reqs, &proto.GetRequest{Key: key})
	}
	start := time.Now()
	replies, errs := nd.GetMany(ctx, reqs)
	if took := time.Since(start); took > time.Second {
		t.Fatalf("GetMany of %d keys took %v %s", len(keys), took, while)
	}
	for i, key := range keys {
		if errs[i] != nil || len(replies[i].Siblings) != 1 || string(replies[i].Siblings[0].Value) != "v-"+string(key) {
			t.Fatalf("GetMany %s: %v %+v", key, errs[i], replies[i])
		}
	}
}

// TestFailingReplicaIsReplaced: a replica that answers reads with an error
// is replaced at once by the third (read-retry-after is far beyond the
// request timeout here, so no speculative retry can be what answers).
func TestFailingReplicaIsReplaced(t *testing.T) {
	tc := startCluster(t, 3, func(c *Config) {
		fanoutConfig(c)
		c.ReadRetryAfter = time.Hour
	})
	ctx := ctxFor(t)
	n1 := tc.nodes[0]
	keys := putAll(t, n1, "f", 20)
	waitSteady(t, n1)
	failKeys := 0
	for _, key := range keys {
		if digestPeer(n1, key) == "n2" {
			failKeys++
		}
	}
	s2 := serveCounter(tc.nodes[1])
	fail := func() error { return errors.New("test: disk on fire") }
	s2.act.Store(&fail)
	before := counterValue(n1.metrics.readRetries[retryError])
	for _, key := range keys {
		start := time.Now()
		checkGet(t, ctx, n1, key)
		if took := time.Since(start); took > time.Second {
			t.Fatalf("get %s took %v with n2 failing reads", key, took)
		}
	}
	if got := counterValue(n1.metrics.readRetries[retryError]) - before; got != float64(failKeys) || failKeys == 0 {
		t.Fatalf("%v replacements, want one for each of the %d keys whose digest replica is n2", got, failKeys)
	}
	getManyWithin(t, ctx, n1, keys, "with n2 failing reads")
	if got := counterValue(n1.metrics.readRetries[retryError]) - before; got != 2*float64(failKeys) {
		t.Fatalf("%v replacements after the pipeline, want %d", got, 2*failKeys)
	}
	// With both peers failing, R=2 cannot be met: a quorum error that says
	// all three were asked, not a timeout.
	s3 := serveCounter(tc.nodes[2])
	s3.act.Store(&fail)
	_, err := n1.Get(ctx, &proto.GetRequest{Key: keys[0]})
	var qe *QuorumError
	if !errors.As(err, &qe) || qe.Timeout || qe.Asked != 3 || qe.Acked != 1 {
		t.Fatalf("get with both peers failing: %v", err)
	}
}

// TestReadRepairChanceOneAsksAll: read-repair-chance 1 is the old
// behaviour: every read asks every replica.
func TestReadRepairChanceOneAsksAll(t *testing.T) {
	tc := startCluster(t, 3, func(c *Config) {
		fanoutConfig(c)
		c.ReadRepairChance = 1
	})
	ctx := ctxFor(t)
	n1 := tc.nodes[0]
	keys := putAll(t, n1, "c", 10)
	// Past the start-up's window: sampled, not a rejoin.
	testutil.Eventually(t, 20*time.Second, "reads sampled", func() (bool, string) {
		before := fanouts(n1)["sample"]
		checkGet(t, ctx, n1, keys[0])
		return fanouts(n1)["sample"] > before, fmt.Sprint(fanouts(n1))
	})
	s2, s3 := serveCounter(tc.nodes[1]), serveCounter(tc.nodes[2])
	for _, key := range keys {
		checkGet(t, ctx, n1, key)
	}
	// The read answers at R; the third replica's digest read is served a
	// moment later.
	testutil.Eventually(t, 5*time.Second, "both peers asked by every read", func() (bool, string) {
		got := s2.gets.Load() + s3.gets.Load()
		return got == 2*int64(len(keys)), fmt.Sprintf("%d reads sent %d replica reads, want %d", len(keys), got, 2*len(keys))
	})
	// And a stale replica is repaired by any read, as before.
	key := []byte("stale")
	o, err := n1.store.Put(storePut(key, "v-stale", nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tc.nodes[1].store.Merge(key, o); err != nil {
		t.Fatal(err)
	}
	checkGet(t, ctx, n1, key)
	waitHolds(t, tc.nodes[2], [][]byte{key})
}

// TestFirstSightIsNotARejoin: peers seen for the first time since this
// node started (a cluster starting together) are suspect only while
// anti-entropy's first exchanges with them last, not for two anti-entropy
// intervals, so reads ask R replicas soon after the start; a peer seen
// again after being away keeps the whole window.
func TestFirstSightIsNotARejoin(t *testing.T) {
	tc := startCluster(t, 3, func(c *Config) {
		c.AEInterval = time.Hour // a rejoin's window: two hours
		c.ReadRepairChance = 0
	})
	n1 := tc.nodes[0]
	start := time.Now()
	waitSteady(t, n1) // within waitSteady's 20 s, far under the window
	t.Logf("reads ask R replicas %v after the cluster started", time.Since(start).Round(time.Millisecond))
	n1.noteRejoin(tc.nodes[2].ID())
	if !n1.rejoinedLately(tc.nodes[2].ID()) {
		t.Fatal("a rejoined peer is not suspect")
	}
	// A later first sighting does not cut a rejoin's window short.
	n1.noteFirstSight(tc.nodes[2].ID())
	if e := (*n1.rejoins.at.Load())[tc.nodes[2].ID()]; e.first || !n1.rejoinedLately(tc.nodes[2].ID()) {
		t.Fatal("a first sighting replaced a rejoin's entry")
	}
}

// TestGatherAgree: finish skips its merge only when every answer that
// came carries the same versions; an absent copy, a digest of other
// versions, or another data copy sends it down the repair path; errors
// are not answers.
func TestGatherAgree(t *testing.T) {
	key := []byte("k")
	a, _ := version.Update(nil, nil, version.NewActor("n1", "e"), []byte("a"), false, 1)
	b, _ := version.Update(a, a.Context, version.NewActor("n2", "e"), []byte("b"), false, 2)
	data := func(o *version.Object) readResult { return readResult{obj: o} }
	digest := func(o *version.Object) readResult {
		return readResult{digestReq: true, digested: true, digest: antientropy.LeafHash(key, o)}
	}
	failed := readResult{err: errors.New("down")}
	for _, tc := range []struct {
		name string
		got  []readResult
		want bool
	}{
		{"data and a matching digest", []readResult{data(a), digest(a)}, true},
		{"an error besides", []readResult{failed, data(a), digest(a)}, true},
		{"all absent", []readResult{data(nil), data(nil)}, true},
		{"a digest of other versions", []readResult{data(a), digest(b)}, false},
		{"an absent copy", []readResult{data(a), data(nil)}, false},
		{"two data copies that differ", []readResult{data(b), data(a)}, false},
	} {
		g := &readGather{key: key, got: tc.got}
		if got := g.agree(); got != tc.want {
			t.Errorf("%s: agree = %v, want %v", tc.name, got, tc.want)
		}
	}
}
