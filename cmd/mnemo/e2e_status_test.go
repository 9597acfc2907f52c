package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/localcluster"
	"github.com/mnemo-kv/mnemo/internal/testutil"
	"github.com/mnemo-kv/mnemo/ring"
)

// TestE2EStatusTyped: the typed subsystem reports reach every way status
// is read (the client, `mnemo status`, its --json and the admin port's
// /status) filled by each real node.
func TestE2EStatusTyped(t *testing.T) {
	c := startCluster(t, localcluster.Options{Nodes: 3, HTTP: true, Args: []string{"--ae-interval=1s"}})
	cl, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	// Through the client: every member reports all three subsystems, and
	// anti-entropy builds every tree (3 nodes, N=3: each holds all).
	testutil.Eventually(t, 30*time.Second, "every node reports its subsystems and all its trees", func() (bool, string) {
		st, err := cl.Status(ctxT(t, 5*time.Second))
		if err != nil {
			return false, err.Error()
		}
		if len(st.Members) != 3 {
			return false, fmt.Sprintf("%d members", len(st.Members))
		}
		for _, m := range st.Members {
			in := m.Info
			switch {
			case in == nil:
				return false, m.ID + " sent no report: " + m.Error
			case !in.AntiEntropy.On || !in.Handoff.On:
				return false, fmt.Sprintf("%s: anti-entropy on %v, handoff on %v", m.ID, in.AntiEntropy.On, in.Handoff.On)
			case in.Ownership.PartitionsHeld != ring.DefaultPartitions:
				return false, fmt.Sprintf("%s holds %d partitions", m.ID, in.Ownership.PartitionsHeld)
			case len(in.AntiEntropy.Roots) != ring.DefaultPartitions || in.AntiEntropy.Partitions != ring.DefaultPartitions:
				return false, fmt.Sprintf("%s reports %d roots of %d partitions", m.ID, len(in.AntiEntropy.Roots), in.AntiEntropy.Partitions)
			}
		}
		return true, ""
	})

	// `mnemo status`: the table, then one line of non-zero counters per
	// node, named as they always were.
	out, errOut, code := cli(t, "status", "--addr", c.Nodes[0].RPC)
	if code != 0 {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	for _, p := range c.Nodes {
		want := fmt.Sprintf("%s: ", p.ID)
		if !strings.Contains(out, "\n"+want) || !strings.Contains(out, fmt.Sprintf("partitions_held=%d", ring.DefaultPartitions)) ||
			!strings.Contains(out, fmt.Sprintf("ae_trees_built=%d", ring.DefaultPartitions)) {
			t.Errorf("status output lacks %s's counters line:\n%s", p.ID, out)
		}
	}

	// --json and /status: the same typed document.
	out, errOut, code = cli(t, "status", "--json", "--addr", c.Nodes[1].RPC)
	if code != 0 {
		t.Fatalf("status --json: exit %d\n%s%s", code, out, errOut)
	}
	var st client.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	checkJSONStatus(t, "mnemo status --json", &st)

	resp, err := http.Get("http://" + c.Nodes[2].HTTP + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	st = client.Status{}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("/status: %v", err)
	}
	checkJSONStatus(t, "/status", &st)
}

// checkJSONStatus checks a status decoded from JSON carries the typed
// reports.
func checkJSONStatus(t *testing.T, what string, st *client.Status) {
	t.Helper()
	if len(st.Members) != 3 {
		t.Fatalf("%s: %d members", what, len(st.Members))
	}
	for _, m := range st.Members {
		if m.Info == nil || !m.Info.AntiEntropy.On || len(m.Info.AntiEntropy.Roots) != ring.DefaultPartitions ||
			m.Info.Ownership.PartitionsHeld != ring.DefaultPartitions {
			t.Errorf("%s: %s's report lacks its typed figures: %+v", what, m.ID, m.Info)
		}
	}
}
