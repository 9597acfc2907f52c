package main

// End-to-end tests of gossip encryption with real processes: a node
// without the key stays out, a key rotation and the rolling enable
// (disabled -> transitional -> required, one restart at a time) run under
// a quorum write load, lose no acknowledged write, and no member is ever
// seen dead except the one being restarted. With security on, nodes also
// need their TLS certificates (makeCerts, tlsArgs in e2e_tls_test.go), and
// clients a client certificate.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/gossip"
	"github.com/mnemo-kv/mnemo/internal/localcluster"
	"github.com/mnemo-kv/mnemo/internal/poll"
	"github.com/mnemo-kv/mnemo/internal/testutil"
)

// gossipKey returns a new random key, base64.
func gossipKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, gossip.KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}

func fingerprintOf(t *testing.T, b64 string) string {
	t.Helper()
	k, err := gossip.ParseKey(b64)
	if err != nil {
		t.Fatal(err)
	}
	return gossip.Fingerprint(k)
}

// writeKeyFile writes keys, one per line, to a new file in dir.
func writeKeyFile(t *testing.T, dir, name string, keys ...string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkLogsHoldNoKey fails if any node's log holds one of the keys.
func checkLogsHoldNoKey(t *testing.T, c *localcluster.Cluster, keys ...string) {
	t.Helper()
	for _, p := range c.Nodes {
		b, err := os.ReadFile(p.LogFile)
		if err != nil {
			continue // never started
		}
		for _, k := range keys {
			if strings.Contains(string(b), k) || strings.Contains(string(b), strings.TrimRight(k, "=")) {
				t.Errorf("%s's log holds a gossip key", p.ID)
			}
		}
	}
}

// livenessWatch polls every running node's status and records each time
// one of them sees a member other than alive, except members (and
// observers) excused while they are being restarted.
type livenessWatch struct {
	mu         sync.Mutex
	excused    map[string]bool
	violations []string
	polls      int
	stop, done chan struct{}
}

func watchLiveness(t *testing.T, c *localcluster.Cluster) *livenessWatch {
	w := &livenessWatch{excused: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			// A client per round: the cluster's client TLS changes during
			// a rolling enable.
			cl, err := c.Client()
			if err != nil {
				continue
			}
			for _, p := range c.Nodes {
				w.mu.Lock()
				skip := w.excused[p.ID]
				w.mu.Unlock()
				if skip || !p.Running() {
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				st, err := cl.Status(ctx, client.Node(p.RPC))
				cancel()
				if err != nil {
					continue // slow under load; liveness is what is checked
				}
				w.mu.Lock()
				w.polls++
				for _, m := range st.Members {
					if !w.excused[m.ID] && !w.excused[p.ID] && m.Liveness != "alive" {
						w.violations = append(w.violations, fmt.Sprintf("%s saw %s %s at %s", p.ID, m.ID, m.Liveness, time.Now().Format("15:04:05.000")))
					}
				}
				w.mu.Unlock()
			}
			cl.Close()
		}
	}()
	t.Cleanup(w.halt)
	return w
}

func (w *livenessWatch) excuse(id string, on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.excused[id] = on
}

func (w *livenessWatch) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// check fails the test if anyone was seen not alive; it needs some polls.
func (w *livenessWatch) check(t *testing.T) {
	t.Helper()
	w.halt()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.polls < 10 {
		t.Fatalf("the liveness watch polled only %d statuses", w.polls)
	}
	if len(w.violations) > 0 {
		t.Fatalf("members seen not alive (%d times), first: %s", len(w.violations), strings.Join(w.violations[:min(5, len(w.violations))], "; "))
	}
	t.Logf("liveness: %d status polls, every member alive in each", w.polls)
}

// opsTLS are the CLI's flags for client "ops" with the certificates of dir.
func opsTLS(dir string) []string {
	return []string{"--tls-ca", filepath.Join(dir, "ca.crt"), "--tls-cert", filepath.Join(dir, "client-ops.crt"), "--tls-key", filepath.Join(dir, "client-ops.key")}
}

// startSwitchLoad is startLoad (unique keys at W=2, acknowledged ones
// remembered) through a client the test can swap, for a load that moves
// from plaintext to TLS during a rolling enable.
func startSwitchLoad(t *testing.T, cl *client.Client) (*writeLoad, func(*client.Client)) {
	var cur atomic.Pointer[client.Client]
	cur.Store(cl)
	l := &writeLoad{acked: map[string]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			key, val := fmt.Sprintf("load-%06d", i), fmt.Sprintf("v%d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err := cur.Load().Put(ctx, []byte(key), []byte(val), client.W(2))
			cancel()
			l.mu.Lock()
			if err == nil {
				l.acked[key] = val
			} else {
				l.fails++
			}
			l.mu.Unlock()
		}
	}()
	t.Cleanup(l.halt)
	return l, func(c *client.Client) { cur.Store(c) }
}

// clusterClient is a client of every node of c, closed when the test ends.
func clusterClient(t *testing.T, c *localcluster.Cluster) *client.Client {
	t.Helper()
	cl, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// metricsOf returns the admin port's /metrics page: over HTTPS with a
// client certificate when tlsCfg is set (the admin port of a node with
// security on speaks TLS), else over plain HTTP.
func metricsOf(t *testing.T, addr string, tlsCfg *tls.Config) string {
	t.Helper()
	hc, scheme := http.DefaultClient, "http://"
	if tlsCfg != nil {
		hc, scheme = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}, "https://"
	}
	resp, err := hc.Get(scheme + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkAcked reads every acknowledged write back at R=2.
func checkAcked(t *testing.T, c *localcluster.Cluster, acked map[string]string) {
	t.Helper()
	cl, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for key, val := range acked {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := cl.Get(ctx, []byte(key), client.R(2))
		cancel()
		if err != nil || string(res.Value()) != val {
			t.Fatalf("acknowledged %s=%s reads %v %v", key, val, res, err)
		}
	}
}

// waitAcked waits until the load has had at least n more writes acked.
func waitAcked(t *testing.T, l *writeLoad, n int) {
	t.Helper()
	base, _ := l.snapshot()
	testutil.Eventually(t, 60*time.Second, fmt.Sprintf("%d more writes acknowledged", n), func() (bool, string) {
		now, fails := l.snapshot()
		return len(now)-len(base) >= n, fmt.Sprintf("%d acked (%d at start), %d failed", len(now), len(base), fails)
	})
}

// keyringOf lists the cluster's keyring through node i.
func keyringOf(t *testing.T, c *localcluster.Cluster, i int) *client.KeyringReply {
	t.Helper()
	cl, _ := c.Client(i)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := cl.KeyringList(ctx, client.Node(c.Nodes[i].RPC))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestE2EGossipKeyNeededToJoin(t *testing.T) {
	dir := makeCerts(t, 4)
	key := gossipKey(t)
	keyFile := writeKeyFile(t, dir, "cluster.key", key)
	otherFile := writeKeyFile(t, dir, "other.key", gossipKey(t))
	c := startCluster(t, localcluster.Options{Nodes: 3, ClientTLS: clientTLS(t, dir), NodeArgs: func(i int) []string {
		id := fmt.Sprintf("node-%d", i+1)
		switch i {
		case 3: // another key (and a valid certificate)
			return secureArgs(dir, id, "required", otherFile)
		case 4: // no key at all: security disabled
			return nil
		}
		return secureArgs(dir, id, "required", keyFile)
	}})
	for range 2 {
		i, err := c.Add()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(i); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := c.Client(0, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// The strangers retry their join every second: give them several.
	plain, err := client.New(c.Nodes[4].RPC) // node-5 speaks plaintext only
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	answered := map[int]int{}
	k := 0
	err = poll.Hold(context.Background(), 6*time.Second, 200*time.Millisecond, func() error {
		for i, via := range map[int]*client.Client{3: cl, 4: plain} {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			st, err := via.Status(ctx, client.Node(c.Nodes[i].RPC))
			cancel()
			if err != nil {
				continue // still starting
			}
			answered[i]++
			for _, m := range st.Members {
				if m.ID != st.Node {
					return fmt.Errorf("%s (without the cluster's key) sees %s %s", st.Node, m.ID, m.Liveness)
				}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := cl.Put(ctx, []byte(fmt.Sprint("k", k)), []byte("v"), client.W(2))
		cancel()
		k++
		if err != nil {
			return fmt.Errorf("the keyed cluster failed a W=2 write: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if answered[3] < 5 || answered[4] < 5 {
		t.Fatalf("the strangers answered status %d and %d times: did they run?", answered[3], answered[4])
	}
	if err := c.WaitConverged(ctxT(t, 30*time.Second), 0, 1, 2); err != nil {
		t.Fatal(err)
	}
	out, _, code := cli(t, append([]string{"status", "--addr", c.Nodes[0].RPC}, opsTLS(dir)...)...)
	if code != 0 || strings.Contains(out, "node-4") || strings.Contains(out, "node-5") || strings.Count(out, " alive ") != 3 {
		t.Fatalf("status of the keyed cluster (exit %d):\n%s", code, out)
	}
	b, _ := os.ReadFile(c.Nodes[4].LogFile)
	if !strings.Contains(string(b), "join failed") {
		t.Errorf("the keyless node's log does not say its join failed:\n%s", c.Nodes[4].LogTail(10))
	}
	checkLogsHoldNoKey(t, c, key)
}

func TestE2EGossipKeyRotationUnderLoad(t *testing.T) {
	dir := makeCerts(t, 5)
	k1, k2 := gossipKey(t), gossipKey(t)
	fp1, fp2 := fingerprintOf(t, k1), fingerprintOf(t, k2)
	keyFile := writeKeyFile(t, dir, "old.key", k1)
	newKey := writeKeyFile(t, dir, "new.key", k2)
	c := startCluster(t, localcluster.Options{Nodes: 3, HTTP: true, ClientTLS: clientTLS(t, dir), NodeArgs: func(i int) []string {
		id := fmt.Sprintf("node-%d", i+1)
		if i == 4 { // started after the rotation with the new key; node-4 with the old one
			return secureArgs(dir, id, "required", newKey)
		}
		return secureArgs(dir, id, "required", keyFile)
	}})
	watch := watchLiveness(t, c)
	load, _ := startSwitchLoad(t, clusterClient(t, c))
	waitAcked(t, load, 100)

	steps := []struct {
		args []string
		want []string // lines of the output
	}{
		{[]string{"install", "--key-file", newKey}, []string{"install " + fp2 + ": [3/3] members", fp2 + "  [3/3] members  primary on [0/3]", fp1 + "  [3/3] members  primary on [3/3]"}},
		{[]string{"use", fp2[:10]}, []string{"use " + fp2[:10] + ": [3/3] members", fp2 + "  [3/3] members  primary on [3/3]", fp1 + "  [3/3] members  primary on [0/3]"}},
		{[]string{"remove", fp1}, []string{"remove " + fp1 + ": [3/3] members", fp2 + "  [3/3] members  primary on [3/3]"}},
	}
	for s, step := range steps {
		addr := c.Nodes[s%3].RPC // each step through another node
		out, errOut, code := cli(t, append(append([]string{"keyring", "--addr", addr}, opsTLS(dir)...), step.args...)...)
		if code != 0 {
			t.Fatalf("keyring %v: exit %d: %s%s", step.args, code, out, errOut)
		}
		for _, w := range step.want {
			if !strings.Contains(out, w) {
				t.Fatalf("keyring %v: no %q in:\n%s", step.args, w, out)
			}
		}
		t.Logf("keyring %v:\n%s", step.args, out)
		if s == 1 { // after use: two keys, the new one primary, on every node
			for _, p := range c.Nodes {
				m := metricsOf(t, p.HTTP, clientTLS(t, dir))
				for _, w := range []string{"mnemo_gossip_keys 2\n", "mnemo_gossip_encrypting 1\n", `mnemo_gossip_primary_key_info{fingerprint="` + fp2 + `"} 1`} {
					if !strings.Contains(m, w) {
						t.Fatalf("%s's metrics lack %q", p.ID, w)
					}
				}
				if strings.Contains(m, k2[:16]) || strings.Contains(m, k1[:16]) {
					t.Fatalf("%s's metrics hold a key", p.ID)
				}
			}
		}
		waitAcked(t, load, 200) // the load goes on between steps
	}
	if r := keyringOf(t, c, 1); strings.Contains(fmt.Sprint(r.Nodes), fp1) {
		t.Fatalf("the old key is still held: %+v", r.Nodes)
	}
	out, errOut, code := cli(t, append([]string{"keyring", "remove", fp2, "--addr", c.Nodes[0].RPC}, opsTLS(dir)...)...)
	if code != 2 || strings.Count(out, "is the primary") != 3 || !strings.Contains(errOut, "remove failed on 3 of 3 members") {
		t.Fatalf("removing the primary: exit %d:\n%s%s", code, out, errOut)
	}
	load.halt()
	watch.check(t)
	acked, fails := load.snapshot()
	t.Logf("%d writes acknowledged, %d failed", len(acked), fails)
	checkAcked(t, c, acked)

	// A node started with the old key only stays out; one with the new
	// key joins (a restart after the operator updated its key file).
	for range 2 {
		i, err := c.Add()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(i); err != nil {
			t.Fatal(err)
		}
	}
	cl, _ := c.Client(0)
	defer cl.Close()
	testutil.Eventually(t, 60*time.Second, "node-5 (new key) alive in node-1's view", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		st, err := cl.Status(ctx)
		if err != nil {
			return false, err.Error()
		}
		seen := map[string]string{}
		for _, m := range st.Members {
			seen[m.ID] = m.Liveness
		}
		return seen["node-5"] == "alive" && seen["node-4"] == "", fmt.Sprint(seen)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	st, err := cl.Status(ctx, client.Node(c.Nodes[3].RPC))
	cancel()
	if err != nil || len(st.Members) != 1 {
		t.Fatalf("node-4 (old key only) sees %+v, %v", st, err)
	}
	checkLogsHoldNoKey(t, c, k1, k2)
}

func TestE2EGossipRollingEnableUnderLoad(t *testing.T) {
	dir := makeCerts(t, 3)
	key := gossipKey(t)
	keyFile := writeKeyFile(t, dir, "cluster.key", key)
	mode := []string{"disabled", "disabled", "disabled"}
	c := startCluster(t, localcluster.Options{Nodes: 3, NodeArgs: func(i int) []string {
		if mode[i] == "disabled" {
			return nil // an open node as it was, without the files
		}
		return secureArgs(dir, fmt.Sprintf("node-%d", i+1), mode[i], keyFile)
	}})
	watch := watchLiveness(t, c)
	load, useClient := startSwitchLoad(t, clusterClient(t, c))
	waitAcked(t, load, 100)

	encrypting := func(r *client.KeyringReply) int {
		n := 0
		for _, m := range r.Nodes {
			if m.Encrypting {
				n++
			}
		}
		return n
	}
	restart := func(i int, to string) {
		t.Helper()
		id := c.Nodes[i].ID
		watch.excuse(id, true)
		if err := c.Stop(i); err != nil {
			t.Fatal(err)
		}
		// Down long enough to be declared dead: the members still up
		// then decide without it, from its last ring entry.
		other := (i + 1) % 3
		cl, _ := c.Client(other)
		testutil.Eventually(t, 30*time.Second, id+" dead in "+c.Nodes[other].ID+"'s view", func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			st, err := cl.Status(ctx, client.Node(c.Nodes[other].RPC))
			if err != nil {
				return false, err.Error()
			}
			for _, m := range st.Members {
				if m.ID == id {
					return m.Liveness == "dead", m.Liveness
				}
			}
			return false, "not listed"
		})
		cl.Close()
		waitAcked(t, load, 50) // writes while it is down: hints, then anti-entropy
		mode[i] = to
		if err := c.Start(i); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitConverged(ctxT(t, 60*time.Second), 0, 1, 2); err != nil {
			t.Fatalf("after restarting %s as %s: %v", id, to, err)
		}
		watch.excuse(id, false)
		waitAcked(t, load, 200)
		t.Logf("%s %s restarted as %s", time.Now().Format("15:04:05.000"), id, to)
	}
	for _, to := range []string{"transitional", "required"} {
		for i := range 3 {
			restart(i, to)
			r := keyringOf(t, c, (i+1)%3)
			switch {
			case to == "transitional" && i < 2:
				// A member still disabled could not read encrypted gossip.
				if n := encrypting(r); n != 0 {
					t.Fatalf("%d members encrypt while %s is still disabled: %+v", n, c.Nodes[2].ID, r.Nodes)
				}
			case to == "transitional":
				testutil.Eventually(t, 30*time.Second, "every member encrypting", func() (bool, string) {
					r := keyringOf(t, c, 0)
					return encrypting(r) == 3, fmt.Sprintf("%+v", r.Nodes)
				})
			default:
				if n := encrypting(r); n != 3 {
					t.Fatalf("only %d members encrypt: %+v", n, r.Nodes)
				}
			}
		}
		if to == "transitional" {
			// Every node accepts TLS now: the clients switch before required.
			c.SetClientTLS(clientTLS(t, dir))
			useClient(clusterClient(t, c))
		}
	}
	out, _, code := cli(t, append([]string{"keyring", "list", "--addr", c.Nodes[1].RPC}, opsTLS(dir)...)...)
	fp := fingerprintOf(t, key)
	if code != 0 || strings.Count(out, "required     encrypting") != 3 || !strings.Contains(out, fp+"  [3/3] members  primary on [3/3]") {
		t.Fatalf("keyring list after the rolling enable (exit %d):\n%s", code, out)
	}
	load.halt()
	watch.check(t)
	acked, fails := load.snapshot()
	t.Logf("%d writes acknowledged, %d failed during the restarts", len(acked), fails)
	checkAcked(t, c, acked)
	checkLogsHoldNoKey(t, c, key)
}
