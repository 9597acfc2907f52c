package antientropy

import (
	"context"
	"errors"
	"slices"

	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/store"
	"github.com/mnemo-kv/mnemo/version"
)

// Handle serves one anti-entropy request from a peer (the responding
// side of ExchangeNow) and returns the reply payload. Malformed requests
// get a *wire.Error with CodeBadRequest; after Close, CodeUnavailable.
// Safe for concurrent use; the reply waits for the CPU share (the work of
// a keys or push request is paced) and for the rate limit.
func (a *AntiEntropy) Handle(ctx context.Context, kind Kind, payload []byte) ([]byte, error) {
	if a.closed.Load() {
		return nil, wire.Errorf(wire.CodeUnavailable, "antientropy: closed")
	}
	var reply []byte
	var err error
	// Keys and push requests are work (scans, merges): a turn of the
	// pacer. Roots and segments requests only read the trees.
	var tn turn
	if kind == KindKeys || kind == KindPush {
		if err := a.pace.begin(ctx, &tn); err != nil {
			return nil, wire.Errorf(wire.CodeTimeout, "antientropy: %v", err)
		}
		defer func() { _ = a.pace.end(ctx, &tn) }()
	}
	switch kind {
	case KindRoots:
		reply, err = a.handleRoots(ctx, payload)
	case KindSegments:
		reply, err = a.handleSegments(payload)
	case KindKeys:
		reply, err = a.handleKeys(payload)
	case KindPush:
		reply, err = a.handlePush(ctx, payload, &tn)
	default:
		return nil, wire.Errorf(wire.CodeUnknownKind, "antientropy: unknown request kind %d", kind)
	}
	a.countBytes(0, len(payload))
	if err != nil {
		return nil, err
	}
	if err := a.pace.end(ctx, &tn); err != nil {
		return nil, wire.Errorf(wire.CodeTimeout, "antientropy: %v", err)
	}
	if err := a.lim.Wait(ctx, len(reply)+frameHeader); err != nil {
		return nil, wire.Errorf(wire.CodeTimeout, "antientropy: rate limit: %v", err)
	}
	a.countBytes(len(reply), 0)
	return reply, nil
}

func (a *AntiEntropy) handleRoots(ctx context.Context, payload []byte) ([]byte, error) {
	req, err := decodeRootsRequest(payload)
	if err != nil {
		return nil, err
	}
	if a.cfg.Caller != nil {
		if id, ok := a.cfg.Caller(ctx); ok && id != req.From {
			return nil, wire.Errorf(wire.CodeForbidden, "antientropy: %s may not exchange as %s", id, req.From)
		}
	}
	self := a.cl.Self()
	rep := &rootsReply{Status: make([]byte, len(req.Parts))}
	for i, p := range req.Parts {
		if int(p) >= a.trees.Partitions() {
			rep.Status[i] = statusNotHome
			continue
		}
		if reps := a.cl.Replicas(p); !slices.Contains(reps, self) || !slices.Contains(reps, req.From) {
			rep.Status[i] = statusNotHome
			continue
		}
		root, ok := a.trees.Root(p)
		switch {
		case !ok:
			rep.Status[i] = statusNotReady
		case root == req.Roots[i]:
			rep.Status[i] = statusEqual
			a.noteCompared(p, req.From, true)
			a.releaseRemote(p, req.From)
		case !a.grant(p, req.From):
			// Another exchange is repairing p here: the initiator comes
			// back later, when p most likely compares equal.
			rep.Status[i] = statusBusy
			a.noteCompared(p, req.From, false)
		default:
			rep.Status[i] = statusDiffer
			a.noteCompared(p, req.From, false)
		}
	}
	return rep.encode(), nil
}

func (a *AntiEntropy) handleSegments(payload []byte) ([]byte, error) {
	req, err := decodeSegmentsRequest(payload)
	if err != nil {
		return nil, err
	}
	if int(req.Part) >= a.trees.Partitions() {
		return nil, badRequest("partition %d out of range", req.Part)
	}
	tree, ok := a.trees.Snapshot(req.Part)
	if !ok {
		return (&segmentsReply{Status: statusNotReady}).encode(), nil
	}
	a.renew(req.Part)
	if len(req.Branches) != tree.Branches() {
		return nil, badRequest("%d branches, this node has %d", len(req.Branches), tree.Branches())
	}
	rep := &segmentsReply{
		Status:    statusEqual,
		Branches:  tree.Branches(),
		PerBranch: tree.SegmentsPerBranch(),
		Differ:    make([]byte, bitmapLen(tree.Branches())),
	}
	var segs []uint64
	for b, h := range req.Branches {
		if tree.Branch(b) == h {
			continue
		}
		rep.Status = statusDiffer
		setBit(rep.Differ, b)
		segs = tree.AppendBranchSegments(segs[:0], b)
		for _, s := range segs {
			rep.Tags = append(rep.Tags, SegmentTag(s, req.Salt))
		}
	}
	return rep.encode(), nil
}

func (a *AntiEntropy) handleKeys(payload []byte) ([]byte, error) {
	req, err := decodeKeysRequest(payload)
	if err != nil {
		return nil, err
	}
	if int(req.Part) >= a.trees.Partitions() {
		return nil, badRequest("partition %d out of range", req.Part)
	}
	for _, s := range req.Segs {
		if int(s) >= a.trees.Segments() {
			return nil, badRequest("segment %d out of range", s)
		}
	}
	if !slices.Contains(a.cl.Replicas(req.Part), a.cl.Self()) {
		return (&keysReply{Status: statusNotHome}).encode(), nil
	}
	a.renew(req.Part)
	nt := len(req.Tags)
	rep := &keysReply{Status: statusDiffer, NTags: nt, Wanted: make([]byte, bitmapLen(nt)), Check: make([]byte, bitmapLen(nt))}
	// offs[i] is where segment i's descriptors start in req.Tags.
	offs := make([]int, len(req.Segs)+1)
	for i, c := range req.Counts {
		offs[i+1] = offs[i] + c
	}
	size := 0
	var serr error // decoding an object to send
	var descs []uint32
	var scratch [2][]int
	// match compares one segment's entries (ours) with the initiator's
	// descriptors for it.
	match := func(i int, ours []keyEntry) {
		sortByDesc(ours)
		descs = descs[:0]
		for _, e := range ours {
			descs = append(descs, e.desc)
		}
		base := offs[i]
		matchSegment(req.Tags[base:offs[i+1]], descs, func(t int, check bool) {
			setBit(rep.Wanted, base+t)
			if check {
				setBit(rep.Check, base+t)
			}
		}, func(o int) {
			if size >= a.replyCap {
				rep.Truncated = true
				return
			}
			ko, err := ours[o].keyObject()
			if err != nil {
				serr = err
				return
			}
			size += objectSize(ko)
			rep.Objects = append(rep.Objects, ko)
		}, &scratch)
	}
	cur, ours := -1, []keyEntry(nil)
	var ar arena
	_, err = a.scanSegments(req.Part, req.Segs, func(i int, key, enc []byte) (bool, error) {
		if i != cur {
			if cur >= 0 {
				match(cur, ours)
			}
			// Segments skipped (nothing stored here) want all theirs.
			for k := cur + 1; k < i; k++ {
				match(k, nil)
			}
			cur, ours = i, ours[:0]
		}
		e, err := scanned(&ar, key, enc, req.Salt)
		if err != nil {
			return false, err
		}
		ours = append(ours, e)
		return true, nil
	})
	if err != nil {
		return nil, wire.Errorf(wire.CodeInternal, "%v", err)
	}
	if cur >= 0 {
		match(cur, ours)
	}
	for k := cur + 1; k < len(req.Segs); k++ {
		match(k, nil)
	}
	if serr != nil {
		return nil, wire.Errorf(wire.CodeInternal, "%v", serr)
	}
	a.countKeys(len(rep.Objects), 0, 0)
	return rep.encode(), nil
}

func (a *AntiEntropy) handlePush(ctx context.Context, payload []byte, tn *turn) ([]byte, error) {
	req, err := decodePushRequest(payload)
	if err != nil {
		return nil, err
	}
	if int(req.Part) >= a.trees.Partitions() {
		return nil, badRequest("partition %d out of range", req.Part)
	}
	if err := a.checkPartition(req.Part, req.Objects); err != nil {
		return nil, err
	}
	a.renew(req.Part)
	changed, err := a.merge(ctx, req.Objects, tn)
	a.countKeys(0, len(req.Objects), changed)
	if err != nil {
		return nil, wire.Errorf(wire.CodeInternal, "%v", err)
	}
	rep := &pushReply{Changed: changed}
	// Checked objects: we may have held another version; return the merge
	// where the initiator's lacked something.
	for i, o := range req.Objects {
		if !bitSet(req.Check, i) {
			continue
		}
		cur, err := a.st.Get(o.Key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, wire.Errorf(wire.CodeInternal, "%v", err)
		}
		if !version.Equal(cur, o.Object) {
			rep.Objects = append(rep.Objects, store.KeyObject{Key: o.Key, Object: cur})
		}
	}
	a.countKeys(len(rep.Objects), 0, 0)
	return rep.encode(), nil
}
