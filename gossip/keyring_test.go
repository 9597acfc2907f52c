package gossip

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/internal/security"
	"github.com/mnemo-kv/mnemo/internal/testutil"
)

func newKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func b64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

func TestParseKeys(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	for _, tc := range []struct {
		name, text string
		want       [][]byte
		err        string
	}{
		{"one", b64(k1) + "\n", [][]byte{k1}, ""},
		{"primary first, comments and blanks", "# rotated 2026-12\n\n" + b64(k2) + "\n  " + b64(k1) + "  \n", [][]byte{k2, k1}, ""},
		{"unpadded", strings.TrimRight(b64(k1), "="), [][]byte{k1}, ""},
		{"empty", "\n# nothing\n", nil, "no key"},
		{"not base64", b64(k1) + "\nnot-base64!\n", nil, "line 2: gossip: key is not base64"},
		{"AES-128 refused", short, nil, "line 1: gossip: key is 16 bytes, want 32"},
		{"twice", b64(k1) + "\n" + b64(k1), nil, "line 2: gossip: key " + Fingerprint(k1) + " is listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseKeys([]byte(tc.text))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				// No secret in an error message.
				if strings.Contains(err.Error(), b64(k1)[:10]) {
					t.Fatalf("error repeats the key: %v", err)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("got %d keys, %v; want %d", len(got), err, len(tc.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) {
					t.Fatalf("key %d differs", i)
				}
			}
		})
	}
}

// TestKeyringOps: install, use and remove, on a transitional node's
// pending keys and on installed ones alike.
func TestKeyringOps(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	for _, mode := range []security.Mode{security.Transitional, security.Required} {
		t.Run(mode.String(), func(t *testing.T) {
			k, err := newKeyring(mode, [][]byte{k1})
			if err != nil {
				t.Fatal(err)
			}
			want := func(primary []byte, keys ...[]byte) {
				t.Helper()
				st := k.status()
				var fps []string
				for _, key := range keys {
					fps = append(fps, Fingerprint(key))
				}
				if st.Primary != Fingerprint(primary) || fmt.Sprint(st.Keys) != fmt.Sprint(fps) {
					t.Fatalf("keyring %s %v, want %s %v", st.Primary, st.Keys, Fingerprint(primary), fps)
				}
				if st.Encrypting != (mode == security.Required) {
					t.Fatalf("encrypting %v in mode %s", st.Encrypting, mode)
				}
				if got := len(k.ml.GetKeys()); mode == security.Transitional && got != 0 {
					t.Fatalf("memberlist holds %d keys before enable", got)
				}
			}
			want(k1, k1)
			if err := k.install(k2); err != nil {
				t.Fatal(err)
			}
			if err := k.install(k2); err != nil { // repeated: no-op
				t.Fatal(err)
			}
			want(k1, k1, k2)
			if err := k.remove(Fingerprint(k1)); err == nil || !strings.Contains(err.Error(), "primary") {
				t.Fatalf("removing the primary: %v", err)
			}
			if err := k.use(Fingerprint(k2)[:8]); err != nil { // a prefix names it
				t.Fatal(err)
			}
			want(k2, k2, k1)
			if err := k.remove(Fingerprint(k1)); err != nil {
				t.Fatal(err)
			}
			if err := k.remove(Fingerprint(k1)); err != nil { // repeated: no-op
				t.Fatal(err)
			}
			want(k2, k2)
			if err := k.use(Fingerprint(k1)); !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("using a removed key: %v", err)
			}
			if err := k.use("abc"); err == nil {
				t.Fatal("a 3-character fingerprint was accepted")
			}
			if err := k.install(k2[:16]); err == nil {
				t.Fatal("a 16-byte key was installed")
			}
		})
	}
	k, _ := newKeyring(security.Disabled, nil)
	if err := k.install(k1); !errors.Is(err, ErrNotEncrypted) {
		t.Fatalf("install on a disabled node: %v", err)
	}
}

// gossipState is a node's encryption state in a rolling enable: what
// Config.Encryption and EnableEncryption make of it.
type gossipState int

const (
	stDisabled          gossipState = iota // no keyring
	stTransitionalPlain                    // transitional, keys pending: sends plaintext
	stTransitionalEnc                      // transitional, keys installed: sends encrypted, reads both
	stRequired                             // encrypted only
)

func (s gossipState) String() string {
	return [...]string{"disabled", "transitional(plain)", "transitional(encrypting)", "required"}[s]
}

func (s gossipState) apply(cfg *Config, key []byte) {
	cfg.Encryption = []security.Mode{security.Disabled, security.Transitional, security.Transitional, security.Required}[s]
	cfg.Keys = nil
	if s != stDisabled {
		cfg.Keys = [][]byte{key}
	}
}

// TestEncryptionPairs checks, with real memberlist, which pairs of states
// can form a cluster: the seed in one state, a joiner in another. The
// rolling enable (disabled -> transitional -> required, one node at a
// time, a transitional node encrypting only once every member is
// transitional) must only ever put two members in pairs marked ok; a
// transitional node that joins a cluster already encrypting follows it.
// The test also shows the pairs that must never meet do fail, so the
// rule that keeps them apart is needed.
func TestEncryptionPairs(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	type pair struct {
		seed, joiner gossipState
		ok           bool
	}
	pairs := []pair{
		{stDisabled, stDisabled, true},
		{stDisabled, stTransitionalPlain, true},
		{stTransitionalPlain, stDisabled, true},
		{stTransitionalPlain, stTransitionalPlain, true},
		{stTransitionalEnc, stTransitionalPlain, true}, // the joiner follows: peerEncrypts
		{stTransitionalEnc, stTransitionalEnc, true},
		{stTransitionalEnc, stRequired, true},
		{stRequired, stTransitionalEnc, true},
		{stRequired, stTransitionalPlain, true}, // the joiner follows: the refusal comes encrypted
		{stRequired, stRequired, true},
		// Never met in a rolling enable:
		{stDisabled, stTransitionalEnc, false},
		{stTransitionalEnc, stDisabled, false},
		{stDisabled, stRequired, false},
		{stRequired, stDisabled, false},
		{stTransitionalPlain, stRequired, false},
	}
	for _, p := range pairs {
		t.Run(fmt.Sprintf("%s+%s", p.seed, p.joiner), func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, nil)
			start := func(id string, s gossipState, join ...string) *node {
				n := c.startWith(id, "127.0.0.1:0", func(cfg *Config, _ *node) { s.apply(cfg, key) }, join...)
				if s == stTransitionalEnc {
					if _, err := n.EnableEncryption(); err != nil {
						t.Fatal(err)
					}
				}
				return n
			}
			seed := start("seed", p.seed)
			seed.state.add("from-seed")
			joiner := start("joiner", p.joiner, seed.LocalAddr())
			joiner.state.add("from-joiner")
			if !p.ok {
				// The joiner retries every 100 ms: 30 attempts.
				testutil.Consistently(t, 3*time.Second, func() error {
					if ids := joiner.AliveIDs(); len(ids) > 1 {
						return fmt.Errorf("%s joined a %s seed: it sees %v", p.joiner, p.seed, ids)
					}
					return nil
				})
				return
			}
			since := time.Now()
			c.waitAlive(2, seed, joiner)
			eventually(t, patience, "state both ways", func() (bool, string) {
				a, sa := seed.state.hasAll("from-joiner")
				b, sb := joiner.state.hasAll("from-seed")
				return a && b, sa + "; " + sb
			})
			if p.joiner == stTransitionalPlain && p.seed >= stTransitionalEnc && !joiner.Keyring().Encrypting {
				t.Fatal("the joiner reached an encrypting cluster without encrypting itself")
			}
			// Several probe rounds (400 ms each) and a push/pull (2 s): each
			// must read the other's acks, or suspicion declares it dead.
			testutil.Consistently(t, 3*time.Second, func() error {
				for _, n := range []*node{seed, joiner} {
					for _, id := range []string{"seed", "joiner"} {
						if e, dead := n.rec.find(evDead, id, since); dead {
							return fmt.Errorf("%s saw %s dead at %v", n.id, id, e.at)
						}
					}
				}
				return nil
			})
		})
	}
}

// TestWrongKeyCannotJoin: a node with another key, or none, stays out of
// a required cluster, and the cluster stays whole.
func TestWrongKeyCannotJoin(t *testing.T) {
	t.Parallel()
	key, other := newKey(t), newKey(t)
	c := newCluster(t, func(cfg *Config) { cfg.Encryption, cfg.Keys = security.Required, [][]byte{key} })
	n1, n2, n3 := c.startThree()
	strangers := []*node{
		c.startWith("wrong-key", "127.0.0.1:0", func(cfg *Config, _ *node) { cfg.Keys = [][]byte{other} }, n1.LocalAddr()),
		c.startWith("no-key", "127.0.0.1:0", func(cfg *Config, _ *node) { cfg.Encryption, cfg.Keys = security.Disabled, nil }, n1.LocalAddr()),
		c.startWith("transitional", "127.0.0.1:0", func(cfg *Config, _ *node) { cfg.Encryption = security.Transitional; cfg.Keys = [][]byte{other} }, n1.LocalAddr()),
	}
	testutil.Consistently(t, 3*time.Second, func() error {
		for _, s := range strangers {
			if ids := s.AliveIDs(); len(ids) > 1 {
				return fmt.Errorf("%s joined: it sees %v", s.id, ids)
			}
		}
		for _, n := range []*node{n1, n2, n3} {
			if ids := n.AliveIDs(); len(ids) != 3 {
				return fmt.Errorf("%s sees %v, want n1 n2 n3", n.id, ids)
			}
		}
		return nil
	})
}

// TestKeyRotation: install, use, remove on every member of a running
// encrypted cluster; state keeps flowing at every step and nobody dies.
// Afterwards a node with only the old key cannot join, one with the new
// key can.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	k1, k2 := newKey(t), newKey(t)
	c := newCluster(t, func(cfg *Config) { cfg.Encryption, cfg.Keys = security.Required, [][]byte{k1} })
	n1, n2, n3 := c.startThree()
	all := []*node{n1, n2, n3}
	since := time.Now()
	step := 0
	check := func(what string) {
		t.Helper()
		step++
		item := fmt.Sprintf("after-%s-%d", what, step)
		n1.state.add(item)
		n1.BroadcastState()
		for _, n := range all {
			eventually(t, patience, n.id+" gets "+item, func() (bool, string) { return n.state.hasAll(item) })
			for _, id := range []string{"n1", "n2", "n3"} {
				if _, dead := n.rec.find(evDead, id, since); dead {
					t.Fatalf("%s saw %s dead after %s: %s", n.id, id, what, n.rec.about(id))
				}
			}
		}
	}
	for _, n := range all {
		if err := n.InstallKey(k2); err != nil {
			t.Fatal(err)
		}
	}
	check("install")
	for _, n := range all {
		if err := n.UseKey(Fingerprint(k2)); err != nil {
			t.Fatal(err)
		}
	}
	check("use")
	for _, n := range all {
		if err := n.RemoveKey(Fingerprint(k1)); err != nil {
			t.Fatal(err)
		}
		if st := n.Keyring(); st.Primary != Fingerprint(k2) || len(st.Keys) != 1 {
			t.Fatalf("%s keyring %+v", n.id, st)
		}
	}
	check("remove")
	c.waitAlive(3, all...)

	old := c.startWith("old-key", "127.0.0.1:0", func(cfg *Config, _ *node) { cfg.Keys = [][]byte{k1} }, n1.LocalAddr())
	fresh := c.startWith("new-key", "127.0.0.1:0", func(cfg *Config, _ *node) { cfg.Keys = [][]byte{k2} }, n2.LocalAddr())
	c.waitAlive(4, fresh, n1, n2, n3)
	if ids := old.AliveIDs(); len(ids) != 1 {
		t.Fatalf("a node with the removed key joined: %v", ids)
	}
}

// TestTransitionalMembersFollowTheFirstToEncrypt: three transitional
// members gossip plaintext; once one turns encryption on, the others
// follow at its first encrypted packet, and nobody is declared dead. Each
// must still follow on its own, before any gossip could tell it the ring
// is ready: the first to encrypt can no longer be read by the others.
func TestTransitionalMembersFollowTheFirstToEncrypt(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	c := newCluster(t, func(cfg *Config) { cfg.Encryption, cfg.Keys = security.Transitional, [][]byte{key} })
	n1, n2, n3 := c.startThree()
	for _, n := range []*node{n1, n2, n3} {
		if n.Keyring().Encrypting {
			t.Fatalf("%s encrypts before anyone enabled it", n.id)
		}
	}
	since := time.Now()
	if changed, err := n2.EnableEncryption(); !changed || err != nil {
		t.Fatalf("enable: %v %v", changed, err)
	}
	took := eventually(t, patience, "n1 and n3 follow n2", func() (bool, string) {
		return n1.Keyring().Encrypting && n3.Keyring().Encrypting,
			fmt.Sprintf("n1 %v, n3 %v", n1.Keyring().Encrypting, n3.Keyring().Encrypting)
	})
	t.Logf("followed %v after n2 turned encryption on", took)
	if !c.log.contains("gossip encryption on: a member sends encrypted gossip") {
		t.Fatal("the followers' log does not say why they turned encryption on")
	}
	n3.state.add("after")
	n3.BroadcastState()
	for _, n := range []*node{n1, n2} {
		eventually(t, patience, n.id+" merges a broadcast", func() (bool, string) { return n.state.hasAll("after") })
	}
	// Suspicion (1.6 s at least) would have declared a member dead by now
	// if one could not read another.
	testutil.Consistently(t, 3*time.Second, func() error {
		for _, n := range []*node{n1, n2, n3} {
			for _, id := range []string{"n1", "n2", "n3"} {
				if _, dead := n.rec.find(evDead, id, since); dead {
					return fmt.Errorf("%s saw %s dead: %s", n.id, id, n.rec.about(id))
				}
			}
		}
		return nil
	})
}

// FuzzParseKeys: a key file's parser never panics, returns only
// KeySize-byte keys, distinct, and never repeats its input in an error.
func FuzzParseKeys(f *testing.F) {
	f.Add([]byte("# c\n" + b64(make([]byte, KeySize)) + "\n"))
	f.Add([]byte("c2VjcmV0\n\n"))
	f.Add([]byte(strings.Repeat("A", 44) + "\n" + strings.Repeat("A", 43) + "="))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := ParseKeys(b)
		if err != nil {
			if len(b) >= 24 && strings.Contains(err.Error(), string(b)) {
				t.Fatalf("error repeats the input: %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, k := range keys {
			if len(k) != KeySize || seen[string(k)] {
				t.Fatalf("key of %d bytes, or twice", len(k))
			}
			seen[string(k)] = true
		}
	})
}

// FuzzPendingKeyOpens: the check a transitional node runs on every
// incoming packet never panics, and opens only what the key sealed.
func FuzzPendingKeyOpens(f *testing.F) {
	key := bytes.Repeat([]byte{7}, KeySize)
	k, err := newKeyring(security.Transitional, [][]byte{key})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{})
	f.Add([]byte{244, 3, 'a', 'b', 'c', 1})
	f.Add(append([]byte{1}, make([]byte, 40)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		if k.pendingKeyOpens(b) {
			t.Fatalf("a packet not sealed with the key opened: %x", b)
		}
	})
}
