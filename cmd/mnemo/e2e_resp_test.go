package main

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/benchutil"
	"github.com/mnemo-kv/mnemo/internal/localcluster"
	"github.com/mnemo-kv/mnemo/internal/testutil"
)

// redisCLI runs redis-cli against addr (host:port) with a deadline and
// returns its trimmed output.
func redisCLI(t *testing.T, path, addr string, args ...string) string {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	ctx := ctxT(t, 20*time.Second)
	out, err := exec.CommandContext(ctx, path, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// The Redis port of real mnemo processes, driven by the real redis-cli: a
// SET through one node is read through the others, MSET/MGET/EXISTS/DEL
// behave as in Redis, and garbage on the port leaves the node serving with
// its data intact.
func TestE2ERESPWithRedisCLI(t *testing.T) {
	path, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skipf("redis-cli is not on PATH (make test installs it with apt-get install -y redis-tools): %v", err)
	}
	c := startCluster(t, localcluster.Options{Nodes: 3, RESP: true})
	n1, n2, n3 := c.Nodes[0].RESP, c.Nodes[1].RESP, c.Nodes[2].RESP

	if got := redisCLI(t, path, n1, "PING"); got != "PONG" {
		t.Fatalf("PING: %q", got)
	}
	if got := redisCLI(t, path, n1, "SET", "greeting", "hello"); got != "OK" {
		t.Fatalf("SET through node-1: %q", got)
	}
	// W=2 acknowledged it, R=2 reads it back through any node.
	if got := redisCLI(t, path, n2, "GET", "greeting"); got != "hello" {
		t.Fatalf("GET through node-2 after SET through node-1: %q, want hello", got)
	}
	// Repeated SETs overwrite; they never pile up siblings.
	for _, v := range []string{"one", "two", "three"} {
		redisCLI(t, path, n3, "SET", "greeting", v)
	}
	if got := redisCLI(t, path, n1, "GET", "greeting"); got != "three" {
		t.Fatalf("GET after three SETs through node-3: %q, want three", got)
	}
	if got := redisCLI(t, path, n2, "MSET", "a", "1", "b", "2"); got != "OK" {
		t.Fatalf("MSET: %q", got)
	}
	if got := redisCLI(t, path, n3, "MGET", "a", "missing", "b"); got != "1\n\n2" {
		t.Fatalf("MGET a missing b: %q, want 1, (nil), 2", got)
	}
	if got := redisCLI(t, path, n1, "EXISTS", "a", "b", "missing"); got != "2" {
		t.Fatalf("EXISTS a b missing: %q, want 2", got)
	}
	if got := redisCLI(t, path, n1, "DEL", "a", "missing"); got != "1" {
		t.Fatalf("DEL a missing: %q, want 1", got)
	}
	if got := redisCLI(t, path, n2, "EXISTS", "a"); got != "0" {
		t.Fatalf("EXISTS a after DEL: %q, want 0", got)
	}
	if got := redisCLI(t, path, n1, "NOSUCHCOMMAND", "x"); !strings.Contains(got, "ERR unknown command") {
		t.Fatalf("unknown command: %q, want an ERR unknown command reply", got)
	}

	// Garbage on the Redis port: the node stays up and keeps its data.
	testutil.SendGarbage(t, n1)
	if got := redisCLI(t, path, n1, "GET", "greeting"); got != "three" {
		t.Fatalf("GET through node-1 after garbage on its Redis port: %q, want three", got)
	}
	if !c.Nodes[0].Running() {
		t.Fatal("node-1 exited after garbage on its Redis port")
	}
}

// Fifty connections SETting at once, as make bench drives the port: every
// SET is acknowledged, and node-1 coordinated them in batches (node's
// combiner) rather than one by one. They all write redis-benchmark's one
// key, so batches carry the same key many times over.
func TestE2ERESPCombinedSets(t *testing.T) {
	bench, err := exec.LookPath("redis-benchmark")
	if err != nil {
		t.Skipf("redis-benchmark is not on PATH (make test installs it with apt-get install -y redis-tools): %v", err)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skipf("redis-cli is not on PATH (make test installs it with apt-get install -y redis-tools): %v", err)
	}
	c := startCluster(t, localcluster.Options{Nodes: 3, RESP: true, HTTP: true})
	host, port, _ := strings.Cut(c.Nodes[0].RESP, ":")
	const sets = 5000
	out, err := exec.CommandContext(ctxT(t, time.Minute), bench, "-h", host, "-p", port,
		"-c", "50", "-n", fmt.Sprint(sets), "-t", "set", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("redis-benchmark: %v\n%s", err, out)
	}
	m := metricsOf(t, c.Nodes[0].HTTP, nil)
	acked := benchutil.MetricValue(m, `mnemo_requests_total{op="resp_set"}`)
	failed := 0.0
	for line := range strings.SplitSeq(m, "\n") {
		if strings.HasPrefix(line, "mnemo_request_errors_total{") && strings.Contains(line, `op="resp_set"`) {
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			failed += v
		}
	}
	combined := benchutil.MetricValue(m, `mnemo_combined_batch_size_sum{op="put"}`)
	batches := benchutil.MetricValue(m, `mnemo_combined_batch_size_count{op="put"}`)
	if acked != sets || failed > 0 || combined != sets {
		t.Fatalf("node-1 counted %v SETs (%v failed), %v through the combiner; want %d, none failed\n%s", acked, failed, combined, sets, out)
	}
	if batches <= 0 || batches >= sets {
		t.Fatalf("%d SETs of 50 connections were coordinated in %v batches; want fewer batches than SETs", sets, batches)
	}
	// redis-benchmark's values are 3 bytes (-d 3).
	if got := redisCLI(t, cli, c.Nodes[1].RESP, "GET", "key:__rand_int__"); len(got) != 3 {
		t.Fatalf("GET through node-2 of redis-benchmark's key: %q, want its 3-byte value", got)
	}
	t.Logf("%d SETs from 50 connections in %v batches", sets, batches)
}

// TestE2ESummaryRestoredAfterACrash: a node killed with SIGKILL after
// pipelined and combined SETs (each batch one journal record of summary
// cells, store/summary.go) restarts with its Merkle trees and key counts
// restored from the cells and the journal, not scanned; one anti-entropy
// interval later they are verified against the data, and none was wrong.
func TestE2ESummaryRestoredAfterACrash(t *testing.T) {
	bench, err := exec.LookPath("redis-benchmark")
	if err != nil {
		t.Skipf("redis-benchmark is not on PATH (make test installs it with apt-get install -y redis-tools): %v", err)
	}
	c := startCluster(t, localcluster.Options{Nodes: 3, RESP: true, HTTP: true, Args: []string{"--ae-interval=2s"}})
	host, port, _ := strings.Cut(c.Nodes[0].RESP, ":")
	for _, pipe := range []string{"1", "16"} {
		out, err := exec.CommandContext(ctxT(t, time.Minute), bench, "-h", host, "-p", port,
			"-c", "20", "-n", "4000", "-r", "3000", "-P", pipe, "-t", "set", "-q").CombinedOutput()
		if err != nil {
			t.Fatalf("redis-benchmark -P %s: %v\n%s", pipe, err, out)
		}
	}
	if j := benchutil.MetricValue(metricsOf(t, c.Nodes[1].HTTP, nil), "mnemo_store_summary_journal_bytes"); j == 0 {
		t.Fatal("node-2 journaled no summary cells for the SETs it took")
	}
	cl, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := c.Kill(1); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(1); err != nil {
		t.Fatal(err)
	}
	var info *client.NodeInfo
	testutil.Eventually(t, 30*time.Second, "node-2's trees verified against its data after the restart", func() (bool, string) {
		info, err = selfInfo(context.Background(), cl, c, 1)
		if err != nil {
			return false, err.Error()
		}
		return info.AntiEntropy.TreesVerified, fmt.Sprintf("built %d of %d", info.AntiEntropy.TreesBuilt, info.AntiEntropy.Partitions)
	})
	if info.AntiEntropy.TreesWrong != 0 {
		t.Fatalf("node-2 restored %d partitions' trees wrong from its summary after a SIGKILL", info.AntiEntropy.TreesWrong)
	}
	if info.Keys == 0 || info.Keys > 3000 {
		t.Fatalf("node-2 counts %d keys after the restart; 3000 distinct keys at most were written", info.Keys)
	}
	testutil.Eventually(t, 30*time.Second, "equal roots on all three nodes", func() (bool, string) {
		return rootsAgree(cl, c, 0, 1, 2)
	})
}
