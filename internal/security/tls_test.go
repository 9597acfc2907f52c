package security

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
)

func TestIdentityOf(t *testing.T) {
	ca := testCA(t, "ca")
	for _, req := range []CertRequest{node("node-1"), client("ops")} {
		c := issue(t, ca, req)
		m, err := parseMaterial(Files{}, c.CertPEM, c.KeyPEM, ca.CertPEM())
		if err != nil {
			t.Fatal(err)
		}
		if m.Identity != req.Identity {
			t.Errorf("identity %v, want %v", m.Identity, req.Identity)
		}
	}
	if _, err := ca.Issue(CertRequest{}); err == nil {
		t.Error("a certificate without an identity was issued")
	}
	if _, err := IdentityOf(ca.Cert); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("the CA's identity: %v, want ErrNoIdentity", err)
	}
}

// pair runs one handshake between a server and a client config over real
// TCP on loopback and returns the client's and the server's errors.
func pair(t *testing.T, server, client *tls.Config) (clientErr, serverErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		tc := tls.Server(c, server)
		err = tc.Handshake()
		if err == nil {
			// TLS 1.3 clients finish before the server has checked their
			// certificate: read, so the client sees the server's verdict.
			_, err = tc.Write([]byte("ok"))
		}
		errc <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc := tls.Client(c, client)
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	clientErr = tc.Handshake()
	if clientErr == nil {
		var b [2]byte
		_, clientErr = io.ReadFull(tc, b[:])
	}
	serverErr = <-errc
	return clientErr, serverErr
}

// TestPeerVerification: the certificates a node must refuse, in both
// directions, with certificates made by the test.
func TestPeerVerification(t *testing.T) {
	dir := t.TempDir()
	ca, other := testCA(t, "ca"), testCA(t, "other")
	mk := func(name string, c Cert, bundle ...*CA) *Reloader {
		r, err := NewReloader(writeFiles(t, dir, name, c, bundle...), ReloaderConfig{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	past := time.Now().Add(-48 * time.Hour)
	a := mk("a", issue(t, ca, node("node-a")), ca)
	b := mk("b", issue(t, ca, node("node-b")), ca)
	expired := mk("expired", issue(t, ca, CertRequest{Identity: Identity{NodeIdentity, "node-b"}, NotBefore: past, NotAfter: past.Add(time.Hour)}), ca)
	foreign := mk("foreign", issue(t, other, node("node-b")), other, ca)
	cli := mk("cli", issue(t, ca, client("ops")), ca)
	nodeB := Identity{NodeIdentity, "node-b"}
	require := ServerOptions{ClientAuth: RequireClientCert}

	for _, tc := range []struct {
		name           string
		server, client *tls.Config
		ok             bool
		why            string
	}{
		{"a dials b", b.ServerConfig(require), a.ClientConfig(nodeB), true, ""},
		{"b's certificate at c's address", b.ServerConfig(require), a.ClientConfig(Identity{NodeIdentity, "node-c"}), false, "node-c is expected"},
		{"expired server", expired.ServerConfig(require), a.ClientConfig(nodeB), false, "expired"},
		{"expired client", a.ServerConfig(require), expired.ClientConfig(Identity{NodeIdentity, "node-a"}), false, "expired"},
		{"server of another CA", foreign.ServerConfig(require), a.ClientConfig(nodeB), false, "unknown authority"},
		{"client of another CA", a.ServerConfig(require), foreign.ClientConfig(Identity{NodeIdentity, "node-a"}), false, "unknown authority"},
		{"client-only certificate as a server", cli.ServerConfig(require), a.ClientConfig(Identity{ClientIdentity, "ops"}), false, "incompatible key usage"},
		{"client certificate to a node", a.ServerConfig(require), cli.ClientConfig(Identity{NodeIdentity, "node-a"}), true, ""},
		{"no client certificate", a.ServerConfig(require), clientConfig(func() *Material { return &Material{CAs: a.Current().CAs} }, func(Identity) error { return nil }), false, "certificate required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cerr, serr := pair(t, tc.server, tc.client)
			if tc.ok {
				if cerr != nil || serr != nil {
					t.Fatalf("refused: client %v, server %v", cerr, serr)
				}
				return
			}
			if cerr == nil {
				t.Fatalf("accepted (server: %v)", serr)
			}
			both := fmt.Sprint(cerr, serr)
			if !strings.Contains(both, tc.why) {
				t.Errorf("refused for another reason: client %v; server %v; want %q", cerr, serr, tc.why)
			}
		})
	}
}

// TestServerCheck: the node's check of a node identity against its
// address fails the handshake.
func TestServerCheck(t *testing.T) {
	dir := t.TempDir()
	ca := testCA(t, "ca")
	a, err := NewReloader(writeFiles(t, dir, "a", issue(t, ca, node("node-a")), ca), ReloaderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var seen Identity
	srv := a.ServerConfig(ServerOptions{ClientAuth: RequireClientCert, Check: func(remote net.Addr, id Identity) error {
		seen = id
		if !strings.HasPrefix(remote.String(), "127.0.0.1:") {
			return fmt.Errorf("remote %v", remote)
		}
		return errors.New("not a member there")
	}})
	cerr, serr := pair(t, srv, a.ClientConfig(Identity{NodeIdentity, "node-a"}))
	if cerr == nil || serr == nil || !strings.Contains(serr.Error(), "not a member there") {
		t.Fatalf("check not applied: client %v, server %v", cerr, serr)
	}
	if seen != (Identity{NodeIdentity, "node-a"}) {
		t.Errorf("check saw %v", seen)
	}
}

// TestReloader: new content is picked up by polling and by Reload, a bad
// file is refused and the old material kept, a Kubernetes-style symlink
// swap is followed, and the expiry gauge follows the certificate in use.
func TestReloader(t *testing.T) {
	dir := t.TempDir()
	ca := testCA(t, "ca")
	// Kubernetes' layout: dir/tls.crt -> ..data/tls.crt, ..data -> a
	// timestamped directory, swapped by renaming a new ..data link.
	gen := func(name string, c Cert, bundle ...*CA) {
		d := filepath.Join(dir, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFiles(t, d, "tls", c, bundle...)
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	gen("v1", issue(t, ca, CertRequest{Identity: Identity{NodeIdentity, "n1"}, NotAfter: time.Now().Add(time.Hour)}), ca)
	for _, f := range []string{"tls.crt", "tls.key", "tls-ca.crt"} {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	files := Files{Cert: filepath.Join(dir, "tls.crt"), Key: filepath.Join(dir, "tls.key"), CA: filepath.Join(dir, "tls-ca.crt")}
	var logs syncBuffer
	r, err := NewReloader(files, ReloaderConfig{
		Interval: 20 * time.Millisecond,
		Logger:   zerolog.New(&logs),
		Check: func(m *Material) error {
			if m.Identity.Name != "n1" {
				return fmt.Errorf("certificate names %v, not n1", m.Identity)
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	expiry := gauge(t, r.Collectors()[0])
	if e := expiry(); e < 3500 || e > 3600 {
		t.Fatalf("expiry gauge %v s, want about an hour", e)
	}

	// A swap to a new certificate (and a CA bundle holding two CAs).
	ca2 := testCA(t, "ca2")
	gen("v2", issue(t, ca2, CertRequest{Identity: Identity{NodeIdentity, "n1"}, NotAfter: time.Now().Add(2 * time.Hour)}), ca, ca2)
	eventually(t, 5*time.Second, "the new certificate in use", func() (bool, string) {
		e := expiry()
		return e > 7000, fmt.Sprintf("expiry %v s", e)
	})
	//lint:ignore SA1019 Subjects is right for a pool made from a bundle, not the system's
	if n := len(r.Current().CAs.Subjects()); n != 2 {
		t.Errorf("CA pool of %d, want 2", n)
	}

	// A bad swap: a key that does not match, then one naming another node.
	good := r.Current()
	bad := issue(t, ca2, node("n1"))
	other := issue(t, ca2, node("n2"))
	d := filepath.Join(dir, "v3")
	_ = os.Mkdir(d, 0o755)
	writeFiles(t, d, "tls", Cert{CertPEM: bad.CertPEM, KeyPEM: other.KeyPEM}, ca2)
	if err := os.Symlink("v3", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if ok, err := r.Reload(); ok || err == nil {
		// The poll may have tried it first: then Reload sees no change.
		if ok {
			t.Fatal("a mismatched key was loaded")
		}
	}
	eventually(t, 5*time.Second, "the refusal logged", func() (bool, string) {
		return strings.Contains(logs.String(), "refused"), logs.String()
	})
	gen("v4", other, ca2)
	eventually(t, 5*time.Second, "the wrong-id certificate refused", func() (bool, string) {
		return strings.Contains(logs.String(), "not n1"), logs.String()
	})
	if r.Current() != good {
		t.Fatal("refused material replaced the good one")
	}
	for _, secret := range [][]byte{bad.KeyPEM, other.KeyPEM, good.Cert.Certificate[0]} {
		line := bytes.Split(secret, []byte("\n"))
		if len(line) > 1 && strings.Contains(logs.String(), string(line[1])) {
			t.Fatal("a key or certificate body reached the log")
		}
	}
	if f := counter(t, r.failures); f < 2 {
		t.Errorf("%v failures counted, want at least 2", f)
	}
}

func gauge(t *testing.T, c prometheus.Collector) func() float64 {
	return func() float64 {
		ch := make(chan prometheus.Metric, 1)
		c.Collect(ch)
		var m dto.Metric
		if err := (<-ch).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetGauge().GetValue()
	}
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
