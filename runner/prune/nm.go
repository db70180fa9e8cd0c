package prune

import "fmt"

// nm keeps the o.n largest |w| of every o.m consecutive weights along each
// weight's input dimension (see layout) and zeroes the rest. Columns left
// over where the dimension is not a multiple of m stay dense. It returns
// each weight's mask description and how many weights stayed dense.
func nm(vals [][]float32, lays []*layout, o *options, progress func(done int)) ([]string, []int64) {
	masks := make([]string, len(vals))
	dense := make([]int64, len(vals))
	scores, idx := make([]float64, o.m), make([]int, o.m)
	for t, v := range vals {
		l := lays[t]
		starts, rest := l.nmGroups(o.m)
		for g := 0; g < l.groups; g++ {
			for r := 0; r < l.rows; r++ {
				for _, c0 := range starts {
					for j := range scores {
						scores[j] = float64(absf(v[l.at(g, r, c0+j)]))
					}
					base := l.at(g, r, c0) * o.m // distinct per group of m
					for _, j := range smallestFew(scores, o.m-o.n, o.seed, base, idx) {
						v[l.at(g, r, c0+j)] = 0
					}
				}
			}
		}
		dense[t] = int64(rest * l.rows * l.groups)
		masks[t] = nmDescription(o, l, rest)
		progress(t + 1)
	}
	return masks, dense
}

// nmDescription describes an N:M mask on a layout.
func nmDescription(o *options, l *layout, rest int) string {
	s := fmt.Sprintf("%d:%d along %s", o.n, o.m, l.columns)
	if rest > 0 {
		s += fmt.Sprintf("; %d of every %d left dense (not a multiple of %d)", rest, l.span, o.m)
	}
	return s
}

func absf(v float32) float32 {
	if v < 0 {
		return -v
	}
	return v
}
