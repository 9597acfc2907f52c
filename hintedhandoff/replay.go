package hintedhandoff

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
)

// passResult is what one replay pass did, for the log line.
type passResult struct {
	replayed, expired, superseded, rejected, batches int
}

func (r *passResult) add(o passResult) {
	r.replayed += o.replayed
	r.expired += o.expired
	r.superseded += o.superseded
	r.rejected += o.rejected
	r.batches += o.batches
}

// replay delivers target's hints. It runs passes over them until one ends
// without a hint superseded in flight (at most maxPasses), or a pass fails:
// then the hints left wait for the next trigger (a rejoin or the periodic
// check). The caller makes sure only one replay per target runs.
func (h *Handoff) replay(target ring.NodeID) {
	start := time.Now()
	h.mu.Lock()
	pending := h.mu.pending[target]
	h.mu.Unlock()
	h.log.Info().Str("target", string(target)).Int64("pending", pending).Msg("hint replay starting")

	var total passResult
	var err error
	for range maxPasses {
		var r passResult
		r, err = h.pass(target)
		total.add(r)
		if err != nil || r.superseded == 0 {
			break
		}
	}
	took := time.Since(start)
	last := LastReplay{Target: target, Start: start, Duration: took, Replayed: total.replayed, Expired: total.expired}
	if err != nil {
		last.Err = err.Error()
		if !errors.Is(err, ErrClosed) {
			h.n.failures.Add(1)
		}
	}
	h.mu.Lock()
	h.mu.last = last
	left := h.mu.pending[target]
	h.mu.Unlock()
	if h.metrics != nil {
		h.metrics.duration.Observe(took.Seconds())
	}

	ev := h.log.Info()
	switch {
	case errors.Is(err, ErrClosed):
		ev = h.log.Info().Str("stopped", "closing")
	case err != nil:
		ev = h.log.Warn().Err(err)
	}
	ev.Str("target", string(target)).Int("replayed", total.replayed).Int("expired", total.expired).
		Int("superseded", total.superseded).Int("rejected", total.rejected).Int("batches", total.batches).
		Int64("left", left).Dur("took", took).
		Msgf("replayed %d hints to %s in %v", total.replayed, target, took.Round(time.Millisecond))
}

// pass reads target's hints in key order from one snapshot and delivers
// them batch by batch, dropping expired ones on the way.
//
// NB: the store's AuxScan has no start key, so a pass is one scan whose
// callback sends each batch as it fills: the Pebble iterator stays open for
// the whole pass (it pins the files it reads from compaction's deletion for
// that long, which is harmless for a pass of minutes).
func (h *Handoff) pass(target ring.NodeID) (passResult, error) {
	var r passResult
	cutoff := h.now() - int64(h.cfg.Window)
	var batch, expired []held
	size := 0
	var stop error
	send := func() bool {
		stop = h.deliver(target, batch, &r)
		batch, size = nil, 0
		return stop == nil
	}
	drop := func() bool {
		n, err := h.removeUnchanged(expired)
		h.n.expired.Add(uint64(n))
		r.expired += n
		expired, stop = nil, err
		return err == nil
	}
	err := h.st.AuxScan(store.AuxHints, hintPrefix(target), func(k, v []byte) bool {
		if h.ctx.Err() != nil {
			stop = ErrClosed
			return false
		}
		_, key, ok := splitHintKey(k)
		if !ok {
			return true
		}
		if h.refused(target, k, v) {
			return true // unchanged since the target refused it
		}
		created, obj, err := decodeHint(v)
		if err != nil || created <= cutoff {
			if err != nil {
				h.log.Error().Err(err).Str("target", string(target)).Bytes("key", key).Msg("dropping unreadable hint")
			}
			expired = append(expired, held{target: target, hk: k, key: key, val: v})
			return len(expired) < h.cfg.BatchSize || drop()
		}
		batch = append(batch, held{target: target, hk: k, key: key, val: v, obj: obj})
		size += len(v) - hintHeader
		return (len(batch) < h.cfg.BatchSize && size < h.cfg.BatchBytes) || send()
	})
	if err == nil && stop == nil && len(batch) > 0 {
		send()
	}
	if err == nil && stop == nil && len(expired) > 0 {
		drop()
	}
	if err != nil {
		return r, fmt.Errorf("hintedhandoff: read hints: %w", err)
	}
	return r, stop
}

// deliver sends one batch to target, throttled, and on its acknowledgement
// deletes the hints that did not change meanwhile and drops the fallback
// copies that are no longer needed. It returns an error that should stop
// the pass (the target is unreachable); a batch the target rejects as
// invalid is split, and a single hint it rejects is left to expire.
func (h *Handoff) deliver(target ring.NodeID, batch []held, r *passResult) error {
	if err := h.bucket.Wait(h.ctx, len(batch)); err != nil {
		return ErrClosed
	}
	return h.send(target, batch, r)
}

func (h *Handoff) send(target ring.NodeID, batch []held, r *passResult) error {
	payload, err := encodeBatch(target, batch)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.CallTimeout)
	resp, err := h.cl.Call(ctx, target, KindHintBatch, payload)
	cancel()
	if err == nil {
		err = checkReply(resp, len(batch))
	}
	if err != nil {
		if h.ctx.Err() != nil {
			return ErrClosed
		}
		if !permanent(err) {
			return fmt.Errorf("hintedhandoff: deliver %d hints to %s: %w", len(batch), target, err)
		}
		if len(batch) == 1 {
			h.n.rejected.Add(1)
			r.rejected++
			h.mu.Lock()
			if h.mu.rejected[target] == nil {
				h.mu.rejected[target] = map[string]uint64{}
			}
			h.mu.rejected[target][string(batch[0].hk)] = ring.KeyHash(batch[0].val)
			h.mu.Unlock()
			h.log.Error().Err(err).Str("target", string(target)).Bytes("key", batch[0].key).
				Msg("target refused a hint; keeping it until it changes, expires or the target rejoins")
			return nil
		}
		// Find the culprit: one by one (already paid for by the bucket).
		for i := range batch {
			if err := h.send(target, batch[i:i+1], r); err != nil {
				return err
			}
		}
		return nil
	}
	h.n.batches.Add(1)
	h.n.bytesSent.Add(uint64(len(payload)))
	h.n.replayed.Add(uint64(len(batch)))
	r.batches++
	r.replayed += len(batch)

	_, removed, changed, err := h.removeUnchangedMask(batch)
	if err != nil {
		return err
	}
	if changed > 0 {
		h.n.superseded.Add(uint64(changed))
		r.superseded += changed
	}
	delivered := batch[:0:0]
	for i, it := range batch {
		if removed[i] {
			delivered = append(delivered, it)
		}
	}
	h.dropCopies(target, delivered)
	return nil
}

// refused reports whether target refused the hint under hk with value v.
func (h *Handoff) refused(target ring.NodeID, hk, v []byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	sum, ok := h.mu.rejected[target][string(hk)]
	return ok && sum == ring.KeyHash(v)
}

// permanent reports whether a failed call will fail again with the same
// batch: the target found it invalid or too large. Anything else (a broken
// connection, a timeout, a target shutting down) may pass later.
func permanent(err error) bool {
	switch wire.CodeOf(err) {
	case wire.CodeBadRequest, wire.CodeTooLarge:
		return true
	}
	return errors.Is(err, wire.ErrFrameSize)
}
