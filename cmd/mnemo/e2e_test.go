package main

// End-to-end tests: real `mnemo` processes on loopback, driven through the
// Go SDK and the CLI exactly as a user would.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/benchutil"
	"github.com/mnemo-kv/mnemo/internal/localcluster"
	"github.com/mnemo-kv/mnemo/internal/testutil"
)

var mnemoBin string

func TestMain(m *testing.M) { os.Exit(localcluster.RunTests(m, "e2e", &mnemoBin)) }

// startCluster starts n real nodes and stops them when the test ends. On
// failure the nodes' logs are kept in the test's temp dir and their tails
// printed.
func startCluster(t *testing.T, opts localcluster.Options) *localcluster.Cluster {
	t.Helper()
	opts.Binary = mnemoBin
	opts.Dir = t.TempDir()
	c, err := localcluster.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			for _, p := range c.Nodes {
				b, _ := os.ReadFile(p.LogFile)
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				t.Logf("--- last log lines of %s:\n%s", p.ID, strings.Join(lines[max(0, len(lines)-15):], "\n"))
			}
		}
	})
	// Generous: on a loaded 2-core CI machine gossip can take a while.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// cli runs the mnemo CLI and returns stdout, stderr and the exit code.
func cli(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(mnemoBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run mnemo %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// localValues is a replica's stored copy as `mnemo get --local` prints it.
func localValues(t *testing.T, addr, key string) ([]string, int) {
	out, _, code := cli(t, "get", "--local", "--addr", addr, key)
	vals := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if out == "" {
		vals = nil
	}
	return vals, code
}

func TestE2EReplicatedStore(t *testing.T) {
	c := startCluster(t, localcluster.Options{Nodes: 3, HTTP: true})
	ctx := ctxT(t, 2*time.Minute)
	clients := make([]*client.Client, 3)
	for i := range clients {
		var err error
		if clients[i], err = c.Client(i); err != nil {
			t.Fatal(err)
		}
		defer clients[i].Close()
	}

	// Writes at W=2 and reads at R=2 through every node.
	for k := range 60 {
		key := fmt.Sprint("key-", k)
		if _, err := clients[k%3].Put(ctx, []byte(key), []byte("v-"+key), client.W(2)); err != nil {
			t.Fatalf("put %s through %s: %v", key, c.Nodes[k%3].ID, err)
		}
	}
	for i, cl := range clients {
		for k := range 60 {
			key := fmt.Sprint("key-", k)
			res, err := cl.Get(ctx, []byte(key), client.R(2))
			if err != nil || string(res.Value()) != "v-"+key || len(res.Values) != 1 {
				t.Fatalf("get %s through %s: %v %q", key, c.Nodes[i].ID, err, res.Values)
			}
		}
	}
	// node-3 holds every key locally before it is killed (writes go to all
	// replicas; W only says when the client hears back).
	testutil.Eventually(t, 10*time.Second, "node-3 holding all 60 keys", func() (bool, string) {
		for k := range 60 {
			key := fmt.Sprint("key-", k)
			if vals, code := localValues(t, c.Nodes[2].RPC, key); code != 0 || vals[0] != "v-"+key {
				return false, fmt.Sprintf("%s: exit %d %q", key, code, vals)
			}
		}
		return true, ""
	})

	// SIGKILL node-3: writes at W=2 still succeed, reads at R=2 see them.
	if err := c.Kill(2); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConverged(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	for k := 60; k < 90; k++ {
		key := fmt.Sprint("key-", k)
		if _, err := clients[k%2].Put(ctx, []byte(key), []byte("v-"+key), client.W(2)); err != nil {
			t.Fatalf("put %s with node-3 dead: %v", key, err)
		}
		res, err := clients[(k+1)%2].Get(ctx, []byte(key), client.R(2))
		if err != nil || string(res.Value()) != "v-"+key {
			t.Fatalf("get %s with node-3 dead: %v %q", key, err, res.Values)
		}
	}
	// W=3 cannot be met with a replica down, and the error says so.
	_, err := clients[0].Put(ctx, []byte("w3"), []byte("x"), client.W(3))
	var qe *client.QuorumError
	if !errors.As(err, &qe) || qe.Acked != 2 || qe.Needed != 3 || !strings.Contains(err.Error(), "2 of 2 replicas asked, 3 needed") {
		t.Fatalf("put at W=3 with a node down: %v", err)
	}

	// Restarted on the same data directory, node-3 still holds what it
	// acknowledged before the kill.
	if err := c.Start(2); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConverged(ctx, 0, 1, 2); err != nil {
		t.Fatal(err)
	}
	for k := range 60 {
		key := fmt.Sprint("key-", k)
		if vals, code := localValues(t, c.Nodes[2].RPC, key); code != 0 || len(vals) != 1 || vals[0] != "v-"+key {
			t.Fatalf("node-3 lost %s across kill -9: exit %d %q", key, code, vals)
		}
	}

	// Two puts without context through two nodes: two siblings.
	for i, v := range []string{"from-1", "from-2"} {
		if out, errOut, code := cli(t, "put", "conflict", v, "--addr", c.Nodes[i].RPC); code != 0 {
			t.Fatalf("cli put: %d %s %s", code, out, errOut)
		}
	}
	out, _, code := cli(t, "get", "--addr", c.Nodes[2].RPC, "conflict", "--r", "2")
	if code != 0 || out != "from-1\nfrom-2\n" {
		t.Fatalf("get of two concurrent puts: exit %d, %q; want both siblings", code, out)
	}
	// A put with the context of that read leaves one value.
	res, err := clients[2].Get(ctx, []byte("conflict"))
	if err != nil || len(res.Values) != 2 {
		t.Fatalf("sdk get siblings: %v %q", err, res.Values)
	}
	if out, errOut, code := cli(t, "put", "--context", res.Context.String(), "--addr", c.Nodes[1].RPC, "conflict", "resolved"); code != 0 {
		t.Fatalf("put with context: %d %s %s", code, out, errOut)
	}
	out, _, code = cli(t, "get", "conflict", "--addr", c.Nodes[0].RPC)
	if code != 0 || out != "resolved\n" {
		t.Fatalf("after put with context: exit %d %q", code, out)
	}

	// A delete makes the key not found: exit 1.
	if _, errOut, code := cli(t, "del", "conflict", "--addr", c.Nodes[2].RPC); code != 0 {
		t.Fatalf("del: %d %s", code, errOut)
	}
	out, errOut, code := cli(t, "get", "conflict", "--addr", c.Nodes[1].RPC)
	if code != 1 || out != "" || !strings.Contains(errOut, "not found") {
		t.Fatalf("get after delete: exit %d stdout %q stderr %q; want exit 1, not found", code, out, errOut)
	}
	// Any other error exits 2 with the reason on stderr.
	_, errOut, code = cli(t, "get", "k", "--addr", "127.0.0.1:1", "--timeout", "2s")
	if code != 2 || errOut == "" {
		t.Fatalf("get from a closed port: exit %d stderr %q", code, errOut)
	}

	// status answers with members, liveness, ownership and keys per node.
	out, _, code = cli(t, "status", "--addr", c.Nodes[0].RPC)
	if code != 0 || strings.Count(out, " alive ") != 3 || !strings.Contains(out, "OWNED") {
		t.Fatalf("status: exit %d\n%s", code, out)
	}

	// /metrics carries the store's figures: node-1 fsynced its writes
	// (--sync always) and says how long the fsyncs took.
	body := metricsOf(t, c.Nodes[0].HTTP, nil)
	fsyncs, sum := benchutil.MetricValue(body, "mnemo_store_wal_fsync_seconds_count"), benchutil.MetricValue(body, "mnemo_store_wal_fsync_seconds_sum")
	if fsyncs < 1 || sum <= 0 || sum/fsyncs > 10 {
		t.Fatalf("node-1's WAL fsyncs: count %v, sum %v s", fsyncs, sum)
	}
	for _, name := range []string{"mnemo_store_block_cache_hits_total", "mnemo_store_object_cache_hits_total", "mnemo_store_write_stalls_total", "mnemo_store_disk_bytes"} {
		if benchutil.MetricValue(body, name) < 0 {
			t.Fatalf("/metrics lacks %s", name)
		}
	}
	// The binary tunes the collector (internal/gctune): a node's small
	// heap gets --gc-headroom, which is GOGC above 100.
	if gogc := benchutil.MetricValue(body, "go_gc_gogc_percent"); os.Getenv("GOGC") == "" && gogc <= 100 {
		t.Fatalf("node-1's GOGC is %v with a small heap; want above 100 (--gc-headroom)", gogc)
	}
	t.Logf("node-1: %v WAL fsyncs, mean %.3f ms", fsyncs, 1000*sum/fsyncs)
}

func TestE2ELastWriteWins(t *testing.T) {
	c := startCluster(t, localcluster.Options{Nodes: 3, Args: []string{"--conflicts", "lww"}})
	ctx := ctxT(t, time.Minute)
	for i, v := range []string{"first", "second"} {
		cl, err := c.Client(i)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Put(ctx, []byte("k"), []byte(v)); err != nil {
			t.Fatal(err)
		}
		cl.Close()
	}
	// Every node answers with the same single winner: the later write.
	for i := range c.Nodes {
		out, _, code := cli(t, "get", "k", "--addr", c.Nodes[i].RPC)
		if code != 0 || out != "second\n" {
			t.Fatalf("lww get through %s: exit %d %q, want the later write", c.Nodes[i].ID, code, out)
		}
	}
	// An lww write supersedes every version its versioning replica holds,
	// so repeated writes do not pile up siblings in storage either.
	out, _, _ := cli(t, "get", "k", "--mode", "siblings", "--addr", c.Nodes[2].RPC)
	if out != "second\n" {
		t.Fatalf("siblings view of an lww key: %q, want only the later write", out)
	}
}

func TestE2EBadInput(t *testing.T) {
	c := startCluster(t, localcluster.Options{Nodes: 3})
	ctx := ctxT(t, time.Minute)
	cl, err := c.Client(0)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Put(ctx, []byte("safe"), []byte("kept")); err != nil {
		t.Fatal(err)
	}
	// Oversized key and value, empty key: precise errors.
	if _, err := cl.Put(ctx, bytes.Repeat([]byte("k"), 64<<10+1), []byte("v")); !errors.Is(err, client.ErrTooLarge) || !strings.Contains(err.Error(), "key too large") {
		t.Fatalf("oversized key: %v", err)
	}
	if _, err := cl.Put(ctx, []byte("big"), make([]byte, 1<<20+1)); !errors.Is(err, client.ErrTooLarge) || !strings.Contains(err.Error(), "value too large") {
		t.Fatalf("oversized value: %v", err)
	}
	if _, err := cl.Put(ctx, nil, []byte("v")); !errors.Is(err, client.ErrBadRequest) || !strings.Contains(err.Error(), "empty key") {
		t.Fatalf("empty key: %v", err)
	}
	// Garbage, a frame header announcing too much, a truncated frame and a
	// client that stalls mid-frame, all on the RPC port of node-1.
	testutil.SendGarbage(t, c.Nodes[0].RPC)
	// The node still serves, and the data is intact, through every node.
	for i := range c.Nodes {
		out, errOut, code := cli(t, "get", "safe", "--addr", c.Nodes[i].RPC)
		if code != 0 || out != "kept\n" {
			t.Fatalf("after garbage, get through %s: %d %q %s", c.Nodes[i].ID, code, out, errOut)
		}
	}
	if _, err := cl.Put(ctx, []byte("after"), []byte("garbage")); err != nil {
		t.Fatalf("put after garbage: %v", err)
	}
	// Bad flags and config: one clear line per bad setting, exit 2.
	conf := filepath.Join(t.TempDir(), "mnemo.conf")
	os.WriteFile(conf, []byte("# a config file (TOML)\nn = 3\nw = 4\nsync = \"sometimes\" # not a mode\nbogus = 1\n"), 0o644)
	_, errOut, code := cli(t, "node", "--config", conf, "--r", "nine", "--rpc", "nowhere", "--sync-min-gap", "1s")
	for _, want := range []string{"--w: 4 must be in [1, n=3]", `--sync: "sometimes" is not always, batch or none`, "bogus: unknown setting", `--r: "nine" is not a whole number`, `--rpc: "nowhere" is not host:port`, "--sync-min-gap: 1s must be in [0, 100ms]"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("bad config: stderr lacks %q:\n%s", want, errOut)
		}
	}
	if code != 2 {
		t.Errorf("bad config exit %d, want 2", code)
	}
	_, errOut, code = cli(t, "node", "--partitions", "65536", "--segments", "1024")
	if want := "--segments: 1024 segments per partition x 65536 partitions is over 4194304 segments in all"; code != 2 || !strings.Contains(errOut, want) {
		t.Errorf("oversized trees: exit %d, stderr %q; want 2 and %q", code, errOut, want)
	}
}

// A node started with another --cluster-name is kept out: the members
// discard its gossip, so it never becomes one, and the cluster goes on
// without it.
func TestE2EClusterNameKeepsClustersApart(t *testing.T) {
	c := startCluster(t, localcluster.Options{Nodes: 2, NodeArgs: func(i int) []string {
		if i == 2 {
			return []string{"--cluster-name", "another-cluster"}
		}
		return nil
	}})
	i, err := c.Add()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(i); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "node-1 discarding node-3's gossip", func() (bool, string) {
		b, _ := os.ReadFile(c.Nodes[0].LogFile)
		return bytes.Contains(b, []byte(`unacceptable label \"another-cluster\"`)), "nothing discarded in node-1's log yet"
	})
	cl, err := c.Client(0)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	st, err := cl.Status(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var alive []string
	for _, m := range st.Members {
		if m.Liveness == "alive" {
			alive = append(alive, m.ID)
		}
	}
	if strings.Join(alive, ",") != "node-1,node-2" {
		t.Fatalf("node-1 sees %v alive, want node-1 and node-2 only", alive)
	}
	if c.Nodes[i].Exited() {
		t.Fatalf("node-3 exited: %s", c.Nodes[i].LogTail(5))
	}
}
