package prune

import (
	"errors"
	"math"

	"gonum.org/v1/gonum/mat"

	hess "github.com/kompress/kompress/runner/hessian"
)

// sweep is one weight matrix for SparseGPT: rows output units, cols input
// features, and the layer Hessian H = 2·XᵀX over the same features.
type sweep struct {
	rows, cols int
	// w is rows×cols, row-major; pruned and updated in place.
	w []float64
	// h is cols×cols, row-major, symmetric; consumed.
	h []float64
	// sparsity is the fraction removed (unstructured); with m > 0 instead
	// n of every m columns starting at each of starts are kept.
	sparsity float64
	n, m     int
	starts   []int
	// fixed is the number of last columns that are never pruned (a bias,
	// the weight of a constant input): they only take compensation.
	fixed int
	// damp is the fraction of mean(diag H) added to the diagonal.
	damp float64
	seed int64
	// block is the number of columns pruned together.
	block int
	// refitBudget bounds the work of re-solving the kept weights exactly
	// after the sweep (see refit); 0 never does.
	refitBudget float64
	// refitted is set when the kept weights were re-solved exactly.
	refitted bool
}

// errNotPositiveDefinite means the dampened Hessian has no Cholesky
// factorization.
var errNotPositiveDefinite = errors.New("the dampened Hessian is not positive definite: raise prune.dampening")

// sparseGPT prunes s.w as SparseGPT's fasterprune does (IST-DASLab/sparsegpt,
// sparsegpt.py), in float64:
//
//  1. Inputs that were always zero (H_ii = 0) get H_ii = 1 and their
//     weights are zeroed: they carry nothing on the calibration data.
//  2. H += damp·mean(diag H)·I; U = the upper Cholesky factor of H⁻¹, so
//     H⁻¹ = UᵀU. Row i of U holds what OBS needs to remove column i once
//     columns before i are fixed: U_ii² is [H⁻¹]_ii of the remaining
//     columns and U_i,j>i / U_ii the compensation direction.
//  3. Columns are swept in blocks. Unstructured: at the start of a block
//     the mask takes the fraction sparsity of smallest w²/U_jj² over the
//     whole block (an adaptive mask, per block not per column). N:M: at
//     the first column of each group, each row drops the m - n smallest
//     w²/U_jj² of the group. Weights that were zero before the sweep (an
//     earlier mask) are dropped too, whatever the budget (not in
//     sparsegpt.py, which prunes dense models).
//  4. Column by column, each row's weight q (0 where masked) replaces w,
//     the error e = (w - q)/U_jj updates the rest of the block,
//     W[:, j+1:] -= e·U[j, j+1:], and after the block the later columns
//     get the block's errors at once: W[:, end:] -= E·U[block, end:].
//
// It returns the summed w²/U_jj²/2 of the pruned weights: the
// increase of the layer's squared output error OBS predicts.
func sparseGPT(s *sweep) (float64, error) {
	rows, cols := s.rows, s.cols
	h, w := s.h, s.w
	u, err := hess.Prepare(h, w, rows, cols, s.damp)
	if err != nil {
		return 0, errNotPositiveDefinite
	}
	w0 := append([]float64{}, w...)
	// Weights already zero (an earlier stage's mask) are pruned whatever
	// their block's budget: the compensation of the weights pruned before
	// them would otherwise bring them back.
	frozen := make([]bool, rows*cols)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols-s.fixed; c++ {
			frozen[r*cols+c] = w[r*cols+c] == 0
		}
	}

	isStart := make([]bool, cols)
	for _, c := range s.starts {
		isStart[c] = true
	}
	var loss float64
	for i1 := 0; i1 < cols; {
		i2 := min(i1+s.block, cols)
		if s.m > 0 {
			// A group straddling the block end goes in this block whole.
			for c := max(i1, i2-s.m+1); c < i2; c++ {
				if isStart[c] {
					i2 = c + s.m
				}
			}
		}
		loss += s.pruneBlock(u, i1, i2, isStart, frozen)
		i1 = i2
	}
	if s.refitCost() <= s.refitBudget {
		s.refitted = true
		return s.refit(w0, h)
	}
	return loss, nil
}

// refitBudget bounds the floating-point operations spent re-solving the
// kept weights of one matrix (about a second on one core).
const refitBudget = 2e9

// refitCost estimates the operations of refit: a Cholesky factorization
// of k×k per row, k the row's kept weights.
func (s *sweep) refitCost() float64 {
	var cost float64
	for r := 0; r < s.rows; r++ {
		k := 0
		for _, v := range s.w[r*s.cols : (r+1)*s.cols] {
			if v != 0 {
				k++
			}
		}
		cost += float64(k) * float64(k) * float64(k) / 3
	}
	return cost
}

// refit re-solves each row's kept weights for the mask the sweep chose,
// exactly: with P the pruned and K the kept columns, the weights that
// minimize the row's output error (w - ŵ)ᵀH(w - ŵ) under ŵ_P = 0 are
// ŵ_K = w_K + H_KK⁻¹ H_KP w_P (w the weights before pruning). The sweep
// only lets each pruned weight be made up for by the columns after it,
// which on layers with few inputs leaves much of the error in place; the
// exact solve costs k³/3 per row, so it runs where that is affordable. It
// returns the loss ½(w - ŵ)ᵀH(w - ŵ) summed over rows.
func (s *sweep) refit(w0, h []float64) (float64, error) {
	cols := s.cols
	sym := func(a, b int) float64 { return h[min(a, b)*cols+max(a, b)] } // upper triangle
	var loss float64
	for r := 0; r < s.rows; r++ {
		w, orig := s.w[r*cols:(r+1)*cols], w0[r*cols:(r+1)*cols]
		var kept, pruned []int
		for c, v := range w {
			if v != 0 {
				kept = append(kept, c)
			} else {
				pruned = append(pruned, c)
			}
		}
		if len(kept) > 0 && len(pruned) > 0 {
			hkk := mat.NewSymDense(len(kept), nil)
			rhs := mat.NewVecDense(len(kept), nil)
			for i, a := range kept {
				for j := i; j < len(kept); j++ {
					hkk.SetSym(i, j, sym(a, kept[j]))
				}
				var v float64
				for _, b := range pruned {
					v += sym(a, b) * orig[b]
				}
				rhs.SetVec(i, v)
			}
			var ch mat.Cholesky
			if !ch.Factorize(hkk) {
				return 0, errNotPositiveDefinite
			}
			var x mat.VecDense
			if err := ch.SolveVecTo(&x, rhs); err != nil {
				return 0, errNotPositiveDefinite
			}
			for i, a := range kept {
				w[a] = orig[a] + x.AtVec(i)
			}
		}
		// ½ dᵀHd with d = w - ŵ.
		for a := 0; a < cols; a++ {
			da := orig[a] - w[a]
			if da == 0 {
				continue
			}
			for b := 0; b < cols; b++ {
				loss += da * sym(a, b) * (orig[b] - w[b]) / 2
			}
		}
	}
	return loss, nil
}

// pruneBlock sweeps columns [i1, i2) and propagates their errors to the
// columns after them; frozen weights are pruned in any case.
func (s *sweep) pruneBlock(u []float64, i1, i2 int, isStart, frozen []bool) float64 {
	rows, cols, count := s.rows, s.cols, i2-i1
	w1 := make([]float64, rows*count)
	for r := 0; r < rows; r++ {
		copy(w1[r*count:(r+1)*count], s.w[r*cols+i1:r*cols+i2])
	}
	mask := make([]bool, rows*count)
	if s.m == 0 {
		scores := make([]float64, rows*count)
		prunable := min(count, max(0, cols-s.fixed-i1))
		for r := 0; r < rows; r++ {
			for j := 0; j < count; j++ {
				d := u[(i1+j)*cols+i1+j]
				scores[r*count+j] = w1[r*count+j] * w1[r*count+j] / (d * d)
				if j >= prunable {
					scores[r*count+j] = math.Inf(1)
				}
			}
		}
		for _, k := range smallestScores(scores, removed(rows*prunable, s.sparsity), s.seed, i1*rows) {
			mask[k] = true
		}
	}
	for r := 0; r < rows; r++ {
		for j := 0; j < count; j++ {
			mask[r*count+j] = mask[r*count+j] || frozen[r*cols+i1+j]
		}
	}
	errs := make([]float64, rows*count)
	scores, idx := make([]float64, s.m), make([]int, s.m)
	var loss float64
	for j := 0; j < count; j++ {
		col := i1 + j
		if s.m > 0 && isStart[col] {
			for r := 0; r < rows; r++ {
				for k := range scores {
					d := u[(col+k)*cols+col+k]
					v := w1[r*count+j+k]
					scores[k] = v * v / (d * d)
				}
				for _, k := range smallestFew(scores, s.m-s.n, s.seed, (r*cols+col)*s.m, idx) {
					mask[r*count+j+k] = true
				}
			}
		}
		d := u[col*cols+col]
		urow := u[col*cols+i1 : col*cols+i2]
		for r := 0; r < rows; r++ {
			row := w1[r*count : (r+1)*count]
			if !mask[r*count+j] {
				continue // kept: no error, nothing to propagate
			}
			e := row[j] / d
			loss += e * e / 2
			errs[r*count+j] = e
			row[j] = 0
			for k := j + 1; k < count; k++ {
				row[k] -= e * urow[k]
			}
		}
	}
	for r := 0; r < rows; r++ {
		copy(s.w[r*cols+i1:r*cols+i2], w1[r*count:(r+1)*count])
	}
	hess.Propagate(s.w, u, errs, rows, cols, i1, i2)
	return loss
}
