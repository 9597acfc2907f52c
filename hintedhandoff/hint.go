package hintedhandoff

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/version"
)

// Errors returned by Add. Callers check them with errors.Is.
var (
	// ErrClosed: the Handoff was closed.
	ErrClosed = errors.New("hintedhandoff: closed")
	// ErrBadTarget: the target node id is empty, too long or holds a 0x00
	// byte (the key layout's separator).
	ErrBadTarget = errors.New("hintedhandoff: bad target node id")
	// errCorrupt is wrapped for a stored hint that does not decode.
	errCorrupt = errors.New("hintedhandoff: corrupt hint")
)

const (
	// hintFormat is the first byte of every stored hint value, so the
	// format can change without a migration of old hints.
	hintFormat byte = 1
	// hintHeader is the bytes before the encoded object: format, created.
	hintHeader = 1 + 8
)

// checkTarget validates a target node id for the key layout.
func checkTarget(id ring.NodeID) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrBadTarget)
	case len(id) > maxTargetLen:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrBadTarget, len(id), maxTargetLen)
	case bytes.IndexByte([]byte(id), 0) >= 0:
		return fmt.Errorf("%w: %q holds a 0x00 byte", ErrBadTarget, id)
	}
	return nil
}

// hintPrefix is the start of every hint key for target.
func hintPrefix(target ring.NodeID) []byte {
	p := make([]byte, 0, len(target)+1)
	return append(append(p, target...), 0)
}

// hintKey is the aux key of target's hint for key.
func hintKey(target ring.NodeID, key []byte) []byte {
	k := make([]byte, 0, len(target)+1+len(key))
	return append(append(append(k, target...), 0), key...)
}

// splitHintKey splits an aux key into its target and user key (aliasing k).
func splitHintKey(k []byte) (target ring.NodeID, key []byte, ok bool) {
	i := bytes.IndexByte(k, 0)
	if i <= 0 || i == len(k)-1 {
		return "", nil, false
	}
	return ring.NodeID(k[:i]), k[i+1:], true
}

// encodeHint returns a stored hint value.
func encodeHint(created int64, obj *version.Object) []byte {
	b := make([]byte, hintHeader, hintHeader+version.EncodedSize(obj))
	b[0] = hintFormat
	binary.BigEndian.PutUint64(b[1:], uint64(created))
	return version.AppendEncode(b, obj)
}

// decodeHint decodes a stored hint value. The object aliases b.
func decodeHint(b []byte) (created int64, obj *version.Object, err error) {
	if len(b) < hintHeader || b[0] != hintFormat {
		return 0, nil, fmt.Errorf("%w: bad header", errCorrupt)
	}
	obj, err = version.Decode(b[hintHeader:])
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	return int64(binary.BigEndian.Uint64(b[1:])), obj, nil
}
