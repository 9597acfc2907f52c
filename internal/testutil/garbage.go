package testutil

import (
	"crypto/rand"
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// SendGarbage throws bad input at an RPC port: random bytes, a frame header
// announcing 1 GiB, a truncated frame, and a client that sends half a header
// and stalls (left open until the test ends). The caller then checks the
// node still serves and its data is intact.
func SendGarbage(t testing.TB, addr string) {
	t.Helper()
	send := func(b []byte) {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("garbage: dial %s: %v", addr, err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		c.Write(b)
		// Read whatever the server answers until it closes or the deadline.
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}
	random := make([]byte, 64<<10)
	rand.Read(random)
	send(random)

	huge := make([]byte, 16)
	binary.BigEndian.PutUint32(huge, 1<<30)
	send(huge)

	truncated := make([]byte, 16+10)
	binary.BigEndian.PutUint32(truncated, 12+100) // announces 100 payload bytes, sends 10
	binary.BigEndian.PutUint64(truncated[4:], 1)
	binary.BigEndian.PutUint16(truncated[12:], 2)
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Write(truncated)
		c.Close()
	}

	unknownKind := make([]byte, 16+4)
	binary.BigEndian.PutUint32(unknownKind, 12+4)
	binary.BigEndian.PutUint64(unknownKind[4:], 7)
	binary.BigEndian.PutUint16(unknownKind[12:], 9999)
	send(unknownKind)

	badBody := make([]byte, 16+8)
	binary.BigEndian.PutUint32(badBody, 12+8)
	binary.BigEndian.PutUint64(badBody[4:], 8)
	binary.BigEndian.PutUint16(badBody[12:], 3) // a put with a body that is not msgpack
	copy(badBody[16:], []byte{0xc1, 0xc1, 0xff, 0, 1, 2, 3, 4})
	send(badBody)

	stalled, err := net.Dial("tcp", addr)
	if err == nil {
		stalled.Write(huge[:6])
		t.Cleanup(func() { stalled.Close() })
	}
}
