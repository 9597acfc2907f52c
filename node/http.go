package node

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mnemo-kv/mnemo/ring"
)

// httpHandler serves the admin port: /metrics (Prometheus), /status (JSON),
// /healthz, and / (a page that draws the ring).
func (n *Node) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if n.bg.Err() != nil {
			http.Error(w, "stopping", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(n.Status(ctx))
	})
	mux.HandleFunc("GET /{$}", n.ringPage)
	// Profiles for operators: go tool pprof http://ADDR/debug/pprof/profile
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
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

func (n *Node) ringPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	st := n.Status(ctx)
	v := n.view.Load()
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
	q := v.state.Partitions
	for p := range q {
		home := v.ring.Home(ring.Partition(p), n.cfg.N)
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
		n.log.Warn().Err(err).Msg("ring page")
	}
}
