package node

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/testutil"
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

// TestPutManyQuorumFailure: with two of three replicas down, every put of
// a batch fails with a QuorumError that says 1 of 1 acknowledged, and the
// live replica keeps hints for the others.
func TestPutManyQuorumFailure(t *testing.T) {
	tc := startCluster(t, 3, nil)
	ctx := ctxFor(t)
	for _, i := range []int{1, 2} {
		tc.nodes[i].Close()
		tc.nodes[i] = nil
	}
	testutil.Eventually(t, 15*time.Second, "n2 and n3 seen dead", func() (bool, string) {
		return !tc.nodes[0].alive("n2") && !tc.nodes[0].alive("n3"), "still alive"
	})
	reqs := []*proto.PutRequest{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: []byte("2")}}
	_, errs := tc.nodes[0].PutMany(ctx, reqs)
	for i, err := range errs {
		var qe *QuorumError
		if !errors.As(err, &qe) || qe.Acked != 1 || qe.Needed != 2 {
			t.Fatalf("put %d with 2 of 3 down: %v", i, err)
		}
	}
	if st := tc.nodes[0].handoff.Stats(); st.Pending["n2"] < 2 || st.Pending["n3"] < 2 {
		t.Fatalf("hints pending %v, want both puts for n2 and n3", st.Pending)
	}
}
