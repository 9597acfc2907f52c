package proto

import "github.com/mnemo-kv/mnemo/internal/wire"

// Hand-written msgpack codecs of the replica messages, which every write
// and read sends between nodes: through reflection, msgpack v5 spent
// 300-450 ns and 1-5 allocations on each of them (the omitempty field list,
// a copy of every []byte, the struct). They implement wire.MsgpackAppender
// and wire.MsgpackDecoder, so wire.Marshal and wire.Unmarshal use them.
//
// Wire compatibility: the encodings are byte for byte msgpack v5's for the
// structs' tags (codec_test.go checks it on random values), so nodes of
// this release and older ones read each other. The decoders accept what
// msgpack v5 accepts in practice and decode it to the same value: keys in
// any order, repeated keys (decoded again into the same field), unknown
// keys of any value (skipped), str or bin or nil for []byte and string,
// nil for a bool or an integer (false, 0), integers of any width, nil for
// a struct (a zero one) or a slice. Deliberate differences, which no
// msgpack v5 encoder produces for these types without options wire does
// not set: a struct encoded as an array, and a float for an integer field,
// are rejected.
//
// Buffer ownership: the []byte fields a decoder fills (Key, Object, Keys)
// alias the bytes decoded, which saves a copy of every key and object.
// The bytes must not be modified while the message or anything decoded
// from it (version.Decode aliases it in turn) is in use. Payloads from
// internal/wire satisfy that: each request payload and each response is
// allocated for its frame and is the receiver's to keep.
//
// Like msgpack v5, a decoder fills only the fields present, so decode into
// a zero value.

// The request types also have Encode, which wire.Marshal would do but for
// the interface conversion: that moves the message to the heap, one more
// allocation per replica request.

// Field names on the wire: the structs' msgpack tags.
const (
	keyKey      = "k"
	keyObject   = "o"
	keyHintFor  = "h"
	keyChanged  = "c"
	keyItems    = "i"
	keyDigest   = "d"
	keyFound    = "f"
	keyDigested = "dd"
	keyHash     = "h"
)

// MsgpackSize implements wire.MsgpackAppender.
func (m *ReplicaPut) MsgpackSize() int {
	n := 1 + wire.SizeStr(keyKey) + wire.SizeBin(m.Key) + wire.SizeStr(keyObject) + wire.SizeBin(m.Object)
	if m.HintFor != "" {
		n += wire.SizeStr(keyHintFor) + wire.SizeStr(m.HintFor)
	}
	return n
}

// AppendMsgpack implements wire.MsgpackAppender.
func (m *ReplicaPut) AppendMsgpack(b []byte) []byte {
	fields := 2
	if m.HintFor != "" {
		fields++
	}
	b = wire.AppendMapHeader(b, fields)
	b = wire.AppendBin(wire.AppendStr(b, keyKey), m.Key)
	b = wire.AppendBin(wire.AppendStr(b, keyObject), m.Object)
	if m.HintFor != "" {
		b = wire.AppendStr(wire.AppendStr(b, keyHintFor), m.HintFor)
	}
	return b
}

// Encode returns the encoding in a new slice of its exact size.
func (m *ReplicaPut) Encode() []byte { return m.AppendMsgpack(make([]byte, 0, m.MsgpackSize())) }

// DecodeMsgpack implements wire.MsgpackDecoder; Key and Object alias b.
func (m *ReplicaPut) DecodeMsgpack(b []byte) error {
	r := wire.NewReader(b)
	m.decode(&r, 0)
	return r.Done()
}

// decode reads a ReplicaPut that open maps and arrays enclose.
func (m *ReplicaPut) decode(r *wire.Reader, open int) {
	n := r.MapHeader()
	if n < 0 {
		*m = ReplicaPut{}
		return
	}
	for range n {
		switch string(r.Bytes()) {
		case keyKey:
			m.Key = r.Bytes()
		case keyObject:
			m.Object = r.Bytes()
		case keyHintFor:
			m.HintFor = r.String()
		default:
			r.Skip(open + 1)
		}
	}
}

// MsgpackSize implements wire.MsgpackAppender.
func (m *ReplicaPutReply) MsgpackSize() int {
	return 1 + wire.SizeStr(keyChanged) + wire.SizeBool
}

// AppendMsgpack implements wire.MsgpackAppender.
func (m *ReplicaPutReply) AppendMsgpack(b []byte) []byte {
	b = wire.AppendMapHeader(b, 1)
	return wire.AppendBool(wire.AppendStr(b, keyChanged), m.Changed)
}

// DecodeMsgpack implements wire.MsgpackDecoder.
func (m *ReplicaPutReply) DecodeMsgpack(b []byte) error {
	r := wire.NewReader(b)
	n := r.MapHeader()
	if n < 0 {
		*m = ReplicaPutReply{}
	}
	for range n {
		switch string(r.Bytes()) {
		case keyChanged:
			m.Changed = r.Bool()
		default:
			r.Skip(1)
		}
	}
	return r.Done()
}

// MsgpackSize implements wire.MsgpackAppender.
func (m *ReplicaPutBatch) MsgpackSize() int {
	n := 1 + wire.SizeStr(keyItems)
	if m.Items == nil {
		return n + wire.SizeNil
	}
	n += wire.SizeHeader(len(m.Items))
	for i := range m.Items {
		n += m.Items[i].MsgpackSize()
	}
	return n
}

// AppendMsgpack implements wire.MsgpackAppender.
func (m *ReplicaPutBatch) AppendMsgpack(b []byte) []byte {
	b = wire.AppendStr(wire.AppendMapHeader(b, 1), keyItems)
	if m.Items == nil {
		return wire.AppendNil(b)
	}
	b = wire.AppendArrayHeader(b, len(m.Items))
	for i := range m.Items {
		b = m.Items[i].AppendMsgpack(b)
	}
	return b
}

// Encode returns the encoding in a new slice of its exact size.
func (m *ReplicaPutBatch) Encode() []byte { return m.AppendMsgpack(make([]byte, 0, m.MsgpackSize())) }

// DecodeMsgpack implements wire.MsgpackDecoder; the items' Key and Object
// alias b.
func (m *ReplicaPutBatch) DecodeMsgpack(b []byte) error {
	r := wire.NewReader(b)
	n := r.MapHeader()
	if n < 0 {
		*m = ReplicaPutBatch{}
	}
	for range n {
		switch string(r.Bytes()) {
		case keyItems:
			k := r.ArrayHeader()
			if k < 0 {
				m.Items = nil
				continue
			}
			m.Items = wire.ResizeSlice(m.Items, k)
			for i := range m.Items {
				m.Items[i].decode(&r, 2)
			}
		default:
			r.Skip(1)
		}
	}
	return r.Done()
}

// MsgpackSize implements wire.MsgpackAppender.
func (m *ReplicaPutBatchReply) MsgpackSize() int {
	return 1 + wire.SizeStr(keyChanged) + wire.SizeInt(int64(m.Changed))
}

// AppendMsgpack implements wire.MsgpackAppender.
func (m *ReplicaPutBatchReply) AppendMsgpack(b []byte) []byte {
	b = wire.AppendMapHeader(b, 1)
	return wire.AppendInt(wire.AppendStr(b, keyChanged), int64(m.Changed))
}

// DecodeMsgpack implements wire.MsgpackDecoder.
func (m *ReplicaPutBatchReply) DecodeMsgpack(b []byte) error {
	r := wire.NewReader(b)
	n := r.MapHeader()
	if n < 0 {
		*m = ReplicaPutBatchReply{}
	}
	for range n {
		switch string(r.Bytes()) {
		case keyChanged:
			m.Changed = int(r.Int())
		default:
			r.Skip(1)
		}
	}
	return r.Done()
}

// MsgpackSize implements wire.MsgpackAppender.
func (m *ReplicaGet) MsgpackSize() int {
	n := 1 + wire.SizeStr(keyKey) + wire.SizeBin(m.Key)
	if m.Digest {
		n += wire.SizeStr(keyDigest) + wire.SizeBool
	}
	return n
}

// AppendMsgpack implements wire.MsgpackAppender.
func (m *ReplicaGet) AppendMsgpack(b []byte) []byte {
	fields := 1
	if m.Digest {
		fields++
	}
	b = wire.AppendMapHeader(b, fields)
	b = wire.AppendBin(wire.AppendStr(b, keyKey), m.Key)
	if m.Digest {
		b = wire.AppendBool(wire.AppendStr(b, keyDigest), true)
	}
	return b
}

// Encode returns the encoding in a new slice of its exact size.
func (m *ReplicaGet) Encode() []byte { return m.AppendMsgpack(make([]byte, 0, m.MsgpackSize())) }

// DecodeMsgpack implements wire.MsgpackDecoder; Key aliases b.
func (m *ReplicaGet) DecodeMsgpack(b []byte) error {
	r := wire.NewReader(b)
	n := r.MapHeader()
	if n < 0 {
		*m = ReplicaGet{}
	}
	for range n {
		switch string(r.Bytes()) {
		case keyKey:
			m.Key = r.Bytes()
		case keyDigest:
			m.Digest = r.Bool()
		default:
			r.Skip(1)
		}
	}
	return r.Done()
}

// MsgpackSize implements wire.MsgpackAppender.
func (m *ReplicaGetBatch) MsgpackSize() int {
	n := 1 + wire.SizeStr(keyKey)
	if m.Keys == nil {
		n += wire.SizeNil
	} else {
		n += wire.SizeHeader(len(m.Keys))
		for _, k := range m.Keys {
			n += wire.SizeBin(k)
		}
	}
	if m.Digest {
		n += wire.SizeStr(keyDigest) + wire.SizeBool
	}
	return n
}

// AppendMsgpack implements wire.MsgpackAppender.
func (m *ReplicaGetBatch) AppendMsgpack(b []byte) []byte {
	fields := 1
	if m.Digest {
		fields++
	}
	b = wire.AppendStr(wire.AppendMapHeader(b, fields), keyKey)
	if m.Keys == nil {
		b = wire.AppendNil(b)
	} else {
		b = wire.AppendArrayHeader(b, len(m.Keys))
		for _, k := range m.Keys {
			b = wire.AppendBin(b, k)
		}
	}
	if m.Digest {
		b = wire.AppendBool(wire.AppendStr(b, keyDigest), true)
	}
	return b
}

// Encode returns the encoding in a new slice of its exact size.
func (m *ReplicaGetBatch) Encode() []byte { return m.AppendMsgpack(make([]byte, 0, m.MsgpackSize())) }

// DecodeMsgpack implements wire.MsgpackDecoder; Keys alias b.
func (m *ReplicaGetBatch) DecodeMsgpack(b []byte) error {
	r := wire.NewReader(b)
	n := r.MapHeader()
	if n < 0 {
		*m = ReplicaGetBatch{}
	}
	for range n {
		switch string(r.Bytes()) {
		case keyKey:
			k := r.ArrayHeader()
			if k < 0 {
				m.Keys = nil
				continue
			}
			m.Keys = wire.ResizeSlice(m.Keys, k)
			for i := range m.Keys {
				m.Keys[i] = r.Bytes()
			}
		case keyDigest:
			m.Digest = r.Bool()
		default:
			r.Skip(1)
		}
	}
	return r.Done()
}

// MsgpackSize implements wire.MsgpackAppender.
func (m *ReplicaGetReply) MsgpackSize() int {
	n := 1 + wire.SizeStr(keyFound) + wire.SizeBool
	if len(m.Object) > 0 {
		n += wire.SizeStr(keyObject) + wire.SizeBin(m.Object)
	}
	if m.Digested {
		n += wire.SizeStr(keyDigested) + wire.SizeBool
	}
	if m.Digest != 0 {
		n += wire.SizeStr(keyHash) + wire.SizeUint64
	}
	return n
}

// AppendMsgpack implements wire.MsgpackAppender.
func (m *ReplicaGetReply) AppendMsgpack(b []byte) []byte {
	fields := 1
	if len(m.Object) > 0 {
		fields++
	}
	if m.Digested {
		fields++
	}
	if m.Digest != 0 {
		fields++
	}
	b = wire.AppendMapHeader(b, fields)
	b = wire.AppendBool(wire.AppendStr(b, keyFound), m.Found)
	if len(m.Object) > 0 {
		b = wire.AppendBin(wire.AppendStr(b, keyObject), m.Object)
	}
	if m.Digested {
		b = wire.AppendBool(wire.AppendStr(b, keyDigested), true)
	}
	if m.Digest != 0 {
		b = wire.AppendUint64(wire.AppendStr(b, keyHash), m.Digest)
	}
	return b
}

// DecodeMsgpack implements wire.MsgpackDecoder; Object aliases b.
func (m *ReplicaGetReply) DecodeMsgpack(b []byte) error {
	r := wire.NewReader(b)
	m.decode(&r, 0)
	return r.Done()
}

// decode reads a ReplicaGetReply that open maps and arrays enclose.
func (m *ReplicaGetReply) decode(r *wire.Reader, open int) {
	n := r.MapHeader()
	if n < 0 {
		*m = ReplicaGetReply{}
		return
	}
	for range n {
		switch string(r.Bytes()) {
		case keyFound:
			m.Found = r.Bool()
		case keyObject:
			m.Object = r.Bytes()
		case keyDigested:
			m.Digested = r.Bool()
		case keyHash:
			m.Digest = r.Uint()
		default:
			r.Skip(open + 1)
		}
	}
}

// MsgpackSize implements wire.MsgpackAppender.
func (m *ReplicaGetBatchReply) MsgpackSize() int {
	n := 1 + wire.SizeStr(keyItems)
	if m.Items == nil {
		return n + wire.SizeNil
	}
	n += wire.SizeHeader(len(m.Items))
	for i := range m.Items {
		n += m.Items[i].MsgpackSize()
	}
	return n
}

// AppendMsgpack implements wire.MsgpackAppender.
func (m *ReplicaGetBatchReply) AppendMsgpack(b []byte) []byte {
	b = wire.AppendStr(wire.AppendMapHeader(b, 1), keyItems)
	if m.Items == nil {
		return wire.AppendNil(b)
	}
	b = wire.AppendArrayHeader(b, len(m.Items))
	for i := range m.Items {
		b = m.Items[i].AppendMsgpack(b)
	}
	return b
}

// DecodeMsgpack implements wire.MsgpackDecoder; the items' Object alias b.
func (m *ReplicaGetBatchReply) DecodeMsgpack(b []byte) error {
	r := wire.NewReader(b)
	n := r.MapHeader()
	if n < 0 {
		*m = ReplicaGetBatchReply{}
	}
	for range n {
		switch string(r.Bytes()) {
		case keyItems:
			k := r.ArrayHeader()
			if k < 0 {
				m.Items = nil
				continue
			}
			m.Items = wire.ResizeSlice(m.Items, k)
			for i := range m.Items {
				m.Items[i].decode(&r, 2)
			}
		default:
			r.Skip(1)
		}
	}
	return r.Done()
}
