package structured

import (
	"fmt"
	"math"

	"github.com/kompress/kompress/runner/onnx"
)

// reconstructionScores scores channels by what removing them costs the
// layers that read them, measured on the calibration data: a layer that
// mixes input channels (Conv, ConvTranspose, Gemm, MatMul) computes
// y = Σ_p W_p·x_p, so dropping input position p (with its mean folded
// into the bias by bias correction) changes y by W_p·(x_p - mean_p), an
// error of expected squared norm ‖W_p‖²·Var(x_p) when positions vary
// independently. Divided by the sum over all of the layer's positions,
// it is the share of the layer's output variance the channel carries —
// the reconstruction error of channel pruning (He et al. 2017, Luo et
// al.'s ThiNet) in closed form, one number per channel, comparable
// between layers whatever their scale. A class's score is the sum of its
// shares over every layer that reads its channels; a class no mixing
// layer reads scores +Inf (nothing measured its worth, so it goes last).
// Without bias correction the removed channel's mean is lost too, and
// E[x_p²] replaces the variance.
//
// The scores are spread evenly over the class's channels, so that the
// class score (the sum of its channels') is the share.
func (a *analysis) reconstructionScores(mom map[string]*moments) ([][]float64, error) {
	share := map[int32]float64{}
	for _, e := range a.edits {
		if !e.mixing {
			continue
		}
		lay, _ := onnx.LayerOf(e.node)
		x := input(e.node, lay.Data)
		mx := mom[x]
		w := a.weight(e.node, e.input)
		vals, err := w.Float32s()
		if err != nil {
			return nil, fmt.Errorf("weight %q: %w", w.Name, err)
		}
		dims := w.Dims
		outer, size, inner := int(prod(dims[:e.axis])), int(dims[e.axis]), int(prod(dims[e.axis+1:]))
		if mx == nil || len(mx.mean) != size || size != e.lay.size() {
			continue // not measured: no share
		}
		energy := make([]float64, size)
		total := 0.0
		for p := range size {
			sq := 0.0
			for o := range outer {
				for _, v := range vals[(o*size+p)*inner : (o*size+p+1)*inner] {
					sq += float64(v) * float64(v)
				}
			}
			spread := mx.variance(p)
			if a.opts.NoBiasCorrection {
				spread = mx.meanSq[p]
			}
			energy[p] = sq * spread
			total += energy[p]
		}
		for p, en := range energy {
			root := a.cls.find(e.lay.ids[p/e.lay.block])
			if total > 0 {
				share[root] += en / total
			} else {
				share[root] += 0 // a layer whose inputs never vary: nothing to lose
			}
		}
	}
	members := map[int32]int{}
	for _, s := range a.sources {
		for _, id := range s.ids {
			members[a.cls.find(id)]++
		}
	}
	scores := make([][]float64, len(a.sources))
	for i, s := range a.sources {
		scores[i] = make([]float64, len(s.ids))
		for c, id := range s.ids {
			root := a.cls.find(id)
			v, ok := share[root]
			if !ok {
				v = math.Inf(1)
			}
			scores[i][c] = v / float64(members[root])
		}
	}
	return scores, nil
}
