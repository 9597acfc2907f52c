package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/mnemo-kv/mnemo/internal/adminauth"
	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/ring"
)

type fakeNode struct {
	ring    *ring.Ring
	stopped atomic.Bool
}

func (f *fakeNode) Status(context.Context) *proto.Status {
	return &proto.Status{Node: "a", Partitions: f.ring.Partitions(), N: 2, R: 1, W: 1, Conflicts: "siblings",
		Members: []proto.MemberStatus{
			{ID: "a", Ring: "active", Liveness: "alive", RPCAddr: "127.0.0.1:1", Owned: 8},
			{ID: "b", Ring: "active", Liveness: "dead", RPCAddr: "127.0.0.1:2", Owned: 8},
		}}
}
func (f *fakeNode) Ring() *ring.Ring { return f.ring }
func (f *fakeNode) Healthy() bool    { return !f.stopped.Load() }

func newTestServer(t *testing.T) (*fakeNode, *Handler, *httptest.Server) {
	t.Helper()
	rg, err := ring.New(8, []ring.Node{{ID: "a"}, {ID: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeNode{ring: rg}
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "mnemo_test_total", Help: "a test counter"})
	reg.MustRegister(c)
	c.Inc()
	h := NewHandler(Config{Node: f, Metrics: reg, Logger: zerolog.Nop(), Auth: adminauth.Config{Open: true}})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return f, h, srv
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRoutes: each route answers what an operator looks for on it.
func TestRoutes(t *testing.T) {
	f, _, srv := newTestServer(t)
	if code, body := get(t, srv.URL+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, srv.URL+"/metrics"); code != 200 || !strings.Contains(body, "mnemo_test_total 1") {
		t.Errorf("/metrics = %d, no mnemo_test_total 1 in %q", code, body)
	}
	code, body := get(t, srv.URL+"/status")
	var st proto.Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || st.Node != "a" || len(st.Members) != 2 {
		t.Errorf("/status = %d %v %+v", code, err, st)
	}
	code, body = get(t, srv.URL+"/")
	if code != 200 || !strings.Contains(body, "1/2 alive") || strings.Count(body, "<path") != 8*2 {
		t.Errorf("ring page = %d, want 1/2 alive and 16 wedges (8 partitions x N=2); got %d wedges", code, strings.Count(body, "<path"))
	}
	if code, _ := get(t, srv.URL+"/nope"); code != 404 {
		t.Errorf("/nope = %d, want 404", code)
	}
	f.stopped.Store(true)
	if code, _ := get(t, srv.URL+"/healthz"); code != 503 {
		t.Errorf("/healthz of a stopping node = %d, want 503", code)
	}
}

// TestRoutesListed: Routes names every registered pattern, and each is
// served (none 404s), so a policy checked against Routes covers them all.
func TestRoutesListed(t *testing.T) {
	_, h, srv := newTestServer(t)
	routes := h.Routes()
	if len(routes) < 5 {
		t.Fatalf("Routes = %v", routes)
	}
	for _, r := range routes {
		path := r[strings.IndexByte(r, '/'):]
		path = strings.TrimSuffix(path, "{$}")
		if path == "/debug/pprof/profile" || path == "/debug/pprof/trace" {
			path += "?seconds=1" // pprof takes 0 as its default of 30 s
		}
		if code, _ := get(t, srv.URL+path); code == 404 {
			t.Errorf("route %q listed but %s gives 404", r, path)
		}
	}
}

// TestEveryRouteNeedsToken: with an admin token configured, every route
// the handler lists (from its own registrations) but /healthz answers 401
// without it, and serves with it.
func TestEveryRouteNeedsToken(t *testing.T) {
	rg, err := ring.New(8, []ring.Node{{ID: "a"}, {ID: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	const tok = "0123456789abcdef0123"
	h := NewHandler(Config{Node: &fakeNode{ring: rg}, Metrics: prometheus.NewRegistry(), Logger: zerolog.Nop(),
		Auth: adminauth.Config{AdminToken: []byte(tok)}})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	routes := h.RouteAccess()
	if len(routes) < 8 {
		t.Fatalf("RouteAccess = %v", routes)
	}
	for _, r := range routes {
		path := adminauth.ExamplePath(r.Pattern)
		if path == "/debug/pprof/profile" || path == "/debug/pprof/trace" {
			path += "?seconds=1"
		}
		code, _ := get(t, srv.URL+path)
		want := http.StatusUnauthorized
		if r.Pattern == "GET /healthz" {
			want = http.StatusOK
		}
		if code != want {
			t.Errorf("%s without a token: %d, want %d", r.Pattern, code, want)
		}
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s with the token: %d", r.Pattern, resp.StatusCode)
		}
	}
	if h.Refused() == 0 {
		t.Error("Refused() = 0")
	}
}
