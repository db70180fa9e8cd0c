package report

import (
	"bytes"
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// MaxLayers bounds the rows of the per-layer plot; the rest are counted.
const MaxLayers = 256

// Render writes the page. The output depends only on d: the same data
// gives the same bytes (reports are content-addressed beside models).
func Render(w io.Writer, d *Data) error {
	v := view{Data: d}
	v.Bytes = scatter("tradeoff-bytes", "model bytes", d, func(p Point) (float64, bool) { return float64(p.Bytes), p.HasModel && p.Bytes > 0 }, true)
	v.Nonzero = scatter("tradeoff-nonzero", "nonzero parameters", d, func(p Point) (float64, bool) { return float64(p.Nonzero), p.HasModel && p.Nonzero > 0 }, false)
	v.StagesSVG = stageBars(d.Stages)
	v.LayersSVG, v.MoreLayers = layerBars(d.Layers)
	v.QualityName = qualityName(d.Quality)
	for _, p := range d.Points {
		v.Rows = append(v.Rows, row(d, p))
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, v); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

type view struct {
	*Data
	QualityName    string
	Bytes, Nonzero template.HTML
	StagesSVG      template.HTML
	LayersSVG      template.HTML
	MoreLayers     int
	Rows           []tableRow
}

type tableRow struct {
	Name, Class, Verdict string
	Values               []string
	Bytes, Nonzero       string
	Quality, Drop, P95   string
	Note                 string
	Selected             bool
}

func row(d *Data, p Point) tableRow {
	r := tableRow{Name: p.Name, Values: p.Values, Note: p.Note, Selected: p.Name == d.Selected, Drop: p.AccuracyDrop, P95: p.LatencyP95Ms}
	switch {
	case !p.HasModel:
		r.Class, r.Verdict = "failed", "failed"
	case p.Passed == nil:
		r.Class, r.Verdict = "", "-"
	case *p.Passed:
		r.Class, r.Verdict = "passed", "passed"
	default:
		r.Class, r.Verdict = "failed", "missed gates"
	}
	if p.HasModel {
		r.Bytes, r.Nonzero = strconv.FormatInt(p.Bytes, 10), strconv.FormatInt(p.Nonzero, 10)
		if p.HasQuality {
			r.Quality = pct(p.Quality)
		}
	}
	return r
}

func qualityName(q string) string {
	switch q {
	case "top1Agreement":
		return "top-1 agreement with the source"
	case "cosine":
		return "output cosine to the source"
	case "":
		return "quality (not measured)"
	}
	return q
}

func pct(f float64) string { return strconv.FormatFloat(100*f, 'f', 2, 64) + "%" }

// esc escapes text for SVG and HTML.
func esc(s string) string { return html.EscapeString(s) }

// Plot geometry.
const (
	plotW, plotH                   = 520, 320
	padL, padR, padT, padB float64 = 64, 24, 16, 46
)

// scale maps [lo, hi] onto [a, b].
type scale struct{ lo, hi, a, b float64 }

func (s scale) at(v float64) float64 {
	if s.hi == s.lo {
		return (s.a + s.b) / 2
	}
	return s.a + (v-s.lo)/(s.hi-s.lo)*(s.b-s.a)
}

// ticks are about n round values covering [lo, hi].
func ticks(lo, hi float64, n int) []float64 {
	if hi <= lo {
		return []float64{lo}
	}
	step := math.Pow(10, math.Floor(math.Log10((hi-lo)/float64(n))))
	for _, m := range []float64{1, 2, 5, 10} {
		if (hi-lo)/(step*m) <= float64(n) {
			step *= m
			break
		}
	}
	var out []float64
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, v)
	}
	return out
}

func humanCount(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', -1, 64) + "G"
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case a >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// scatter draws quality against x for every point with a model, the
// source, the Pareto front (no other point has an x as small and a
// quality as high) and the gates.
func scatter(id, xLabel string, d *Data, x func(Point) (float64, bool), bytesPanel bool) template.HTML {
	type pt struct {
		p    Point
		x, y float64
	}
	var pts []pt
	for _, p := range d.Points {
		if xv, ok := x(p); ok && p.HasQuality {
			pts = append(pts, pt{p, xv, p.Quality})
		}
	}
	var src *pt
	if d.Source != nil {
		if xv, ok := x(*d.Source); ok && d.Source.HasQuality {
			src = &pt{*d.Source, xv, d.Source.Quality}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="%s" class="plot" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s against %s">`,
		id, plotW, plotH, plotW, plotH, esc(qualityName(d.Quality)), esc(xLabel))
	if len(pts) == 0 && src == nil {
		fmt.Fprintf(&b, `<text class="empty" x="%d" y="%d" text-anchor="middle">no model with %s and %s to plot</text></svg>`, plotW/2, plotH/2, esc(qualityName(d.Quality)), esc(xLabel))
		return template.HTML(b.String())
	}
	// The y range covers the models that passed (all of them when none
	// did or nothing is gated), the source and the gate: a variant far
	// below would squash them together, so it is drawn on the bottom edge
	// as a triangle labelled with its value.
	xmax, ylo, yhi := 0.0, math.Inf(1), math.Inf(-1)
	all := append([]pt(nil), pts...)
	if src != nil {
		all = append(all, *src)
	}
	anyPassed := false
	for _, p := range pts {
		anyPassed = anyPassed || p.p.Passed != nil && *p.p.Passed
	}
	for _, p := range all {
		xmax = math.Max(xmax, p.x)
		if !anyPassed || p.p.Passed == nil || *p.p.Passed {
			ylo, yhi = math.Min(ylo, p.y), math.Max(yhi, p.y)
		}
	}
	if g := d.Gates.MinQuality; g != nil {
		ylo, yhi = math.Min(ylo, *g), math.Max(yhi, *g)
	}
	if g := d.Gates.MaxBytes; bytesPanel && g != nil {
		xmax = math.Max(xmax, float64(*g))
	}
	span := yhi - ylo
	if span < 0.01 {
		span = 0.01
	}
	ylo, yhi = math.Max(0, ylo-span*0.25), math.Min(1, yhi+span*0.15)
	if yhi <= ylo {
		ylo = math.Max(0, yhi-0.01)
	}
	xs := scale{0, xmax * 1.1, padL, plotW - padR}
	ys := scale{ylo, yhi, plotH - padB, padT}
	// Axes, grid and ticks.
	fmt.Fprintf(&b, `<g class="axis">`)
	yt := ticks(ylo, yhi, 5)
	decimals := 0
	if len(yt) > 1 {
		decimals = max(0, int(-math.Floor(math.Log10(100*(yt[1]-yt[0])+1e-12))))
	}
	for _, t := range yt {
		y := ys.at(t)
		fmt.Fprintf(&b, `<line class="grid" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/><text x="%.1f" y="%.1f" text-anchor="end">%s</text>`,
			padL, y, plotW-padR, y, padL-6, y+4, strconv.FormatFloat(100*t, 'f', decimals, 64)+"%")
	}
	for _, t := range ticks(0, xmax*1.1, 5) {
		xp := xs.at(t)
		fmt.Fprintf(&b, `<line class="grid" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/><text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`,
			xp, padT, xp, plotH-padB, xp, plotH-padB+16, humanCount(t))
	}
	fmt.Fprintf(&b, `<line class="frame" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/><line class="frame" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`,
		padL, plotH-padB, plotW-padR, plotH-padB, padL, padT, padL, plotH-padB)
	fmt.Fprintf(&b, `<text class="label" x="%.1f" y="%d" text-anchor="middle">%s</text>`, (padL+plotW-padR)/2, plotH-8, esc(xLabel))
	fmt.Fprintf(&b, `<text class="label" transform="translate(14 %.1f) rotate(-90)" text-anchor="middle">%s</text></g>`, (padT+plotH-padB)/2, esc(qualityName(d.Quality)))
	// Gates.
	if g := d.Gates.MinQuality; g != nil {
		y := ys.at(*g)
		fmt.Fprintf(&b, `<line class="gate" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/><text class="gate-label" x="%.1f" y="%.1f">%s</text>`,
			padL, y, plotW-padR, y, padL+6, y+14, esc(d.Gates.MinQualityLabel))
	}
	if g := d.Gates.MaxBytes; bytesPanel && g != nil {
		xp := xs.at(float64(*g))
		fmt.Fprintf(&b, `<line class="gate" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/><text class="gate-label" x="%.1f" y="%.1f">maxBytes %d</text>`,
			xp, padT, xp, plotH-padB, xp+4, padT+12, *g)
	}
	// Pareto front of the variants (and the source).
	var front []pt
	for i, p := range all {
		dominated := false
		for j, q := range all {
			if i != j && q.x <= p.x && q.y >= p.y && (q.x < p.x || q.y > p.y) {
				dominated = true
				break
			}
		}
		if !dominated {
			front = append(front, p)
		}
	}
	sort.SliceStable(front, func(i, j int) bool {
		return front[i].x < front[j].x || front[i].x == front[j].x && front[i].y > front[j].y
	})
	if len(front) > 0 {
		var coords []string
		for _, p := range front {
			coords = append(coords, fmt.Sprintf("%.1f,%.1f", xs.at(p.x), ys.at(math.Max(p.y, ylo))))
		}
		fmt.Fprintf(&b, `<polyline class="pareto" points="%s"/>`, strings.Join(coords, " "))
	}
	// Points: the source, then the variants, the selected one last (on top).
	if src != nil {
		cx, cy := xs.at(src.x), ys.at(src.y)
		fmt.Fprintf(&b, `<rect class="source" x="%.1f" y="%.1f" width="10" height="10"><title>source: %s</title></rect><text class="point-label" x="%.1f" y="%.1f" text-anchor="end">source</text>`,
			cx-5, cy-5, esc(describe(d, src.p)), cx-9, cy+4)
	}
	sort.SliceStable(pts, func(i, j int) bool { return pts[j].p.Name == d.Selected && pts[i].p.Name != d.Selected })
	labelY := map[string]int{}
	for _, p := range pts {
		cls := "point"
		switch {
		case p.p.Passed == nil:
		case *p.p.Passed:
			cls += " passed"
		default:
			cls += " failed"
		}
		if p.p.Name == d.Selected {
			cls += " selected"
		}
		cx, cy := xs.at(p.x), ys.at(p.y)
		label := p.p.Name
		if p.y < ylo {
			// Below the range: a triangle on the bottom edge.
			cy = plotH - padB - 6
			label += " (" + pct(p.y) + ")"
			fmt.Fprintf(&b, `<path class="%s below" data-variant="%s" d="M%.1f %.1f l-6 -9 h12 z"><title>%s</title></path>`, cls, esc(p.p.Name), cx, cy+4, esc(describe(d, p.p)))
		} else {
			fmt.Fprintf(&b, `<circle class="%s" data-variant="%s" cx="%.1f" cy="%.1f" r="6"><title>%s</title></circle>`, cls, esc(p.p.Name), cx, cy, esc(describe(d, p.p)))
		}
		// Labels of points close together stack instead of overlapping.
		key := fmt.Sprintf("%.0f,%.0f", cx/12, cy/12)
		off := labelY[key]
		labelY[key]++
		fmt.Fprintf(&b, `<text class="point-label" x="%.1f" y="%.1f">%s</text>`, cx+10, cy+4+float64(off)*13, esc(label))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func describe(d *Data, p Point) string {
	parts := []string{p.Name}
	for i, v := range p.Values {
		if i < len(d.Parameters) {
			parts = append(parts, d.Parameters[i]+"="+v)
		}
	}
	parts = append(parts, fmt.Sprintf("%d bytes", p.Bytes))
	if p.Nonzero > 0 {
		parts = append(parts, fmt.Sprintf("%d nonzero", p.Nonzero))
	}
	if p.HasQuality {
		parts = append(parts, d.Quality+" "+pct(p.Quality))
	}
	return strings.Join(parts, ", ")
}

// stageBars draws three bar charts side by side: bytes, MACs and p95
// latency of the source and of every stage's output.
func stageBars(stages []Stage) template.HTML {
	const panelW, h = 240, 260
	const top, bottom, left = 28.0, 70.0, 52.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="stages" class="plot" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="bytes, MACs and latency by stage">`,
		3*panelW, h, 3*panelW, h)
	if len(stages) == 0 {
		fmt.Fprintf(&b, `<text class="empty" x="%d" y="%d" text-anchor="middle">no stage results</text></svg>`, 3*panelW/2, h/2)
		return template.HTML(b.String())
	}
	panels := []struct {
		title, class string
		v            func(Stage) float64
		format       func(float64) string
	}{
		{"bytes", "bar-bytes", func(s Stage) float64 { return float64(s.Bytes) }, humanCount},
		{"MACs per sample", "bar-macs", func(s Stage) float64 { return float64(s.MACs) }, humanCount},
		{"p95 latency (ms)", "bar-latency", func(s Stage) float64 { return s.LatencyP95 }, func(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) }},
	}
	for i, p := range panels {
		x0 := float64(i * panelW)
		max := 0.0
		for _, s := range stages {
			max = math.Max(max, p.v(s))
		}
		fmt.Fprintf(&b, `<g class="panel"><text class="label" x="%.1f" y="16" text-anchor="middle">%s</text>`, x0+float64(panelW)/2, esc(p.title))
		ys := scale{0, max * 1.1, h - bottom, top}
		if max == 0 {
			ys.hi = 1
		}
		fmt.Fprintf(&b, `<line class="frame" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, x0+left, h-bottom, x0+float64(panelW)-8, h-bottom)
		slot := (float64(panelW) - left - 8) / float64(len(stages))
		bw := math.Min(36, slot*0.7)
		for j, s := range stages {
			cx := x0 + left + slot*(float64(j)+0.5)
			fmt.Fprintf(&b, `<text class="tick" transform="translate(%.1f %.1f) rotate(-35)" text-anchor="end">%s</text>`, cx+4, h-bottom+14, esc(s.Name))
			if p.v(s) < 0 {
				fmt.Fprintf(&b, `<text class="tick" x="%.1f" y="%.1f" text-anchor="middle">n/a</text>`, cx, h-bottom-4)
				continue
			}
			y := ys.at(p.v(s))
			fmt.Fprintf(&b, `<rect class="bar %s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %s</title></rect><text class="tick" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`,
				p.class, cx-bw/2, y, bw, h-bottom-y, esc(s.Name), p.format(p.v(s)), cx, y-4, p.format(p.v(s)))
		}
		b.WriteString(`</g>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// layerBars draws one row per weight: its sparsity (0-100%) and its
// bit-width (0-32).
func layerBars(layers []Layer) (template.HTML, int) {
	more := 0
	if len(layers) > MaxLayers {
		more = len(layers) - MaxLayers
		layers = layers[:MaxLayers]
	}
	const rowH, nameW, barW, gap = 20.0, 260.0, 200.0, 90.0
	w := nameW + 2*barW + 2*gap
	h := 36 + rowH*float64(len(layers))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="layers" class="plot" xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="sparsity and bit-width by layer">`, w, h, w, h)
	if len(layers) == 0 {
		fmt.Fprintf(&b, `<text class="empty" x="%.0f" y="24" text-anchor="middle">no stage reported per-layer details</text></svg>`, w/2)
		return template.HTML(b.String()), more
	}
	sx, bx := nameW+gap/2, nameW+barW+1.5*gap
	fmt.Fprintf(&b, `<text class="label" x="%.1f" y="16">sparsity</text><text class="label" x="%.1f" y="16">bits</text>`, sx, bx)
	for i, l := range layers {
		y := 28 + rowH*float64(i)
		name := l.Name
		if len(name) > 40 {
			name = "…" + name[len(name)-39:]
		}
		fmt.Fprintf(&b, `<text class="tick" x="%.1f" y="%.1f" text-anchor="end"><title>%s (%s)</title>%s</text>`, nameW, y+12, esc(l.Name), esc(l.OpType), esc(name))
		fmt.Fprintf(&b, `<rect class="track" x="%.1f" y="%.1f" width="%.1f" height="12"/>`, sx, y+2, barW)
		if l.Sparsity >= 0 {
			fmt.Fprintf(&b, `<rect class="bar bar-sparsity" x="%.1f" y="%.1f" width="%.1f" height="12"><title>%s sparsity %s</title></rect><text class="tick" x="%.1f" y="%.1f">%s</text>`,
				sx, y+2, barW*l.Sparsity, esc(l.Name), pct(l.Sparsity), sx+barW+4, y+12, pct(l.Sparsity))
		} else {
			fmt.Fprintf(&b, `<text class="tick" x="%.1f" y="%.1f">not pruned</text>`, sx+barW+4, y+12)
		}
		fmt.Fprintf(&b, `<rect class="track" x="%.1f" y="%.1f" width="%.1f" height="12"/>`, bx, y+2, barW)
		fmt.Fprintf(&b, `<rect class="bar bar-bits bits-%d" x="%.1f" y="%.1f" width="%.1f" height="12"><title>%s %d bits</title></rect><text class="tick" x="%.1f" y="%.1f">%d</text>`,
			l.Bits, bx, y+2, barW*float64(l.Bits)/32, esc(l.Name), l.Bits, bx+barW+4, y+12, l.Bits)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()), more
}

var page = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kompress report: {{.Title}}</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2433; margin: 24px auto; max-width: 1120px; padding: 0 16px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
p.sub { color: #4a5468; margin: 0 0 16px; }
.plots { display: flex; flex-wrap: wrap; gap: 16px; }
svg.plot { background: #fbfcfe; border: 1px solid #e3e7ef; border-radius: 6px; }
svg text { font: 11px system-ui, sans-serif; fill: #39424f; }
svg .label { font-size: 12px; fill: #1d2433; }
svg .grid { stroke: #e8ecf3; } svg .frame { stroke: #8a94a6; }
svg .pareto { fill: none; stroke: #6c63ff; stroke-width: 1.5; stroke-dasharray: 5 3; }
svg .gate { stroke: #d62839; stroke-width: 1.5; stroke-dasharray: 2 3; } svg .gate-label { fill: #d62839; }
svg .point { fill: #8a94a6; stroke: #fff; stroke-width: 1.5; } svg .point.passed { fill: #2a9d8f; } svg .point.failed { fill: #e76f51; }
svg .point.selected { stroke: #1d2433; stroke-width: 3; } svg circle.point.selected { r: 8; }
svg .source { fill: #adb5c4; }
svg .track { fill: #eef1f6; } svg .bar-bytes { fill: #457b9d; } svg .bar-macs { fill: #6c63ff; } svg .bar-latency { fill: #2a9d8f; }
svg .bar-sparsity { fill: #e9a23b; } svg .bar-bits { fill: #457b9d; } svg .bits-4 { fill: #2a9d8f; } svg .bits-16 { fill: #8a94a6; } svg .bits-32 { fill: #adb5c4; }
table { border-collapse: collapse; margin-top: 8px; } th, td { padding: 4px 10px; border-bottom: 1px solid #e3e7ef; text-align: right; }
th:first-child, td:first-child, td.note { text-align: left; } td.note { color: #4a5468; max-width: 420px; }
tr.selected td { font-weight: 600; background: #eef6f5; } td.passed { color: #1f7a6f; } td.failed { color: #c0392b; }
.legend span { margin-right: 14px; } .dot { display: inline-block; width: 10px; height: 10px; border-radius: 5px; margin-right: 4px; vertical-align: -1px; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p class="sub">{{.Subtitle}}</p>
<h2>{{.QualityName}} against size</h2>
<p class="legend"><span><i class="dot" style="background:#2a9d8f"></i>passed</span><span><i class="dot" style="background:#e76f51"></i>missed a gate</span><span><i class="dot" style="background:#8a94a6"></i>not gated</span><span><i class="dot" style="background:#fff;border:3px solid #1d2433;width:6px;height:6px"></i>selected{{if .Policy}} ({{.Policy}}){{end}}</span><span style="color:#6c63ff">- - Pareto front</span>{{if or .Gates.MinQuality .Gates.MaxBytes}}<span style="color:#d62839">··· gates</span>{{end}}</p>
<div class="plots">{{.Bytes}}{{.Nonzero}}</div>
{{if .Gates.Other}}<p class="sub">Gates not drawn: {{range $i, $g := .Gates.Other}}{{if $i}}; {{end}}{{$g}}{{end}}</p>{{end}}
<table id="variants">
<tr><th>{{if .Parameters}}variant{{else}}model{{end}}</th>{{range .Parameters}}<th>{{.}}</th>{{end}}<th>gates</th><th>bytes</th><th>nonzero params</th><th>{{.Quality}}</th><th>accuracy drop</th><th>p95 ms</th><th>note</th></tr>
{{range .Rows}}<tr{{if .Selected}} class="selected"{{end}}><td>{{if .Selected}}&#9654; {{end}}{{.Name}}</td>{{range .Values}}<td>{{.}}</td>{{end}}<td class="{{.Class}}">{{.Verdict}}</td><td>{{.Bytes}}</td><td>{{.Nonzero}}</td><td>{{.Quality}}</td><td>{{.Drop}}</td><td>{{.P95}}</td><td class="note">{{.Note}}</td></tr>
{{end}}</table>
<h2>Bytes, MACs and latency by stage{{if .Selected}} ({{.Selected}}){{end}}</h2>
{{.StagesSVG}}
<h2>Sparsity and bit-width by layer{{if .Selected}} ({{.Selected}}){{end}}</h2>
{{.LayersSVG}}
{{if .MoreLayers}}<p class="sub">and {{.MoreLayers}} more layers</p>{{end}}
</body>
</html>
`))
