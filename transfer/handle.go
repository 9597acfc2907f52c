package transfer

import (
	"context"
	"time"

	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
	"github.com/mnemo-kv/mnemo/version"
)

// Kind is a request kind of ownership transfer on the node's RPC port.
// Its values are the numbers on the wire, declared with every other in
// internal/proto; the node's RPC layer carries them as they are.
type Kind uint16

// The kinds Handle serves.
const (
	// kindScan reads a batch of a partition: scanRequest -> scanBatch.
	kindScan = Kind(proto.KindTransferScan)
	// kindSynced asks which partitions a node holds completely:
	// syncedRequest -> syncedReply.
	kindSynced = Kind(proto.KindTransferSynced)
	// kindEvents long-polls this node's ownership events:
	// proto.EventsRequest -> proto.EventsReply.
	kindEvents = Kind(proto.KindOwnershipEvents)
)

// scanRequest asks for the next batch of partition P after a cursor.
type scanRequest struct {
	P        uint32 `msgpack:"p"`
	AfterSeg uint32 `msgpack:"s,omitempty"`
	After    []byte `msgpack:"a,omitempty"` // nil: from the start
	Started  bool   `msgpack:"st,omitempty"`
	MaxBytes int    `msgpack:"m"`
}

// scanItem is one stored key: its segment and version.Encode(object).
type scanItem struct {
	Key    []byte `msgpack:"k"`
	Seg    uint32 `msgpack:"s"`
	Object []byte `msgpack:"o"`
}

// scanBatch answers a scanRequest; Done says the partition ends with it.
type scanBatch struct {
	Items []scanItem `msgpack:"i"`
	Done  bool       `msgpack:"d"`
}

type syncedRequest struct {
	Partitions []uint32 `msgpack:"p"`
}

// syncedReply says, for each asked partition in order, whether the node
// holds it completely.
type syncedReply struct {
	Synced []bool `msgpack:"s"`
}

// maxEventsWait bounds how long an events long poll waits.
const maxEventsWait = 60 * time.Second

// Kinds returns the request kinds Handle serves.
func (t *Transfer) Kinds() []Kind {
	return []Kind{kindScan, kindSynced, kindEvents}
}

// Handle serves one request of Kinds and returns the reply body. Errors
// are *wire.Error for bad requests (CodeUnavailable after Close), or the
// store's.
func (t *Transfer) Handle(ctx context.Context, kind Kind, payload []byte) ([]byte, error) {
	if !t.enter() {
		return nil, wire.Errorf(wire.CodeUnavailable, "%v", ErrClosed)
	}
	defer t.wg.Done()
	var reply any
	var err error
	switch kind {
	case kindScan:
		reply, err = t.handleScan(payload)
	case kindSynced:
		reply, err = t.handleSynced(payload)
	case kindEvents:
		reply, err = t.handleEvents(ctx, payload)
	default:
		return nil, wire.Errorf(wire.CodeUnknownKind, "transfer: kind %d", kind)
	}
	if err != nil {
		return nil, err
	}
	b, err := wire.Marshal(reply)
	if err != nil {
		return nil, wire.Errorf(wire.CodeInternal, "encode reply: %v", err)
	}
	return b, nil
}

// decode unmarshals a request body, mapping failure to a bad request.
func decode(payload []byte, v any) error {
	if err := wire.Unmarshal(payload, v); err != nil {
		return wire.Errorf(wire.CodeBadRequest, "malformed request: %v", err)
	}
	return nil
}

// handleScan serves a batch of a partition to a pulling node: whole keys,
// in store order, until the batch reaches the asked size.
func (t *Transfer) handleScan(payload []byte) (*scanBatch, error) {
	var req scanRequest
	if err := decode(payload, &req); err != nil {
		return nil, err
	}
	if int(req.P) >= t.st.Partitions() {
		return nil, wire.Errorf(wire.CodeBadRequest, "partition %d out of range", req.P)
	}
	limit := min(max(req.MaxBytes, minScanBytes), maxScanBytes)
	var cur *store.Cursor
	if req.Started {
		cur = &store.Cursor{Segment: req.AfterSeg, Key: req.After}
	}
	var batch scanBatch
	size := 0
	done := true
	err := t.st.ScanPartitionAfter(ring.Partition(req.P), cur, func(e store.Entry) bool {
		enc := version.Encode(e.Object)
		batch.Items = append(batch.Items, scanItem{Key: e.Key, Seg: e.Segment, Object: enc})
		size += len(enc) + len(e.Key) + 8
		if size >= limit {
			done = false
			return false
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	batch.Done = done
	return &batch, nil
}

// handleSynced says which of the asked partitions this node holds
// completely.
func (t *Transfer) handleSynced(payload []byte) (*syncedReply, error) {
	var req syncedRequest
	if err := decode(payload, &req); err != nil {
		return nil, err
	}
	reply := syncedReply{Synced: make([]bool, len(req.Partitions))}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, p := range req.Partitions {
		reply.Synced[i] = int(p) < len(t.mu.synced) && t.mu.synced[p] && t.mu.owned[p]
	}
	return &reply, nil
}

// handleEvents returns the events after req.After, waiting up to
// req.WaitMs (at most a minute) for one when there are none.
func (t *Transfer) handleEvents(ctx context.Context, payload []byte) (*proto.EventsReply, error) {
	var req proto.EventsRequest
	if err := decode(payload, &req); err != nil {
		return nil, err
	}
	wait := time.Duration(min(max(req.WaitMs, 0), maxEventsWait.Milliseconds())) * time.Millisecond
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		out, next, ch := t.eventsAfter(req.After)
		if len(out) > 0 || wait == 0 {
			return &proto.EventsReply{Events: out, Next: next}, nil
		}
		select {
		case <-ch:
		case <-deadline.C:
			return &proto.EventsReply{Next: next}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.ctx.Done():
			return nil, wire.Errorf(wire.CodeUnavailable, "%v", ErrClosed)
		}
	}
}

// eventsAfter returns the events kept after sequence number after, the
// last sequence number, and a channel closed at the next event.
func (t *Transfer) eventsAfter(after uint64) (out []Event, next uint64, ch <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ev := range t.mu.events {
		if ev.Seq > after {
			out = append(out, ev)
		}
	}
	return out, t.mu.seq, t.mu.eventCh
}
