package wire

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/internal/security"
)

// tlsFiles writes a certificate of id, signed by ca, and returns a
// reloader of it.
func tlsReloader(t *testing.T, ca *security.CA, id security.Identity) *security.Reloader {
	t.Helper()
	dir := t.TempDir()
	c, err := ca.Issue(security.CertRequest{Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(dir, "n"); err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteCA(dir); err != nil {
		t.Fatal(err)
	}
	r, err := security.NewReloader(security.Files{Cert: filepath.Join(dir, "n.crt"), Key: filepath.Join(dir, "n.key"), CA: filepath.Join(dir, "ca.crt")}, security.ReloaderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestTLSAuthorize: a server on a wrapped listener in required mode, a
// client dialing TLS through ClientConfig.TLS, and Authorize limiting a
// client certificate to some kinds.
func TestTLSAuthorize(t *testing.T) {
	ca, err := security.NewCA("ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	nodeID := security.Identity{Kind: security.NodeIdentity, Name: "n1"}
	srvR := tlsReloader(t, ca, nodeID)
	peerR := tlsReloader(t, ca, security.Identity{Kind: security.NodeIdentity, Name: "n2"})
	cliR := tlsReloader(t, ca, security.Identity{Kind: security.ClientIdentity, Name: "ops"})

	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := security.Wrap(raw, security.ListenerConfig{Mode: security.Required, TLS: srvR.ServerConfig(security.ServerOptions{ClientAuth: security.RequireClientCert})})
	cfg := ServerConfig{Authorize: func(nc net.Conn) (func(Kind) bool, error) {
		id, ok := security.PeerIdentity(nc)
		if !ok {
			return nil, errors.New("no identity")
		}
		if id.Kind == security.ClientIdentity {
			return func(k Kind) bool { return k < 10 }, nil
		}
		return nil, nil
	}}
	// The handler answers with the identity its connection has.
	serveOn(t, ln, cfg, func(ctx context.Context, kind Kind, _ []byte) (Kind, []byte, error) {
		id, _ := security.PeerIdentity(ConnOf(ctx))
		return kind, []byte(id.String()), nil
	})
	addr := raw.Addr().String()

	with := func(r *security.Reloader) ClientConfig {
		return ClientConfig{TLS: func(string) (*tls.Config, error) { return r.ClientConfig(nodeID), nil }}
	}
	ctx := ctxTimeout(t, 5*time.Second)
	peer := dial(t, addr, with(peerR))
	if _, who, err := peer.Call(ctx, 20, []byte("x")); err != nil || string(who) != "mnemo://node/n2" {
		t.Fatalf("node peer, kind 20: %q, %v", who, err)
	}
	cli := dial(t, addr, with(cliR))
	if _, _, err := cli.Call(ctx, 5, []byte("x")); err != nil {
		t.Fatalf("client, kind 5: %v", err)
	}
	var we *Error
	if _, _, err := cli.Call(ctx, 20, []byte("x")); !errors.As(err, &we) || we.Code != CodeForbidden {
		t.Fatalf("client, kind 20: %v, want CodeForbidden", err)
	}
	// Plaintext to the required port: the server closes it.
	plain := dial(t, addr, ClientConfig{})
	if _, _, err := plain.Call(ctx, 5, []byte("x")); !errors.Is(err, ErrConnClosed) {
		t.Fatalf("plaintext call: %v, want ErrConnClosed", err)
	}
	// A server whose certificate names another node than expected.
	wrong := ClientConfig{TLS: func(string) (*tls.Config, error) {
		return peerR.ClientConfig(security.Identity{Kind: security.NodeIdentity, Name: "n3"}), nil
	}}
	if _, err := Dial(ctx, addr, wrong); err == nil {
		t.Fatal("dialed a server whose certificate names n1 as n3")
	}
}
