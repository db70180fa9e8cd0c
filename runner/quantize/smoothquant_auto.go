package quantize

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/kompress/kompress/runner/onnx"
)

// Alpha auto-tuning (SmoothQuant's "auto" alpha, as Intel Neural
// Compressor's smooth_quant.py searches it): no single alpha suits every
// layer of a model, so with SmoothQuantOptions.Auto each activation gets
// the alpha of autoAlphas that minimises its layers' output error once
// quantized, measured on rows of the calibration activations kept while
// the channel maxima are collected. The candidate "no migration" (s = 1)
// is measured too: an activation no alpha helps is left as it is, and
// the report says so.

// autoAlphas is the grid searched, INC's default (alpha_min 0.1 ... 1.0,
// step 0.1; 0 would ignore the activations altogether).
var autoAlphas = []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0}

const (
	// autoRowStride keeps one activation row in autoRowStride, and at
	// most autoMaxRows per activation: rows spread over the calibration
	// batches (tokens of different positions and samples), a few MB for
	// a transformer's widest activation.
	autoRowStride = 8
	autoMaxRows   = 128
	// autoMaxCols bounds the output columns the error is measured on
	// (evenly spaced): the relative error over a strided subset of a
	// layer's outputs estimates the whole at a fraction of the work.
	autoMaxCols = 256
)

// rowSampler keeps every autoRowStride-th row of an activation, up to
// autoMaxRows, in calibration order (deterministic).
type rowSampler struct {
	seen int
	rows [][]float32
}

func (r *rowSampler) add(data []float32, k int) {
	for i := 0; i+k <= len(data) && len(r.rows) < autoMaxRows; i += k {
		if r.seen%autoRowStride == 0 {
			r.rows = append(r.rows, append([]float32(nil), data[i:i+k]...))
		}
		r.seen++
	}
}

// alphaChoice is the search's outcome for one activation: the best alpha
// (0: no migration) and the error with it and with none.
type alphaChoice struct {
	alpha            float64
	err, errNoSmooth float64
}

// chooseAlpha measures each alpha of the grid, and no migration, on the
// sampled rows through every layer reading the activation, and returns
// the one of the least summed relative error.
func chooseAlpha(layers []smoothLayer, xmax []float32, rows [][]float32, perChannel bool) (alphaChoice, error) {
	ws := make([][]float32, len(layers))
	for i, l := range layers {
		w, err := floatData(l.weight)
		if err != nil {
			return alphaChoice{}, err
		}
		ws[i] = w
	}
	candidates := append([]float64{0}, autoAlphas...)
	errs := make([]float64, len(candidates))
	var firstErr error
	var mu sync.Mutex
	parallel(len(candidates), func(c int) {
		s := make([]float32, len(xmax))
		for j := range s {
			s[j] = 1
		}
		if candidates[c] > 0 {
			var err error
			if s, err = smoothScales(xmax, layers, candidates[c]); err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
				return
			}
		}
		for i, l := range layers {
			errs[c] += quantizedError(l, ws[i], s, xmax, rows, perChannel)
		}
	})
	if firstErr != nil {
		return alphaChoice{}, firstErr
	}
	best := 0
	for c := range candidates {
		if errs[c] < errs[best] {
			best = c
		}
	}
	return alphaChoice{alpha: candidates[best], err: errs[best], errNoSmooth: errs[0]}, nil
}

// skipUnhelped reports the layers of an activation the search left as it
// was: no alpha lowered their quantized error.
func skipUnhelped(r *SmoothQuantReport, layers []smoothLayer, c alphaChoice) {
	for _, l := range layers {
		r.Skipped = append(r.Skipped, SmoothSkipped{Node: onnx.Label(l.node), OpType: l.node.GetOpType(), Weight: l.weight.name,
			Reason: fmt.Sprintf("alpha auto: no alpha of 0.1-1.0 lowered its input's layers' quantized error (%.3g unmigrated)", c.errNoSmooth)})
	}
}

// quantizedError is the relative error ‖Q(X/s)·Q(diag(s)W) − XW‖² / ‖XW‖²
// of one layer on the sampled rows X, over a strided subset of its output
// columns: the activation rounded with the one scale its calibrated range
// (max_j xmax_j/s_j, symmetric) gives over 255 levels, the weight to int8
// per output column (per tensor without perChannel), as static
// quantization rounds them.
func quantizedError(l smoothLayer, w, s, xmax []float32, rows [][]float32, perChannel bool) float64 {
	k, n := l.dims()
	cols := strided(n, autoMaxCols)
	wq := quantizeScaledColumns(l, w, s, cols, perChannel)
	var amax float64
	for j, x := range xmax {
		amax = max(amax, float64(x)/float64(s[j]))
	}
	astep := 2 * amax / 255
	xq := make([]float64, k)
	var num, den float64
	for _, row := range rows {
		for j, x := range row {
			v := float64(x) / float64(s[j])
			if astep > 0 {
				v = math.Round(v/astep) * astep
			}
			xq[j] = v
		}
		for c, col := range cols {
			var ref, got float64
			for j := range k {
				wv := float64(w[l.index(j, col)])
				ref += float64(row[j]) * wv
				got += xq[j] * wq[c*k+j]
			}
			num += (got - ref) * (got - ref)
			den += ref * ref
		}
	}
	if den == 0 {
		return 0
	}
	return num / den
}

// quantizeScaledColumns returns the chosen columns of diag(s)·W rounded
// to int8, symmetric, column c's K values at [c*K, (c+1)*K).
func quantizeScaledColumns(l smoothLayer, w, s []float32, cols []int, perChannel bool) []float64 {
	k, n := l.dims()
	scaled := func(j, col int) float64 { return float64(w[l.index(j, col)]) * float64(s[j]) }
	colMax := func(col int) float64 {
		var m float64
		for j := range k {
			m = max(m, math.Abs(scaled(j, col)))
		}
		return m
	}
	var tensorMax float64
	if !perChannel {
		for col := range n {
			tensorMax = max(tensorMax, colMax(col))
		}
	}
	out := make([]float64, len(cols)*k)
	for c, col := range cols {
		m := tensorMax
		if perChannel {
			m = colMax(col)
		}
		step := m / 127
		for j := range k {
			v := scaled(j, col)
			if step > 0 {
				v = math.Round(v/step) * step
			}
			out[c*k+j] = v
		}
	}
	return out
}

// dims is the layer's input channels K and output columns N.
func (l smoothLayer) dims() (int, int) {
	d := l.weight.dims()
	if l.transB {
		return int(d[1]), int(d[0])
	}
	return int(d[0]), int(d[1])
}

// index is the position in the row-major weight of input channel j and
// output column col.
func (l smoothLayer) index(j, col int) int {
	k, n := l.dims()
	if l.transB {
		return col*k + j
	}
	return j*n + col
}

// strided is up to most indices of [0, n), evenly spaced.
func strided(n, most int) []int {
	if n <= most {
		most = n
	}
	out := make([]int, most)
	for i := range out {
		out[i] = i * n / most
	}
	return out
}

// parallel runs f(0..n-1) on one goroutine per core, through
// parallelRanges (a panic is raised again on the caller).
func parallel(n int, f func(int)) {
	workers := min(n, runtime.GOMAXPROCS(0))
	rs := make([][2]int, workers)
	for i := range rs {
		rs[i] = [2]int{n * i / workers, n * (i + 1) / workers}
	}
	parallelRanges(rs, func(_ int, r [2]int) {
		for i := r[0]; i < r[1]; i++ {
			f(i)
		}
	})
}
