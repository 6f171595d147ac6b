package numeric

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// htmlWorst is how many layers the HTML page ranks and highlights.
const htmlWorst = 10

const htmlStyle = `body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}
th{background:#f4f4f4;position:sticky;top:0}
td.l,th.l{text-align:left}
tr.worst td{background:#fde8e8}
svg{background:#fff;border:1px solid #ddd;max-width:100%;height:auto}
.axis{stroke:#888;stroke-width:1}.grid{stroke:#eee;stroke-width:1}
.lbl{font-size:11px;fill:#555}
.act{fill:none;stroke:#1f6fd0;stroke-width:1.5}.cos{fill:none;stroke:#2a9d4b;stroke-width:1.5}
.wbar{fill:#f2b84b;opacity:.55}
.pt{fill:#1f6fd0}.ptw{fill:#d03a2a}.ptinf{fill:#fff;stroke:#1f6fd0;stroke-width:1.5}
.legend{font-size:12px;fill:#333}
`

// WriteHTML writes the report as one self-contained HTML page (no
// external assets): a summary, an SVG plot of activation SQNR (line) and
// weight SQNR (bars) along the graph with the worst layers marked, a plot
// of cosine similarity, the per-layer table, the ranking of the layers
// that hurt most, and the inputs and outputs.
func (r *Report) WriteHTML(w io.Writer) error {
	bw := bufio.NewWriter(w)
	e := html.EscapeString
	title := "quanta compare: " + r.QuantName + " vs " + r.FloatName
	fmt.Fprintf(bw, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title>\n<style>%s</style></head><body>\n", e(title), htmlStyle)
	fmt.Fprintf(bw, "<h1>%s</h1>\n<p>%s.</p>\n", e(title), e(r.summary()))
	worst := r.Worst(htmlWorst)
	isWorst := map[int]bool{}
	for _, l := range worst {
		isWorst[l.Index] = true
	}
	if len(r.Layers) > 0 {
		bw.WriteString("<h2>SQNR along the graph</h2>\n")
		r.sqnrPlot(bw, isWorst)
		bw.WriteString("<h2>Cosine similarity along the graph</h2>\n")
		r.cosinePlot(bw)
	}
	fmt.Fprintf(bw, "<h2>Layers that hurt most</h2>\n<p>Ranked by SQNR drop: the SQNR of a layer's inputs minus the SQNR of its output (the noise the layer adds), then by lowest SQNR.</p>\n")
	bw.WriteString("<table><tr><th>rank</th><th class=l>node</th><th class=l>op</th><th class=l>module</th><th>drop dB</th><th>input SQNR dB</th><th>SQNR dB</th><th>cosine</th><th>weight SQNR dB</th></tr>\n")
	for i, l := range worst {
		fmt.Fprintf(bw, "<tr><td>%d</td><td class=l>%s</td><td class=l>%s</td><td class=l>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
			i+1, e(l.Node), e(l.OpType), e(orDash(l.ModulePath)), fdb(l.Drop), fdb(l.InputSQNR), fdb(l.Activation.SQNR), fcos(l.Activation.Cosine), weightDB(l))
	}
	bw.WriteString("</table>\n<h2>Per-layer statistics</h2>\n")
	bw.WriteString("<table><tr><th>#</th><th class=l>node</th><th class=l>op</th><th class=l>module</th><th class=l>value</th><th>SQNR dB</th><th>cosine</th><th>max |err|</th><th>mean |err|</th><th>weight SQNR dB</th><th>weight cosine</th><th>drop dB</th></tr>\n")
	for _, l := range r.Layers {
		cls := ""
		if isWorst[l.Index] {
			cls = " class=worst"
		}
		wc := "-"
		if l.Weight != nil {
			wc = fcos(l.Weight.Cosine)
		}
		fmt.Fprintf(bw, "<tr%s><td>%d</td><td class=l>%s</td><td class=l>%s</td><td class=l>%s</td><td class=l title=\"%s\">%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
			cls, l.Index, e(l.Node), e(l.OpType), e(orDash(l.ModulePath)), e("compared with "+l.QuantValue), e(l.Value),
			fdb(l.Activation.SQNR), fcos(l.Activation.Cosine), ferr(l.Activation.MaxAbs), ferr(l.Activation.MeanAbs), weightDB(l), wc, fdb(l.Drop))
	}
	bw.WriteString("</table>\n")
	if len(r.Inputs) > 0 {
		bw.WriteString("<h2>Inputs</h2>\n<table><tr><th class=l>input</th><th>SQNR dB</th><th>cosine</th><th>max |err|</th><th>mean |err|</th></tr>\n")
		for _, in := range r.Inputs {
			fmt.Fprintf(bw, "<tr><td class=l>%s</td>%s</tr>\n", e(in.Name), statCells(in.Stats))
		}
		bw.WriteString("</table>\n")
	}
	bw.WriteString("<h2>Outputs</h2>\n<table><tr><th class=l>output</th><th class=l>run</th><th>SQNR dB</th><th>cosine</th><th>max |err|</th><th>mean |err|</th></tr>\n")
	for _, o := range r.Outputs {
		fmt.Fprintf(bw, "<tr><td class=l>%s</td><td class=l>reference (literal QDQ)</td>%s</tr>\n", e(o.Name), statCells(o.Reference))
		if o.Fused != nil {
			fmt.Fprintf(bw, "<tr><td class=l>%s</td><td class=l>int8 (fused kernels)</td>%s</tr>\n", e(o.Name), statCells(*o.Fused))
		}
	}
	bw.WriteString("</table>\n")
	if len(r.Unmatched) > 0 {
		fmt.Fprintf(bw, "<h2>Float nodes without a quantized counterpart</h2>\n<p>%s</p>\n", e(strings.Join(r.Unmatched, ", ")))
	}
	bw.WriteString("</body></html>\n")
	return bw.Flush()
}

func weightDB(l Layer) string {
	if l.Weight == nil {
		return "-"
	}
	return fdb(l.Weight.SQNR)
}

func statCells(s Stats) string {
	return fmt.Sprintf("<td>%s</td><td>%s</td><td>%s</td><td>%s</td>", fdb(s.SQNR), fcos(s.Cosine), ferr(s.MaxAbs), ferr(s.MeanAbs))
}

// plot is the geometry of one SVG chart over the layers.
type plot struct {
	w, h                     float64
	left, right, top, bottom float64
	lo, hi                   float64
	n                        int
}

func (p plot) x(i int) float64 {
	return p.left + (float64(i)+0.5)*(p.w-p.left-p.right)/float64(p.n)
}

// y maps v to the chart, clamped to its range.
func (p plot) y(v float64) float64 {
	v = max(p.lo, min(p.hi, v))
	return p.top + (p.hi-v)/(p.hi-p.lo)*(p.h-p.top-p.bottom)
}

// niceStep returns a grid step of 1, 2 or 5 times a power of ten giving
// about six lines over span.
func niceStep(span float64) float64 {
	raw := span / 6
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

// frame draws the grid, the axes, the y labels and the x labels (node
// names when few layers, else every k-th index).
func (r *Report) frame(bw *bufio.Writer, p plot, step float64, unit string, format func(float64) string) {
	for v := math.Ceil(p.lo/step) * step; v <= p.hi+step/1e6; v += step {
		y := p.y(v)
		fmt.Fprintf(bw, "<line class=grid x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", p.left, y, p.w-p.right, y)
		fmt.Fprintf(bw, "<text class=lbl x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", p.left-4, y+4, format(v))
	}
	fmt.Fprintf(bw, "<line class=axis x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", p.left, p.top, p.left, p.h-p.bottom)
	fmt.Fprintf(bw, "<line class=axis x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", p.left, p.h-p.bottom, p.w-p.right, p.h-p.bottom)
	fmt.Fprintf(bw, "<text class=lbl x=\"12\" y=\"%.1f\" transform=\"rotate(-90 12 %.1f)\" text-anchor=\"middle\">%s</text>\n", (p.top+p.h-p.bottom)/2, (p.top+p.h-p.bottom)/2, unit)
	every := max(1, (p.n+29)/30)
	for i, l := range r.Layers {
		if i%every != 0 {
			continue
		}
		label := fmt.Sprint(l.Index)
		if p.n <= 30 {
			label = l.Node
			if len(label) > 24 {
				label = "…" + label[len(label)-23:]
			}
		}
		x, y := p.x(i), p.h-p.bottom+10
		fmt.Fprintf(bw, "<text class=lbl x=\"%.1f\" y=\"%.1f\" transform=\"rotate(45 %.1f %.1f)\">%s</text>\n", x, y, x, y, html.EscapeString(label))
	}
}

// sqnrPlot draws activation SQNR as a line (open circles at the top for
// exact layers, red points for the worst ones) over weight SQNR bars.
func (r *Report) sqnrPlot(bw *bufio.Writer, isWorst map[int]bool) {
	lo, hi := 0.0, 10.0
	for _, l := range r.Layers {
		for _, v := range []float64{l.Activation.SQNR, weightSQNR(l)} {
			if !math.IsInf(v, 0) && !math.IsNaN(v) {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	step := niceStep(hi - lo)
	lo, hi = math.Floor(lo/step)*step, math.Ceil(hi/step)*step
	p := plot{w: 960, h: 230 + r.labelRoom(), left: 56, right: 16, top: 28, bottom: r.labelRoom(), lo: lo, hi: hi, n: len(r.Layers)}
	fmt.Fprintf(bw, "<svg viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\">\n", p.w, p.h, p.w, p.h)
	r.frame(bw, p, step, "SQNR (dB)", func(v float64) string { return fmt.Sprintf("%g", v) })
	bar := min(24, max(1, 0.6*(p.w-p.left-p.right)/float64(p.n)))
	for i, l := range r.Layers {
		v := weightSQNR(l)
		if math.IsNaN(v) {
			continue
		}
		y := p.y(v)
		fmt.Fprintf(bw, "<rect class=wbar x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>%s weight %s: %s dB</title></rect>\n",
			p.x(i)-bar/2, y, bar, p.y(p.lo)-y, html.EscapeString(l.Node), html.EscapeString(l.WeightValue), fdb(v))
	}
	var pts []string
	for i, l := range r.Layers {
		if !math.IsNaN(l.Activation.SQNR) {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", p.x(i), p.y(l.Activation.SQNR)))
		}
	}
	fmt.Fprintf(bw, "<polyline class=act points=\"%s\"/>\n", strings.Join(pts, " "))
	for i, l := range r.Layers {
		if math.IsNaN(l.Activation.SQNR) {
			continue
		}
		cls := "pt"
		switch {
		case math.IsInf(l.Activation.SQNR, 1):
			cls = "ptinf"
		case isWorst[l.Index]:
			cls = "ptw"
		}
		fmt.Fprintf(bw, "<circle class=%s cx=\"%.1f\" cy=\"%.1f\" r=\"3\"><title>%d %s (%s): SQNR %s dB, drop %s dB, cosine %s</title></circle>\n",
			cls, p.x(i), p.y(l.Activation.SQNR), l.Index, html.EscapeString(l.Node), html.EscapeString(l.OpType), fdb(l.Activation.SQNR), fdb(l.Drop), fcos(l.Activation.Cosine))
	}
	fmt.Fprintf(bw, "<text class=legend x=\"%.0f\" y=\"16\">— activation SQNR   ■ weight SQNR   ● worst layers   ○ exact (inf)</text>\n", p.left)
	bw.WriteString("</svg>\n")
}

// labelRoom is the height under a chart for its x labels: rotated node
// names for up to 30 layers, else indices.
func (r *Report) labelRoom() float64 {
	if len(r.Layers) > 30 {
		return 44
	}
	room := 30.0
	for _, l := range r.Layers {
		room = max(room, 20+5*float64(min(len(l.Node), 24)))
	}
	return room
}

func weightSQNR(l Layer) float64 {
	if l.Weight == nil {
		return math.NaN()
	}
	return l.Weight.SQNR
}

// cosinePlot draws activation cosine similarity as a line.
func (r *Report) cosinePlot(bw *bufio.Writer) {
	lo := 1.0
	for _, l := range r.Layers {
		if !math.IsNaN(l.Activation.Cosine) {
			lo = min(lo, l.Activation.Cosine)
		}
	}
	lo = max(-1, math.Floor(lo*100)/100-0.01)
	step := niceStep(1 - lo)
	lo = math.Floor(lo/step) * step
	p := plot{w: 960, h: 140 + r.labelRoom(), left: 56, right: 16, top: 16, bottom: r.labelRoom(), lo: lo, hi: 1, n: len(r.Layers)}
	fmt.Fprintf(bw, "<svg viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\">\n", p.w, p.h, p.w, p.h)
	r.frame(bw, p, step, "cosine", func(v float64) string { return fmt.Sprintf("%.3g", v) })
	var pts []string
	for i, l := range r.Layers {
		if !math.IsNaN(l.Activation.Cosine) {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", p.x(i), p.y(l.Activation.Cosine)))
		}
	}
	fmt.Fprintf(bw, "<polyline class=cos points=\"%s\"/>\n", strings.Join(pts, " "))
	for i, l := range r.Layers {
		if math.IsNaN(l.Activation.Cosine) {
			continue
		}
		fmt.Fprintf(bw, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"#2a9d4b\"><title>%s: cosine %s</title></circle>\n",
			p.x(i), p.y(l.Activation.Cosine), html.EscapeString(l.Node), fcos(l.Activation.Cosine))
	}
	bw.WriteString("</svg>\n")
}
