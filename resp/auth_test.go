package resp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mnemo-kv/mnemo/internal/acl"
)

// testUsers: default (all), reader (read on pub:*), writer (write, no read).
func testUsers(t testing.TB) *acl.Users {
	t.Helper()
	h := func(pw string) string {
		s, err := acl.HashPassword([]byte(pw))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	us, err := acl.Parse("users.toml", []byte(`
[users.default]
password-hash = "`+h("defpw")+`"
allow = ["all"]
[users.reader]
password-hash = "`+h("readpw")+`"
allow = ["read"]
keys = ["pub:*"]
[users.writer]
password-hash = "`+h("writepw")+`"
allow = ["write"]
[users.off]
password-hash = "`+h("offpw")+`"
allow = ["all"]
enabled = false
`))
	if err != nil {
		t.Fatal(err)
	}
	return us
}

// fastAuthDelay makes failed AUTHs wait 1ms (doubling) for the test.
func fastAuthDelay(t *testing.T) {
	old := authDelayBase
	authDelayBase = time.Millisecond
	t.Cleanup(func() { authDelayBase = old })
}

func TestAuthRequired(t *testing.T) {
	fastAuthDelay(t)
	f := newFake()
	s, addr := startServer(t, Config{Users: testUsers(t)}, f)
	c := dial(t, addr)
	runSteps(t, c, []step{
		{[]string{"PING"}, errReply(errNoAuth)},
		{[]string{"GET", "k"}, errReply(errNoAuth)},
		{[]string{"SET", "k", "v"}, errReply(errNoAuth)},
		{[]string{"INFO"}, errReply(errNoAuth)},
		{[]string{"ACL", "WHOAMI"}, errReply(errNoAuth)},
		{[]string{"CLIENT", "ID"}, errReply(errNoAuth)},
		{[]string{"FOOBAR", "x"}, errReply("ERR unknown command 'FOOBAR', with args beginning with: 'x' ")},
		{[]string{"HELLO", "3"}, errReply(errNoAuthHello)},
		{[]string{"HELLO"}, errReply(errNoAuthHello)},
		{[]string{"AUTH", "wrong"}, errReply(errWrongPass)},
		{[]string{"AUTH", "reader", "defpw"}, errReply(errWrongPass)},
		{[]string{"AUTH", "nobody", "defpw"}, errReply(errWrongPass)},
		{[]string{"AUTH", "off", "offpw"}, errReply(errWrongPass)},
		{[]string{"AUTH", "a", "b", "c"}, errReply("ERR syntax error")},
		{[]string{"HELLO", "3", "AUTH", "reader", "bad"}, errReply(errWrongPass)},
		{[]string{"GET", "k"}, errReply(errNoAuth)},
		{[]string{"AUTH", "defpw"}, status("OK")},
		{[]string{"ACL", "WHOAMI"}, "default"},
		{[]string{"SET", "k", "v"}, status("OK")},
		{[]string{"GET", "k"}, "v"},
		{[]string{"AUTH", "reader", "nope"}, errReply(errWrongPass)},
		{[]string{"ACL", "WHOAMI"}, "default"}, // a failed AUTH keeps the user
		{[]string{"AUTH", "reader", "readpw"}, status("OK")},
		{[]string{"ACL", "WHOAMI"}, "reader"},
		{[]string{"ACL", "WHOAMI", "x"}, errReply("ERR wrong number of arguments for 'acl|whoami' command")},
		{[]string{"ACL", "FOO"}, errReply("ERR unknown subcommand 'FOO'. Try ACL HELP.")},
	})
	if got := s.Stats().AuthFailures; got != 6 {
		t.Errorf("AuthFailures = %d, want 6", got)
	}
	if got := s.Stats().DeniedCommands; got != 7 {
		t.Errorf("DeniedCommands = %d, want 7 (the NOAUTHs; HELLO's is its own reply)", got)
	}
	if got := f.calls; got != 2 {
		t.Errorf("backend saw %d calls, want 2: nothing before AUTH may reach it", got)
	}
	// QUIT needs no authentication.
	c2 := dial(t, addr)
	runSteps(t, c2, []step{{[]string{"QUIT"}, status("OK")}})
	c2.readEOF()
}

func TestACLRules(t *testing.T) {
	fastAuthDelay(t)
	f := newFake()
	s, addr := startServer(t, Config{Users: testUsers(t)}, f)
	f.data["pub:1"], f.data["priv:1"] = []byte("p"), []byte("secret")

	rd := dial(t, addr)
	runSteps(t, rd, []step{
		{[]string{"HELLO", "2", "AUTH", "reader", "readpw", "SETNAME", "r"}, []any{
			"server", "redis", "version", redisVersion, "proto", int64(2), "id", int64(1), "mode", "standalone", "role", "master", "modules", []any{}}},
		{[]string{"GET", "pub:1"}, "p"},
		{[]string{"EXISTS", "pub:1", "pub:2"}, int64(1)},
		{[]string{"GET", "priv:1"}, errReply(errNoPermKey)},
		{[]string{"MGET", "pub:1", "priv:1"}, errReply(errNoPermKey)},
		{[]string{"SET", "pub:1", "x"}, errReply("NOPERM this user has no permissions to run the 'set' command")},
		{[]string{"DEL", "pub:1"}, errReply("NOPERM this user has no permissions to run the 'del' command")},
		{[]string{"INFO"}, errReply("NOPERM this user has no permissions to run the 'info' command")},
		{[]string{"CONFIG", "GET", "save"}, errReply("NOPERM this user has no permissions to run the 'config|get' command")},
		{[]string{"PING"}, status("PONG")},
		{[]string{"CLIENT", "GETNAME"}, "r"},
		{[]string{"MNEMO.QUORUM", "R", "1"}, status("OK")},
	})
	wr := dial(t, addr)
	runSteps(t, wr, []step{
		{[]string{"AUTH", "writer", "writepw"}, status("OK")},
		{[]string{"SET", "a", "1"}, status("OK")},
		{[]string{"MSET", "b", "2", "c", "3"}, status("OK")},
		{[]string{"SET", "a", "2", "GET"}, errReply("NOPERM this user has no permissions to run the 'set' command")},
		{[]string{"GET", "a"}, errReply("NOPERM this user has no permissions to run the 'get' command")},
	})
	if got := string(f.data["pub:1"]); got != "p" {
		t.Errorf("pub:1 = %q: a read-only user wrote it", got)
	}
	if got := string(f.data["a"]); got != "1" {
		t.Errorf("a = %q: SET ... GET ran without read", got)
	}
	st := s.Stats()
	if st.DeniedKeys != 2 || st.DeniedCommands != 6 {
		t.Errorf("denied keys %d, commands %d; want 2 and 6", st.DeniedKeys, st.DeniedCommands)
	}
}

// TestAuthFailuresSlowedAndCounted: each failed AUTH on a connection waits
// twice as long as the one before, and the metric counts them.
func TestAuthFailuresSlowedAndCounted(t *testing.T) {
	old := authDelayBase
	authDelayBase = 40 * time.Millisecond
	t.Cleanup(func() { authDelayBase = old })
	reg := prometheus.NewRegistry()
	_, addr := startServer(t, Config{Users: testUsers(t), Registerer: reg}, newFake())
	c := dial(t, addr)
	var took []time.Duration
	for range 3 {
		start := time.Now()
		if got := c.do("AUTH", "default", "wrong"); got != errReply(errWrongPass) {
			t.Fatalf("AUTH wrong: %#v", got)
		}
		took = append(took, time.Since(start))
	}
	// 40, 80, 160 ms of delay, on top of the password check.
	if took[2] < 160*time.Millisecond || took[1] < 80*time.Millisecond || took[0] < 40*time.Millisecond {
		t.Errorf("failed AUTHs took %v; want at least 40ms, 80ms, 160ms", took)
	}
	if got := c.do("AUTH", "default", "defpw"); got != status("OK") {
		t.Fatalf("AUTH right: %#v", got)
	}
	start := time.Now()
	c.do("AUTH", "default", "wrong")
	if d := time.Since(start); d < 40*time.Millisecond || d >= 160*time.Millisecond+took[0] {
		t.Errorf("after a success the delay starts again at 40ms; took %v", d)
	}
	if got := metricValue(t, reg, "mnemo_resp_auth_failures_total"); got != 4 {
		t.Errorf("mnemo_resp_auth_failures_total = %v, want 4", got)
	}
}

// metricValue returns the value of the named counter in reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			return mf.Metric[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// TestPreAuthLimits: before AUTH a request may hold at most PreAuthMaxArgs
// elements and PreAuthMaxBulk bytes per argument; a bigger one gets Redis'
// protocol error and the connection is closed. After AUTH the full limits
// apply.
func TestPreAuthLimits(t *testing.T) {
	_, addr := startServer(t, Config{Users: testUsers(t)}, newFake())
	big := strings.Repeat("x", PreAuthMaxBulk+1)
	for _, tc := range []struct {
		name string
		req  string
		want string
	}{
		{"multibulk count", "*11\r\n", "ERR Protocol error: unauthenticated multibulk length"},
		{"bulk length", "*2\r\n$4\r\nECHO\r\n$16385\r\n", "ERR Protocol error: unauthenticated bulk length"},
		{"inline words", "AUTH a b c d e f g h i j k\r\n", "ERR Protocol error: unauthenticated multibulk length"},
		{"inline word size", "AUTH " + big + "\r\n", "ERR Protocol error: unauthenticated bulk length"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, addr)
			c.write([]byte(tc.req))
			if got := c.read(); got != errReply(tc.want) {
				t.Fatalf("got %#v, want %q", got, tc.want)
			}
			c.readEOF()
		})
	}
	// At the limits themselves a request is served (with NOAUTH).
	c := dial(t, addr)
	args := []string{"ECHO", strings.Repeat("y", PreAuthMaxBulk)}
	if got := c.do(args...); got != errReply(errNoAuth) {
		t.Fatalf("ECHO of %d bytes before AUTH: %#v", PreAuthMaxBulk, got)
	}
	ten := []string{"EXISTS", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	if got := c.do(ten...); got != errReply(errNoAuth) {
		t.Fatalf("10 arguments before AUTH: %#v", got)
	}
	if got := c.do("AUTH", "defpw"); got != status("OK") {
		t.Fatalf("AUTH: %#v", got)
	}
	mset := []string{"MSET"}
	for i := range 20 {
		mset = append(mset, "k"+string(rune('a'+i)), big)
	}
	if got := c.do(mset...); got != status("OK") {
		t.Fatalf("MSET of 40 arguments of %d bytes after AUTH: %#v", len(big), got)
	}
}

// TestPreAuthOutputBounded: an unauthenticated client that pipelines
// without reading gets its replies written as they come: the server does
// not keep more than preAuthMaxPending of them.
func TestPreAuthOutputBounded(t *testing.T) {
	var peak, flushes atomic.Int64
	preAuthFlushed = func(n int) {
		flushes.Add(1)
		for p := peak.Load(); int64(n) > p && !peak.CompareAndSwap(p, int64(n)); p = peak.Load() {
		}
	}
	t.Cleanup(func() { preAuthFlushed = nil })
	_, addr := startServer(t, Config{Users: testUsers(t)}, newFake())
	c := dial(t, addr)
	const n = 5000
	c.write([]byte(strings.Repeat("PING\r\n", n)))
	// Every reply arrives, in order; the connection held at most
	// preAuthMaxPending of them at once (checked below).
	for i := range n {
		if got := c.read(); got != errReply(errNoAuth) {
			t.Fatalf("reply %d: %#v", i, got)
		}
	}
	if flushes.Load() == 0 {
		t.Fatal("5000 pipelined commands before AUTH never reached the pending bound")
	}
	if p := peak.Load(); p > 2*preAuthMaxPending {
		t.Errorf("pending grew to %d slots before AUTH, want at most %d", p, 2*preAuthMaxPending)
	}
}

func TestAuthOpenWithoutUsers(t *testing.T) {
	_, addr := startServer(t, Config{}, newFake())
	c := dial(t, addr)
	runSteps(t, c, []step{
		{[]string{"ACL", "WHOAMI"}, "default"},
		{[]string{"SET", "k", "v"}, status("OK")},
		{[]string{"AUTH", "default", "x"}, status("OK")},
	})
}

// testPKI is a CA with a server certificate and client certificates.
type testPKI struct {
	pool   *x509.CertPool
	server tls.Certificate
	caKey  *ecdsa.PrivateKey
	ca     *x509.Certificate
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &testPKI{pool: x509.NewCertPool(), caKey: key, ca: ca}
	p.pool.AddCert(ca)
	p.server = p.leaf(t, "", x509.ExtKeyUsageServerAuth)
	return p
}

// leaf issues a certificate; uri, if set, is its URI SAN.
func (p *testPKI) leaf(t testing.TB, uri string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "leaf"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	if uri != "" {
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = []*url.URL{u}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestClientCertAuth: over TLS, a verified client certificate naming an
// existing user (mnemo://client/<name>) authenticates as that user with no
// AUTH; any other certificate, or none, still needs AUTH.
func TestClientCertAuth(t *testing.T) {
	pki := newTestPKI(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.pool,
		ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS13})
	s := NewServer(Config{Users: testUsers(t)}, newFake())
	done := make(chan error, 1)
	go func() { done <- s.Serve(tl) }()
	t.Cleanup(func() { s.Close(); <-done })

	dialTLS := func(certs ...tls.Certificate) *client {
		nc, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pki.pool, Certificates: certs, MinVersion: tls.VersionTLS13})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
		return &client{t: t, nc: nc, r: bufio.NewReader(nc)}
	}
	reader := pki.leaf(t, "mnemo://client/reader", x509.ExtKeyUsageClientAuth)
	c := dialTLS(reader)
	runSteps(t, c, []step{
		{[]string{"ACL", "WHOAMI"}, "reader"},
		{[]string{"SET", "pub:1", "x"}, errReply("NOPERM this user has no permissions to run the 'set' command")},
		{[]string{"GET", "pub:1"}, nil},
	})
	// A pipelined request larger than the pre-auth limits is fine: the
	// certificate authenticated before the first request was parsed.
	if got := c.do("EXISTS", "pub:1", "pub:2", "pub:3", "pub:4", "pub:5", "pub:6", "pub:7", "pub:8", "pub:9", "pub:10", "pub:11"); got != int64(0) {
		t.Fatalf("11 arguments after certificate auth: %#v", got)
	}
	for name, certs := range map[string][]tls.Certificate{
		"no certificate":   nil,
		"unknown user":     {pki.leaf(t, "mnemo://client/nobody", x509.ExtKeyUsageClientAuth)},
		"disabled user":    {pki.leaf(t, "mnemo://client/off", x509.ExtKeyUsageClientAuth)},
		"node certificate": {pki.leaf(t, "mnemo://node/reader", x509.ExtKeyUsageClientAuth)},
		"no URI":           {pki.leaf(t, "", x509.ExtKeyUsageClientAuth)},
	} {
		c := dialTLS(certs...)
		if got := c.do("ACL", "WHOAMI"); got != errReply(errNoAuth) {
			t.Errorf("%s: ACL WHOAMI = %#v, want NOAUTH", name, got)
		}
		if got := c.do("AUTH", "writer", "writepw"); got != status("OK") {
			t.Errorf("%s: AUTH over TLS: %#v", name, got)
		}
	}
}

// FuzzParsePreAuth: with the pre-auth limits no request the parser returns
// holds more than PreAuthMaxArgs arguments or an argument over
// PreAuthMaxBulk bytes, and what it allocates follows the input.
func FuzzParsePreAuth(f *testing.F) {
	for _, s := range []string{
		"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n", "AUTH a b\r\n", "*11\r\n", "*2\r\n$4\r\nECHO\r\n$16385\r\n",
		"HELLO 3 AUTH u p\n", "*1\r\n$16384\r\nabc",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p := newParser(bufio.NewReaderSize(bytes.NewReader(in), readBufSize), 1<<20, 1<<20, 32<<20)
		p.maxBulk, p.maxArgs, p.unauth = PreAuthMaxBulk, PreAuthMaxArgs, true
		for {
			args, err := p.next()
			if err != nil {
				break
			}
			if len(args) > PreAuthMaxArgs {
				t.Fatalf("request of %d arguments before AUTH", len(args))
			}
			for _, a := range args {
				if len(a) > PreAuthMaxBulk {
					t.Fatalf("argument of %d bytes before AUTH", len(a))
				}
			}
		}
		if p.allocated > allocBound(len(in)) {
			t.Fatalf("allocated %d bytes for %d input bytes", p.allocated, len(in))
		}
	})
}

// TestClientIdentityHook: a listener that verifies certificates its own
// way names the connection's client through Config.ClientIdentity.
func TestClientIdentityHook(t *testing.T) {
	var asked int
	cfg := Config{Users: testUsers(t), ClientIdentity: func(nc net.Conn) (string, bool) {
		asked++
		return "reader", nc.RemoteAddr() != nil
	}}
	_, addr := startServer(t, cfg, newFake())
	c := dial(t, addr)
	if got := c.do("ACL", "WHOAMI"); got != "reader" {
		t.Fatalf("ACL WHOAMI = %#v, want reader", got)
	}
	c.do("PING")
	if asked != 1 {
		t.Fatalf("ClientIdentity called %d times, want once per connection", asked)
	}
}

// writePEM writes a certificate (and its key, if keyPath is set) as PEM.
func writePEM(t *testing.T, cert tls.Certificate, certPath, keyPath string) {
	t.Helper()
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if keyPath == "" {
		return
	}
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRedisCLITLS: the real redis-cli over TLS (Debian's redis-tools is
// built with it): with the CA only it must AUTH (NOAUTH, then OK with the
// password); with a client certificate naming user reader it is reader
// without a password; plaintext redis-cli gets no answer from the TLS port.
func TestRedisCLITLS(t *testing.T) {
	cli := lookTool(t, "redis-cli")
	if out, _ := exec.Command(cli, "--help").CombinedOutput(); !strings.Contains(string(out), "--tls") {
		t.Skip("this redis-cli is built without TLS")
	}
	pki := newTestPKI(t)
	dir := t.TempDir()
	caPath, certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	if err := os.WriteFile(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pki.ca.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	writePEM(t, pki.leaf(t, "mnemo://client/reader", x509.ExtKeyUsageClientAuth), certPath, keyPath)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.pool,
		ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12})
	s := NewServer(Config{Users: testUsers(t), StallTimeout: 5 * time.Second}, newFake())
	done := make(chan error, 1)
	go func() { done <- s.Serve(tl) }()
	t.Cleanup(func() { s.Close(); <-done })
	host, port, _ := net.SplitHostPort(l.Addr().String())

	run := func(env string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, cli, append([]string{"-h", host, "-p", port}, args...)...)
		if env != "" {
			cmd.Env = append(os.Environ(), env)
		}
		out, _ := cmd.CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	for _, tc := range []struct {
		env  string
		args []string
		want string
	}{
		{"", []string{"--tls", "--cacert", caPath, "PING"}, errNoAuth},
		{"REDISCLI_AUTH=defpw", []string{"--tls", "--cacert", caPath, "SET", "k", "v"}, "OK"},
		{"REDISCLI_AUTH=defpw", []string{"--tls", "--cacert", caPath, "ACL", "WHOAMI"}, "default"},
		{"", []string{"--tls", "--cacert", caPath, "--cert", certPath, "--key", keyPath, "ACL", "WHOAMI"}, "reader"},
		{"", []string{"--tls", "--cacert", caPath, "--cert", certPath, "--key", keyPath, "SET", "pub:1", "x"}, "NOPERM this user has no permissions to run the 'set' command"},
	} {
		if got := run(tc.env, tc.args...); got != tc.want {
			t.Errorf("redis-cli %v: %q, want %q", tc.args, got, tc.want)
		}
	}
	// Plaintext to the TLS port: no Redis reply.
	if got := run("", "-t", "3", "PING"); got == "PONG" || strings.Contains(got, "NOAUTH") {
		t.Errorf("plaintext redis-cli to the TLS port got %q", got)
	}
}

// TestAuthTimeout: a connection that has not authenticated AuthTimeout
// after it was accepted is closed, whether it idles or keeps sending; one
// that authenticated in time stays.
func TestAuthTimeout(t *testing.T) {
	fastAuthDelay(t)
	s, addr := startServer(t, Config{Users: testUsers(t), AuthTimeout: 300 * time.Millisecond}, newFake())
	idle := dial(t, addr)
	busy := dial(t, addr)
	good := dial(t, addr)
	if got := good.do("AUTH", "defpw"); got != status("OK") {
		t.Fatalf("AUTH: %#v", got)
	}
	// busy keeps sending (each PING answered NOAUTH) until it is cut off.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatal("an unauthenticated connection that keeps sending was not closed")
		}
		_, _ = busy.nc.Write(encode("PING")) // may fail once the server has closed
		v, err := readReply(busy.r)
		if err != nil {
			break
		}
		if v != errReply(errNoAuth) {
			t.Fatalf("PING before AUTH: %#v", v)
		}
	}
	idle.readEOF()
	if got := good.do("PING"); got != status("PONG") {
		t.Fatalf("authenticated connection after the timeout: %#v", got)
	}
	if st := s.Stats(); st.AuthTimeouts != 2 || st.Stalls != 0 {
		t.Fatalf("AuthTimeouts %d, Stalls %d; want 2 and 0", st.AuthTimeouts, st.Stalls)
	}
}
