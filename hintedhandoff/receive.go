package hintedhandoff

import (
	"context"
	"errors"
	"fmt"

	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
	"github.com/mnemo-kv/mnemo/version"
)

// hintBatch is KindHintBatch's request body. Fields may be appended.
type hintBatch struct {
	// For names the node the hints are for: a receiver that is another
	// node (a stale address) refuses the batch.
	For   string     `msgpack:"f"`
	Items []hintItem `msgpack:"i"`
}

// hintItem is one hinted object.
type hintItem struct {
	Key    []byte `msgpack:"k"`
	Object []byte `msgpack:"o"` // version.Encode
}

// hintBatchReply acknowledges a batch once its merge is durable.
type hintBatchReply struct {
	// Merged is the number of objects merged: all of them.
	Merged int `msgpack:"m"`
	// Changed is how many keys the merge changed (the rest were already
	// there, or newer).
	Changed int `msgpack:"c"`
}

// encodeBatch builds the request for a batch of hints; the objects are sent
// as stored, without decoding and re-encoding them.
func encodeBatch(target ring.NodeID, batch []held) ([]byte, error) {
	b := hintBatch{For: string(target), Items: make([]hintItem, len(batch))}
	for i, it := range batch {
		b.Items[i] = hintItem{Key: it.key, Object: it.val[hintHeader:]}
	}
	p, err := wire.Marshal(&b)
	if err != nil {
		return nil, fmt.Errorf("hintedhandoff: %w", err)
	}
	return p, nil
}

// checkReply validates a target's acknowledgement of n objects.
func checkReply(resp []byte, n int) error {
	var r hintBatchReply
	if err := wire.Unmarshal(resp, &r); err != nil {
		return fmt.Errorf("hintedhandoff: bad reply: %w", err)
	}
	if r.Merged != n {
		return fmt.Errorf("hintedhandoff: target merged %d of %d hints", r.Merged, n)
	}
	return nil
}

// decodeBatch decodes and validates a received batch for node self against
// st's limits. Every failure is a *wire.Error: CodeBadRequest for a bad
// batch, CodeUnavailable for a batch meant for another node.
func decodeBatch(st *store.Store, self ring.NodeID, payload []byte) ([]store.KeyObject, error) {
	var b hintBatch
	if err := wire.Unmarshal(payload, &b); err != nil {
		return nil, wire.Errorf(wire.CodeBadRequest, "hintedhandoff: %v", err)
	}
	if b.For == "" {
		return nil, wire.Errorf(wire.CodeBadRequest, "hintedhandoff: batch names no target")
	}
	if ring.NodeID(b.For) != self {
		// Not malformed: the sender's address for b.For is stale. It may
		// retry once it learns the right one.
		return nil, wire.Errorf(wire.CodeUnavailable, "hintedhandoff: batch for %q reached %q", b.For, self)
	}
	if len(b.Items) > MaxBatchItems {
		return nil, wire.Errorf(wire.CodeBadRequest, "hintedhandoff: batch of %d objects exceeds %d", len(b.Items), MaxBatchItems)
	}
	out := make([]store.KeyObject, len(b.Items))
	for i, it := range b.Items {
		if err := st.CheckKey(it.Key); err != nil {
			return nil, wire.Errorf(wire.CodeBadRequest, "hintedhandoff: item %d: %v", i, err)
		}
		obj, err := version.Decode(it.Object)
		if err != nil {
			return nil, wire.Errorf(wire.CodeBadRequest, "hintedhandoff: item %d: %v", i, err)
		}
		if obj.IsEmpty() {
			return nil, wire.Errorf(wire.CodeBadRequest, "hintedhandoff: item %d: empty object", i)
		}
		for _, s := range obj.Siblings {
			if err := st.CheckValue(s.Value); err != nil {
				return nil, wire.Errorf(wire.CodeBadRequest, "hintedhandoff: item %d: %v", i, err)
			}
		}
		out[i] = store.KeyObject{Key: it.Key, Object: obj}
	}
	return out, nil
}

// Handle serves the receiving side: it merges a batch of hinted objects
// into this node's store by version (a hint never overwrites a newer value;
// concurrent ones become siblings), makes it durable, and acknowledges.
// Everything received is validated; a bad batch gets a *wire.Error with
// CodeBadRequest, never a panic. After Close it answers CodeUnavailable.
func (h *Handoff) Handle(ctx context.Context, kind Kind, payload []byte) ([]byte, error) {
	if kind != KindHintBatch {
		return nil, wire.Errorf(wire.CodeUnknownKind, "hintedhandoff: kind %d", kind)
	}
	if !h.enter() {
		return nil, wire.Errorf(wire.CodeUnavailable, "%v", ErrClosed)
	}
	defer h.wg.Done()
	items, err := decodeBatch(h.st, h.self, payload)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, wire.Errorf(wire.CodeUnavailable, "hintedhandoff: %v", err)
	}
	changed, err := h.st.MergeMany(items)
	if err == nil {
		// MergeMany's commit is durable only in SyncAlways, and a key it
		// left unchanged may hold a write not yet synced; the ack lets the
		// sender delete its hints (and its copy), so sync. NB: in
		// SyncAlways this is a second, redundant fsync per batch.
		err = h.st.Flush()
	}
	if err != nil {
		if errors.Is(err, store.ErrClosed) {
			return nil, wire.Errorf(wire.CodeUnavailable, "hintedhandoff: %v", err)
		}
		return nil, wire.Errorf(wire.CodeInternal, "hintedhandoff: merge hints: %v", err)
	}
	return wire.Marshal(&hintBatchReply{Merged: len(items), Changed: changed})
}
