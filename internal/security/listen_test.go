package security

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// echoServer serves ln: each conn gets back its first line, prefixed
// with "tls " or "plain " as the server saw it. It returns a stop func.
func echoServer(t *testing.T, ln net.Listener) func() {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				kind := "plain "
				if _, ok := ConnectionState(c); ok {
					kind = "tls "
				}
				_, _ = io.WriteString(c, kind+line)
			}()
		}
	}()
	return func() { ln.Close(); wg.Wait() }
}

// talk dials addr (with TLS when cfg is set), sends a line and returns
// the answer.
func talk(addr string, cfg *tls.Config) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if cfg != nil {
		c = tls.Client(c, cfg)
	}
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

// TestListenerModes drives each mode with plaintext and TLS clients over
// real TCP, and checks the counters.
func TestListenerModes(t *testing.T) {
	dir := t.TempDir()
	ca := testCA(t, "ca")
	r, err := NewReloader(writeFiles(t, dir, "n", issue(t, ca, node("n1")), ca), ReloaderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	srvCfg := r.ServerConfig(ServerOptions{ClientAuth: RequireClientCert})
	cliCfg := r.ClientConfig(Identity{NodeIdentity, "n1"})

	for _, tc := range []struct {
		mode       Mode
		plain, tls bool // accepted
	}{
		{Disabled, true, false},
		{Transitional, true, true},
		{Required, false, true},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			raw, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			plain := prometheus.NewCounter(prometheus.CounterOpts{Name: "p"})
			refused := prometheus.NewCounter(prometheus.CounterOpts{Name: "r"})
			cfg := srvCfg
			if tc.mode == Disabled {
				cfg = nil
			}
			ln := Wrap(raw, ListenerConfig{Mode: tc.mode, TLS: cfg, Plaintext: plain, Refused: refused})
			defer echoServer(t, ln)()
			addr := raw.Addr().String()

			got, err := talk(addr, nil)
			if tc.plain != (err == nil && got == "plain hello\n") {
				t.Errorf("plaintext: %q, %v; want accepted=%v", got, err, tc.plain)
			}
			got, err = talk(addr, cliCfg)
			if tc.tls != (err == nil && got == "tls hello\n") {
				t.Errorf("TLS: %q, %v; want accepted=%v", got, err, tc.tls)
			}
			wantPlain, wantRefused := 0.0, 0.0
			if tc.plain {
				wantPlain = 1
			} else {
				wantRefused++
			}
			switch {
			case tc.mode == Disabled:
				wantPlain++ // the TLS client's hello, served as plaintext
			case !tc.tls:
				wantRefused++
			}
			// The server counts after the client has its answer (or EOF).
			eventually(t, 5*time.Second, "the counters", func() (bool, string) {
				p, r := counter(t, plain), counter(t, refused)
				return p == wantPlain && r == wantRefused, fmt.Sprintf("plaintext %v (want %v), refused %v (want %v)", p, wantPlain, r, wantRefused)
			})
		})
	}
}

// TestRequiredReadsLittle: a plaintext client of a Required port is
// disconnected after its first byte, not served, and a silent one once the
// handshake timeout passes; neither holds up Accept.
func TestRequiredReadsLittle(t *testing.T) {
	dir := t.TempDir()
	ca := testCA(t, "ca")
	r, err := NewReloader(writeFiles(t, dir, "n", issue(t, ca, node("n1")), ca), ReloaderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Wrap(raw, ListenerConfig{Mode: Required, TLS: r.ServerConfig(ServerOptions{}), HandshakeTimeout: 200 * time.Millisecond})
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, err := c.Read(make([]byte, 64))
				errs <- err
			}()
		}
	}()
	defer func() { ln.Close(); wg.Wait() }()

	silent, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A whole plaintext request: the server must not read past byte one.
	if _, err := io.WriteString(c, strings.Repeat("x", 1000)); err != nil {
		t.Fatal(err)
	}
	var sawRefused, sawTimeout bool
	for range 2 {
		select {
		case err := <-errs:
			var ne net.Error
			switch {
			case errors.Is(err, ErrPlaintextRefused):
				sawRefused = true
			case errors.As(err, &ne) && ne.Timeout():
				sawTimeout = true
			default:
				t.Errorf("server Read: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a connection was neither refused nor timed out")
		}
	}
	if !sawRefused || !sawTimeout {
		t.Errorf("refused %v, timed out %v", sawRefused, sawTimeout)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("the refused client read %d bytes", n)
	}
}
