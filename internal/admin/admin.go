// Package admin is a node's admin HTTP port: /metrics (Prometheus),
// /status (JSON), /healthz, /debug/pprof/ and / (a page that draws the
// ring), /routes (the routes and who may call them). Every route is
// registered through one place (Handler.handle) on an adminauth.Router,
// so Routes lists them all and every request, to a new route too, has its
// credentials checked first (internal/adminauth): every route but
// /healthz needs the admin token or a client certificate, /metrics also
// takes the metrics token, unless Config.Auth.Open.
package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/mnemo-kv/mnemo/internal/adminauth"
	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/ring"
)

// Node is what the admin port reads of its node.
type Node interface {
	// Status is the cluster as the node sees it (what `mnemo status` shows).
	Status(ctx context.Context) *proto.Status
	// Ring is the node's current ring.
	Ring() *ring.Ring
	// Healthy reports whether the node is serving (false once it stops).
	Healthy() bool
}

// Config is what a Handler serves.
type Config struct {
	Node Node
	// Metrics is gathered by /metrics.
	Metrics prometheus.Gatherer
	Logger  zerolog.Logger
	// Auth is what the port takes as credentials. The zero value takes
	// none: only /healthz is served. Open serves everything to anyone.
	Auth adminauth.Config
}

// Handler serves the admin routes. It is safe for concurrent use.
type Handler struct {
	cfg    Config
	router *adminauth.Router
}

// NewHandler returns the admin port's handler.
func NewHandler(cfg Config) *Handler {
	h := &Handler{cfg: cfg, router: adminauth.NewRouter(cfg.Auth)}
	h.handle("GET /metrics", adminauth.Metrics, promhttp.HandlerFor(cfg.Metrics, promhttp.HandlerOpts{}))
	h.handle("GET /healthz", adminauth.Public, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !cfg.Node.Healthy() {
			http.Error(w, "stopping", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	h.handle("GET /status", adminauth.Admin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(cfg.Node.Status(ctx))
	}))
	h.handle("GET /{$}", adminauth.Admin, http.HandlerFunc(h.ringPage))
	// Profiles for operators: go tool pprof http://ADDR/debug/pprof/profile
	h.handle("/debug/pprof/", adminauth.Admin, http.HandlerFunc(pprof.Index))
	h.handle("/debug/pprof/cmdline", adminauth.Admin, http.HandlerFunc(pprof.Cmdline))
	h.handle("/debug/pprof/profile", adminauth.Admin, http.HandlerFunc(pprof.Profile))
	h.handle("/debug/pprof/symbol", adminauth.Admin, http.HandlerFunc(pprof.Symbol))
	h.handle("/debug/pprof/trace", adminauth.Admin, http.HandlerFunc(pprof.Trace))
	// The route list, from the registrations themselves: what a test (or
	// an operator) checks the locks against.
	h.handle("GET /routes", adminauth.Admin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(h.router.Routes())
	}))
	return h
}

// handle registers a route with who may call it; every route goes through
// here, so Routes is complete and every request is checked.
func (h *Handler) handle(pattern string, access adminauth.Access, handler http.Handler) {
	h.router.Handle(pattern, access, handler)
}

// Routes returns the patterns of every route served, as given to
// http.ServeMux ("GET /status", "/debug/pprof/").
func (h *Handler) Routes() []string {
	var out []string
	for _, r := range h.router.Routes() {
		out = append(out, r.Pattern)
	}
	return out
}

// RouteAccess returns every route with who may call it.
func (h *Handler) RouteAccess() []adminauth.Route { return h.router.Routes() }

// Refused is the number of requests refused for want of credentials.
func (h *Handler) Refused() uint64 { return h.router.Refused() }

// ServeHTTP checks the request's credentials, then serves it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.router.ServeHTTP(w, r)
}

var ringTmpl = template.Must(template.New("ring").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>mnemo · {{.Node}}</title>
<meta http-equiv="refresh" content="5">
<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}
td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}.dead{color:#b00}.alive{color:#080}
.sw{display:inline-block;width:10px;height:10px;margin-right:6px}</style></head><body>
<h1>mnemo · {{.Node}}</h1>
<p>{{.Partitions}} partitions, N={{.N}} R={{.R}} W={{.W}}, conflicts {{.Conflicts}}. Each wedge is a partition,
coloured by its first home replica; the outer rings show the other home replicas.</p>
<svg width="420" height="420" viewBox="-210 -210 420 420">{{range .Wedges}}
<path d="{{.D}}" fill="{{.Color}}" stroke="#fff" stroke-width="0.3"><title>{{.Title}}</title></path>{{end}}
<text x="0" y="5" text-anchor="middle" font-size="16">{{.Alive}}/{{len .Members}} alive</text></svg>
<table><tr><th>node</th><th>ring</th><th>liveness</th><th>owned</th><th>primary</th><th>keys</th><th>rpc</th><th>http</th></tr>
{{range .Members}}<tr><td><span class="sw" style="background:{{.Color}}"></span>{{.ID}}</td><td>{{.Ring}}</td>
<td class="{{.Liveness}}">{{.Liveness}}</td><td>{{.Owned}}</td><td>{{.Primary}}</td><td>{{.Keys}}</td><td>{{.RPC}}</td>
<td>{{if .HTTP}}<a href="http://{{.HTTP}}/">{{.HTTP}}</a>{{end}}</td></tr>{{end}}</table>
<p><a href="/status">/status</a> · <a href="/metrics">/metrics</a></p></body></html>`))

var palette = []string{"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"}

func (h *Handler) ringPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	st := h.cfg.Node.Status(ctx)
	rg := h.cfg.Node.Ring()
	color := map[ring.NodeID]string{}
	type member struct {
		ID, Ring, Liveness, RPC, HTTP, Color string
		Owned, Primary                       int
		Keys                                 int64
	}
	type wedge struct{ D, Color, Title string }
	data := struct {
		Node, Conflicts  string
		Partitions, N, R int
		W, Alive         int
		Members          []member
		Wedges           []wedge
	}{Node: st.Node, Conflicts: st.Conflicts, Partitions: st.Partitions, N: st.N, R: st.R, W: st.W}
	for i, m := range st.Members {
		c := palette[i%len(palette)]
		color[ring.NodeID(m.ID)] = c
		mm := member{ID: m.ID, Ring: m.Ring, Liveness: m.Liveness, RPC: m.RPCAddr, HTTP: m.HTTPAddr, Color: c, Owned: m.Owned, Primary: m.Primary}
		if m.Info != nil {
			mm.Keys = m.Info.Keys
		}
		if m.Liveness == "alive" {
			data.Alive++
		}
		data.Members = append(data.Members, mm)
	}
	q := rg.Partitions()
	for p := range q {
		home := rg.Home(ring.Partition(p), st.N)
		a0 := 2 * math.Pi * float64(p) / float64(q)
		a1 := 2 * math.Pi * float64(p+1) / float64(q)
		for i, id := range home {
			r0, r1 := 60+float64(i)*45, 100+float64(i)*45
			if i == 0 {
				r0 = 60
			}
			d := fmt.Sprintf("M%.2f %.2f L%.2f %.2f A%.0f %.0f 0 0 1 %.2f %.2f L%.2f %.2f A%.0f %.0f 0 0 0 %.2f %.2f Z",
				r0*math.Sin(a0), -r0*math.Cos(a0), r1*math.Sin(a0), -r1*math.Cos(a0), r1, r1,
				r1*math.Sin(a1), -r1*math.Cos(a1), r0*math.Sin(a1), -r0*math.Cos(a1), r0, r0,
				r0*math.Sin(a0), -r0*math.Cos(a0))
			data.Wedges = append(data.Wedges, wedge{D: d, Color: color[id], Title: fmt.Sprintf("partition %d: replica %d on %s", p, i+1, id)})
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := ringTmpl.Execute(w, data); err != nil {
		h.cfg.Logger.Warn().Err(err).Msg("ring page")
	}
}
