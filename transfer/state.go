package transfer

import (
	"encoding/binary"
	"errors"

	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
)

// Keys of transfer's state in store.AuxTransfer.
var (
	keyOwned  = []byte("owned")
	keySynced = []byte("synced")
	keyStatus = []byte("status")
)

// cursorKey is where a pull of p from source keeps its resume point.
func cursorKey(p ring.Partition, source ring.NodeID) []byte {
	k := binary.BigEndian.AppendUint32([]byte("cursor"), uint32(p))
	return append(k, source...)
}

// bitmap packs b, bit i of byte i/8 for b[i].
func bitmap(b []bool) []byte {
	out := make([]byte, (len(b)+7)/8)
	for i, v := range b {
		if v {
			out[i/8] |= 1 << (i % 8)
		}
	}
	return out
}

// unbitmap unpacks n bits; missing bytes read as false.
func unbitmap(raw []byte, n int) []bool {
	out := make([]bool, n)
	for i := range out {
		if i/8 < len(raw) {
			out[i] = raw[i/8]&(1<<(i%8)) != 0
		}
	}
	return out
}

// load reads the persisted state. It reports whether there was any: a
// fresh data directory has none.
func (t *Transfer) load() (bool, error) {
	owned, err := t.st.AuxGet(store.AuxTransfer, keyOwned)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	synced, err := t.st.AuxGet(store.AuxTransfer, keySynced)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	q := t.st.Partitions()
	t.mu.Lock()
	t.mu.owned = unbitmap(owned, q)
	t.mu.synced = unbitmap(synced, q)
	t.mu.Unlock()
	return true, nil
}

// saveLocked persists owned and synced; t.mu must be held.
func (t *Transfer) saveLocked() error {
	b := t.st.NewAuxBatch()
	b.Set(store.AuxTransfer, keyOwned, bitmap(t.mu.owned))
	b.Set(store.AuxTransfer, keySynced, bitmap(t.mu.synced))
	return b.Commit()
}

// PersistStatus records this node's ring status for its next start. The
// node calls it whenever it changes its own status.
func (t *Transfer) PersistStatus(s ring.Status) error {
	return t.st.AuxSet(store.AuxTransfer, keyStatus, []byte{byte(s)})
}

// PersistedStatus returns the status PersistStatus last recorded, and
// false on a fresh data directory.
func (t *Transfer) PersistedStatus() (ring.Status, bool) {
	b, err := t.st.AuxGet(store.AuxTransfer, keyStatus)
	if err != nil || len(b) != 1 {
		return 0, false
	}
	return ring.Status(b[0]), true
}

// Adopted records that this node, on an empty directory, kept the place
// the ring gives it (status s). With anti-entropy on, that refills it (the
// rejoin triggers an exchange of every shared partition), so there is
// nothing to pull: every partition it holds is marked synced. Without, the
// loop pulls every partition it owns. Call it before the loop acts on the
// view that holds this node's place.
func (t *Transfer) Adopted(s ring.Status) error {
	if err := t.PersistStatus(s); err != nil {
		return err
	}
	if !t.cfg.AntiEntropy {
		return nil
	}
	v := t.cl.View()
	t.mu.Lock()
	defer t.mu.Unlock()
	for p, w := range t.want(v) {
		t.mu.owned[p], t.mu.synced[p] = w, w
	}
	return t.saveLocked()
}
