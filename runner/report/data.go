// Package report renders report.html: one self-contained page (inline CSS
// and SVG, no script, nothing fetched) that shows what a job's models
// gained and cost. The runner writes one beside every final model and one
// for every sweep; `kompress run --report FILE` writes the same page.
//
// The page has, each as an inline <svg>:
//   - quality (accuracy, or the fidelity metric when the dataset has no
//     labels) against bytes for every variant (one point for a plain
//     chain, plus the source model), with the Pareto front and the gates
//     of spec.acceptance as lines; a second panel puts quality against
//     nonzero parameters, which tells sparse variants apart when their
//     files are the same size;
//   - per-stage bars of bytes, MACs and p95 latency along the chain (the
//     selected variant's chain for a sweep);
//   - per-layer sparsity and bit-width of the final model, from the
//     stages' result.json details.
//
// Elements carry classes and ids a test can look for: svg#tradeoff-bytes,
// svg#tradeoff-nonzero, circle.point (data-variant), circle.selected,
// polyline.pareto, line.gate, svg#stages, svg#layers.
package report

// Data is everything a report shows.
type Data struct {
	// Title names the model: the source's file name and the chain.
	Title string
	// Subtitle says what was selected, or how the chain ended.
	Subtitle string
	// Quality is the metric on the y axis: accuracy, top1Agreement or
	// cosine.
	Quality string
	// Source is the uncompressed model, drawn as a reference point.
	Source *Point
	// Points are the variants (one for a chain), in order.
	Points []Point
	// Parameters are the sweep's "stage.field" names, the columns of the
	// variants table; none for a chain.
	Parameters []string
	// Selected names the selected point; Policy is the rule that chose it.
	Selected string
	Policy   string
	// Gates are spec.acceptance's limits that can be drawn.
	Gates Gates
	// Stages are the bars along the chain.
	Stages []Stage
	// Layers are the final model's weights.
	Layers []Layer
}

// Point is one model on the trade-off plots.
type Point struct {
	Name   string
	Values []string
	// HasModel is false for a variant whose stage failed.
	HasModel bool
	Bytes    int64
	Nonzero  int64
	// Quality is the value of Data.Quality; HasQuality false when it was
	// not measured.
	Quality    float64
	HasQuality bool
	// Passed: nil when not checked (no model, or a chain).
	Passed *bool
	// Note is why the point failed (a stage's failure or missed gates).
	Note string
	// Metrics are the remaining columns of the table.
	AccuracyDrop, LatencyP95Ms string
}

// Gates are the limits drawn on the trade-off plots.
type Gates struct {
	// MinQuality is a horizontal line (source accuracy - maxAccuracyDrop,
	// minTop1Agreement or minCosine, as Quality is); MinQualityLabel says
	// which.
	MinQuality      *float64
	MinQualityLabel string
	// MaxBytes is a vertical line on the bytes panel.
	MaxBytes *int64
	// Other lists gates that are not drawn (latency), as text.
	Other []string
}

// Stage is one bar group: the source or a stage's output. A value below
// zero was not measured (the source's MACs and latency; a stage whose
// result could not be read).
type Stage struct {
	Name       string
	Bytes      int64
	MACs       int64
	LatencyP95 float64
}

// Layer is one weight of the final model.
type Layer struct {
	Name   string
	OpType string
	// Sparsity is the fraction of zeros the last Prune stage left; -1 when
	// no stage pruned it.
	Sparsity float64
	// Bits is the width the last Quantize stage stored it in (8, 4, 16),
	// 32 when it stayed float.
	Bits int
}
