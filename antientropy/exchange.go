package antientropy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
	"github.com/mnemo-kv/mnemo/version"
)

// Sizes that keep every message small next to foreground traffic and far
// below the wire's 8 MiB frame limit.
const (
	// chunkKeys, chunkBytes and chunkSegments bound the differing
	// segments one keys request covers: the initiator's keys in them, their
	// objects' bytes, and the segments themselves (which also bounds what
	// the responder returns for segments the initiator holds nothing of).
	chunkKeys     = 16 << 10
	chunkBytes    = 4 << 20
	chunkSegments = 256
	// maxReplyObjects bounds the object bytes of a keys reply; the rest
	// waits for another pass.
	maxReplyObjects = 2 << 20
	// maxPushBytes bounds the object bytes of one push.
	maxPushBytes = 512 << 10
	// mergeBatch is how many objects one store.MergeMany takes: one Pebble
	// batch that holds those keys' locks, so foreground writes to them
	// wait for at most one small batch.
	mergeBatch = 256
	// partitionsInFlight is how many partitions one exchange works on at
	// once: two let this node's scan of one overlap the peer's work on the
	// other; the pacer bounds the CPU they take together.
	partitionsInFlight = 2
	// claimChunk is how many differing partitions an exchange repairs
	// between two root comparisons: each comparison ends the repair
	// leases of the partitions done and renews those of the partitions
	// still queued, well within the lease's TTL.
	claimChunk = 4 * partitionsInFlight
	// scanGap: differing segments this close together are read with one
	// scan (a Pebble iterator costs more than skipping a few keys).
	scanGap = 8
	// maxPasses bounds the passes over a partition whose roots still
	// differ after a pass (writes going on, a tag collision); a pass cut
	// short by the responder's reply cap always gets another, up to
	// maxTruncatedPasses.
	maxPasses          = 3
	maxTruncatedPasses = 10000
)

// Result is what one ExchangeNow did.
type Result struct {
	// Peer is the other side.
	Peer ring.NodeID
	// InSync counts partitions whose roots were equal at once.
	InSync int
	// Repaired lists partitions whose roots differed and whose keys were
	// exchanged.
	Repaired []ring.Partition
	// Converged counts the Repaired partitions whose roots were equal
	// after the exchange (writes going on can keep a few apart until the
	// next round).
	Converged int
	// Done lists every partition whose roots were compared (InSync and
	// Repaired).
	Done []ring.Partition
	// NotReady lists partitions skipped: a tree not built yet on either
	// side, a side that does not see both nodes as home replicas, or
	// another exchange repairing the partition on either side (Busy).
	NotReady []ring.Partition
	// Busy lists the NotReady partitions that another exchange held a
	// repair lease on (lease.go): trying them again shortly most likely
	// finds them equal.
	Busy []ring.Partition
	// KeysSent and KeysReceived count objects sent and received;
	// KeysChanged the received ones that changed this node's store.
	KeysSent, KeysReceived, KeysChanged int
	// BytesSent and BytesReceived count the messages, frame headers
	// included.
	BytesSent, BytesReceived int64
	// Duration is the wall time of the exchange.
	Duration time.Duration
}

// keyEntry is one stored key during an exchange, as scanned: its object
// stays encoded, and is decoded only if it is sent (most scanned keys are
// not).
type keyEntry struct {
	key  []byte
	enc  []byte // version.Encode of the object
	desc uint32 // KeyDescriptor
}

// keyObject decodes e for sending.
func (e *keyEntry) keyObject() (store.KeyObject, error) {
	o, err := version.Decode(e.enc)
	if err != nil {
		return store.KeyObject{}, fmt.Errorf("antientropy: stored key %q: %w", e.key, err)
	}
	return store.KeyObject{Key: e.key, Object: o}, nil
}

// arena copies scanned keys and encodings into a few large buffers
// instead of one allocation each.
type arena struct{ buf []byte }

const arenaBlock = 64 << 10

// copy returns a copy of b that stays valid after the scan.
func (ar *arena) copy(b []byte) []byte {
	if len(b) > cap(ar.buf)-len(ar.buf) {
		ar.buf = make([]byte, 0, max(arenaBlock, len(b)))
	}
	n := len(ar.buf)
	ar.buf = append(ar.buf, b...)
	return ar.buf[n:len(ar.buf):len(ar.buf)]
}

// segDiff is a differing segment and the responder's tag for it.
type segDiff struct {
	seg    uint32
	theirs uint32
}

// exchange is one ExchangeNow in progress.
type exchange struct {
	a    *AntiEntropy
	peer ring.NodeID
	res  *Result
}

// ExchangeNow exchanges partitions parts with peer (nil: every partition
// both are home replicas of), as the initiator, and returns what it did.
// Partitions not built here, or not ready at the peer, are skipped and
// listed in Result.NotReady. An error (a failed call, a closed store)
// stops the exchange; the Result then covers what was done.
//
// The protocol, one round trip per step:
//
//  1. KindRoots, for all partitions at once: equal roots end there.
//  2. KindSegments, per differing partition: the peer compares our branch
//     hashes with its own and returns its segment tags under the differing
//     branches; we find the differing segments.
//  3. KindKeys, per chunk of differing segments: we send a 4-byte
//     KeyDescriptor per key we hold there; the peer returns the objects
//     we lack, and bitmaps of the descriptors it lacks or may hold another
//     version of. Segments the peer holds nothing of are not listed: we
//     push all of ours.
//  4. KindPush: the objects it asked for, in batches; for keys it may hold
//     another version of, it returns its merge if ours lacked something.
//
// Both sides merge with store.MergeMany, so siblings survive and
// tombstones travel. The roots are compared again at the end.
func (a *AntiEntropy) ExchangeNow(ctx context.Context, peer ring.NodeID, parts []ring.Partition) (res Result, err error) {
	res.Peer = peer
	if a.closed.Load() {
		return res, ErrClosed
	}
	t0 := time.Now()
	x := &exchange{a: a, peer: peer, res: &res}
	// pinned: partitions this exchange may repair (lease.go), unpinned as
	// soon as it is done with them.
	pinned := map[ring.Partition]bool{}
	unpin := func(p ring.Partition) {
		if pinned[p] {
			delete(pinned, p)
			a.unpin(p)
		}
	}
	defer func() {
		for p := range pinned {
			a.unpin(p)
		}
		res.Duration = time.Since(t0)
		if err != nil {
			a.stats.failures.Add(1)
			a.met.exchange("failed", 1)
		}
		a.met.exchange("not_ready", len(res.NotReady)-len(res.Busy))
		a.met.exchange("busy", len(res.Busy))
	}()
	if parts == nil {
		parts = a.shared(peer)
	}
	parts = slices.Clone(parts)
	slices.Sort(parts)
	parts = slices.Compact(parts)
	for _, p := range parts {
		if int(p) >= a.trees.Partitions() {
			return res, fmt.Errorf("antientropy: partition %d out of range", p)
		}
	}
	busy := func(p ring.Partition) {
		unpin(p)
		res.Busy = append(res.Busy, p)
		res.NotReady = append(res.NotReady, p)
	}
	inSync := func(p ring.Partition) {
		unpin(p)
		a.noteCompared(p, peer, true)
		res.InSync++
		res.Done = append(res.Done, p)
		a.stats.exchanges.Add(1)
		a.met.exchange("in_sync", 1)
	}
	var ready []ring.Partition
	for _, p := range parts {
		switch {
		case !a.trees.Built(p):
			res.NotReady = append(res.NotReady, p)
		case !a.pin(p, peer):
			busy(p)
		default:
			pinned[p] = true
			ready = append(ready, p)
		}
	}
	if len(ready) == 0 {
		return res, nil
	}
	statuses, err := x.roots(ctx, ready)
	if err != nil {
		return res, err
	}
	var differ []ring.Partition
	for i, p := range ready {
		switch statuses[i] {
		case statusEqual:
			inSync(p)
		case statusDiffer:
			differ = append(differ, p)
		case statusBusy:
			busy(p)
		default:
			unpin(p)
			res.NotReady = append(res.NotReady, p)
		}
	}
	repaired := map[ring.Partition]bool{}
	passes := map[ring.Partition]int{}
	for len(differ) > 0 {
		var again []ring.Partition // another pass
		for len(differ) > 0 {
			chunk, rest := differ[:min(len(differ), claimChunk)], differ[min(len(differ), claimChunk):]
			results, err := x.repairAll(ctx, chunk)
			for i := range results {
				pr := &results[i]
				res.KeysSent += pr.keysSent
				res.KeysReceived += pr.keysReceived
				res.KeysChanged += pr.changedHere
				res.BytesSent += pr.bytesSent
				res.BytesReceived += pr.bytesReceived
			}
			if err != nil {
				return res, err
			}
			var processed []ring.Partition
			retry := map[ring.Partition]bool{}
			for i, p := range chunk {
				pr := &results[i]
				if pr.notReady {
					unpin(p)
					res.NotReady = append(res.NotReady, p)
					continue
				}
				processed = append(processed, p)
				if !repaired[p] {
					repaired[p] = true
					res.Repaired = append(res.Repaired, p)
					res.Done = append(res.Done, p)
					a.stats.exchanges.Add(1)
					a.stats.repairs.Add(1)
					a.met.exchange("repaired", 1)
				}
				// Another pass if the roots still differ: always after a
				// cut reply, otherwise a few times (writes going on, or a
				// tag collision, which a new salt resolves).
				pass := passes[p]
				passes[p]++
				if pr.truncated && pass < maxTruncatedPasses || pass+1 < maxPasses {
					retry[p] = true
				}
			}
			// Compare the chunk's roots again: equal ones are in sync now
			// (and the peer ends our lease on them). The same message
			// renews our leases on the partitions still queued, and finds
			// those another exchange repaired meanwhile.
			ask := slices.Concat(processed, rest)
			slices.Sort(ask)
			if len(ask) == 0 {
				differ = rest
				continue
			}
			statuses, err := x.roots(ctx, ask)
			if err != nil {
				return res, err
			}
			status := make(map[ring.Partition]byte, len(ask))
			for i, p := range ask {
				status[p] = statuses[i]
			}
			for _, p := range processed {
				equal := status[p] == statusEqual
				if equal {
					res.Converged++
				}
				if status[p] == statusDiffer && retry[p] {
					again = append(again, p)
					continue
				}
				unpin(p)
				a.noteCompared(p, peer, equal)
			}
			var queued []ring.Partition
			for _, p := range rest {
				switch status[p] {
				case statusDiffer:
					queued = append(queued, p)
				case statusEqual:
					inSync(p)
				case statusBusy:
					busy(p)
				default:
					unpin(p)
					res.NotReady = append(res.NotReady, p)
				}
			}
			differ = queued
		}
		differ = again
	}
	return res, nil
}

// repairAll runs one pass over each partition of parts, up to
// partitionsInFlight at once, so that this node's work on one overlaps
// the peer's on another; it returns each partition's result, in order.
func (x *exchange) repairAll(ctx context.Context, parts []ring.Partition) ([]partResult, error) {
	results := make([]partResult, len(parts))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	errc := make(chan error, partitionsInFlight)
	var wg sync.WaitGroup
	for range min(partitionsInFlight, len(parts)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := x.repairPartition(ctx, parts[i], &results[i]); err != nil {
					errc <- err
					cancel()
					return
				}
			}
		}()
	}
feed:
	for i := range parts {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errc:
		return results, err
	default:
	}
	return results, ctx.Err()
}

// call sends one request, within the rate limit, and counts its bytes in
// pr. A turn of work held in pr ends before the request (waiting for the
// peer is not work) and a new one begins with the reply.
func (x *exchange) call(ctx context.Context, kind Kind, req []byte, pr *partResult) ([]byte, error) {
	held := pr.turn.held
	if held {
		if err := x.a.pace.end(ctx, &pr.turn); err != nil {
			return nil, err
		}
	}
	if err := x.a.lim.Wait(ctx, len(req)+frameHeader); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, x.a.cfg.CallTimeout)
	resp, err := x.a.cl.Call(cctx, x.peer, kind, req)
	cancel()
	x.a.countBytes(len(req), len(resp))
	pr.bytesSent += int64(len(req) + frameHeader)
	if err == nil {
		pr.bytesReceived += int64(len(resp) + frameHeader)
	}
	if err != nil {
		return nil, fmt.Errorf("antientropy: %s kind %d: %w", x.peer, kind, err)
	}
	if held {
		if err := x.a.pace.begin(ctx, &pr.turn); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// roots compares the roots of parts (built, sorted) with the peer's.
func (x *exchange) roots(ctx context.Context, parts []ring.Partition) ([]byte, error) {
	req := &rootsRequest{From: x.a.cl.Self(), Parts: parts, Roots: make([]uint64, len(parts))}
	for i, p := range parts {
		req.Roots[i], _ = x.a.trees.Root(p)
	}
	var pr partResult
	resp, err := x.call(ctx, KindRoots, req.encode(), &pr)
	x.res.BytesSent += pr.bytesSent
	x.res.BytesReceived += pr.bytesReceived
	if err != nil {
		return nil, err
	}
	rep, err := decodeRootsReply(resp)
	if err != nil {
		return nil, fmt.Errorf("antientropy: roots reply from %s: %w", x.peer, err)
	}
	if len(rep.Status) != len(parts) {
		return nil, fmt.Errorf("antientropy: roots reply from %s has %d statuses for %d partitions", x.peer, len(rep.Status), len(parts))
	}
	return rep.Status, nil
}

// partResult is one pass over one partition.
type partResult struct {
	// turn is the pacer's turn of the goroutine working on the partition.
	turn                     turn
	notReady                 bool
	truncated                bool
	keysSent, keysReceived   int
	changedHere, changedPeer int
	bytesSent, bytesReceived int64
}

func (pr *partResult) moved() bool { return pr.keysSent > 0 || pr.keysReceived > 0 }

// repairPartition runs steps 2 to 4 of the protocol on partition p and
// records what it did in pr.
func (x *exchange) repairPartition(ctx context.Context, p ring.Partition, pr *partResult) (err error) {
	a := x.a
	t0 := time.Now()
	defer func() {
		if pr.moved() {
			a.log.Info().Uint32("partition", uint32(p)).Str("peer", string(x.peer)).
				Int("keys_sent", pr.keysSent).Int("keys_received", pr.keysReceived).
				Int("changed_here", pr.changedHere).Int("changed_peer", pr.changedPeer).
				Int64("bytes_sent", pr.bytesSent).Int64("bytes_received", pr.bytesReceived).
				Bool("truncated", pr.truncated).Dur("took", time.Since(t0)).
				Msg("anti-entropy repaired partition")
		}
	}()

	if err := a.pace.begin(ctx, &pr.turn); err != nil {
		return err
	}
	defer func() {
		if perr := a.pace.end(ctx, &pr.turn); err == nil && perr != nil {
			err = perr
		}
	}()
	salt := rand.Uint64()
	tree, ok := a.trees.Snapshot(p)
	if !ok {
		pr.notReady = true
		return nil
	}
	sreq := &segmentsRequest{Salt: salt, Part: p, Branches: tree.AppendBranches(nil)}
	resp, err := x.call(ctx, KindSegments, sreq.encode(), pr)
	if err != nil {
		return err
	}
	sr, err := decodeSegmentsReply(resp)
	if err != nil {
		return fmt.Errorf("antientropy: segments reply from %s: %w", x.peer, err)
	}
	switch sr.Status {
	case statusEqual:
		return nil
	case statusDiffer:
	default:
		pr.notReady = true
		return nil
	}
	spb := tree.SegmentsPerBranch()
	if sr.Branches != tree.Branches() || sr.PerBranch != spb {
		return fmt.Errorf("antientropy: %s has %d branches of %d segments, we %d of %d",
			x.peer, sr.Branches, sr.PerBranch, tree.Branches(), spb)
	}
	var diffs []segDiff
	k := 0
	for b := range sr.Branches {
		if !bitSet(sr.Differ, b) {
			continue
		}
		for j := range spb {
			seg := b*spb + j
			if theirs := sr.Tags[k]; SegmentTag(tree.Segment(seg), salt) != theirs {
				diffs = append(diffs, segDiff{uint32(seg), theirs})
			}
			k++
		}
	}
	for len(diffs) > 0 {
		n, groups, err := a.scanChunk(p, diffs, salt)
		if err != nil {
			return err
		}
		if err := x.repairChunk(ctx, p, salt, diffs[:n], groups, pr); err != nil {
			return err
		}
		diffs = diffs[n:]
	}
	return nil
}

// repairChunk runs steps 3 and 4 for some differing segments and the
// initiator's entries in them (groups[i] for diffs[i], sorted by descriptor).
func (x *exchange) repairChunk(ctx context.Context, p ring.Partition, salt uint64, diffs []segDiff, groups [][]keyEntry, pr *partResult) error {
	a := x.a
	type pushItem struct {
		store.KeyObject
		check bool // the peer may hold another version: it returns what we lack
	}
	var push []pushItem
	req := &keysRequest{Salt: salt, Part: p}
	var listed []keyEntry // in req.Tags order
	for i, d := range diffs {
		if d.theirs == 0 {
			// The peer holds nothing here: it wants all of ours.
			for _, e := range groups[i] {
				ko, err := e.keyObject()
				if err != nil {
					return err
				}
				push = append(push, pushItem{KeyObject: ko})
			}
			continue
		}
		req.Segs = append(req.Segs, d.seg)
		req.Counts = append(req.Counts, len(groups[i]))
		for _, e := range groups[i] {
			req.Tags = append(req.Tags, e.desc)
			listed = append(listed, e)
		}
	}
	if len(req.Segs) > 0 {
		resp, err := x.call(ctx, KindKeys, req.encode(), pr)
		if err != nil {
			return err
		}
		kr, err := decodeKeysReply(resp)
		if err != nil {
			return fmt.Errorf("antientropy: keys reply from %s: %w", x.peer, err)
		}
		if kr.Status != statusDiffer {
			// The peer's view changed under us (not a home replica any
			// more): leave the partition for another round.
			pr.notReady = true
			return nil
		}
		if kr.NTags != len(listed) {
			return fmt.Errorf("antientropy: keys reply from %s covers %d tags, sent %d", x.peer, kr.NTags, len(listed))
		}
		if err := x.receive(ctx, p, kr.Objects, pr); err != nil {
			return err
		}
		pr.truncated = pr.truncated || kr.Truncated
		for i, e := range listed {
			if bitSet(kr.Wanted, i) {
				ko, err := e.keyObject()
				if err != nil {
					return err
				}
				push = append(push, pushItem{ko, bitSet(kr.Check, i)})
			}
		}
	}
	for len(push) > 0 {
		n, size := 0, 0
		for n < len(push) && (n == 0 || size+objectSize(push[n].KeyObject) <= maxPushBytes) {
			size += objectSize(push[n].KeyObject)
			n++
		}
		preq := &pushRequest{Part: p, Check: make([]byte, bitmapLen(n)), Objects: make([]store.KeyObject, n)}
		for i, it := range push[:n] {
			preq.Objects[i] = it.KeyObject
			if it.check {
				setBit(preq.Check, i)
			}
		}
		resp, err := x.call(ctx, KindPush, preq.encode(), pr)
		if err != nil {
			return err
		}
		rep, err := decodePushReply(resp)
		if err != nil {
			return fmt.Errorf("antientropy: push reply from %s: %w", x.peer, err)
		}
		pr.keysSent += n
		pr.changedPeer += rep.Changed
		a.countKeys(n, 0, 0)
		if err := x.receive(ctx, p, rep.Objects, pr); err != nil {
			return err
		}
		push = push[n:]
	}
	return nil
}

// receive merges objects the peer sent for partition p.
func (x *exchange) receive(ctx context.Context, p ring.Partition, objs []store.KeyObject, pr *partResult) error {
	if len(objs) == 0 {
		return nil
	}
	a := x.a
	if err := a.checkPartition(p, objs); err != nil {
		return fmt.Errorf("antientropy: objects from %s: %w", x.peer, err)
	}
	changed, err := a.merge(ctx, objs, &pr.turn)
	pr.keysReceived += len(objs)
	pr.changedHere += changed
	a.countKeys(0, len(objs), changed)
	return err
}

// scanChunk reads this node's keys in the first differing segments, up to
// the chunk limits (always at least one segment), and returns how many
// segments it covered and their entries, each group sorted by descriptor.
func (a *AntiEntropy) scanChunk(p ring.Partition, diffs []segDiff, salt uint64) (int, [][]keyEntry, error) {
	segs := make([]uint32, 0, min(len(diffs), chunkSegments))
	for _, d := range diffs[:min(len(diffs), chunkSegments)] {
		segs = append(segs, d.seg)
	}
	keys, bytes := 0, 0
	groups := make([][]keyEntry, len(segs))
	var ar arena
	n, err := a.scanSegments(p, segs, func(i int, key, enc []byte) (bool, error) {
		e, err := scanned(&ar, key, enc, salt)
		if err != nil {
			return false, err
		}
		groups[i] = append(groups[i], e)
		keys++
		bytes += len(key) + len(enc)
		return keys < chunkKeys && bytes < chunkBytes, nil
	})
	if err != nil {
		return 0, nil, err
	}
	groups = groups[:n]
	for _, g := range groups {
		sortByDesc(g)
	}
	return n, groups, nil
}

// scanned makes the entry of a key seen by a raw scan, copying it into ar.
func scanned(ar *arena, key, enc []byte, salt uint64) (keyEntry, error) {
	leaf, err := LeafHashEncoded(key, enc)
	if err != nil {
		return keyEntry{}, fmt.Errorf("antientropy: stored key %q: %w", key, err)
	}
	k := ar.copy(key)
	return keyEntry{key: k, enc: ar.copy(enc), desc: KeyDescriptor(k, leaf, salt)}, nil
}

func sortByDesc(g []keyEntry) {
	slices.SortFunc(g, func(x, y keyEntry) int {
		switch {
		case x.desc < y.desc:
			return -1
		case x.desc > y.desc:
			return 1
		}
		return 0
	})
}

// scanSegments calls fn(i, key, encoded) for each key of partition p in
// segment segs[i] (segs increasing), in order, reading runs of nearby
// segments with one raw scan (key and encoded are valid during the call
// only, see store.ScanSegmentsRaw). When fn returns false, the scan ends
// after the rest of that segment; an error from fn ends it at once. It
// returns how many segments it fully covered.
func (a *AntiEntropy) scanSegments(p ring.Partition, segs []uint32, fn func(i int, key, enc []byte) (bool, error)) (int, error) {
	stopAfter := -1 // index of the segment being finished after fn said stop
	var ferr error
	for lo := 0; lo < len(segs); {
		hi := lo + 1
		for hi < len(segs) && segs[hi]-segs[hi-1] <= scanGap {
			hi++
		}
		i := lo
		stopped := false
		err := a.st.ScanSegmentsRaw(p, segs[lo], segs[hi-1]+1, func(key []byte, seg uint32, enc []byte) bool {
			for i < hi && segs[i] < seg {
				if stopAfter >= 0 {
					stopped = true
					return false
				}
				i++
			}
			if i == hi || segs[i] != seg {
				return true // a segment between two differing ones
			}
			more, err := fn(i, key, enc)
			if err != nil {
				ferr = err
				return false
			}
			if !more && stopAfter < 0 {
				stopAfter = i
			}
			return true
		})
		if err == nil {
			err = ferr
		}
		if err != nil {
			return 0, fmt.Errorf("antientropy: scan partition %d: %w", p, err)
		}
		if stopAfter >= 0 || stopped {
			return stopAfter + 1, nil
		}
		lo = hi
	}
	return len(segs), nil
}

// checkPartition verifies that every object belongs to partition p.
func (a *AntiEntropy) checkPartition(p ring.Partition, objs []store.KeyObject) error {
	for _, o := range objs {
		if err := a.st.CheckKey(o.Key); err != nil {
			return badRequest("key %q: %v", o.Key, err)
		}
		if kp, _ := a.st.Locate(o.Key); kp != p {
			return badRequest("key %q is in partition %d, not %d", o.Key, kp, p)
		}
	}
	return nil
}

// merge merges objects into the store in small batches, pausing the turn
// tn between them (no lock is held then), and returns how many keys
// changed.
func (a *AntiEntropy) merge(ctx context.Context, objs []store.KeyObject, tn *turn) (int, error) {
	changed := 0
	for len(objs) > 0 {
		if err := ctx.Err(); err != nil {
			return changed, err
		}
		n := min(len(objs), mergeBatch)
		c, err := a.st.MergeMany(objs[:n])
		changed += c
		if err != nil {
			return changed, fmt.Errorf("antientropy: merge: %w", err)
		}
		objs = objs[n:]
		if len(objs) > 0 {
			if err := a.pace.pause(ctx, tn); err != nil {
				return changed, err
			}
		}
	}
	return changed, nil
}
