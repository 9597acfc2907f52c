package ring

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/cespare/xxhash/v2"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

const (
	// MaxMembers bounds the entries of an encoded State (Removed ones
	// included), so a peer cannot make us allocate without limit.
	MaxMembers = 4096
	// MaxFieldLen bounds every string of a Member (ID, zone, addresses), in
	// bytes.
	MaxFieldLen = 1024
	// MaxEncodedSize bounds the input of DecodeState, in bytes: MaxMembers
	// entries whose six strings are all MaxFieldLen long, with room for the
	// keys and headers. Bounding the input bounds every allocation that
	// follows.
	MaxEncodedSize = MaxMembers*(6*(MaxFieldLen+8)+64) + 64

	// maxSkipDepth bounds the nesting of unknown values that DecodeState
	// skips (fields appended by a newer version). NB: msgpack's own Skip
	// recurses without a limit, so a deeply nested input would overflow
	// the stack, which Go cannot recover from.
	maxSkipDepth = 16
)

// ErrMalformedState is returned (wrapped) by DecodeState and by Encode for a
// state that does not satisfy the bounds above or is not valid msgpack.
var ErrMalformedState = errors.New("ring: malformed state")

// Wire keys. NB: wire format; only append. Keys a decoder does not know are
// skipped, so a newer version may add fields.
const (
	keyPartitions = "q"
	keyMembers    = "m"
	keyID         = "id"
	keyZone       = "zone"
	keyStatus     = "st"
	keyRPC        = "rpc"
	keyHTTP       = "http"
	keyGossip     = "gsp"
	keyRESP       = "resp"
	keyVersion    = "v"
	// keySecurity is written only when non-zero (disabled), so states of
	// clusters that never turned security on encode, and digest, as
	// before, and nodes that predate it skip it.
	keySecurity = "sec"
)

// Encode returns the canonical msgpack encoding of s: a map {q, m} with the
// members as an array sorted by ID, every member a map of all its fields.
// Equal states encode to equal bytes, so Digest can compare rings. It
// returns an error wrapping ErrMalformedState if s would not pass
// DecodeState (bad Partitions, too many members, over-long strings, zero
// Status, or an entry whose ID differs from its key).
func (s State) Encode() ([]byte, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	buf := bytes.NewBuffer(make([]byte, 0, s.sizeHint()))
	if err := s.encode(buf); err != nil {
		return nil, fmt.Errorf("ring: encode state: %w", err)
	}
	return buf.Bytes(), nil
}

// sizeHint estimates the encoded size of s in bytes, so Encode allocates
// once.
func (s State) sizeHint() int {
	n := 16
	for _, m := range s.Members {
		// 8 keys, 8 headers and a version: about 48 bytes besides strings.
		n += 48 + len(m.ID) + len(m.Zone) + len(m.RPCAddr) + len(m.HTTPAddr) + len(m.GossipAddr) + len(m.RESPAddr)
	}
	return n
}

// EncodeMsgpack implements msgpack.CustomEncoder with the encoding of
// Encode, so a State can be a field of a larger message.
func (s State) EncodeMsgpack(enc *msgpack.Encoder) error {
	if err := s.validate(); err != nil {
		return err
	}
	return s.encodeTo(enc)
}

// DecodeMsgpack implements msgpack.CustomDecoder with the checks of
// DecodeState, except the bound on the total input size, which the caller's
// frame limit provides.
func (s *State) DecodeMsgpack(dec *msgpack.Decoder) error {
	st, err := decodeState(dec)
	if err != nil {
		return err
	}
	*s = st
	return nil
}

// DecodeState decodes an encoding made by Encode. It rejects, with an error
// wrapping ErrMalformedState and never a panic, input longer than
// MaxEncodedSize, more than MaxMembers members, strings longer than
// MaxFieldLen, a Partitions that is neither 0 nor valid (ValidPartitions),
// an empty ID, a zero Status, duplicate IDs and trailing bytes. It keeps
// Status values this version does not know (a newer node may have appended
// one) and skips unknown keys.
func DecodeState(b []byte) (State, error) {
	if len(b) > MaxEncodedSize {
		return State{}, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformedState, len(b), MaxEncodedSize)
	}
	r := bytes.NewReader(b)
	s, err := decodeState(msgpack.NewDecoder(r))
	if err != nil {
		return State{}, err
	}
	if r.Len() != 0 {
		return State{}, fmt.Errorf("%w: %d trailing bytes", ErrMalformedState, r.Len())
	}
	return s, nil
}

// Digest returns the xxhash64 of the canonical encoding of s, for cheap "same
// ring?" checks between nodes and for deciding when to rebuild a Ring. Equal
// states have equal digests. It does not validate s.
func (s State) Digest() uint64 {
	// NB: encoding straight into an xxhash.Digest would allocate per
	// string (msgpack wraps writers without WriteByte); a buffer is cheaper.
	// bytes.Buffer never fails, so neither can encode.
	buf := bytes.NewBuffer(make([]byte, 0, s.sizeHint()))
	_ = s.encode(buf)
	return xxhash.Sum64(buf.Bytes())
}

// validate checks s against the bounds DecodeState enforces.
func (s State) validate() error {
	if err := validStatePartitions(int64(s.Partitions)); err != nil {
		return err
	}
	if len(s.Members) > MaxMembers {
		return fmt.Errorf("%w: %d members, limit %d", ErrMalformedState, len(s.Members), MaxMembers)
	}
	for id, m := range s.Members {
		if m.ID != id {
			return fmt.Errorf("%w: member %q stored under key %q", ErrMalformedState, m.ID, id)
		}
		if err := m.validate(); err != nil {
			return err
		}
	}
	return nil
}

// validStatePartitions accepts 0 (Q not known yet) or a valid Q. It takes
// an int64 so a decoded value is checked before it is narrowed to int.
func validStatePartitions(q int64) error {
	if q == 0 || (q > 0 && q <= MaxPartitions && ValidPartitions(int(q)) == nil) {
		return nil
	}
	return fmt.Errorf("%w: partitions %d: want 0 or a power of two in [1, %d]", ErrMalformedState, q, MaxPartitions)
}

// validate checks one member against the bounds DecodeState enforces.
func (m Member) validate() error {
	if m.ID == "" {
		return fmt.Errorf("%w: empty member id", ErrMalformedState)
	}
	if m.Status == 0 {
		return fmt.Errorf("%w: member %q: zero status", ErrMalformedState, m.ID)
	}
	for _, f := range [...]string{string(m.ID), m.Zone, m.RPCAddr, m.HTTPAddr, m.GossipAddr, m.RESPAddr} {
		if len(f) > MaxFieldLen {
			return fmt.Errorf("%w: member %.32q...: field of %d bytes, limit %d", ErrMalformedState, m.ID, len(f), MaxFieldLen)
		}
	}
	return nil
}

// encode writes the canonical encoding of s to w, without validating.
func (s State) encode(w io.Writer) error {
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(w)
	return s.encodeTo(enc)
}

func (s State) encodeTo(enc *msgpack.Encoder) error {
	ids := make([]NodeID, 0, len(s.Members))
	for id := range s.Members {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, cmp.Compare[NodeID])

	if err := enc.EncodeMapLen(2); err != nil {
		return err
	}
	if err := enc.EncodeString(keyPartitions); err != nil {
		return err
	}
	if err := enc.EncodeInt(int64(s.Partitions)); err != nil {
		return err
	}
	if err := enc.EncodeString(keyMembers); err != nil {
		return err
	}
	if err := enc.EncodeArrayLen(len(ids)); err != nil {
		return err
	}
	for _, id := range ids {
		if err := s.Members[id].encodeTo(enc); err != nil {
			return err
		}
	}
	return nil
}

func (m Member) encodeTo(enc *msgpack.Encoder) error {
	fields := 8
	if m.Security != 0 {
		fields++
	}
	if err := enc.EncodeMapLen(fields); err != nil {
		return err
	}
	for _, kv := range [...]struct{ k, v string }{
		{keyID, string(m.ID)},
		{keyZone, m.Zone},
		{keyRPC, m.RPCAddr},
		{keyHTTP, m.HTTPAddr},
		{keyGossip, m.GossipAddr},
		{keyRESP, m.RESPAddr},
	} {
		if err := enc.EncodeString(kv.k); err != nil {
			return err
		}
		if err := enc.EncodeString(kv.v); err != nil {
			return err
		}
	}
	if err := enc.EncodeString(keyStatus); err != nil {
		return err
	}
	if err := enc.EncodeUint(uint64(m.Status)); err != nil {
		return err
	}
	if m.Security != 0 {
		if err := enc.EncodeString(keySecurity); err != nil {
			return err
		}
		if err := enc.EncodeUint(uint64(m.Security)); err != nil {
			return err
		}
	}
	if err := enc.EncodeString(keyVersion); err != nil {
		return err
	}
	return enc.EncodeUint(m.Version)
}

// stateDecoder reads a State, reusing one buffer for map keys.
type stateDecoder struct {
	dec *msgpack.Decoder
	key [8]byte // NB: longer than every key we know ("zone", "http", ...)
}

// decodeKey reads a map key. Known keys are short fixstrs: they are read
// into d.key without allocating, and the result is valid until the next
// call. Other keys (from a newer version) are read whole.
func (d *stateDecoder) decodeKey() ([]byte, error) {
	c, err := d.dec.PeekCode()
	if err != nil {
		return nil, err
	}
	if n := int(c & msgpcode.FixedStrMask); msgpcode.IsFixedString(c) && 1+n <= len(d.key) {
		if err := d.dec.ReadFull(d.key[:1+n]); err != nil {
			return nil, err
		}
		return d.key[1 : 1+n], nil
	}
	k, err := d.dec.DecodeString()
	return []byte(k), err
}

// decodeState reads one State from dec, enforcing every bound but the input
// size.
func decodeState(dec *msgpack.Decoder) (State, error) {
	d := &stateDecoder{dec: dec}
	n, err := dec.DecodeMapLen()
	if err != nil {
		return State{}, fmt.Errorf("%w: %w", ErrMalformedState, err)
	}
	if n < 0 {
		return State{}, fmt.Errorf("%w: nil state", ErrMalformedState)
	}
	s := State{Members: make(map[NodeID]Member)}
	// NB: n comes from the input; nothing is allocated from it, and each
	// entry consumes input, so a lying n ends at EOF.
	for range n {
		k, err := d.decodeKey()
		if err != nil {
			return State{}, fmt.Errorf("%w: key: %w", ErrMalformedState, err)
		}
		switch string(k) {
		case keyPartitions:
			q, err := dec.DecodeInt64()
			if err != nil {
				return State{}, fmt.Errorf("%w: partitions: %w", ErrMalformedState, err)
			}
			if err := validStatePartitions(q); err != nil {
				return State{}, err
			}
			s.Partitions = int(q)
		case keyMembers:
			if err := d.decodeMembers(s.Members); err != nil {
				return State{}, err
			}
		default:
			if err := skipValue(dec, 0); err != nil {
				return State{}, fmt.Errorf("%w: field %.32q: %w", ErrMalformedState, k, err)
			}
		}
	}
	return s, nil
}

// decodeMembers reads the member array into ms.
func (d *stateDecoder) decodeMembers(ms map[NodeID]Member) error {
	n, err := d.dec.DecodeArrayLen()
	if err != nil {
		return fmt.Errorf("%w: members: %w", ErrMalformedState, err)
	}
	if n > MaxMembers || len(ms)+max(n, 0) > MaxMembers {
		return fmt.Errorf("%w: %d members, limit %d", ErrMalformedState, n, MaxMembers)
	}
	for range n {
		m, err := d.decodeMember()
		if err != nil {
			return err
		}
		if _, dup := ms[m.ID]; dup {
			return fmt.Errorf("%w: duplicate member %.32q", ErrMalformedState, m.ID)
		}
		ms[m.ID] = m
	}
	return nil
}

// decodeMember reads one member map and validates it.
func (d *stateDecoder) decodeMember() (Member, error) {
	dec := d.dec
	n, err := dec.DecodeMapLen()
	if err != nil {
		return Member{}, fmt.Errorf("%w: member: %w", ErrMalformedState, err)
	}
	if n < 0 {
		return Member{}, fmt.Errorf("%w: nil member", ErrMalformedState)
	}
	var m Member
	for range n {
		k, err := d.decodeKey()
		if err != nil {
			return Member{}, fmt.Errorf("%w: member key: %w", ErrMalformedState, err)
		}
		var s string
		var u uint64
		switch string(k) {
		case keyID, keyZone, keyRPC, keyHTTP, keyGossip, keyRESP:
			s, err = dec.DecodeString()
			if err == nil && len(s) > MaxFieldLen {
				err = fmt.Errorf("%d bytes, limit %d", len(s), MaxFieldLen)
			}
		case keyStatus, keyVersion, keySecurity:
			u, err = dec.DecodeUint64()
		default:
			err = skipValue(dec, 0)
		}
		if err != nil {
			return Member{}, fmt.Errorf("%w: member field %.32q: %w", ErrMalformedState, k, err)
		}
		switch string(k) {
		case keyID:
			m.ID = NodeID(s)
		case keyZone:
			m.Zone = s
		case keyRPC:
			m.RPCAddr = s
		case keyHTTP:
			m.HTTPAddr = s
		case keyGossip:
			m.GossipAddr = s
		case keyRESP:
			m.RESPAddr = s
		case keyStatus:
			if u > 0xff {
				return Member{}, fmt.Errorf("%w: status %d out of range", ErrMalformedState, u)
			}
			m.Status = Status(u)
		case keyVersion:
			m.Version = u
		case keySecurity:
			if u > 0xff {
				return Member{}, fmt.Errorf("%w: security %d out of range", ErrMalformedState, u)
			}
			m.Security = uint8(u)
		}
	}
	if err := m.validate(); err != nil {
		return Member{}, err
	}
	return m, nil
}

// skipValue skips one msgpack value, descending into arrays and maps at
// most maxSkipDepth levels (msgpack's Skip has no limit).
func skipValue(dec *msgpack.Decoder, depth int) error {
	c, err := dec.PeekCode()
	if err != nil {
		return err
	}
	var n int
	switch {
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err = dec.DecodeArrayLen()
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, err = dec.DecodeMapLen()
		n *= 2
	default:
		// Scalars, strings, binaries and extensions: Skip does not
		// recurse for these.
		return dec.Skip()
	}
	if err != nil {
		return err
	}
	if depth >= maxSkipDepth {
		return fmt.Errorf("nested deeper than %d", maxSkipDepth)
	}
	for range n {
		if err := skipValue(dec, depth+1); err != nil {
			return err
		}
	}
	return nil
}
