package node

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/gossip"
	"github.com/mnemo-kv/mnemo/internal/security"
	"github.com/mnemo-kv/mnemo/internal/testutil"
)

func keyFile(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func randomKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, gossip.KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}

// TestBadGossipKeyFileStopsStart: a key file with a bad line stops the
// node before it opens anything, naming the line and never the key.
func TestBadGossipKeyFileStopsStart(t *testing.T) {
	key := randomKey(t)
	dir := testCerts(t, "a")
	cfg := testConfig(t, "a", nil, func(c *Config) {
		secure(dir, security.Required)(c)
		c.GossipKeyFile = keyFile(t, key, key[:20])
	})
	nd, err := New(cfg, zerolog.New(io.Discard))
	if err == nil {
		nd.Close()
		t.Fatal("started with a bad key file")
	}
	if !strings.Contains(err.Error(), "line 2:") || strings.Contains(err.Error(), key[:20]) {
		t.Fatalf("error %q: want the line, never the key", err)
	}
	if entries, _ := os.ReadDir(cfg.Data); len(entries) != 0 {
		t.Fatalf("the data directory was touched: %d entries", len(entries))
	}
}

// TestKeyringRequests: a lone transitional node (it founds its cluster)
// encrypts at once; bad requests get a precise error; a failing step is
// reported per member and changes nothing.
func TestKeyringRequests(t *testing.T) {
	key := randomKey(t)
	dir := testCerts(t, "n1", "n2")
	tc := startCluster(t, 2, func(c *Config) {
		secure(dir, security.Transitional)(c)
		c.GossipKeyFile = keyFile(t, key)
	})
	cl := tc.client(0)
	testutil.Eventually(t, 15*time.Second, "both nodes encrypting", func() (bool, string) {
		r, err := cl.KeyringList(ctxFor(t))
		if err != nil {
			return false, err.Error()
		}
		return len(r.Nodes) == 2 && r.Nodes[0].Encrypting && r.Nodes[1].Encrypting, fmt.Sprintf("%+v", r.Nodes)
	})
	if _, err := cl.KeyringInstall(ctxFor(t), make([]byte, 16)); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("a 16-byte key: %v", err)
	}
	if _, err := cl.KeyringUse(ctxFor(t), "abc"); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("a 3-character fingerprint: %v", err)
	}
	r, err := cl.KeyringUse(ctxFor(t), "0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range r.Nodes {
		if !strings.Contains(n.Error, "no installed key has this fingerprint") || n.Primary == "" {
			t.Fatalf("use of an unknown key on %s: %+v", n.Node, n)
		}
	}
}
