package gossip

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/hashicorp/memberlist"

	"github.com/mnemo-kv/mnemo/internal/security"
)

// KeySize is the size of a gossip key in bytes: memberlist encrypts with
// AES-GCM, and mnemo accepts only AES-256 keys.
const KeySize = 32

// FingerprintLen is the length of a key's fingerprint in hex characters.
const FingerprintLen = 16

// ErrNotEncrypted is returned by the keyring methods of a Gossip whose
// Encryption is security.Disabled: it has no keyring.
var ErrNotEncrypted = errors.New("gossip: encryption is off on this node (security disabled)")

// ErrUnknownKey is returned (wrapped) by UseKey when no installed key has
// the fingerprint.
var ErrUnknownKey = errors.New("gossip: no installed key has this fingerprint")

// Fingerprint names a key without revealing it: the first 8 bytes of its
// SHA-256, in hex. Logs, metrics and `mnemo keyring list` show only this.
// An operator computes it from a key file's line with
// `echo KEY | base64 -d | sha256sum | cut -c1-16`.
func Fingerprint(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:FingerprintLen/2])
}

// ParseKey decodes one base64 key (standard encoding, padded or not) and
// checks it is KeySize bytes. The error never repeats the text.
func ParseKey(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	key, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(text)
	}
	if err != nil {
		return nil, errors.New("gossip: key is not base64")
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("gossip: key is %d bytes, want %d (AES-256)", len(key), KeySize)
	}
	return key, nil
}

// ParseKeys reads a key file's contents: one base64 key per line, the first
// being the primary (the one gossip encrypts with); blank lines and lines
// starting with # are skipped. At least one key, no duplicates. Errors name
// the line, never its text.
func ParseKeys(b []byte) ([][]byte, error) {
	var keys [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		k, err := ParseKey(t)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		for _, have := range keys {
			if bytes.Equal(have, k) {
				return nil, fmt.Errorf("line %d: gossip: key %s is listed twice", line, Fingerprint(k))
			}
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("gossip: read keys: %w", err)
	}
	if len(keys) == 0 {
		return nil, errors.New("gossip: no key (want one base64 32-byte key per line, the first is the primary)")
	}
	return keys, nil
}

// ReadKeyFile reads an operator's key file (see ParseKeys). mnemo never
// writes to it: after a runtime rotation the operator updates it.
func ReadKeyFile(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gossip: key file: %w", err)
	}
	keys, err := ParseKeys(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// KeyringStatus is what a node's keyring holds, by fingerprint.
type KeyringStatus struct {
	// Mode is the node's Encryption setting.
	Mode security.Mode
	// Encrypting is true once memberlist holds the keys: the node sends
	// encrypted gossip. A transitional node is not encrypting until every
	// member advertises transitional or required (EnableEncryption).
	Encrypting bool
	// Primary is the fingerprint of the key gossip encrypts with.
	Primary string
	// Keys are the fingerprints of every key, the primary first.
	Keys []string
}

// keyring is Gossip's side of memberlist's Keyring. memberlist reads its
// Config.Keyring pointer on every packet, so the pointer is fixed at New
// and only its contents change. A transitional node starts with an empty
// memberlist keyring (memberlist's EncryptionEnabled is false: it sends and
// reads plaintext exactly as a disabled node) and keeps its keys pending
// until EnableEncryption installs them.
type keyring struct {
	mode security.Mode
	ml   *memberlist.Keyring // nil when mode is Disabled

	mu struct {
		sync.Mutex
		// pending holds the keys, primary first, while not installed.
		pending [][]byte
		// installed is set once ml holds the keys (for good: a keyring
		// is never emptied again, which memberlist cannot do anyway).
		installed bool
	}
}

// newKeyring builds the keyring for mode; keys are the operator's, primary
// first. Required installs them at once.
func newKeyring(mode security.Mode, keys [][]byte) (*keyring, error) {
	k := &keyring{mode: mode}
	if mode == security.Disabled {
		return k, nil
	}
	ml, err := memberlist.NewKeyring(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("gossip: keyring: %w", err)
	}
	k.ml = ml
	k.mu.pending = cloneKeys(keys)
	if mode == security.Required {
		if err := k.installLocked(); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func cloneKeys(keys [][]byte) [][]byte {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = bytes.Clone(k)
	}
	return out
}

// installLocked moves the pending keys into memberlist's keyring, primary
// first (AddKey on an empty keyring makes that key the primary). k.mu is
// held, or k is not shared yet.
func (k *keyring) installLocked() error {
	for _, key := range k.mu.pending {
		if err := k.ml.AddKey(key); err != nil {
			return fmt.Errorf("gossip: install key %s: %w", Fingerprint(key), err)
		}
	}
	k.mu.pending = nil
	k.mu.installed = true
	return nil
}

// enable installs the pending keys; it reports whether it did (false when
// they were already installed or the node is not encrypted at all).
func (k *keyring) enable() (bool, error) {
	if k.ml == nil {
		return false, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mu.installed {
		return false, nil
	}
	return true, k.installLocked()
}

// keysLocked returns the current keys, primary first. k.mu is held.
func (k *keyring) keysLocked() [][]byte {
	if k.mu.installed {
		return k.ml.GetKeys()
	}
	return k.mu.pending
}

func (k *keyring) status() KeyringStatus {
	st := KeyringStatus{Mode: k.mode}
	if k.ml == nil {
		return st
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	st.Encrypting = k.mu.installed
	for i, key := range k.keysLocked() {
		fp := Fingerprint(key)
		if i == 0 {
			st.Primary = fp
		}
		st.Keys = append(st.Keys, fp)
	}
	return st
}

// find returns the key whose fingerprint is fp, or a unique one fp is a
// prefix of (at least 8 hex characters). k.mu is held.
func (k *keyring) findLocked(fp string) ([]byte, error) {
	fp = strings.ToLower(strings.TrimSpace(fp))
	if len(fp) < 8 {
		return nil, fmt.Errorf("gossip: fingerprint %q: want at least 8 hex characters", fp)
	}
	var found []byte
	for _, key := range k.keysLocked() {
		if strings.HasPrefix(Fingerprint(key), fp) {
			if found != nil {
				return nil, fmt.Errorf("gossip: fingerprint %s names more than one key", fp)
			}
			found = key
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownKey, fp)
	}
	return found, nil
}

// install adds key (not as primary); installing a key already there is a
// no-op, so a repeated command is safe.
func (k *keyring) install(key []byte) error {
	if k.ml == nil {
		return ErrNotEncrypted
	}
	if len(key) != KeySize {
		return fmt.Errorf("gossip: key is %d bytes, want %d (AES-256)", len(key), KeySize)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mu.installed {
		if err := k.ml.AddKey(bytes.Clone(key)); err != nil {
			return fmt.Errorf("gossip: install key %s: %w", Fingerprint(key), err)
		}
		return nil
	}
	for _, have := range k.mu.pending {
		if bytes.Equal(have, key) {
			return nil
		}
	}
	k.mu.pending = append(k.mu.pending, bytes.Clone(key))
	return nil
}

// use makes the installed key with fingerprint fp the primary.
func (k *keyring) use(fp string) error {
	if k.ml == nil {
		return ErrNotEncrypted
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := k.findLocked(fp)
	if err != nil {
		return err
	}
	if k.mu.installed {
		if err := k.ml.UseKey(key); err != nil {
			return fmt.Errorf("gossip: use key %s: %w", Fingerprint(key), err)
		}
		return nil
	}
	rest := [][]byte{key}
	for _, have := range k.mu.pending {
		if !bytes.Equal(have, key) {
			rest = append(rest, have)
		}
	}
	k.mu.pending = rest
	return nil
}

// remove drops the key with fingerprint fp; the primary cannot be removed.
// Removing a key that is not there is a no-op, so a repeated command is
// safe.
func (k *keyring) remove(fp string) error {
	if k.ml == nil {
		return ErrNotEncrypted
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := k.findLocked(fp)
	if errors.Is(err, ErrUnknownKey) {
		return nil
	}
	if err != nil {
		return err
	}
	keys := k.keysLocked()
	if bytes.Equal(keys[0], key) {
		return fmt.Errorf("gossip: key %s is the primary: make another key primary (use) before removing it", Fingerprint(key))
	}
	if k.mu.installed {
		// NB: memberlist's RemoveKey shifts its key slice in place, and a
		// packet being decrypted may be reading that slice (Consul and
		// Serf live with the same). UseKey of the primary first puts the
		// keys in a fresh slice, so only a reader that fetched the keys
		// between the two calls can see the shift; at worst one packet
		// fails to decrypt and is dropped, and gossip retransmits.
		if err := k.ml.UseKey(keys[0]); err != nil {
			return fmt.Errorf("gossip: remove key %s: %w", Fingerprint(key), err)
		}
		if err := k.ml.RemoveKey(key); err != nil {
			return fmt.Errorf("gossip: remove key %s: %w", Fingerprint(key), err)
		}
		return nil
	}
	var rest [][]byte
	for _, have := range k.mu.pending {
		if !bytes.Equal(have, key) {
			rest = append(rest, have)
		}
	}
	k.mu.pending = rest
	return nil
}

// errPeerEncrypts is the text of memberlist's error (net.go, readStream)
// when a node without keys reads a peer's encrypted push/pull.
const errPeerEncrypts = "remote state is encrypted and encryption is not configured"

// peerEncrypts enables encryption on a transitional node whose join was
// refused because the peer already sends encrypted gossip, and reports
// whether it did. A peer encrypts only once every member it knows reads
// encrypted gossip, so this node, restarted (or new) into a cluster that
// finished the first step of a rolling enable, follows it instead of
// staying out: its plaintext push reaches the peer (transitional peers
// read plaintext) but it cannot read the encrypted reply.
//
// NB: anyone who can reach the gossip port can send such a reply; all it
// can do is make this node encrypt, which a transitional node is going to
// do anyway.
func (g *Gossip) peerEncrypts(err error) bool {
	if err == nil || g.cfg.Encryption != security.Transitional || !strings.Contains(err.Error(), errPeerEncrypts) {
		return false
	}
	changed, eerr := g.keys.enable()
	if eerr != nil {
		g.log.Error().Err(eerr).Msg("enabling gossip encryption failed")
		return false
	}
	if changed {
		g.log.Info().Str("primary_key", g.keys.status().Primary).
			Msg("gossip encryption on: the cluster this node joins already encrypts")
	}
	return changed
}

// EnableEncryption makes a transitional node send encrypted gossip: it
// installs the keys into memberlist's keyring (memberlist then encrypts
// every packet and stream it sends, and still reads plaintext). The caller
// calls it once every member reads encrypted gossip (advertises
// transitional or required); a disabled member can no longer read this
// node afterwards. It reports whether encryption was turned on by this
// call; it is a no-op on a node already encrypting or with encryption
// disabled. It cannot be undone.
func (g *Gossip) EnableEncryption() (bool, error) {
	changed, err := g.keys.enable()
	if changed && err == nil {
		g.log.Info().Str("primary_key", g.keys.status().Primary).Int("keys", len(g.keys.status().Keys)).
			Msg("gossip encryption on: every member reads encrypted gossip")
	}
	return changed, err
}

// Keyring reports this node's gossip keys, by fingerprint.
func (g *Gossip) Keyring() KeyringStatus { return g.keys.status() }

// InstallKey adds key (KeySize bytes) to the keyring, for decryption only;
// a key already installed is a no-op. On a transitional node not yet
// encrypting, the key joins the pending keys. Returns ErrNotEncrypted when
// encryption is disabled.
func (g *Gossip) InstallKey(key []byte) error {
	if err := g.keys.install(key); err != nil {
		return err
	}
	g.log.Info().Str("key", Fingerprint(key)).Msg("gossip key installed")
	return nil
}

// UseKey makes the installed key with fingerprint fp (or a unique prefix
// of it, at least 8 hex characters) the primary: gossip encrypts with it
// from now on. Every member must have it installed first. Returns an error
// wrapping ErrUnknownKey when no key matches.
func (g *Gossip) UseKey(fp string) error {
	if err := g.keys.use(fp); err != nil {
		return err
	}
	g.log.Info().Str("primary_key", g.keys.status().Primary).Msg("gossip primary key changed")
	return nil
}

// RemoveKey drops the key with fingerprint fp (or a unique prefix); the
// primary cannot be removed. A key not installed is a no-op.
func (g *Gossip) RemoveKey(fp string) error {
	if err := g.keys.remove(fp); err != nil {
		return err
	}
	g.log.Info().Str("key", fp).Msg("gossip key removed")
	return nil
}

// pendingKeyOpens reports whether packet (as it came off the wire, label
// header included) is memberlist-encrypted with one of the pending keys:
// [version 0|1][12-byte nonce][AES-GCM ciphertext and tag], the label as
// authenticated data (memberlist's security.go and net.go).
func (k *keyring) pendingKeyOpens(packet []byte) bool {
	body, label, err := memberlist.RemoveLabelHeaderFromPacket(packet)
	if err != nil || len(body) < 1+12+16 || body[0] > 1 {
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mu.installed {
		return false
	}
	for _, key := range k.mu.pending {
		block, err := aes.NewCipher(key)
		if err != nil {
			continue
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			continue
		}
		if _, err := gcm.Open(nil, body[1:13], body[13:], []byte(label)); err == nil {
			return true
		}
	}
	return false
}

func (k *keyring) installed() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.mu.installed
}

// followTransport sits between memberlist and its network transport on a
// transitional node. While the node's keys are pending it tries each
// incoming packet with them, and the first one that opens turns encryption
// on before memberlist reads it (memberlist then decrypts it itself).
//
// NB: this closes the gap memberlist's design leaves in a rolling enable.
// Reading encrypted gossip and sending it are one switch there (keys in
// the keyring, GossipVerifyOutgoing fixed at start), so the first member
// that turns encryption on cannot be read by the others until they turn it
// on too: without this, each waits to learn from gossip that every member
// is transitional, and the news comes from a member they can no longer
// read, so they declare it dead (the end-to-end test saw exactly that).
// With it, a member follows at the first encrypted packet, within a probe
// interval, well inside the suspicion timeout. Only a holder of the key
// can make a packet open, so nobody else can trigger it. Once encrypting,
// it only hands packets on (one channel hop each).
type followTransport struct {
	memberlist.NodeAwareTransport
	out  chan *memberlist.Packet
	stop chan struct{}
}

func (t *followTransport) PacketCh() <-chan *memberlist.Packet { return t.out }

// runFollow feeds memberlist the packets of t's inner transport, turning
// encryption on at the first one a pending key opens. Owned by g.wg; ends
// with t.stop, which Close closes only once memberlist has shut down.
// NB: not g.stop: memberlist shuts its transport down first, and the
// transport's listeners block sending to their unbuffered packet channel
// until someone reads it, so this loop must read until then.
func (g *Gossip) runFollow(t *followTransport) {
	defer g.wg.Done()
	in := t.NodeAwareTransport.PacketCh()
	for {
		var p *memberlist.Packet
		select {
		case <-t.stop:
			return
		case p = <-in:
		}
		if !g.keys.installed() && g.keys.pendingKeyOpens(p.Buf) {
			if changed, err := g.keys.enable(); err != nil {
				g.log.Error().Err(err).Msg("enabling gossip encryption failed")
			} else if changed {
				g.log.Info().Str("primary_key", g.keys.status().Primary).Str("from", p.From.String()).
					Msg("gossip encryption on: a member sends encrypted gossip")
			}
		}
		select {
		case <-t.stop:
			return
		case t.out <- p:
		}
	}
}
