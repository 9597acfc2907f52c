package transfer

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
	"github.com/mnemo-kv/mnemo/version"
)

// pullSources returns the nodes a pull of p reads: one live holder when
// anti-entropy runs (it repairs whatever that holder lacked), else every
// holder, so that a pull from one stale replica never stands for the
// whole. It fails while a needed holder is down.
func (t *Transfer) pullSources(v View, p ring.Partition) ([]ring.NodeID, error) {
	sources := t.othersHold(v, p)
	if t.cfg.AntiEntropy {
		// One live holder is enough: anti-entropy brings whatever it
		// lacked (reading every replica tripled the bytes of a join).
		i := slices.IndexFunc(sources, t.cl.Alive)
		if i < 0 && len(sources) > 0 {
			return nil, fmt.Errorf("transfer: partition %d: every holder is down; waiting for one", p)
		}
		if i >= 0 {
			sources = sources[i : i+1]
		}
	}
	for _, src := range sources {
		if !t.cl.Alive(src) {
			return nil, fmt.Errorf("transfer: partition %d: holder %s is down; waiting for it", p, src)
		}
	}
	return sources, nil
}

// pull copies partition p from the nodes that hold it (pullSources) and
// marks it synced when they were read to the end.
func (t *Transfer) pull(ctx context.Context, p ring.Partition) error {
	t.mu.Lock()
	done := t.mu.synced[p]
	t.mu.Unlock()
	if done {
		return nil // synced meanwhile (adopted: anti-entropy refills it)
	}
	sources, err := t.pullSources(t.cl.View(), p)
	if err != nil {
		return err
	}
	start := time.Now()
	var total int64
	for _, src := range sources {
		n, err := t.pullFrom(ctx, p, src)
		total += n
		if err != nil {
			return fmt.Errorf("transfer: pull partition %d from %s: %w", p, src, err)
		}
	}
	t.mu.Lock()
	t.mu.synced[p] = true
	err = t.saveLocked()
	t.mu.Unlock()
	b := t.st.NewAuxBatch()
	for _, src := range sources {
		b.Delete(store.AuxTransfer, cursorKey(p, src))
	}
	if cerr := b.Commit(); cerr != nil {
		// NB: a cursor left behind makes a later pull of p from src
		// resume where this one ended instead of at the start.
		t.log.Warn().Err(cerr).Uint32("partition", uint32(p)).Msg("delete pull cursors")
	}
	t.log.Debug().Uint32("partition", uint32(p)).Int64("keys", total).Dur("took", time.Since(start)).Msg("partition synced")
	return err
}

// pullFrom streams p from src into the store, resuming from a persisted
// cursor, throttled by the transfer rate. It returns the keys received.
func (t *Transfer) pullFrom(ctx context.Context, p ring.Partition, src ring.NodeID) (int64, error) {
	req := scanRequest{P: uint32(p), MaxBytes: t.cfg.BatchBytes}
	if c, err := t.st.AuxGet(store.AuxTransfer, cursorKey(p, src)); err == nil && len(c) >= 4 {
		req.AfterSeg, req.After, req.Started = binary.BigEndian.Uint32(c), c[4:], true
	}
	prog := &Pull{Partition: p, Source: string(src), Started: time.Now()}
	t.mu.Lock()
	t.mu.pulling[p] = prog
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.mu.pulling, p)
		t.mu.Unlock()
	}()
	var keys int64
	for {
		body, err := wire.Marshal(&req)
		if err != nil {
			return keys, err
		}
		cctx, cancel := context.WithTimeout(ctx, t.cfg.ScanTimeout)
		resp, err := t.cl.Call(cctx, src, kindScan, body)
		cancel()
		if err != nil {
			return keys, err
		}
		var batch scanBatch
		if err := wire.Unmarshal(resp, &batch); err != nil {
			return keys, err
		}
		items := make([]store.KeyObject, 0, len(batch.Items))
		for _, it := range batch.Items {
			obj, err := version.Decode(it.Object)
			if err != nil {
				return keys, fmt.Errorf("bad object for %q: %w", it.Key, err)
			}
			items = append(items, store.KeyObject{Key: it.Key, Object: obj})
		}
		if _, err := t.st.MergeMany(items); err != nil {
			return keys, err
		}
		keys += int64(len(items))
		t.throttle.Wait(ctx, len(resp)) // an error is ctx's, checked below
		t.mu.Lock()
		prog.Keys = keys
		t.mu.keys += int64(len(items))
		t.mu.bytes += int64(len(resp))
		t.mu.Unlock()
		t.keysMetric.Add(float64(len(items)))
		t.bytesMetric.Add(float64(len(resp)))
		if len(batch.Items) > 0 {
			last := batch.Items[len(batch.Items)-1]
			req.AfterSeg, req.After, req.Started = last.Seg, last.Key, true
			cur := binary.BigEndian.AppendUint32(nil, last.Seg)
			if err := t.st.AuxSet(store.AuxTransfer, cursorKey(p, src), append(cur, last.Key...)); err != nil {
				return keys, err
			}
		}
		if batch.Done {
			return keys, nil
		}
		if ctx.Err() != nil {
			return keys, ctx.Err()
		}
	}
}

// askSynced asks node id whether it holds each of parts completely.
func (t *Transfer) askSynced(ctx context.Context, id ring.NodeID, parts []ring.Partition) (bool, error) {
	req := syncedRequest{}
	for _, p := range parts {
		req.Partitions = append(req.Partitions, uint32(p))
	}
	body, err := wire.Marshal(&req)
	if err != nil {
		return false, err
	}
	cctx, cancel := context.WithTimeout(ctx, t.cfg.CheckTimeout)
	resp, err := t.cl.Call(cctx, id, kindSynced, body)
	cancel()
	if err != nil {
		return false, err
	}
	var reply syncedReply
	if err := wire.Unmarshal(resp, &reply); err != nil {
		return false, err
	}
	return !slices.Contains(reply.Synced, false) && len(reply.Synced) == len(parts), nil
}
