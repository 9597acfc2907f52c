package main

// End-to-end tests of issue 13's TLS part: real `mnemo` processes with
// certificates made in the test (mnemo certs, and the security package for
// the expired and misused ones).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/localcluster"
	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/security"
	"github.com/mnemo-kv/mnemo/internal/testutil"
	"github.com/mnemo-kv/mnemo/internal/wire"
)

// makeCerts runs `mnemo certs init` for node-1..n and client "ops", and
// writes the gossip key file gossip.key beside them.
func makeCerts(t *testing.T, n int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("node-%d", i+1))
	}
	if out, errOut, code := cli(t, "certs", "init", "--dir", dir, "--nodes", strings.Join(ids, ","), "--clients", "ops"); code != 0 {
		t.Fatalf("mnemo certs init: exit %d\n%s%s", code, out, errOut)
	}
	writeKeyFile(t, dir, "gossip.key", gossipKey(t))
	return dir
}

// tlsArgs are the flags of node id in mode with the certificates and the
// gossip key of dir.
func tlsArgs(dir, id, mode string) []string {
	return secureArgs(dir, id, mode, filepath.Join(dir, "gossip.key"))
}

// secureArgs are tlsArgs with another gossip key file.
func secureArgs(dir, id, mode, keyFile string) []string {
	return []string{"--security", mode, "--tls-cert", filepath.Join(dir, id+".crt"), "--tls-key", filepath.Join(dir, id+".key"), "--tls-ca", filepath.Join(dir, "ca.crt"),
		"--gossip-key-file", keyFile}
}

func clientTLS(t *testing.T, dir string) *tls.Config {
	t.Helper()
	c, err := client.LoadTLS(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "client-ops.crt"), filepath.Join(dir, "client-ops.key"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// peerTLS is the TLS config of a process holding node id's certificate
// and expecting want at the other end.
func peerTLS(t *testing.T, dir, id, want string) *tls.Config {
	t.Helper()
	r, err := security.NewReloader(security.Files{Cert: filepath.Join(dir, id+".crt"), Key: filepath.Join(dir, id+".key"), CA: filepath.Join(dir, "ca.crt")}, security.ReloaderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r.ClientConfig(security.Identity{Kind: security.NodeIdentity, Name: want})
}

// metric reads one series' value from a node's /metrics (0 if absent).
// With tlsCfg (a node whose admin port speaks TLS) it asks over HTTPS.
func metric(t *testing.T, httpAddr string, tlsCfg *tls.Config, series string) float64 {
	t.Helper()
	hc, url := http.DefaultClient, "http://"+httpAddr+"/metrics"
	if tlsCfg != nil {
		hc, url = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}, "https://"+httpAddr+"/metrics"
	}
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// ping dials addr afresh (a new connection, so a new handshake) and pings.
func ping(addr string, cfg wire.ClientConfig) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := wire.Dial(ctx, addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	_, _, err = c.Call(ctx, proto.KindPing, nil)
	return err
}

func withTLS(cfg *tls.Config) wire.ClientConfig {
	return wire.ClientConfig{TLS: func(string) (*tls.Config, error) { return cfg, nil }}
}

// TestE2ETLSRequired: three nodes with --security required serve quorum
// reads and writes to the SDK and the CLI with a client certificate;
// plaintext is refused; node-2's certificate is refused from another
// address than node-2's; a client certificate cannot call peer kinds; a
// node refuses a certificate that names another node; an expired
// certificate swapped in (SIGHUP, or the content poll) makes new
// connections fail and swapping back heals them, with no restart; and no
// key reaches a log.
func TestE2ETLSRequired(t *testing.T) {
	dir := makeCerts(t, 4)
	opts := localcluster.Options{
		Binary: mnemoBin, Dir: t.TempDir(), Nodes: 3, HTTP: true, ClientTLS: clientTLS(t, dir),
		NodeArgs: func(i int) []string {
			id := fmt.Sprintf("node-%d", i+1)
			args := tlsArgs(dir, id, "required")
			if i == 0 {
				return append(args, "--tls-reload-interval", "0") // SIGHUP only
			}
			return append(args, "--tls-reload-interval", "100ms")
		},
	}
	c, err := localcluster.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	// node-2 on 127.0.0.2: its certificate is good from there only.
	_, port, _ := net.SplitHostPort(c.Nodes[1].RPC)
	c.Nodes[1].RPC = "127.0.0.2:" + port
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			for _, p := range c.Nodes {
				t.Logf("--- last log lines of %s:\n%s", p.ID, p.LogTail(15))
			}
		}
	})
	ctx := ctxT(t, 3*time.Minute)
	if err := c.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	// The admin port of a required node speaks TLS only.
	adminTLS := clientTLS(t, dir)
	if _, err := http.Get("http://" + c.Nodes[0].HTTP + "/healthz"); err == nil {
		t.Fatal("plaintext HTTP to a required node's admin port answered")
	}

	// Quorum writes and reads through the SDK with a client certificate.
	cl, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for k := range 30 {
		key := fmt.Sprint("key-", k)
		if _, err := cl.Put(ctx, []byte(key), []byte("v-"+key), client.W(3)); err != nil {
			t.Fatalf("put %s at W=3: %v", key, err)
		}
	}
	for k := range 30 {
		key := fmt.Sprint("key-", k)
		if res, err := cl.Get(ctx, []byte(key), client.R(3)); err != nil || string(res.Value()) != "v-"+key {
			t.Fatalf("get %s at R=3: %v %v", key, res, err)
		}
	}
	// The CLI with --tls-*, and without.
	tlsFlags := []string{"--tls-ca", filepath.Join(dir, "ca.crt"), "--tls-cert", filepath.Join(dir, "client-ops.crt"), "--tls-key", filepath.Join(dir, "client-ops.key")}
	if out, errOut, code := cli(t, append([]string{"get", "key-7", "--addr", c.Nodes[2].RPC}, tlsFlags...)...); code != 0 || out != "v-key-7\n" {
		t.Fatalf("cli get over TLS: exit %d %q %s", code, out, errOut)
	}
	if _, errOut, code := cli(t, "get", "key-7", "--addr", c.Nodes[2].RPC, "--timeout", "3s"); code != 2 {
		t.Fatalf("cli get without TLS from a required node: exit %d %s", code, errOut)
	}

	// Plaintext to the required RPC port: refused, and counted.
	before := metric(t, c.Nodes[0].HTTP, adminTLS, `mnemo_tls_refused_connections_total{port="rpc"}`)
	if err := ping(c.Nodes[0].RPC, wire.ClientConfig{}); !errors.Is(err, wire.ErrConnClosed) {
		t.Fatalf("plaintext ping of a required port: %v, want the connection closed", err)
	}
	testutil.Eventually(t, 5*time.Second, "the refusal counted", func() (bool, string) {
		v := metric(t, c.Nodes[0].HTTP, adminTLS, `mnemo_tls_refused_connections_total{port="rpc"}`)
		return v > before, fmt.Sprintf("%v (before %v)", v, before)
	})
	if v := metric(t, c.Nodes[0].HTTP, adminTLS, `mnemo_plaintext_connections_total{port="rpc"}`); v != 0 {
		t.Errorf("a required node accepted %v plaintext connections", v)
	}

	// node-2's valid certificate, from 127.0.0.1 (where node-1 and node-3
	// are): refused. From 127.0.0.2, where the ring has node-2: accepted.
	asNode2 := withTLS(peerTLS(t, dir, "node-2", "node-1"))
	if err := ping(c.Nodes[0].RPC, asNode2); err == nil {
		t.Fatal("node-1 took node-2's certificate from 127.0.0.1")
	}
	testutil.Eventually(t, 5*time.Second, "node-1 logging why", func() (bool, string) {
		tail := c.Nodes[0].LogTail(50)
		return strings.Contains(tail, "peer certificate refused") && strings.Contains(tail, "node-2's RPC address is 127.0.0.2:"), tail
	})
	fromNode2 := asNode2
	fromNode2.LocalIP = net.ParseIP("127.0.0.2")
	if err := ping(c.Nodes[0].RPC, fromNode2); err != nil {
		t.Fatalf("node-2's certificate from node-2's address: %v", err)
	}

	// A client certificate may not call peer kinds.
	conn, err := wire.Dial(ctx, c.Nodes[0].RPC, withTLS(clientTLS(t, dir)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := wire.Marshal(&proto.ReplicaGet{Key: []byte("key-1")})
	var we *wire.Error
	if _, _, err := conn.Call(ctx, proto.KindReplicaGet, body); !errors.As(err, &we) || we.Code != wire.CodeForbidden {
		t.Fatalf("a client certificate calling a replica read: %v, want forbidden", err)
	}
	conn.Close()

	// A node started with another node's certificate refuses to start.
	i4, err := c.Add()
	if err != nil {
		t.Fatal(err)
	}
	// Bounded: a node that wrongly started would run until killed.
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	cmd := exec.CommandContext(rctx, mnemoBin, append(c.Args(i4), tlsArgs(dir, "node-2", "required")...)...)
	var outb, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &outb, &errb
	err = cmd.Run()
	timedOut := rctx.Err() != nil
	cancel()
	out, errOut := outb.String(), errb.String()
	if err == nil || timedOut || !strings.Contains(errOut, `names "mnemo://node/node-2", not this node's mnemo://node/node-4`) {
		t.Fatalf("node-4 with node-2's certificate: %v\n%s%s", err, out, errOut)
	}
	c.Nodes = c.Nodes[:3]

	// Rotation. An expired certificate for node-1 swapped in; SIGHUP.
	ca, err := security.LoadCA(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	good1 := readPair(t, dir, "node-1")
	past := time.Now().Add(-48 * time.Hour)
	expired, err := ca.Issue(security.CertRequest{Identity: security.Identity{Kind: security.NodeIdentity, Name: "node-1"}, NotBefore: past, NotAfter: past.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	pid1 := c.Nodes[0].PID()
	hup := func() {
		if err := syscall.Kill(pid1, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	cliTLS := withTLS(clientTLS(t, dir))
	swap := func(id string, pair security.Cert, reload func(), wantOK bool) {
		t.Helper()
		if err := pair.Write(dir, id); err != nil {
			t.Fatal(err)
		}
		if reload != nil {
			reload()
		}
		i := map[string]int{"node-1": 0, "node-2": 1}[id]
		testutil.Eventually(t, 10*time.Second, fmt.Sprintf("new connections to %s ok=%v", id, wantOK), func() (bool, string) {
			err := ping(c.Nodes[i].RPC, cliTLS)
			return (err == nil) == wantOK, fmt.Sprint(err)
		})
	}
	swap("node-1", expired, hup, false)
	if err := ping(c.Nodes[0].RPC, cliTLS); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("dial to node-1 with its expired certificate: %v, want expired", err)
	}
	// Its admin port now presents the expired certificate too: an operator
	// reads the gauge with verification off (curl -k).
	unverified := &tls.Config{InsecureSkipVerify: true}
	if e := metric(t, c.Nodes[0].HTTP, unverified, "mnemo_tls_cert_expiry_seconds"); e >= 0 {
		t.Errorf("expiry gauge %v with an expired certificate", e)
	}
	swap("node-1", good1, hup, true)
	// A broken file: refused, logged, the good one kept.
	if err := os.WriteFile(filepath.Join(dir, "node-1.crt"), []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	hup()
	testutil.Eventually(t, 5*time.Second, "node-1 logging the refusal", func() (bool, string) {
		tail := c.Nodes[0].LogTail(20)
		return strings.Contains(tail, "new certificate material refused"), tail
	})
	if err := ping(c.Nodes[0].RPC, cliTLS); err != nil {
		t.Fatalf("node-1 after a broken file: %v", err)
	}
	if err := good1.Write(dir, "node-1"); err != nil {
		t.Fatal(err)
	}
	hup()
	// node-2 by its content poll alone.
	good2 := readPair(t, dir, "node-2")
	expired2, err := ca.Issue(security.CertRequest{Identity: security.Identity{Kind: security.NodeIdentity, Name: "node-2"}, NotBefore: past, NotAfter: past.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	swap("node-2", expired2, nil, false)
	swap("node-2", good2, nil, true)
	if c.Nodes[0].PID() != pid1 {
		t.Fatal("node-1 restarted")
	}
	// The cluster still serves at quorum, over new connections.
	cl2, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	if _, err := cl2.Put(ctx, []byte("after"), []byte("rotation"), client.W(3)); err != nil {
		t.Fatalf("put at W=3 after the rotations: %v", err)
	}

	// No key in any log.
	keys := [][]byte{good1.KeyPEM, good2.KeyPEM, expired.KeyPEM, expired2.KeyPEM}
	for _, p := range c.Nodes {
		b, _ := os.ReadFile(p.LogFile)
		if strings.Contains(string(b), "PRIVATE KEY") {
			t.Errorf("%s's log holds a PEM key", p.ID)
		}
		for _, k := range keys {
			body := strings.Split(string(k), "\n")[1]
			if strings.Contains(string(b), body) {
				t.Errorf("%s's log holds a key's bytes", p.ID)
			}
		}
	}
}

func readPair(t *testing.T, dir, id string) security.Cert {
	t.Helper()
	crt, err := os.ReadFile(filepath.Join(dir, id+".crt"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(dir, id+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return security.Cert{CertPEM: crt, KeyPEM: key}
}

// TestE2ERollingSecurity: a cluster under a quorum write load is rolled
// from disabled through transitional to required, one restart at a time;
// every acknowledged write is there at the end, over TLS. Gossip
// encryption rolls with it (every node names the key file from the start;
// e2e_keyring_test.go checks that step by step).
func TestE2ERollingSecurity(t *testing.T) {
	dir := makeCerts(t, 3)
	var mu sync.Mutex
	modes := []string{"disabled", "disabled", "disabled"}
	opts := localcluster.Options{
		Binary: mnemoBin, Dir: t.TempDir(), Nodes: 3, HTTP: true,
		NodeArgs: func(i int) []string {
			mu.Lock()
			defer mu.Unlock()
			return tlsArgs(dir, fmt.Sprintf("node-%d", i+1), modes[i])
		},
	}
	c, err := localcluster.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			for _, p := range c.Nodes {
				t.Logf("--- last log lines of %s:\n%s", p.ID, p.LogTail(15))
			}
		}
	})
	ctx := ctxT(t, 4*time.Minute)
	if err := c.StartAll(ctx); err != nil {
		t.Fatal(err)
	}

	// The load: W=2 puts from 4 writers, each recording what was acked.
	var (
		ackMu  sync.Mutex
		acked  []string
		failed int
		cli    = map[bool]*client.Client{}
		useTLS bool
	)
	for _, tlsOn := range []bool{false, true} {
		cfg := client.Config{Addrs: c.Addrs(), Timeout: 3 * time.Second}
		if tlsOn {
			cfg.TLS = clientTLS(t, dir)
		}
		cl, err := client.NewWithConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		cli[tlsOn] = cl
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ackMu.Lock()
				cl := cli[useTLS]
				ackMu.Unlock()
				key := fmt.Sprintf("w%d-%d", w, i)
				pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := cl.Put(pctx, []byte(key), []byte(key), client.W(2))
				cancel()
				ackMu.Lock()
				if err == nil {
					acked = append(acked, key)
				} else {
					failed++
					if failed%100 == 1 {
						t.Logf("put %s (tls %v): %v", key, useTLS, err)
					}
				}
				ackMu.Unlock()
			}
		}()
	}
	count := func() int { ackMu.Lock(); defer ackMu.Unlock(); return len(acked) }
	waitWrites := func(more int) {
		n := count()
		testutil.Eventually(t, 30*time.Second, "writes acknowledged", func() (bool, string) {
			return count() >= n+more, fmt.Sprintf("%d acked", count()-n)
		})
	}
	roll := func(mode string) {
		for i := range c.Nodes {
			if err := c.Stop(i); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			modes[i] = mode
			mu.Unlock()
			if err := c.Start(i); err != nil {
				t.Fatal(err)
			}
			if err := c.WaitConverged(ctx, c.Indexes()...); err != nil {
				t.Fatal(err)
			}
			waitWrites(50)
		}
	}
	waitWrites(50)
	roll("transitional")
	// Every node accepts TLS now: clients switch, then required.
	ackMu.Lock()
	useTLS = true
	ackMu.Unlock()
	c.SetClientTLS(clientTLS(t, dir))
	waitWrites(50)
	// What tells the operator required is safe: with every node
	// transitional and every client on TLS, peers dial each other with
	// TLS too (each advertises transitional), so the plaintext count
	// stops growing.
	plaintext := func() (sum float64) {
		for _, p := range c.Nodes {
			sum += metric(t, p.HTTP, nil, `mnemo_plaintext_connections_total{port="rpc"}`)
		}
		return sum
	}
	settled := plaintext()
	waitWrites(200)
	if err := c.WaitConverged(ctx, c.Indexes()...); err != nil { // status fans out to every peer
		t.Fatal(err)
	}
	if now := plaintext(); now != settled {
		t.Errorf("plaintext connections grew from %v to %v with every node transitional and clients on TLS", settled, now)
	}
	roll("required")
	waitWrites(50)
	close(stop)
	wg.Wait()

	// Every acknowledged write is readable at R=3, over TLS.
	ackMu.Lock()
	keys := append([]string(nil), acked...)
	ackMu.Unlock()
	for _, k := range keys {
		res, err := cli[true].Get(ctx, []byte(k), client.R(3))
		if err != nil || string(res.Value()) != k {
			t.Fatalf("acknowledged %s: %v %v (of %d acked, %d failed)", k, res, err, len(keys), failed)
		}
	}
	t.Logf("%d writes acknowledged during the roll, %d failed (not acknowledged)", len(keys), failed)
	// Required now: plaintext is refused on every node.
	for _, p := range c.Nodes {
		if err := ping(p.RPC, wire.ClientConfig{}); err == nil {
			t.Errorf("%s took plaintext after the roll", p.ID)
		}
	}
}

// TestE2ERESPAndAdminOverTLS: with --security required the Redis port and
// the admin port speak TLS only. The real redis-cli over TLS (with the
// cluster CA) authenticates with a password, or with a client certificate
// naming a user (mnemo://client/ops) and no password; plaintext redis-cli
// and plaintext HTTP get nothing; the admin port answers HTTPS with the
// token, and 401 without.
func TestE2ERESPAndAdminOverTLS(t *testing.T) {
	rcli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skipf("redis-cli is not on PATH (make test installs it with apt-get install -y redis-tools): %v", err)
	}
	if out, _ := exec.Command(rcli, "--help").CombinedOutput(); !strings.Contains(string(out), "--tls") {
		t.Skip("this redis-cli is built without TLS")
	}
	// --hosts: HTTPS clients (Go's, curl) check the host name as well.
	certs := filepath.Join(t.TempDir(), "certs")
	if out, errOut, code := cli(t, "certs", "init", "--dir", certs, "--nodes", "node-1", "--clients", "ops", "--hosts", "127.0.0.1"); code != 0 {
		t.Fatalf("mnemo certs init: exit %d\n%s%s", code, out, errOut)
	}
	writeKeyFile(t, certs, "gossip.key", gossipKey(t)) // tlsArgs names it
	dir := t.TempDir()
	users := filepath.Join(dir, "users.toml")
	usersText := `[users.default]
password-hash = "` + hashWithCLI(t, e2eDefaultPass) + `"
allow = ["all"]

[users.ops]
password-hash = "` + hashWithCLI(t, e2eReaderPass) + `"
allow = ["read"]
`
	adminFile := filepath.Join(dir, "admin.token")
	for path, content := range map[string]string{users: usersText, adminFile: e2eAdminToken + "\n"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cTLS := clientTLS(t, certs)
	c, err := localcluster.New(localcluster.Options{Binary: mnemoBin, Dir: t.TempDir(), Nodes: 1, RESP: true, HTTP: true, ClientTLS: cTLS,
		Args: append(tlsArgs(certs, "node-1", "required"), "--resp-users", users, "--admin-token-file", adminFile,
			"--n", "1", "--r", "1", "--w", "1", "--log-level", "debug")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.StartAll(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	n := c.Nodes[0]
	tlsCLI := []string{"--tls", "--cacert", filepath.Join(certs, "ca.crt")}
	withCert := append(slices.Clone(tlsCLI), "--cert", filepath.Join(certs, "client-ops.crt"), "--key", filepath.Join(certs, "client-ops.key"))
	for _, tc := range []struct {
		name, user, pass string
		args             []string
		want             string
	}{
		{"tls, password", "", e2eDefaultPass, append(slices.Clone(tlsCLI), "SET", "k", "over-tls"), "OK"},
		{"tls, no password", "", "", append(slices.Clone(tlsCLI), "GET", "k"), "NOAUTH Authentication required."},
		{"tls, client certificate", "", "", append(slices.Clone(withCert), "ACL", "WHOAMI"), "ops"},
		{"tls, client certificate reads", "", "", append(slices.Clone(withCert), "GET", "k"), "over-tls"},
		{"tls, client certificate of a reader", "", "", append(slices.Clone(withCert), "SET", "k", "x"), "NOPERM this user has no permissions to run the 'set' command"},
	} {
		if got := redisCLIAuth(t, rcli, n.RESP, tc.user, tc.pass, tc.args...); got != tc.want {
			t.Errorf("redis-cli %s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := redisCLIAuth(t, rcli, n.RESP, "", e2eDefaultPass, "GET", "k"); strings.Contains(got, "over-tls") {
		t.Errorf("plaintext redis-cli to a required RESP port read the value: %q", got)
	}

	// Admin: HTTPS only; the token opens routes; without one, 401.
	if _, err := http.Get("http://" + n.HTTP + "/status"); err == nil {
		t.Error("plaintext HTTP to a required admin port answered")
	}
	caPEM, err := os.ReadFile(filepath.Join(certs, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}}}
	for _, tc := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {"wrong-token-wrong-token", http.StatusUnauthorized}, {e2eAdminToken, http.StatusOK}} {
		req, _ := http.NewRequest("GET", "https://"+n.HTTP+"/status", nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET https /status: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET https /status with a token (%v): %d, want %d", tc.token != "", resp.StatusCode, tc.want)
		}
	}
	// A client certificate opens the admin port as a token does.
	hcCert := &http.Client{Transport: &http.Transport{TLSClientConfig: cTLS}}
	resp, err := hcCert.Get("https://" + n.HTTP + "/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET https /status with a client certificate: %d", resp.StatusCode)
	}

	// Nothing secret in the log.
	b, err := os.ReadFile(n.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{e2eDefaultPass, e2eReaderPass, e2eAdminToken, "PRIVATE KEY"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("the node's log holds %q", secret)
		}
	}
}
