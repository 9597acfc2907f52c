package chaos

import (
	"fmt"
	"html"
	"math"
	"os"
	"strings"
)

// faultColor is each kind's band colour in the picture.
var faultColor = map[FaultKind]string{
	FaultKill:      "#d62728",
	FaultPause:     "#ff7f0e",
	FaultWipe:      "#8c564b",
	FaultPartition: "#1f77b4",
	FaultIsolate:   "#9467bd",
}

// writeSVG draws the run: acknowledged operations per second and the
// share of operations that failed or were indeterminate, over time, with
// each fault as a band, the final heal and the convergence marked.
func (r *Report) writeSVG(path string) error {
	return os.WriteFile(path, []byte(r.svg()), 0o644)
}

func (r *Report) svg() string {
	const (
		width, left, right = 1000.0, 60.0, 20.0
		laneH              = 14.0
	)
	// Label lanes: each band's label goes in the first lane where it does
	// not overlap an earlier one.
	end := math.Max(r.DurationS, r.HealS+r.ConvergenceS) + 2
	plotW := width - left - right
	x := func(t float64) float64 { return left + plotW*t/end }
	type band struct {
		f    FaultSummary
		lane int
	}
	var bands []band
	var laneEnd []float64
	for _, f := range r.Faults {
		if !f.Played {
			continue
		}
		label := f.What
		lx, lw := x(f.BeganS), float64(len(label))*6.2
		lane := 0
		for lane < len(laneEnd) && laneEnd[lane] > lx {
			lane++
		}
		if lane == len(laneEnd) {
			laneEnd = append(laneEnd, 0)
		}
		laneEnd[lane] = lx + lw + 4
		bands = append(bands, band{f, lane})
	}
	top := 40 + float64(len(laneEnd))*laneH + 6
	tpH, gap, erH := 170.0, 34.0, 90.0
	tpTop, erTop := top, top+tpH+gap
	height := erTop + erH + 60

	var maxOK float64 = 1
	for _, b := range r.Timeline {
		maxOK = math.Max(maxOK, float64(b.OK))
	}
	maxOK = niceCeil(maxOK)

	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(&s, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	verdict, vcol := "PASS", "#2ca02c"
	if r.Failed() {
		verdict, vcol = "FAIL", "#d62728"
	}
	fmt.Fprintf(&s, `<text x="%.0f" y="18" font-size="14" font-weight="bold">mnemo chaos · seed %d · %d nodes N=%d R=%d W=%d · %s · <tspan fill="%s">%s</tspan></text>`+"\n",
		left, r.Seed, r.Nodes, r.N, r.R, r.W, html.EscapeString(r.Conflicts), vcol, verdict)
	fmt.Fprintf(&s, `<text x="%.0f" y="32" fill="#555">lost %d · resurrected %d · stale %d · %s</text>`+"\n",
		left, r.Check.Lost, r.Check.Resurrected, r.Check.Stale, html.EscapeString(r.convergenceLine()))

	// Bands across both panels, labels in their lanes.
	for _, b := range bands {
		x0, x1 := x(b.f.BeganS), x(math.Max(b.f.EndedS, b.f.BeganS))
		col := faultColor[b.f.Kind]
		fmt.Fprintf(&s, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity="0.15"/>`+"\n", x0, tpTop, math.Max(x1-x0, 1), erTop+erH-tpTop, col)
		ly := 40 + float64(b.lane)*laneH + 10
		fmt.Fprintf(&s, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-opacity="0.5"/>`+"\n", x0, ly+2, x0, tpTop, col)
		fmt.Fprintf(&s, `<text x="%.1f" y="%.1f" fill="%s">%s</text>`+"\n", x0+2, ly, col, html.EscapeString(b.f.What))
	}

	// Panels: frame, y grid, series.
	panel := func(y0, h float64, title string, ymax float64, unit string) {
		fmt.Fprintf(&s, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#999"/>`+"\n", left, y0, plotW, h)
		fmt.Fprintf(&s, `<text x="%.1f" y="%.1f" fill="#333">%s</text>`+"\n", left+4, y0+12, html.EscapeString(title))
		for i := 0; i <= 4; i++ {
			v := ymax * float64(i) / 4
			yy := y0 + h - h*float64(i)/4
			fmt.Fprintf(&s, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", left, yy, left+plotW, yy)
			fmt.Fprintf(&s, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#555">%s%s</text>`+"\n", left-4, yy+4, trimFloat(v), unit)
		}
	}
	panel(tpTop, tpH, "acknowledged operations per second", maxOK, "")
	panel(erTop, erH, "errors (failed or indeterminate) as % of operations completed", 100, "%")

	var tp, er strings.Builder
	for i, b := range r.Timeline {
		t := float64(b.T) + 0.5
		cmd := "L"
		if i == 0 {
			cmd = "M"
		}
		fmt.Fprintf(&tp, "%s%.1f,%.1f ", cmd, x(t), tpTop+tpH-tpH*float64(b.OK)/maxOK)
		rate := 0.0
		if all := b.OK + b.Info + b.Fail; all > 0 {
			rate = 100 * float64(b.Info+b.Fail) / float64(all)
		}
		fmt.Fprintf(&er, "%s%.1f,%.1f ", cmd, x(t), erTop+erH-erH*rate/100)
	}
	if tp.Len() > 0 {
		fmt.Fprintf(&s, `<path d="%s" fill="none" stroke="#2b6cb0" stroke-width="1.5"/>`+"\n", strings.TrimSpace(tp.String()))
		fmt.Fprintf(&s, `<path d="%s" fill="none" stroke="#c53030" stroke-width="1.5"/>`+"\n", strings.TrimSpace(er.String()))
	}

	// Time axis.
	axisY := erTop + erH
	step := niceStep(end / 10)
	for t := 0.0; t <= end; t += step {
		fmt.Fprintf(&s, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999"/>`+"\n", x(t), axisY, x(t), axisY+4)
		fmt.Fprintf(&s, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">%ss</text>`+"\n", x(t), axisY+16, trimFloat(t))
	}

	// Markers: end of the workload, final heal, convergence.
	marker := func(t float64, col, dash, label string, row int) {
		fmt.Fprintf(&s, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5" stroke-dasharray="%s"/>`+"\n", x(t), tpTop, x(t), axisY, col, dash)
		fmt.Fprintf(&s, `<text x="%.1f" y="%.1f" fill="%s" text-anchor="end">%s</text>`+"\n", x(t)-3, tpTop+26+float64(row)*12, col, html.EscapeString(label))
	}
	marker(r.HealS, "#333", "4 3", fmt.Sprintf("final heal %.1fs", r.HealS), 0)
	if r.Converged {
		marker(r.HealS+r.ConvergenceS, "#2ca02c", "", fmt.Sprintf("converged +%.1fs", r.ConvergenceS), 1)
	} else {
		marker(r.HealS+r.ConvergenceS, "#d62728", "", fmt.Sprintf("not converged after %.0fs", r.ConvergenceS), 1)
	}

	// Legend.
	ly := axisY + 36
	lx := left
	for _, k := range AllFaults {
		fmt.Fprintf(&s, `<rect x="%.1f" y="%.1f" width="12" height="10" fill="%s" fill-opacity="0.35"/>`+"\n", lx, ly-9, faultColor[k])
		fmt.Fprintf(&s, `<text x="%.1f" y="%.1f">%s</text>`+"\n", lx+16, ly, k)
		lx += 90
	}
	fmt.Fprintf(&s, `<text x="%.1f" y="%.1f" fill="#555">%s</text>`+"\n", lx+10, ly, html.EscapeString("partitions: "+r.Partitions))
	s.WriteString("</svg>\n")
	return s.String()
}

func (r *Report) convergenceLine() string {
	if r.Converged {
		return fmt.Sprintf("converged %.1fs after the final heal", r.ConvergenceS)
	}
	return fmt.Sprintf("not converged %.0fs after the final heal", r.ConvergenceS)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func niceStep(v float64) float64 { return niceCeil(math.Max(v, 1)) }

func trimFloat(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(jsonFloat(v, 1), "0"), ".")
}
