package node

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/testutil"
	"github.com/mnemo-kv/mnemo/resp"
)

// TestCombinedSets: 64 callers each SET their own keys through the RESP
// backend at once. Every SET is acknowledged at W=2, lands on all three
// replicas with no sibling (each key has one writer), and some were
// coordinated together: fewer batches than SETs.
func TestCombinedSets(t *testing.T) {
	tc := startCluster(t, 3, nil)
	ctx := ctxFor(t)
	b := (*respBackend)(tc.nodes[0])
	const callers, each = 64, 20
	var wg sync.WaitGroup
	errs := make(chan error, callers*each)
	for c := range callers {
		wg.Go(func() {
			for i := range each {
				key := fmt.Appendf(nil, "c%d-k%d", c, i)
				if err := b.Set(ctx, key, fmt.Appendf(nil, "v%d", i), resp.Quorum{}); err != nil {
					errs <- fmt.Errorf("SET %s: %w", key, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var h dto.Metric
	if err := tc.nodes[0].metrics.combinedBatch.WithLabelValues("put").(prometheus.Metric).Write(&h); err != nil {
		t.Fatal(err)
	}
	sets, batches := h.GetHistogram().GetSampleSum(), h.GetHistogram().GetSampleCount()
	if sets != callers*each || batches == 0 || batches >= callers*each {
		t.Fatalf("%v SETs were coordinated in %d batches; want %d SETs, some batched together", sets, batches, callers*each)
	}
	t.Logf("%v SETs in %d batches", sets, batches)

	for r := range 3 {
		cl := tc.client(r)
		for c := range callers {
			for i := range each {
				key := fmt.Appendf(nil, "c%d-k%d", c, i)
				res, err := cl.Get(ctx, key, client.Local())
				if err != nil || len(res.Values) != 1 || string(res.Value()) != fmt.Sprint("v", i) {
					t.Fatalf("n%d's copy of %s: %v %q", r+1, key, err, res.Values)
				}
			}
		}
	}
}

// TestCombinedSetErrors: a bad SET batched with good ones fails alone,
// with the error a lone SET gets.
func TestCombinedSetErrors(t *testing.T) {
	tc := startCluster(t, 3, nil)
	ctx := ctxFor(t)
	n := tc.nodes[0]
	var wg sync.WaitGroup
	results := make([]error, 32)
	for i := range results {
		wg.Go(func() {
			req := &proto.PutRequest{Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v"), Overwrite: true}
			if i%4 == 0 {
				req.W = 5 // more than N
			}
			_, results[i] = n.puts.do(req)
		})
	}
	wg.Wait()
	_, lone := n.Put(ctx, &proto.PutRequest{Key: []byte("lone"), Value: []byte("v"), W: 5})
	if lone == nil {
		t.Fatal("a lone put at W=5 of N=3 succeeded")
	}
	for i, err := range results {
		switch {
		case i%4 == 0 && (err == nil || err.Error() != lone.Error()):
			t.Fatalf("put %d at W=5: %v, want %v", i, err, lone)
		case i%4 != 0 && err != nil:
			t.Fatalf("put %d: %v", i, err)
		}
	}
}

// TestCombinerSurvivesPanic: a batch whose coordination panics (a bug)
// answers every request batched with it with an error, its leader panics
// as a lone request would, and the combiner keeps serving: nothing waits
// forever and no slot is lost.
func TestCombinerSurvivesPanic(t *testing.T) {
	release := make(chan struct{})
	c := newCombiner(func(reqs []string) ([]string, []error) {
		if reqs[0] == "first" {
			<-release // hold both slots until the others queue
		}
		if slices.Contains(reqs, "boom") {
			panic("boom")
		}
		return reqs, make([]error, len(reqs))
	}, func(int) {})

	// do reports the panic a request's caller sees, if any.
	do := func(req string) (panicked any, err error) {
		defer func() { panicked = recover() }()
		_, err = c.do(req)
		return nil, err
	}
	var wg sync.WaitGroup
	for range c.maxInflight {
		wg.Go(func() { _, _ = do("first") })
	}
	testutil.Eventually(t, 5*time.Second, "both slots taken", func() (bool, string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.inflight == c.maxInflight, fmt.Sprint(c.inflight, " in flight")
	})
	// These queue, and run as one batch once a slot frees.
	results := make([]error, 8)
	panics := make([]any, 8)
	for i := range results {
		wg.Go(func() {
			req := fmt.Sprint("k", i)
			if i == 3 {
				req = "boom"
			}
			panics[i], results[i] = do(req)
		})
	}
	testutil.Eventually(t, 5*time.Second, "eight queued", func() (bool, string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.queue) == 8, fmt.Sprint(len(c.queue), " queued")
	})
	close(release)
	wg.Wait()
	failed, panicked := 0, 0
	for i := range results {
		switch {
		case panics[i] != nil:
			panicked++
		case results[i] != nil && strings.Contains(results[i].Error(), "internal error: boom"):
			failed++
		default:
			t.Fatalf("request %d: err %v, panic %v; want the batch's error or its panic", i, results[i], panics[i])
		}
	}
	if panicked != 1 || failed != 7 {
		t.Fatalf("%d leaders panicked and %d requests failed; want 1 and 7", panicked, failed)
	}
	if c.inflight != 0 || len(c.queue) != 0 {
		t.Fatalf("after the batches: %d in flight, %d queued; want none", c.inflight, len(c.queue))
	}
	if reply, err := c.do("after"); err != nil || reply != "after" {
		t.Fatalf("a request after the panic: %q, %v", reply, err)
	}
}
