package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/security"
	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/ring"
)

// testCerts writes a CA and certificates for the named nodes and a client
// "ops" into a temp dir, and returns the dir.
func testCerts(t *testing.T, nodes ...string) string {
	t.Helper()
	dir := t.TempDir()
	ca, err := security.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteCA(dir); err != nil {
		t.Fatal(err)
	}
	for _, id := range append(nodes, "client-ops") {
		ident := security.Identity{Kind: security.NodeIdentity, Name: id}
		if id == "client-ops" {
			ident = security.Identity{Kind: security.ClientIdentity, Name: "ops"}
		}
		c, err := ca.Issue(security.CertRequest{Identity: ident})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Write(dir, id); err != nil {
			t.Fatal(err)
		}
	}
	// The gossip key every test node with security on needs.
	if err := os.WriteFile(filepath.Join(dir, "gossip.key"), []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{'k'}, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func secure(dir string, mode security.Mode) func(*Config) {
	return func(c *Config) {
		c.Security = mode
		c.TLSCert = filepath.Join(dir, c.ID+".crt")
		c.TLSKey = filepath.Join(dir, c.ID+".key")
		c.TLSCA = filepath.Join(dir, "ca.crt")
		c.GossipKeyFile = filepath.Join(dir, "gossip.key")
	}
}

// TestRequiredCluster: three nodes in required mode replicate over mTLS;
// the SDK with a client certificate reads and writes at quorum; without
// TLS it is refused; a client certificate cannot call peer kinds.
func TestRequiredCluster(t *testing.T) {
	dir := testCerts(t, "n1", "n2", "n3")
	tc := startCluster(t, 3, secure(dir, security.Required))
	tlsCfg, err := client.LoadTLS(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "client-ops.crt"), filepath.Join(dir, "client-ops.key"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewWithConfig(client.Config{Addrs: []string{tc.nodes[0].RPCAddr()}, TLS: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := ctxFor(t)
	if _, err := c.Put(ctx, []byte("k"), []byte("v"), client.W(3)); err != nil {
		t.Fatalf("put at W=3 over mTLS: %v", err)
	}
	c2, err := client.NewWithConfig(client.Config{Addrs: []string{tc.nodes[2].RPCAddr()}, TLS: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	res, err := c2.Get(ctx, []byte("k"), client.R(3))
	if err != nil || !bytes.Equal(res.Value(), []byte("v")) {
		t.Fatalf("get at R=3: %v, %v", res, err)
	}

	plain := tc.client(0)
	if _, err := plain.Get(ctx, []byte("k")); err == nil {
		t.Fatal("a plaintext client read from a required node")
	}

	// A client certificate calling a replica kind directly.
	conn, err := wire.Dial(ctx, tc.nodes[1].RPCAddr(), wire.ClientConfig{TLS: func(string) (*tls.Config, error) { return tlsCfg, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body, _ := wire.Marshal(&proto.ReplicaGet{Key: []byte("k")})
	var we *wire.Error
	if _, _, err := conn.Call(ctx, proto.KindReplicaGet, body); !errors.As(err, &we) || we.Code != wire.CodeForbidden {
		t.Fatalf("client certificate calling ReplicaGet: %v, want CodeForbidden", err)
	}
	if _, _, err := conn.Call(ctx, proto.KindPing, nil); err != nil {
		t.Fatalf("client certificate calling Ping: %v", err)
	}
	// The keyring: the cluster-wide command is an admin's, the per-node
	// one a peer's.
	body, _ = wire.Marshal(&proto.KeyringRequest{Op: proto.KeyringList})
	if _, _, err := conn.Call(ctx, proto.KindKeyringLocal, body); !errors.As(err, &we) || we.Code != wire.CodeForbidden {
		t.Fatalf("client certificate calling KeyringLocal: %v, want CodeForbidden", err)
	}
	r, err := c.KeyringList(ctx)
	if err != nil || len(r.Nodes) != 3 {
		t.Fatalf("keyring list with a client certificate: %+v, %v", r, err)
	}
	for _, m := range r.Nodes {
		if m.Error != "" || !m.Encrypting || m.Mode != "required" {
			t.Fatalf("keyring list: %+v", m)
		}
	}
}

// TestMemberAt: a node certificate is accepted only from the IP its
// member advertises for RPC.
func TestMemberAt(t *testing.T) {
	n := &Node{}
	st := ring.NewState(8)
	st.Update(ring.Member{ID: "b", Status: ring.Active, RPCAddr: "10.0.0.2:7000"})
	st.Update(ring.Member{ID: "gone", Status: ring.Removed, RPCAddr: "10.0.0.3:7000"})
	st.Update(ring.Member{ID: "open", Status: ring.Active, RPCAddr: "[::]:7000"})
	n.view.Store(&view{members: st.Members})
	at := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000} }
	for _, tc := range []struct {
		id, from string
		ok       bool
		why      string
	}{
		{"b", "10.0.0.2", true, ""},
		{"b", "10.0.0.9", false, "RPC address is 10.0.0.2:7000"},
		{"c", "10.0.0.2", false, "not a ring member"},
		{"gone", "10.0.0.3", false, "not a ring member"},
		{"open", "::", false, "RPC address is [::]:7000"},
	} {
		err := n.memberAt(at(tc.from), ring.NodeID(tc.id))
		if (err == nil) != tc.ok || err != nil && !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%s from %s: %v, want ok=%v %q", tc.id, tc.from, err, tc.ok, tc.why)
		}
	}
}

// TestDialChecksRingIdentity: a node dialing the address the ring gives
// node n3 refuses a server there that presents n2's valid certificate.
func TestDialChecksRingIdentity(t *testing.T) {
	dir := testCerts(t, "n1", "n2")
	tc := startCluster(t, 1, secure(dir, security.Required))
	n1 := tc.nodes[0]

	// The impostor: n2's certificate, on an address the ring says is n3's.
	r, err := security.NewReloader(security.Files{Cert: filepath.Join(dir, "n2.crt"), Key: filepath.Join(dir, "n2.key"), CA: filepath.Join(dir, "ca.crt")}, security.ReloaderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := wire.NewServer(wire.ServerConfig{}, func(context.Context, wire.Kind, []byte) (wire.Kind, []byte, error) { return 1, nil, nil })
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(security.Wrap(raw, security.ListenerConfig{Mode: security.Required, TLS: r.ServerConfig(security.ServerOptions{ClientAuth: security.RequireClientCert})}))
	}()
	defer func() { srv.Close(); <-done }()

	n1.stateMu.Lock()
	n1.state.Update(ring.Member{ID: "n3", Status: ring.Active, RPCAddr: raw.Addr().String(), Security: uint8(security.Required)})
	n1.stateMu.Unlock()
	n1.publishView()
	_, _, err = n1.pool.Call(ctxFor(t), raw.Addr().String(), proto.KindPing, nil)
	if err == nil || !strings.Contains(err.Error(), "names mnemo://node/n2, but mnemo://node/n3 is expected") {
		t.Fatalf("dial to n3's address answered by n2's certificate: %v", err)
	}
	if st := srv.Stats(); st.FramesIn != 0 {
		t.Fatalf("the impostor read %d frames", st.FramesIn)
	}
}

// TestTransitionalPeersDialTLS: nodes that all advertise transitional
// talk TLS to each other (they learn each other's mode from the ring
// state), so with clients on TLS too no plaintext connection is accepted:
// the figure that tells the operator required is safe.
func TestTransitionalPeersDialTLS(t *testing.T) {
	dir := testCerts(t, "n1", "n2", "n3")
	tc := startCluster(t, 3, secure(dir, security.Transitional))
	tlsCfg, err := client.LoadTLS(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "client-ops.crt"), filepath.Join(dir, "client-ops.key"))
	if err != nil {
		t.Fatal(err)
	}
	for i, nd := range tc.nodes {
		for _, m := range nd.view.Load().members {
			if security.Mode(m.Security) != security.Transitional {
				t.Fatalf("n%d sees %s advertising %v", i+1, m.ID, security.Mode(m.Security))
			}
		}
	}
	c, err := client.NewWithConfig(client.Config{Addrs: []string{tc.nodes[0].RPCAddr()}, TLS: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := ctxFor(t)
	for k := range 20 {
		if _, err := c.Put(ctx, []byte(fmt.Sprint("k", k)), []byte("v"), client.W(3)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Status(ctx); err != nil {
		t.Fatal(err)
	}
	for i, nd := range tc.nodes {
		var m dto.Metric
		if err := nd.tlsm.plaintext.WithLabelValues("rpc").Write(&m); err != nil {
			t.Fatal(err)
		}
		if v := m.GetCounter().GetValue(); v != 0 {
			t.Errorf("n%d accepted %v plaintext connections", i+1, v)
		}
	}
}
