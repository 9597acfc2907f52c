package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// This file holds the three small encodings gossip puts on memberlist's
// wire: the node-meta envelope, the state broadcast message and the
// push/pull state. Every decoder bounds sizes and returns an error on a bad
// buffer, never panics (see the fuzz targets in wire_test.go).

// Node-meta envelope, sent in every memberlist alive message:
//
//	byte 0     version (metaVersion1)
//	byte 1     flags (metaFlagLeaving)
//	bytes 2-9  boot id, big-endian uint64
//	bytes 10-  user meta
const (
	// NB: wire value; only append.
	metaVersion1 = 1

	// metaFlagLeaving is set by Leave just before memberlist's leave, so
	// that peers can report the member as Left rather than Dead.
	metaFlagLeaving = 1 << 0

	metaHeaderLen = 10
)

// MaxMetaSize is the largest user meta, in bytes, that Config.Meta and
// UpdateMeta accept: memberlist's 512-byte node-meta limit less gossip's
// envelope (version, flags and boot id).
const MaxMetaSize = memberlist.MetaMaxSize - metaHeaderLen

// envelope is what gossip puts in memberlist's node meta.
type envelope struct {
	bootID  uint64
	leaving bool
	meta    []byte
}

// encode returns the wire form of e.
func (e envelope) encode() []byte {
	b := make([]byte, metaHeaderLen, metaHeaderLen+len(e.meta))
	b[0] = metaVersion1
	if e.leaving {
		b[1] |= metaFlagLeaving
	}
	binary.BigEndian.PutUint64(b[2:metaHeaderLen], e.bootID)
	return append(b, e.meta...)
}

// decodeEnvelope parses a node-meta envelope. The returned meta is a copy.
func decodeEnvelope(b []byte) (envelope, error) {
	if len(b) < metaHeaderLen {
		return envelope{}, fmt.Errorf("gossip: node meta is %d bytes, shorter than the %d-byte envelope", len(b), metaHeaderLen)
	}
	if b[0] != metaVersion1 {
		return envelope{}, fmt.Errorf("gossip: node meta has unknown envelope version %d", b[0])
	}
	e := envelope{
		leaving: b[1]&metaFlagLeaving != 0, // unknown flags are ignored: newer peers may set them
		bootID:  binary.BigEndian.Uint64(b[2:metaHeaderLen]),
	}
	if len(b) > metaHeaderLen {
		e.meta = append([]byte(nil), b[metaHeaderLen:]...)
	}
	return e, nil
}

// State broadcast message, a memberlist user message (over UDP gossip or, if
// too large for a packet, over memberlist's reliable TCP send):
//
//	byte 0      kind (msgKindState)
//	uvarint     length of the sender's node id
//	bytes       sender's node id
//	rest        the sender's LocalState
const (
	// NB: wire value; only append.
	msgKindState = 1

	// maxNodeIDLen bounds Config.NodeID, and the sender id a decoder accepts.
	maxNodeIDLen = 255
)

// errShortMessage is returned for a user message cut short.
var errShortMessage = errors.New("gossip: state message truncated")

// encodeStateMsg returns the user message carrying state from sender.
func encodeStateMsg(sender string, state []byte) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(sender)+len(state))
	b = append(b, msgKindState)
	b = binary.AppendUvarint(b, uint64(len(sender)))
	b = append(b, sender...)
	return append(b, state...)
}

// decodeStateMsg parses a user message. The returned state aliases b.
func decodeStateMsg(b []byte) (sender string, state []byte, err error) {
	if len(b) == 0 {
		return "", nil, errShortMessage
	}
	if b[0] != msgKindState {
		return "", nil, fmt.Errorf("gossip: unknown user message kind %d", b[0])
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 {
		return "", nil, errShortMessage
	}
	if n > maxNodeIDLen {
		return "", nil, fmt.Errorf("gossip: state message sender id of %d bytes exceeds %d", n, maxNodeIDLen)
	}
	rest := b[1+k:]
	if uint64(len(rest)) < n {
		return "", nil, errShortMessage
	}
	return string(rest[:n]), rest[n:], nil
}

// Push/pull state, memberlist's "user state" of a push/pull exchange:
//
//	byte 0   version (pushPullVersion1)
//	rest     the sender's LocalState
const (
	// NB: wire value; only append.
	pushPullVersion1 = 1
)

// encodePushPull returns the push/pull user state for state.
func encodePushPull(state []byte) []byte {
	b := make([]byte, 0, 1+len(state))
	b = append(b, pushPullVersion1)
	return append(b, state...)
}

// decodePushPull parses push/pull user state. The returned state aliases b.
func decodePushPull(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, errors.New("gossip: empty push/pull state")
	}
	if b[0] != pushPullVersion1 {
		return nil, fmt.Errorf("gossip: unknown push/pull state version %d", b[0])
	}
	return b[1:], nil
}
