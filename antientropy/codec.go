package antientropy

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
	"github.com/mnemo-kv/mnemo/version"
)

// Kind is a request kind of anti-entropy on the node's RPC port. Its
// values are the numbers on the wire (internal/proto's anti-entropy range,
// 120-149); the node's RPC layer carries them as they are.
type Kind uint16

// Request kinds, proto.KindAntiEntropyBase+i. Wire enum: only append, never
// renumber or reuse.
const (
	// KindRoots compares the roots of a batch of partitions: rootsRequest
	// -> rootsReply.
	KindRoots = Kind(proto.KindAntiEntropyBase) + iota
	// KindSegments compares one partition's branches and returns the
	// responder's segment tags under the differing ones: segmentsRequest
	// -> segmentsReply.
	KindSegments
	// KindKeys compares the key tags of a partition's differing segments
	// and returns what the initiator lacks: keysRequest -> keysReply.
	KindKeys
	// KindPush carries objects the responder lacks: pushRequest ->
	// pushReply.
	KindPush
)

// Root status in a rootsReply. Wire enum: only append.
const (
	statusEqual    byte = iota // same root
	statusDiffer               // different roots: exchange the partition
	statusNotReady             // the responder's tree is not built yet
	statusNotHome              // the responder does not see both nodes as home replicas
	statusBusy                 // another exchange is repairing the partition at the responder (lease.go)
)

// Body flags: the first byte of every message.
const (
	flagRaw  byte = 0 // the body follows as is
	flagZstd byte = 1 // the body follows as one zstd frame
)

// Limits every decoder enforces (beyond "no more than the bytes present").
const (
	// maxBody bounds a decompressed body in bytes. Senders stay far below:
	// a keys reply carries at most maxReplyObjects of objects, a push
	// maxPushBytes, plus one object (values are at most 1 MiB by default);
	// the wire's frame limit (8 MiB) bounds the compressed size.
	maxBody = 16 << 20
	// maxWindow bounds the zstd window a peer may ask the decoder for;
	// senders use 1 MiB.
	maxWindow = 8 << 20
	// compressMin is the smallest body worth trying to compress, in bytes.
	compressMin = 256
	// maxNodeID bounds a node id in bytes.
	maxNodeID = 255
	// maxPartitions bounds partition numbers (ring.MaxPartitions).
	maxPartitions = ring.MaxPartitions
	// maxSegments bounds segment numbers and branch counts.
	maxSegments = 1 << 16
	// maxObjectBytes bounds one encoded object or key in a batch.
	maxObjectBytes = 16 << 20
)

// frameHeader is the wire's per-frame overhead in bytes, counted in the
// byte statistics so that they are what the network carries.
const frameHeader = 16

func badRequest(format string, args ...any) error {
	return &wire.Error{Code: wire.CodeBadRequest, Msg: "antientropy: " + fmt.Sprintf(format, args...)}
}

// zstd coders shared by every instance. Neither starts a goroutine for
// EncodeAll and DecodeAll, both are safe for concurrent use, and the
// decoder refuses to produce more than maxBody bytes.
var (
	zenc = sync.OnceValue(func() *zstd.Encoder {
		e, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedDefault), // as small as SpeedDefault on objects, faster
			zstd.WithEncoderConcurrency(min(4, runtime.GOMAXPROCS(0))),
			zstd.WithEncoderCRC(false), // TCP and the frame checks suffice
			zstd.WithWindowSize(1<<20))
		if err != nil {
			panic(err) // only for invalid options
		}
		return e
	})
	zdec = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(min(4, runtime.GOMAXPROCS(0))),
			zstd.WithDecoderMaxMemory(maxBody),
			zstd.WithDecoderMaxWindow(maxWindow))
		if err != nil {
			panic(err)
		}
		return d
	})
)

// newBody starts a message body: the flag byte, then the caller appends.
func newBody(sizeHint int) []byte {
	b := make([]byte, 1, 1+sizeHint)
	b[0] = flagRaw
	return b
}

// seal compresses a body started with newBody when that makes it smaller.
func seal(b []byte) []byte {
	if len(b)-1 < compressMin {
		return b
	}
	z := zenc().EncodeAll(b[1:], make([]byte, 1, len(b)/2+16))
	if len(z) >= len(b) {
		return b
	}
	z[0] = flagZstd
	return z
}

// unseal returns the body of a message, decompressed if need be.
func unseal(payload []byte) ([]byte, error) {
	if len(payload) == 0 {
		return nil, badRequest("empty message")
	}
	switch payload[0] {
	case flagRaw:
		return payload[1:], nil
	case flagZstd:
		b, err := zdec().DecodeAll(payload[1:], nil)
		if err != nil {
			return nil, badRequest("decompress: %v", err)
		}
		if len(b) > maxBody {
			return nil, badRequest("body of %d bytes over %d", len(b), maxBody)
		}
		return b, nil
	}
	return nil, badRequest("unknown body flag %d", payload[0])
}

// reader decodes a body. The first error sticks; later reads return zero
// values, so decoders check r.err once at the end.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = badRequest("malformed %s at offset %d", what, r.off)
	}
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.off += n
	return v
}

// count reads a count of items that take at least minSize bytes each and
// must not exceed limit.
func (r *reader) count(what string, limit, minSize int) int {
	v := r.uvarint(what)
	if r.err != nil {
		return 0
	}
	if v > uint64(limit) || v*uint64(minSize) > uint64(len(r.b)-r.off) {
		r.fail(what)
		return 0
	}
	return int(v)
}

func (r *reader) byte1(what string) byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail(what)
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) u64(what string) uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b)-r.off < 8 {
		r.fail(what)
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b[r.off:])
	r.off += 8
	return v
}

func (r *reader) u32(what string) uint32 {
	if r.err != nil {
		return 0
	}
	if len(r.b)-r.off < 4 {
		r.fail(what)
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v
}

// raw reads n bytes; the result aliases the body.
func (r *reader) raw(what string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.fail(what)
		return nil
	}
	v := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return v
}

// done reports the sticky error, or trailing bytes.
func (r *reader) done(msg string) error {
	if r.err == nil && r.off != len(r.b) {
		r.err = badRequest("%s: %d trailing bytes", msg, len(r.b)-r.off)
	}
	return r.err
}

// bitmapLen is the bytes of a bitmap of n bits.
func bitmapLen(n int) int { return (n + 7) / 8 }

func bitSet(bm []byte, i int) bool { return bm[i>>3]&(1<<(i&7)) != 0 }

func setBit(bm []byte, i int) { bm[i>>3] |= 1 << (i & 7) }

// --- Roots ---

// rootsRequest offers the initiator's roots of a batch of partitions, in
// increasing partition order.
//
//	from(uvarint len, bytes) n(uvarint) n x [partition delta(uvarint), root(8 LE)]
type rootsRequest struct {
	From  ring.NodeID
	Parts []ring.Partition
	Roots []uint64
}

func (m *rootsRequest) encode() []byte {
	b := newBody(16 + len(m.From) + 10*len(m.Parts))
	b = binary.AppendUvarint(b, uint64(len(m.From)))
	b = append(b, m.From...)
	b = binary.AppendUvarint(b, uint64(len(m.Parts)))
	prev := ring.Partition(0)
	for i, p := range m.Parts {
		b = binary.AppendUvarint(b, uint64(p-prev))
		b = binary.LittleEndian.AppendUint64(b, m.Roots[i])
		prev = p
	}
	return seal(b)
}

func decodeRootsRequest(payload []byte) (*rootsRequest, error) {
	body, err := unseal(payload)
	if err != nil {
		return nil, err
	}
	r := &reader{b: body}
	m := &rootsRequest{}
	m.From = ring.NodeID(r.raw("node id", r.count("node id", maxNodeID, 1)))
	n := r.count("partition count", maxPartitions, 9)
	m.Parts = make([]ring.Partition, 0, n)
	m.Roots = make([]uint64, 0, n)
	p := uint64(0)
	for i := range n {
		d := r.uvarint("partition")
		if i > 0 && d == 0 {
			r.fail("partition order")
		}
		p += d
		if p >= maxPartitions {
			r.fail("partition")
		}
		m.Parts = append(m.Parts, ring.Partition(p))
		m.Roots = append(m.Roots, r.u64("root"))
	}
	if err := r.done("roots request"); err != nil {
		return nil, err
	}
	return m, nil
}

// rootsReply holds one status per requested partition, in request order.
//
//	n(uvarint) n x status(byte)
type rootsReply struct {
	Status []byte
}

func (m *rootsReply) encode() []byte {
	b := newBody(4 + len(m.Status))
	b = binary.AppendUvarint(b, uint64(len(m.Status)))
	b = append(b, m.Status...)
	return seal(b)
}

func decodeRootsReply(payload []byte) (*rootsReply, error) {
	body, err := unseal(payload)
	if err != nil {
		return nil, err
	}
	r := &reader{b: body}
	n := r.count("status count", maxPartitions, 1)
	m := &rootsReply{Status: r.raw("statuses", n)}
	if err := r.done("roots reply"); err != nil {
		return nil, err
	}
	return m, nil
}

// --- Segments ---

// segmentsRequest offers the initiator's branch hashes of one partition.
//
//	salt(8 LE) partition(uvarint) n(uvarint) n x hash(8 LE)
type segmentsRequest struct {
	Salt     uint64
	Part     ring.Partition
	Branches []uint64
}

func (m *segmentsRequest) encode() []byte {
	b := newBody(16 + 8*len(m.Branches))
	b = binary.LittleEndian.AppendUint64(b, m.Salt)
	b = binary.AppendUvarint(b, uint64(m.Part))
	b = binary.AppendUvarint(b, uint64(len(m.Branches)))
	for _, h := range m.Branches {
		b = binary.LittleEndian.AppendUint64(b, h)
	}
	return seal(b)
}

func decodeSegmentsRequest(payload []byte) (*segmentsRequest, error) {
	body, err := unseal(payload)
	if err != nil {
		return nil, err
	}
	r := &reader{b: body}
	m := &segmentsRequest{Salt: r.u64("salt")}
	m.Part = ring.Partition(r.uvarint("partition"))
	if m.Part >= maxPartitions {
		r.fail("partition")
	}
	n := r.count("branch count", maxSegments, 8)
	m.Branches = make([]uint64, n)
	for i := range m.Branches {
		m.Branches[i] = r.u64("branch hash")
	}
	if err := r.done("segments request"); err != nil {
		return nil, err
	}
	return m, nil
}

// segmentsReply says which branches differ and gives the responder's
// segment tags under each of them (SegmentTag of the segment hash with the
// request's salt; 0 for an empty segment).
//
//	status(byte) branches(uvarint) perBranch(uvarint) bitmap(ceil(branches/8))
//	popcount(bitmap) x perBranch x tag(3 LE)
type segmentsReply struct {
	Status    byte
	Branches  int    // branch count
	PerBranch int    // segments per branch
	Differ    []byte // bitmap of differing branches
	Tags      []uint32
}

func (m *segmentsReply) encode() []byte {
	b := newBody(8 + len(m.Differ) + 3*len(m.Tags))
	b = append(b, m.Status)
	b = binary.AppendUvarint(b, uint64(m.Branches))
	b = binary.AppendUvarint(b, uint64(m.PerBranch))
	b = append(b, m.Differ...)
	for _, t := range m.Tags {
		b = append(b, byte(t), byte(t>>8), byte(t>>16))
	}
	return seal(b)
}

func decodeSegmentsReply(payload []byte) (*segmentsReply, error) {
	body, err := unseal(payload)
	if err != nil {
		return nil, err
	}
	r := &reader{b: body}
	m := &segmentsReply{Status: r.byte1("status")}
	m.Branches = r.count("branch count", maxSegments, 0)
	m.PerBranch = r.count("segments per branch", maxSegments, 0)
	if r.err == nil && m.Branches*m.PerBranch > maxSegments {
		r.fail("segment count")
	}
	m.Differ = r.raw("branch bitmap", bitmapLen(m.Branches))
	nd := 0
	for _, c := range m.Differ {
		nd += bits.OnesCount8(c)
	}
	if r.err == nil && m.Branches%8 != 0 && len(m.Differ) > 0 && m.Differ[len(m.Differ)-1]>>(m.Branches%8) != 0 {
		r.fail("branch bitmap padding")
	}
	nt := nd * m.PerBranch
	if r.err == nil && nt*3 > len(r.b)-r.off {
		r.fail("segment tags")
	}
	if r.err == nil {
		m.Tags = make([]uint32, nt)
		for i := range m.Tags {
			t := r.raw("segment tag", 3)
			m.Tags[i] = uint32(t[0]) | uint32(t[1])<<8 | uint32(t[2])<<16
		}
	}
	if err := r.done("segments reply"); err != nil {
		return nil, err
	}
	return m, nil
}

// --- Keys ---

// keysRequest lists, for some of a partition's differing segments, the
// initiator's KeyDescriptors (with Salt), sorted within each segment. A
// segment listed with none is empty at the initiator.
//
//	salt(8 LE) partition(uvarint) nsegs(uvarint) nsegs x [segment delta(uvarint), ntags(uvarint)]
//	sum(ntags) x descriptor(4 LE)
type keysRequest struct {
	Salt   uint64
	Part   ring.Partition
	Segs   []uint32 // increasing
	Counts []int    // tags per segment
	Tags   []uint32 // all segments' tags, in Segs order
}

func (m *keysRequest) encode() []byte {
	b := newBody(16 + 3*len(m.Segs) + 4*len(m.Tags))
	b = binary.LittleEndian.AppendUint64(b, m.Salt)
	b = binary.AppendUvarint(b, uint64(m.Part))
	b = binary.AppendUvarint(b, uint64(len(m.Segs)))
	prev := uint32(0)
	for i, s := range m.Segs {
		b = binary.AppendUvarint(b, uint64(s-prev))
		b = binary.AppendUvarint(b, uint64(m.Counts[i]))
		prev = s
	}
	for _, t := range m.Tags {
		b = binary.LittleEndian.AppendUint32(b, t)
	}
	return seal(b)
}

func decodeKeysRequest(payload []byte) (*keysRequest, error) {
	body, err := unseal(payload)
	if err != nil {
		return nil, err
	}
	r := &reader{b: body}
	m := &keysRequest{Salt: r.u64("salt")}
	m.Part = ring.Partition(r.uvarint("partition"))
	if m.Part >= maxPartitions {
		r.fail("partition")
	}
	n := r.count("segment count", maxSegments, 2)
	m.Segs = make([]uint32, 0, n)
	m.Counts = make([]int, 0, n)
	seg, total := uint64(0), 0
	for i := range n {
		d := r.uvarint("segment")
		if i > 0 && d == 0 {
			r.fail("segment order")
		}
		seg += d
		if seg >= maxSegments {
			r.fail("segment")
		}
		c := r.count("tag count", len(r.b), 0)
		total += c
		if r.err == nil && total*4 > len(r.b)-r.off {
			r.fail("tag count")
		}
		m.Segs = append(m.Segs, uint32(seg))
		m.Counts = append(m.Counts, c)
	}
	if r.err == nil {
		if total*4 != len(r.b)-r.off {
			r.fail("tags")
		} else {
			m.Tags = make([]uint32, total)
			for i := range m.Tags {
				m.Tags[i] = r.u32("tag")
			}
		}
	}
	if err := r.done("keys request"); err != nil {
		return nil, err
	}
	return m, nil
}

// keysReply answers a keysRequest: which of the initiator's keys the
// responder wants (it lacks them or holds another version), which of
// those it may hold another version of (Check: push them with the check
// flag, and it returns what they lack), and the responder's objects of
// keys the initiator lacks. Truncated says the responder stopped adding
// objects at its size cap; the initiator comes back in another pass.
//
//	status(byte) truncated(byte) ntags(uvarint) wanted(ceil(ntags/8)) check(ceil(ntags/8)) objects
type keysReply struct {
	Status    byte
	Truncated bool
	NTags     int
	Wanted    []byte
	Check     []byte
	Objects   []store.KeyObject
}

func (m *keysReply) encode() []byte {
	b := newBody(16 + 2*len(m.Wanted) + objectsSize(m.Objects))
	b = append(b, m.Status)
	if m.Truncated {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(m.NTags))
	b = append(b, m.Wanted...)
	b = append(b, m.Check...)
	b = appendObjects(b, m.Objects)
	return seal(b)
}

func decodeKeysReply(payload []byte) (*keysReply, error) {
	body, err := unseal(payload)
	if err != nil {
		return nil, err
	}
	r := &reader{b: body}
	m := &keysReply{Status: r.byte1("status")}
	switch r.byte1("truncated") {
	case 0:
	case 1:
		m.Truncated = true
	default:
		r.fail("truncated flag")
	}
	m.NTags = r.count("tag count", 8*len(r.b), 0)
	m.Wanted = r.raw("wanted bitmap", bitmapLen(m.NTags))
	m.Check = r.raw("check bitmap", bitmapLen(m.NTags))
	m.Objects = readObjects(r)
	if err := r.done("keys reply"); err != nil {
		return nil, err
	}
	return m, nil
}

// --- Push ---

// pushRequest carries objects of one partition that the responder lacks
// or holds another version of. Check marks the objects the responder may
// hold another version of: it answers with its merge of those that lack
// something.
//
//	partition(uvarint) n(uvarint) check(ceil(n/8)) objects(of n)
type pushRequest struct {
	Part    ring.Partition
	Check   []byte
	Objects []store.KeyObject
}

func (m *pushRequest) encode() []byte {
	b := newBody(8 + len(m.Check) + objectsSize(m.Objects))
	b = binary.AppendUvarint(b, uint64(m.Part))
	b = binary.AppendUvarint(b, uint64(len(m.Objects)))
	b = append(b, m.Check...)
	b = appendObjects(b, m.Objects)
	return seal(b)
}

func decodePushRequest(payload []byte) (*pushRequest, error) {
	body, err := unseal(payload)
	if err != nil {
		return nil, err
	}
	r := &reader{b: body}
	m := &pushRequest{Part: ring.Partition(r.uvarint("partition"))}
	if m.Part >= maxPartitions {
		r.fail("partition")
	}
	n := r.count("object count", len(r.b), 0)
	m.Check = r.raw("check bitmap", bitmapLen(n))
	m.Objects = readObjects(r)
	if r.err == nil && len(m.Objects) != n {
		r.fail("object count")
	}
	if err := r.done("push request"); err != nil {
		return nil, err
	}
	return m, nil
}

// pushReply says how many pushed keys changed at the responder, and
// returns its merge of the checked objects that lacked something it held.
//
//	changed(uvarint) objects
type pushReply struct {
	Changed int
	Objects []store.KeyObject
}

func (m *pushReply) encode() []byte {
	b := binary.AppendUvarint(newBody(8+objectsSize(m.Objects)), uint64(m.Changed))
	return seal(appendObjects(b, m.Objects))
}

func decodePushReply(payload []byte) (*pushReply, error) {
	body, err := unseal(payload)
	if err != nil {
		return nil, err
	}
	r := &reader{b: body}
	m := &pushReply{Changed: r.count("changed", 1<<40, 0)}
	m.Objects = readObjects(r)
	if err := r.done("push reply"); err != nil {
		return nil, err
	}
	return m, nil
}

// --- Objects ---

// Objects travel as
//
//	n(uvarint) n x [key length(uvarint), key, object length(uvarint), version.Encode(object)]
//
// inside a body that is then compressed as a whole: actor ids, contexts
// and timestamp prefixes repeat from object to object and compress away.

// objectSize is an object's size in a batch, roughly.
func objectSize(o store.KeyObject) int {
	return len(o.Key) + version.EncodedSize(o.Object) + 8
}

func objectsSize(objs []store.KeyObject) int {
	n := 4
	for _, o := range objs {
		n += objectSize(o)
	}
	return n
}

func appendObjects(b []byte, objs []store.KeyObject) []byte {
	b = binary.AppendUvarint(b, uint64(len(objs)))
	for _, o := range objs {
		b = binary.AppendUvarint(b, uint64(len(o.Key)))
		b = append(b, o.Key...)
		// Encode in place after a length placeholder would need a fixed
		// width; objects are small, so encode then copy.
		enc := version.Encode(o.Object)
		b = binary.AppendUvarint(b, uint64(len(enc)))
		b = append(b, enc...)
	}
	return b
}

// readObjects decodes an object batch; keys and values alias the body.
func readObjects(r *reader) []store.KeyObject {
	n := r.count("object count", len(r.b), 3)
	if r.err != nil {
		return nil
	}
	objs := make([]store.KeyObject, 0, n)
	for range n {
		k := r.raw("key", r.count("key length", maxObjectBytes, 1))
		ob := r.raw("object", r.count("object length", maxObjectBytes, 1))
		if r.err != nil {
			return nil
		}
		if len(k) == 0 {
			r.fail("empty key")
			return nil
		}
		o, err := version.Decode(ob)
		if err != nil {
			r.err = badRequest("object of key %q: %v", k, err)
			return nil
		}
		objs = append(objs, store.KeyObject{Key: k, Object: o})
	}
	return objs
}
