package node

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/testutil"
	"github.com/mnemo-kv/mnemo/version"
)

// TestPutManyReplicates: a batch of puts, a key repeated in it, lands on
// every replica as the puts one by one would: each replica holds the last
// write of each key, with no sibling left by the first.
// Reference: Dynamo §4.5 (writes acknowledged by W replicas).
func TestPutManyReplicates(t *testing.T) {
	tc := startCluster(t, 3, nil)
	ctx := ctxFor(t)
	var reqs []*proto.PutRequest
	for i := range 40 {
		reqs = append(reqs, &proto.PutRequest{Key: []byte(fmt.Sprint("k", i)), Value: []byte(fmt.Sprint("v", i)), Overwrite: true})
	}
	reqs = append(reqs, &proto.PutRequest{Key: []byte("k3"), Value: []byte("again"), Overwrite: true})
	reqs = append(reqs, &proto.PutRequest{Key: nil, Value: []byte("no key")})
	replies, errs := tc.nodes[0].PutMany(ctx, reqs)
	for i := range 41 {
		if errs[i] != nil || replies[i] == nil || replies[i].Acks < 2 {
			t.Fatalf("put %d: %v (reply %+v)", i, errs[i], replies[i])
		}
	}
	if errs[41] == nil {
		t.Fatalf("a put without a key succeeded")
	}
	for c := range 3 {
		cl := tc.client(c)
		for i := range 40 {
			want := fmt.Sprint("v", i)
			if i == 3 {
				want = "again"
			}
			res, err := cl.Get(ctx, []byte(fmt.Sprint("k", i)), client.Local())
			if err != nil || len(res.Values) != 1 || string(res.Value()) != want {
				t.Fatalf("n%d's copy of k%d: %v %q, want [%s]", c+1, i, err, res.Values, want)
			}
		}
	}
}

// TestPutManyQuorumFailure: with one of three replicas down, every put of
// a batch at W=3 fails with a QuorumError that says 2 of 2 acknowledged,
// and the coordinator keeps hints for the dead one.
func TestPutManyQuorumFailure(t *testing.T) {
	tc := startCluster(t, 3, nil)
	ctx := ctxFor(t)
	tc.nodes[2].Close()
	tc.nodes[2] = nil
	testutil.Eventually(t, 15*time.Second, "n3 seen dead", func() (bool, string) {
		return !tc.nodes[0].alive("n3"), "still alive"
	})
	reqs := []*proto.PutRequest{{Key: []byte("a"), Value: []byte("1"), W: 3}, {Key: []byte("b"), Value: []byte("2"), W: 3}}
	_, errs := tc.nodes[0].PutMany(ctx, reqs)
	for i, err := range errs {
		var qe *QuorumError
		if !errors.As(err, &qe) || qe.Acked != 2 || qe.Asked != 2 || qe.Needed != 3 {
			t.Fatalf("put %d at W=3 with 1 of 3 down: %v", i, err)
		}
	}
	if st := tc.nodes[0].handoff.Stats(); st.Pending["n3"] < 2 {
		t.Fatalf("hints pending %v, want both puts for n3", st.Pending)
	}
}

// TestDigestReadFindsNewerReplica: the coordinator reads its own copy
// whole and the others' digests. When its copy is the stale one, a
// replica's digest differs, that replica is read whole, and the quorum
// read answers the newer value; read repair then brings the coordinator's
// copy up to date.
// Reference: Dynamo §4.5; Cassandra's digest reads.
func TestDigestReadFindsNewerReplica(t *testing.T) {
	tc := startCluster(t, 3, nil)
	ctx := ctxFor(t)
	key := []byte("dr")
	if _, err := tc.client(0).Put(ctx, key, []byte("old"), client.W(3)); err != nil {
		t.Fatal(err)
	}
	res, _ := tc.client(0).Get(ctx, key)
	// Newer data on n2 and n3 only: n1, the coordinator below, is stale.
	newer, err := tc.nodes[1].store.Put(storePut(key, "new", res.Context))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tc.nodes[2].store.Merge(key, newer); err != nil {
		t.Fatal(err)
	}
	got, err := tc.client(0).Get(ctx, key, client.R(2))
	if err != nil || string(got.Value()) != "new" {
		t.Fatalf("R=2 read through the stale node: %v %q, want new", err, got.Values)
	}
	testutil.Eventually(t, 5*time.Second, "n1 repaired", func() (bool, string) {
		o, err := tc.nodes[0].store.Get(key)
		if err != nil {
			return false, err.Error()
		}
		return len(o.Siblings) == 1 && string(o.Siblings[0].Value) == "new", fmt.Sprintf("%q", values(o))
	})
}

func values(o *version.Object) []string {
	var out []string
	if o != nil {
		for _, s := range o.Siblings {
			out = append(out, string(s.Value))
		}
	}
	return out
}

// TestGetManyAsGets: a batch of reads answers each key as Get would: the
// newest value even where this node's copy is stale (its replicas'
// digests differ, so they are read whole), not found for a missing key.
func TestGetManyAsGets(t *testing.T) {
	tc := startCluster(t, 3, nil)
	ctx := ctxFor(t)
	var reqs []*proto.PutRequest
	for i := range 20 {
		reqs = append(reqs, &proto.PutRequest{Key: []byte(fmt.Sprint("g", i)), Value: []byte(fmt.Sprint("v", i)), Overwrite: true, W: 3})
	}
	if _, errs := tc.nodes[0].PutMany(ctx, reqs); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	res, _ := tc.client(0).Get(ctx, []byte("g7"))
	newer, err := tc.nodes[1].store.Put(storePut([]byte("g7"), "new", res.Context))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tc.nodes[2].store.Merge([]byte("g7"), newer); err != nil {
		t.Fatal(err)
	}
	var gets []*proto.GetRequest
	for i := range 20 {
		gets = append(gets, &proto.GetRequest{Key: []byte(fmt.Sprint("g", i)), Mode: proto.ModeLWW})
	}
	gets = append(gets, &proto.GetRequest{Key: []byte("absent")})
	replies, errs := tc.nodes[0].GetMany(ctx, gets)
	for i := range 20 {
		want := fmt.Sprint("v", i)
		if i == 7 {
			want = "new"
		}
		if errs[i] != nil || !replies[i].Found || string(replies[i].Siblings[0].Value) != want {
			t.Fatalf("g%d: %v %+v, want %s", i, errs[i], replies[i], want)
		}
	}
	if errs[20] != nil || replies[20].Found {
		t.Fatalf("absent key: %v %+v", errs[20], replies[20])
	}
}

// TestReadRepairOncePerStaleReplica: a replica that holds nothing of a key
// (its digest read answers "not found") is repaired once by a read, and the
// repair is counted once.
func TestReadRepairOncePerStaleReplica(t *testing.T) {
	tc := startCluster(t, 3, nil)
	ctx := ctxFor(t)
	key := []byte("once")
	o, err := tc.nodes[0].store.Put(storePut(key, "v", nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tc.nodes[1].store.Merge(key, o); err != nil {
		t.Fatal(err)
	}
	before := counterValue(tc.nodes[0].metrics.readRepairs)
	got, err := tc.client(0).Get(ctx, key, client.R(3))
	if err != nil || string(got.Value()) != "v" || got.Replies != 3 {
		t.Fatalf("R=3 read: %v %q (%d replies)", err, got.Values, got.Replies)
	}
	testutil.Eventually(t, 5*time.Second, "n3 repaired", func() (bool, string) {
		o, err := tc.nodes[2].store.Get(key)
		return err == nil && len(o.Siblings) == 1, fmt.Sprint(err)
	})
	testutil.Eventually(t, 5*time.Second, "the repair counted", func() (bool, string) {
		n := counterValue(tc.nodes[0].metrics.readRepairs) - before
		return n >= 1, fmt.Sprint(n, " repairs")
	})
	// No second repair follows (a digest answer and the whole copy read
	// for the same replica once made two), nor from a second read, which
	// finds every copy equal.
	if _, err := tc.client(0).Get(ctx, key, client.R(3)); err != nil {
		t.Fatal(err)
	}
	if testutil.Poll(500*time.Millisecond, 10*time.Millisecond, func() (bool, string) {
		return counterValue(tc.nodes[0].metrics.readRepairs)-before > 1, ""
	}) {
		t.Fatalf("%v repairs counted for one stale replica, want 1", counterValue(tc.nodes[0].metrics.readRepairs)-before)
	}
}
