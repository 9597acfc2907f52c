package security

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mnemo-kv/mnemo/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testCA makes a CA or fails the test.
func testCA(t testing.TB, name string) *CA {
	t.Helper()
	ca, err := NewCA(name, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// issue signs a certificate or fails the test.
func issue(t testing.TB, ca *CA, req CertRequest) Cert {
	t.Helper()
	c, err := ca.Issue(req)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// writeFiles writes c and the CA bundle into dir and returns their Files.
func writeFiles(t testing.TB, dir, name string, c Cert, bundle ...*CA) Files {
	t.Helper()
	if err := c.Write(dir, name); err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, ca := range bundle {
		b = append(b, ca.CertPEM()...)
	}
	f := Files{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key"), CA: filepath.Join(dir, name+"-ca.crt")}
	if err := os.WriteFile(f.CA, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func node(id string) CertRequest   { return CertRequest{Identity: Identity{NodeIdentity, id}} }
func client(id string) CertRequest { return CertRequest{Identity: Identity{ClientIdentity, id}} }

var eventually = testutil.Eventually

// syncBuffer is a bytes.Buffer safe for a logger's writes and a test's
// reads at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
