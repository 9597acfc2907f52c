package security

import (
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"path/filepath"
	"testing"
	"time"
)

// FuzzIdentityURI: any URI SAN either reads as a well-formed identity that
// round-trips, or is refused with an error; never a panic.
func FuzzIdentityURI(f *testing.F) {
	for _, s := range []string{"mnemo://node/n1", "mnemo://client/ops", "mnemo://node/", "mnemo://node/a/b", "mnemo://x/y", "mnemo://node/n1?q", "https://node/n1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := url.Parse(s)
		if err != nil {
			return
		}
		id, err := IdentityOf(&x509.Certificate{URIs: []*url.URL{u}})
		if err != nil {
			return
		}
		back, err := IdentityOf(&x509.Certificate{URIs: []*url.URL{id.URI()}})
		if err != nil || back != id {
			t.Fatalf("%q read as %v, whose URI %q reads as %v, %v", s, id, id.URI(), back, err)
		}
	})
}

// FuzzSniff: whatever a client sends first, a Transitional or Required
// conn's first Read returns (data, a refusal or a handshake error) within
// the handshake timeout; never a panic or a hang.
func FuzzSniff(f *testing.F) {
	dir := f.TempDir()
	ca, err := NewCA("ca", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	c, err := ca.Issue(CertRequest{Identity: Identity{NodeIdentity, "n1"}})
	if err != nil {
		f.Fatal(err)
	}
	if err := c.Write(dir, "n1"); err != nil {
		f.Fatal(err)
	}
	if err := ca.WriteCA(dir); err != nil {
		f.Fatal(err)
	}
	r, err := NewReloader(Files{Cert: filepath.Join(dir, "n1.crt"), Key: filepath.Join(dir, "n1.key"), CA: filepath.Join(dir, "ca.crt")}, ReloaderConfig{})
	if err != nil {
		f.Fatal(err)
	}
	defer r.Close()
	srv := r.ServerConfig(ServerOptions{ClientAuth: RequireClientCert})
	for _, s := range [][]byte{{0x16, 3, 1, 0, 5, 1, 0, 0, 1, 0}, []byte("*1\r\n$4\r\nPING\r\n"), {0, 0, 0, 12}, {0x16}} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, required bool) {
		mode := Transitional
		if required {
			mode = Required
		}
		client, server := net.Pipe()
		defer client.Close()
		l := &listener{cfg: ListenerConfig{Mode: mode, TLS: srv, HandshakeTimeout: 100 * time.Millisecond}}
		conn := &Conn{raw: server, l: l}
		defer conn.Close()
		go func() {
			_, _ = client.Write(data)
			// Drain whatever the server answers (an alert, a hello).
			buf := make([]byte, 4096)
			for {
				if _, err := client.Read(buf); err != nil {
					return
				}
			}
		}()
		done := make(chan error, 1)
		go func() {
			_, err := conn.Read(make([]byte, 64))
			done <- err
		}()
		select {
		case err := <-done:
			if mode == Required && err == nil {
				t.Fatalf("a required conn read %q without a handshake", data)
			}
			if len(data) > 0 && data[0] != tlsRecordHandshake && mode == Required && !errors.Is(err, ErrPlaintextRefused) {
				t.Fatalf("plaintext %q to a required conn: %v", data, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("first Read of %q hung", data)
		}
	})
}
