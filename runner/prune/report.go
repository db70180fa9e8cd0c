package prune

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kompress/kompress/runner/fold"
	"github.com/kompress/kompress/runner/prune/structured"
)

// Report says what Prune did: every pruned weight with its sparsity and
// mask, every floating-point weight left alone with the reason.
type Report struct {
	Method Method `json:"method"`
	// Sparsity is the target fraction removed (unstructured methods);
	// Pattern the N:M pattern kept (nm, hessian N:M).
	Sparsity float64   `json:"sparsity,omitempty"`
	Pattern  string    `json:"pattern,omitempty"`
	Scope    Scope     `json:"scope,omitempty"`
	Storage  Storage   `json:"storage,omitempty"`
	Layers   []Layer   `json:"layers,omitempty"`
	Skipped  []Skipped `json:"skipped,omitempty"`
	// Folded lists weights the model computed at run time from constants
	// alone, computed once and pruned as initializers.
	Folded []fold.Folded `json:"folded,omitempty"`
	// Params and Zeros count the elements of the pruned weights; Achieved
	// is Zeros / Params.
	Params   int64   `json:"params"`
	Zeros    int64   `json:"zeros"`
	Achieved float64 `json:"achievedSparsity"`
	// Warnings point at settings that hurt the result (too little
	// calibration data) and at results that need recovery.
	Warnings []string `json:"warnings,omitempty"`
	// NeedsRecovery says the pruned model strays far enough from the
	// source that it should be fine-tuned (a Distill stage) before use:
	// structured pruning whose outputs keep a cosine below 0.99 to the
	// source's, and entropy pruning always (Luo &
	// Wu fine-tune after pruning; the criterion does not look at what a
	// channel contributes).
	NeedsRecovery bool `json:"needsRecovery,omitempty"`
	// Hessian holds the cost of hessian pruning.
	Hessian *HessianStats `json:"hessian,omitempty"`
	// Seconds is the wall time of the whole method.
	Seconds float64 `json:"seconds"`
	// Structured is the report of the structured and entropy methods
	// (package runner/prune/structured): channels removed per layer and
	// group, and what could not be removed and why.
	Structured *structured.Report `json:"structured,omitempty"`
}

// Layer is one pruned weight.
type Layer struct {
	// Name is the weight; Node and OpType its (first) consumer.
	Name   string  `json:"name"`
	Node   string  `json:"node"`
	OpType string  `json:"opType"`
	Shape  []int64 `json:"shape"`
	Params int64   `json:"params"`
	Zeros  int64   `json:"zeros"`
	// Sparsity is Zeros / Params after pruning.
	Sparsity float64 `json:"sparsity"`
	// Mask describes which weights went; MaskDigest identifies the zero
	// pattern exactly (Mask.Digest of the pruned weight), so a later stage
	// can check it kept the mask.
	Mask       string `json:"mask"`
	MaskDigest string `json:"maskDigest"`
	// Dense counts weights an N:M pattern left dense because the input
	// dimension is not a multiple of M.
	Dense int64 `json:"dense,omitempty"`
	// Loss is hessian pruning's estimate of the squared output error the
	// layer took on (SparseGPT's sum of w²/[H⁻¹]ᵢᵢ / 2).
	Loss float64 `json:"loss,omitempty"`
	// Hessian pruning: CalibrationRows is the number of rows of X (samples
	// times positions) H was built from; ExactRefit says the kept weights
	// were re-solved exactly for the mask after the SparseGPT sweep; Bias
	// names the bias updated along with the weight.
	CalibrationRows int64  `json:"calibrationRows,omitempty"`
	ExactRefit      bool   `json:"exactRefit,omitempty"`
	Bias            string `json:"bias,omitempty"`
	// Stored is how the weight was written: dense or sparse.
	Stored Storage `json:"stored"`
}

// Skipped is a floating-point weight left dense, and why.
type Skipped struct {
	Name   string `json:"name"`
	Node   string `json:"node,omitempty"`
	OpType string `json:"opType,omitempty"`
	Params int64  `json:"params"`
	Reason Reason `json:"reason"`
	// Detail adds specifics (the operator and input, the shape).
	Detail string `json:"detail,omitempty"`
}

// HessianStats is what hessian pruning cost.
type HessianStats struct {
	// Samples is the number of calibration samples; Passes how many times
	// the calibration set was run (once per wave of layers whose inputs
	// depend on earlier pruned layers).
	Samples int `json:"samples"`
	Passes  int `json:"passes"`
	// CalibrationSeconds: running the model (or its blocks, to calibrate,
	// capture and propagate) and accumulating XᵀX; SolveSeconds: the
	// Cholesky factorizations and the pruning sweeps. With layer workers
	// (parallelism.layers) both sum the workers' times.
	CalibrationSeconds float64 `json:"calibrationSeconds"`
	SolveSeconds       float64 `json:"solveSeconds"`
	// Blocks is the number of blocks the model was cut into and processed
	// one at a time (runner/layerwise): Passes then counts passes of one
	// block. WholeModel says why the model could not be cut and ran whole
	// once per wave instead.
	Blocks     int    `json:"blocks,omitempty"`
	WholeModel string `json:"wholeModel,omitempty"`
	// SecondsPerMParams and SecondsPerSample divide the whole time by the
	// pruned parameters (in millions) and by the samples.
	SecondsPerMParams float64 `json:"secondsPerMParams"`
	SecondsPerSample  float64 `json:"secondsPerSample"`
}

// Summary is one line for logs and result messages.
func (r *Report) Summary() string {
	if s := r.Structured; s != nil {
		line := fmt.Sprintf("%s %.4g%%: output channels %d -> %d, parameters %d -> %d, %d coupled groups, %d tensors kept whole, output cosine %.4f",
			r.Method, 100*r.Sparsity, s.ChannelsBefore, s.ChannelsAfter, s.ParamsBefore, s.ParamsAfter, len(s.Groups), len(s.Protected), s.Cosine)
		if r.NeedsRecovery {
			line += "; needs recovery (a Distill stage)"
		}
		return line
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s", r.Method)
	if r.Pattern != "" {
		fmt.Fprintf(&b, " %s", r.Pattern)
	} else if r.Sparsity > 0 {
		fmt.Fprintf(&b, " %.4g%%", 100*r.Sparsity)
	}
	fmt.Fprintf(&b, ": %d weights pruned, %d of %d elements zero (%.2f%%)", len(r.Layers), r.Zeros, r.Params, 100*r.Achieved)
	if sparse := r.storedSparse(); sparse > 0 {
		fmt.Fprintf(&b, ", %d stored sparse", sparse)
	}
	if len(r.Skipped) > 0 {
		by := map[Reason]int{}
		for _, s := range r.Skipped {
			by[s.Reason]++
		}
		reasons := make([]string, 0, len(by))
		for reason, n := range by {
			reasons = append(reasons, fmt.Sprintf("%s: %d", reason, n))
		}
		sort.Strings(reasons)
		fmt.Fprintf(&b, "; %d left dense (%s)", len(r.Skipped), strings.Join(reasons, ", "))
	}
	if h := r.Hessian; h != nil {
		fmt.Fprintf(&b, "; %d calibration samples, %d passes, %.3g s per million parameters", h.Samples, h.Passes, h.SecondsPerMParams)
	}
	return b.String()
}

func (r *Report) storedSparse() int {
	n := 0
	for _, l := range r.Layers {
		if l.Stored == Sparse {
			n++
		}
	}
	return n
}
