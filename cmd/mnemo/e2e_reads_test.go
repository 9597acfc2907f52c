package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/benchutil"
	"github.com/mnemo-kv/mnemo/internal/localcluster"
	"github.com/mnemo-kv/mnemo/internal/poll"
	"github.com/mnemo-kv/mnemo/internal/testutil"
)

// Metric series of node-1 this test reads.
const (
	fanoutSteady = `mnemo_read_fanout_total{fanout="quorum",reason="steady"}`
	retriesSlow  = `mnemo_read_retries_total{reason="slow"}`
	membersAlive = `mnemo_members_alive`
)

// Three real processes: in steady state node-1's reads ask R=2 replicas
// (the metrics say so for every read); with node-3 frozen by SIGSTOP,
// reads through node-1 keep answering well within the request timeout,
// first by retrying the reads whose digest replica is node-3 on node-2
// (speculative retry after read-retry-after), then, once node-3 is seen
// dead, by asking the two left; after SIGCONT, reads ask every replica
// again, for node-3 has just rejoined. Reference: Dynamo §4.5 (R of N);
// Cassandra's speculative retry.
func TestE2EReadFanoutAndPausedReplica(t *testing.T) {
	// ae-interval 5s: the rejoin window (two intervals) closes 10 s after
	// the start-up, and is long enough after node-3's return for the
	// reads below. No sampled reads, so every read is counted as it is.
	c := startCluster(t, localcluster.Options{Nodes: 3, HTTP: true,
		Args: []string{"--ae-interval=5s", "--read-repair-chance=0"}})
	ctx := ctxT(t, 2*time.Minute)
	cl, err := c.Client(0)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	n1 := c.Nodes[0]
	const keys = 50
	key := func(i int) []byte { return fmt.Appendf(nil, "fan-%d", i) }
	for i := range keys {
		if _, err := cl.Put(ctx, key(i), fmt.Appendf(nil, "v-%d", i), client.W(3)); err != nil {
			t.Fatalf("put %s: %v", key(i), err)
		}
	}
	get := func(i int) (time.Duration, error) {
		gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		start := time.Now()
		res, err := cl.Get(gctx, key(i), client.R(2), client.Node(n1.RPC))
		took := time.Since(start)
		if err == nil && string(res.Value()) != fmt.Sprintf("v-%d", i) {
			err = fmt.Errorf("got %q", res.Values)
		}
		return took, err
	}
	metric := func(name string) float64 { return benchutil.MetricValue(metricsOf(t, n1.HTTP, nil), name) }

	testutil.Eventually(t, 30*time.Second, "node-1's reads asking R replicas", func() (bool, string) {
		before := metric(fanoutSteady)
		if _, err := get(0); err != nil {
			return false, err.Error()
		}
		return metric(fanoutSteady) > before, fmt.Sprintf("steady reads %v", before)
	})
	before := metric(fanoutSteady)
	for i := range keys {
		if _, err := get(i); err != nil {
			t.Fatalf("get %s: %v", key(i), err)
		}
	}
	if got := metric(fanoutSteady) - before; got != keys {
		t.Fatalf("%d reads in steady state, %v counted fan-out quorum", keys, got)
	}

	// Freeze node-3 (by its pid); continue it before the cluster stops.
	retriesBefore := metric(retriesSlow)
	if err := c.Pause(2); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Resume(2) })
	const bound = time.Second // the request timeout is 5 s
	var slowest time.Duration
	reads := 0
	err = poll.Until(ctx, 30*time.Second, 20*time.Millisecond, "node-1 seeing node-3 dead", func() (bool, string) {
		for range 10 {
			took, err := get(reads % keys)
			if err != nil || took > bound {
				t.Fatalf("get %s with node-3 paused: %v after %v (bound %v)", key(reads%keys), err, took, bound)
			}
			slowest = max(slowest, took)
			reads++
		}
		alive := metric(membersAlive)
		return alive == 2, fmt.Sprintf("%v members alive", alive)
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range keys { // node-3 now known dead: the two left answer
		took, err := get(i)
		if err != nil || took > bound {
			t.Fatalf("get %s with node-3 dead: %v after %v", key(i), err, took)
		}
		slowest = max(slowest, took)
	}
	if got := metric(retriesSlow) - retriesBefore; got <= 0 {
		t.Fatalf("no speculative retry in %d reads while node-3 was paused and not yet seen dead", reads)
	}
	t.Logf("%d reads while node-3 was paused, %d after it was seen dead: slowest %v, %v speculative retries",
		reads, keys, slowest.Round(time.Microsecond), metric(retriesSlow)-retriesBefore)

	// Back: reads through node-1 ask every replica, node-3 included.
	if err := c.Resume(2); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConverged(ctx, 0, 1, 2); err != nil {
		t.Fatal(err)
	}
	rejoin := `mnemo_read_fanout_total{fanout="all",reason="rejoin"}`
	before = metric(rejoin)
	if _, err := get(1); err != nil && !errors.Is(err, client.ErrNotFound) {
		t.Fatal(err)
	}
	if got := metric(rejoin) - before; got != 1 {
		t.Fatalf("a read right after node-3's return counted %v times with reason rejoin, want 1", got)
	}
}
