package report

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

func sweepData() *Data {
	yes, no := true, false
	gate := 0.977
	return &Data{
		Title: "mnist-8.onnx → prune → int8 · 3 variants", Subtitle: "selected v2", Quality: "accuracy",
		Source:     &Point{Name: "source", HasModel: true, Bytes: 26454, Quality: 0.987, HasQuality: true},
		Parameters: []string{"prune.sparsity"},
		Points: []Point{
			{Name: "v1", Values: []string{"0.3"}, HasModel: true, Bytes: 12135, Nonzero: 4204, Quality: 0.987, HasQuality: true, Passed: &yes},
			{Name: "v2", Values: []string{"0.6"}, HasModel: true, Bytes: 12135, Nonzero: 2410, Quality: 0.98, HasQuality: true, Passed: &yes},
			{Name: "v3", Values: []string{"0.9"}, HasModel: true, Bytes: 12135, Nonzero: 627, Quality: 0.357, HasQuality: true, Passed: &no,
				Note: "maxAccuracyDrop: accuracyDrop 0.63 is above 0.01"},
			{Name: "v4", Values: []string{"<b>0.99</b>"}, Note: "BadInput: <script>alert(1)</script>"},
		},
		Selected: "v2", Policy: "smallest",
		Gates:  Gates{MinQuality: &gate, MinQualityLabel: "maxAccuracyDrop 0.01: accuracy ≥ 97.70%", Other: []string{"maxLatency 20ms"}},
		Stages: []Stage{{Name: "source", Bytes: 26454, MACs: -1, LatencyP95: -1}, {Name: "prune", Bytes: 16719, MACs: 786560, LatencyP95: 0.05}, {Name: "int8", Bytes: 12135, MACs: 786560, LatencyP95: 0.07}},
		Layers: []Layer{{Name: "Times212 (Parameter193)", OpType: "Gemm", Sparsity: 0.6, Bits: 8}, {Name: "Convolution28 (Parameter5)", OpType: "Conv", Sparsity: -1, Bits: 32}},
	}
}

func render(t *testing.T, d *Data) string {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, d); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The page holds every plot as inline SVG, marks the selected point, draws
// the Pareto front and the gate, puts a variant far below the gate on the
// bottom edge with its value, and escapes what came from the spec.
func TestRenderSweep(t *testing.T) {
	page := render(t, sweepData())
	for _, want := range []string{
		`<svg id="tradeoff-bytes"`, `<svg id="tradeoff-nonzero"`, `<svg id="stages"`, `<svg id="layers"`,
		`<circle class="point passed selected" data-variant="v2"`, `<circle class="point passed" data-variant="v1"`,
		`<path class="point failed below" data-variant="v3"`, `>v3 (35.70%)</text>`,
		`<polyline class="pareto"`, `<line class="gate"`, `maxAccuracyDrop 0.01: accuracy ≥ 97.70%`, `<rect class="source"`,
		`Gates not drawn: maxLatency 20ms`, `<tr class="selected"><td>&#9654; v2</td><td>0.6</td>`,
		`&lt;b&gt;0.99&lt;/b&gt;`, `&lt;script&gt;alert(1)&lt;/script&gt;`,
		`<rect class="bar bar-bytes"`, `<title>prune: 786.56k</title>`, `n/a`,
		`<rect class="bar bar-bits bits-8"`, `>not pruned</text>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page has no %s", want)
		}
	}
	if strings.Contains(page, "<script") || regexp.MustCompile(`(src|href)="https?:`).MatchString(page) {
		t.Error("the page runs a script or fetches something: it must be self-contained")
	}
	if strings.Contains(page, `data-variant="v4"`) {
		t.Error("a variant without a model is plotted")
	}
	if again := render(t, sweepData()); again != page {
		t.Error("the same data rendered differently")
	}
}

// The Pareto front keeps the points no other point beats on both axes:
// on the nonzero panel v1, v2 and v3 (fewer nonzeros cost accuracy); on
// the bytes panel, where all three are the same size, only v1.
func TestParetoFront(t *testing.T) {
	page := render(t, sweepData())
	front := regexp.MustCompile(`<svg id="(tradeoff-[a-z]+)".*?<polyline class="pareto" points="([^"]*)"`)
	got := map[string]int{}
	for _, m := range front.FindAllStringSubmatch(page, -1) {
		got[m[1]] = len(strings.Fields(m[2]))
	}
	if got["tradeoff-bytes"] != 1 || got["tradeoff-nonzero"] != 3 {
		t.Errorf("points on the front: %v, want 1 on bytes and 3 on nonzero", got)
	}
}

func TestRenderWithoutModels(t *testing.T) {
	page := render(t, &Data{Title: "x", Points: []Point{{Name: "v1"}}})
	for _, want := range []string{"no model with", "no stage results", "no stage reported per-layer details"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page has no %q", want)
		}
	}
}
