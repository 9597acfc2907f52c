package adminauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	adminTok   = "admin-token-0123456789abcdef"
	metricsTok = "metrics-token-0123456789abcdef"
)

func testRouter(cfg Config) *Router {
	r := NewRouter(cfg)
	ok := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }
	r.HandleFunc("GET /healthz", Public, ok)
	r.HandleFunc("GET /metrics", Metrics, ok)
	r.HandleFunc("GET /status", Admin, ok)
	r.HandleFunc("GET /{$}", Admin, ok)
	r.HandleFunc("/debug/pprof/", Admin, ok)
	r.HandleFunc("GET /items/{id}", Admin, func(w http.ResponseWriter, req *http.Request) {
		fmt.Fprint(w, req.PathValue("id")) // path values survive the check
	})
	return r
}

func get(t *testing.T, h http.Handler, path, auth string) (int, string) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

func TestRouterAccess(t *testing.T) {
	r := testRouter(Config{AdminToken: []byte(adminTok), MetricsToken: []byte(metricsTok)})
	for _, tc := range []struct {
		path, auth string
		code       int
	}{
		{"/healthz", "", 200},
		{"/metrics", "", 401},
		{"/metrics", "Bearer " + metricsTok, 200},
		{"/metrics", "Bearer " + adminTok, 200},
		{"/metrics", "bearer " + adminTok, 200},
		{"/status", "", 401},
		{"/status", "Bearer " + metricsTok, 403},
		{"/status", "Bearer " + adminTok, 200},
		{"/status", "Bearer " + adminTok + "x", 401},
		{"/status", "Bearer " + adminTok[:len(adminTok)-1], 401},
		{"/status", "Basic " + adminTok, 401},
		{"/status", "Bearer", 401},
		{"/", "", 401},
		{"/debug/pprof/heap", "", 401},
		{"/debug/pprof/heap", "Bearer " + adminTok, 200},
		{"/nope", "", 401}, // no route: admin, so a probe learns nothing
		{"/nope", "Bearer " + adminTok, 404},
		{"/items/42", "Bearer " + adminTok, 200},
	} {
		code, body := get(t, r, tc.path, tc.auth)
		if code != tc.code {
			t.Errorf("GET %s with %q: %d %q, want %d", tc.path, tc.auth, code, body, tc.code)
		}
		if strings.Contains(body, adminTok) || strings.Contains(body, metricsTok) {
			t.Errorf("GET %s: reply %q holds a token", tc.path, body)
		}
	}
	if code, body := get(t, r, "/items/42", "Bearer "+adminTok); code != 200 || body != "42" {
		t.Errorf("path value: %d %q", code, body)
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest("GET", "/status", nil))
	if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
		t.Errorf("401 without WWW-Authenticate: Bearer (%q)", got)
	}
	if r.Refused() == 0 {
		t.Error("Refused() is 0")
	}
}

func TestRouterOpenAndNoMetricsToken(t *testing.T) {
	open := testRouter(Config{Open: true})
	for _, p := range []string{"/status", "/metrics", "/debug/pprof/x"} {
		if code, _ := get(t, open, p, ""); code != 200 {
			t.Errorf("open router: GET %s = %d", p, code)
		}
	}
	// Only an admin token: the metrics route takes it, nothing else.
	r := testRouter(Config{AdminToken: []byte(adminTok)})
	if code, _ := get(t, r, "/metrics", "Bearer "+metricsTok); code != 401 {
		t.Errorf("metrics token accepted without one configured: %d", code)
	}
	// No token at all and not open: everything but Public is refused.
	shut := testRouter(Config{})
	if code, _ := get(t, shut, "/status", "Bearer "); code != 401 {
		t.Errorf("empty token accepted: %d", code)
	}
	if code, _ := get(t, shut, "/healthz", ""); code != 200 {
		t.Errorf("healthz refused: %d", code)
	}
}

// TestEveryRouteLocked enumerates the router's own routes and checks each
// refuses a request without credentials, unless registered Public.
func TestEveryRouteLocked(t *testing.T) {
	r := testRouter(Config{AdminToken: []byte(adminTok)})
	for _, rt := range r.Routes() {
		code, _ := get(t, r, ExamplePath(rt.Pattern), "")
		if want := map[bool]int{true: 200, false: 401}[rt.Access == Public]; code != want {
			t.Errorf("%s (%s) without a token: %d, want %d", rt.Pattern, rt.Access, code, want)
		}
	}
}

func TestExamplePath(t *testing.T) {
	for in, want := range map[string]string{
		"GET /status": "/status", "/debug/pprof/": "/debug/pprof/", "GET /{$}": "/",
		"GET /items/{id}": "/items/x", "POST /a/{rest...}": "/a/x", "GET example.com/x": "/x",
	} {
		if got := ExamplePath(in); got != want {
			t.Errorf("ExamplePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tok, err := LoadToken(write("ok", "  "+adminTok+"\n"))
	if err != nil || string(tok) != adminTok {
		t.Fatalf("LoadToken = %q, %v", tok, err)
	}
	for name, content := range map[string]string{"short": "abc\n", "empty": "", "spaces": "abcdefgh ijklmnopqrstuvwx", "huge": strings.Repeat("a", 5000)} {
		_, err := LoadToken(write(name, content))
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if len(content) > 3 && strings.Contains(err.Error(), content[:4]) {
			t.Errorf("%s: error %q quotes the file", name, err)
		}
	}
	if _, err := LoadToken(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file accepted")
	}
}

// TestClientCertificate: over real TLS, a verified client certificate
// naming a mnemo client opens admin routes; none, or one without a mnemo
// name, does not. The server sees a wrapped connection (not *tls.Conn), as
// behind internal/security's listener, so ConnContext is what finds it.
func TestClientCertificate(t *testing.T) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caT, caT, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	leaf := func(uri string, usage x509.ExtKeyUsage) tls.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
		tt := &x509.Certificate{SerialNumber: serial, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		if uri != "" {
			u, _ := url.Parse(uri)
			tt.URIs = []*url.URL{u}
		}
		der, _ := x509.CreateCertificate(rand.Reader, tt, ca, &k.PublicKey, caKey)
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{leaf("", x509.ExtKeyUsageServerAuth)},
		ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven})
	srv := &http.Server{Handler: testRouter(Config{AdminToken: []byte(adminTok)}), ConnContext: ConnContext}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(wrapped{tl}) }()
	t.Cleanup(func() { srv.Close(); <-done })

	for name, tc := range map[string]struct {
		certs []tls.Certificate
		want  int
	}{
		"client cert": {[]tls.Certificate{leaf("mnemo://client/ops", x509.ExtKeyUsageClientAuth)}, 200},
		"node cert":   {[]tls.Certificate{leaf("mnemo://node/n1", x509.ExtKeyUsageClientAuth)}, 200},
		"no mnemo id": {[]tls.Certificate{leaf("", x509.ExtKeyUsageClientAuth)}, 401},
		"no cert":     {nil, 401},
	} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: tc.certs}}
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + ln.Addr().String() + "/status")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", name, resp.StatusCode, tc.want)
		}
	}
}

// wrapped hides *tls.Conn behind another type, as a listener wrapper does.
type wrapped struct{ net.Listener }

type wrappedConn struct{ *tls.Conn }

func (w wrapped) Accept() (net.Conn, error) {
	c, err := w.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return wrappedConn{c.(*tls.Conn)}, nil
}

// TestPeerIdentityHook: with Config.PeerIdentity the router asks it about
// the request's connection (kept by ConnContext) instead of reading TLS
// state itself.
func TestPeerIdentityHook(t *testing.T) {
	var trusted atomic.Bool
	r := testRouter(Config{AdminToken: []byte(adminTok), PeerIdentity: func(c net.Conn) bool {
		return c != nil && trusted.Load()
	}})
	srv := httptest.NewUnstartedServer(r)
	srv.Config.ConnContext = ConnContext
	srv.Start()
	t.Cleanup(srv.Close)
	status := func() int {
		resp, err := srv.Client().Get(srv.URL + "/status")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(); got != 401 {
		t.Fatalf("untrusted peer: %d", got)
	}
	trusted.Store(true)
	if got := status(); got != 200 {
		t.Fatalf("trusted peer: %d", got)
	}
}
