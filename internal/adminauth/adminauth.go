package adminauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
)

// Access says who may call a route.
type Access uint8

const (
	// Admin routes need the admin token or a client certificate. The zero
	// value: a route registered without saying is admin-only.
	Admin Access = iota
	// Metrics routes also take the metrics token.
	Metrics
	// Public routes need nothing (/healthz).
	Public
)

// String names the access level as Routes' JSON shows it.
func (a Access) String() string {
	switch a {
	case Admin:
		return "admin"
	case Metrics:
		return "metrics"
	case Public:
		return "public"
	}
	return fmt.Sprintf("Access(%d)", uint8(a))
}

// MarshalText makes Access read as its name in JSON.
func (a Access) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText reads an Access's name.
func (a *Access) UnmarshalText(b []byte) error {
	for _, x := range []Access{Admin, Metrics, Public} {
		if string(b) == x.String() {
			*a = x
			return nil
		}
	}
	return fmt.Errorf("adminauth: unknown access %q", b)
}

// Config says which credentials a Router takes.
type Config struct {
	// AdminToken opens every route; nil accepts no admin token.
	AdminToken []byte
	// MetricsToken opens Metrics routes only; nil accepts none.
	MetricsToken []byte
	// Open serves every route without credentials: the node sets it when
	// no token is configured on a loopback address, or with --insecure.
	Open bool
	// PeerIdentity, if set, reports whether a connection (kept by
	// ConnContext) presented a verified client certificate naming a mnemo
	// client or node. Nil checks a tls.ConnectionState with VerifiedChains
	// (a tls.Config that verifies clients itself); a listener that
	// verifies certificates its own way supplies its own.
	PeerIdentity func(c net.Conn) bool
}

// Route is one registered pattern and who may call it.
type Route struct {
	Pattern string `json:"pattern"` // as given to http.ServeMux, e.g. "GET /status"
	Access  Access `json:"access"`
}

// Router is an http.Handler that checks credentials, then serves the
// route. Register every route before serving; after that it is safe for
// concurrent use.
type Router struct {
	mux    *http.ServeMux
	routes []Route
	access map[string]Access // by pattern

	adminSum, metricsSum [sha256.Size]byte
	hasAdmin, hasMetrics bool
	open                 bool
	peerIdentity         func(net.Conn) bool

	// refused counts requests answered 401 or 403.
	refused atomic.Uint64
}

// NewRouter returns a Router with no routes.
func NewRouter(cfg Config) *Router {
	r := &Router{mux: http.NewServeMux(), access: map[string]Access{}, open: cfg.Open, peerIdentity: cfg.PeerIdentity}
	if cfg.AdminToken != nil {
		r.adminSum, r.hasAdmin = sha256.Sum256(cfg.AdminToken), true
	}
	if cfg.MetricsToken != nil {
		r.metricsSum, r.hasMetrics = sha256.Sum256(cfg.MetricsToken), true
	}
	return r
}

// Handle registers h for pattern (http.ServeMux's syntax) with the given
// access. It panics on a pattern registered twice, as ServeMux does.
func (r *Router) Handle(pattern string, access Access, h http.Handler) {
	r.mux.Handle(pattern, h)
	r.routes = append(r.routes, Route{Pattern: pattern, Access: access})
	r.access[pattern] = access
}

// HandleFunc registers a handler function, as Handle.
func (r *Router) HandleFunc(pattern string, access Access, h func(http.ResponseWriter, *http.Request)) {
	r.Handle(pattern, access, http.HandlerFunc(h))
}

// Routes lists the registered routes in registration order.
func (r *Router) Routes() []Route { return slices.Clone(r.routes) }

// Refused is the number of requests refused (401 or 403) so far.
func (r *Router) Refused() uint64 { return r.refused.Load() }

// ServeHTTP checks the request's credentials against the access of the
// route it matches (Admin when it matches none), then serves it.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	access := Admin
	if _, pattern := r.mux.Handler(req); pattern != "" {
		access = r.access[pattern]
	}
	if code := r.check(req, access); code != 0 {
		r.refused.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="mnemo"`)
		msg := "unauthorized: send Authorization: Bearer <token> (the node's admin-token-file) or a client certificate"
		if code == http.StatusForbidden {
			msg = "forbidden: the metrics token opens only /metrics"
		}
		http.Error(w, msg, code)
		return
	}
	r.mux.ServeHTTP(w, req)
}

// check returns 0 when req may call a route of the given access, else the
// status to refuse it with.
func (r *Router) check(req *http.Request, access Access) int {
	if r.open || access == Public {
		return 0
	}
	if tok, ok := bearer(req); ok {
		sum := sha256.Sum256(tok)
		// NB: both comparisons always run, so the time does not say
		// which token was close.
		admin := r.hasAdmin && subtle.ConstantTimeCompare(sum[:], r.adminSum[:]) == 1
		metrics := r.hasMetrics && subtle.ConstantTimeCompare(sum[:], r.metricsSum[:]) == 1
		switch {
		case admin:
			return 0
		case metrics && access == Metrics:
			return 0
		case metrics:
			return http.StatusForbidden
		}
	}
	if r.peerIdentity != nil {
		if c, ok := req.Context().Value(connKey{}).(net.Conn); ok && r.peerIdentity(c) {
			return 0
		}
	} else if certNamesMnemo(req) {
		return 0
	}
	return http.StatusUnauthorized
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(req *http.Request) ([]byte, bool) {
	h := req.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return nil, false
	}
	return []byte(strings.TrimSpace(h[len(prefix):])), true
}

// connKey is the context key under which ConnContext keeps the request's
// connection.
type connKey struct{}

// ConnContext is for http.Server.ConnContext: it keeps each request's
// connection in its context, so a client certificate can be read from a
// TLS connection that net/http does not know as *tls.Conn (a listener
// wrapper's).
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// tlsConn is a connection that exposes its TLS state.
type tlsConn interface {
	ConnectionState() tls.ConnectionState
}

// certNamesMnemo reports whether the request came with a client
// certificate verified against the server's CAs that names a mnemo
// client or node.
func certNamesMnemo(req *http.Request) bool {
	// NB: the connection's state first. net/http fills req.TLS only for a
	// *tls.Conn, and for a wrapper's connection it may hold the state from
	// before the handshake (HandshakeComplete false).
	cs := req.TLS
	if tc, ok := req.Context().Value(connKey{}).(tlsConn); ok {
		s := tc.ConnectionState()
		cs = &s
	}
	if cs == nil || !cs.HandshakeComplete || len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return false
	}
	for _, u := range cs.PeerCertificates[0].URIs {
		if u.Scheme == "mnemo" && (u.Host == "client" || u.Host == "node") && len(u.Path) > 1 {
			return true
		}
	}
	return false
}

// MinTokenLen is the shortest token LoadToken accepts, in bytes: 16
// random bytes in hex are 32.
const MinTokenLen = 16

// maxTokenFile bounds a token file in bytes.
const maxTokenFile = 4096

// LoadToken reads a token file: its content with surrounding whitespace
// trimmed. Errors name the file, never its content.
func LoadToken(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("adminauth: %w", err)
	}
	defer f.Close()
	buf, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return nil, fmt.Errorf("adminauth: %s: %w", path, err)
	}
	if len(buf) > maxTokenFile {
		return nil, fmt.Errorf("adminauth: %s: token file over %d bytes", path, maxTokenFile)
	}
	tok := bytes.TrimSpace(buf)
	switch {
	case len(tok) < MinTokenLen:
		return nil, fmt.Errorf("adminauth: %s: token of %d bytes, want at least %d (e.g. openssl rand -hex 32)", path, len(tok), MinTokenLen)
	case bytes.ContainsAny(tok, " \t\r\n"):
		return nil, fmt.Errorf("adminauth: %s: token holds whitespace", path)
	}
	return tok, nil
}

// ExamplePath returns a request path that a ServeMux pattern matches: the
// method and host dropped, {$} dropped, each wildcard replaced by "x". For
// tests that call every route.
func ExamplePath(pattern string) string {
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		pattern = pattern[i+1:]
	}
	if i := strings.IndexByte(pattern, '/'); i > 0 {
		pattern = pattern[i:] // a host
	}
	var sb strings.Builder
	for len(pattern) > 0 {
		i := strings.IndexByte(pattern, '{')
		if i < 0 {
			sb.WriteString(pattern)
			break
		}
		sb.WriteString(pattern[:i])
		j := strings.IndexByte(pattern[i:], '}')
		if j < 0 {
			sb.WriteString(pattern[i:])
			break
		}
		if pattern[i:i+j+1] != "{$}" {
			sb.WriteString("x")
		}
		pattern = pattern[i+j+1:]
	}
	return sb.String()
}
