package structured

import (
	"fmt"
	"math"
)

// magnitudes scores each output channel of s by the L1 or L2 norm of its
// filter: the weight's elements at that index of s.axis.
func magnitudes(s *source, crit Criterion) ([]float64, error) {
	vals, err := s.weight.Float32s()
	if err != nil {
		return nil, fmt.Errorf("weight %q of %s: %w", s.weight.Name, s.label, err)
	}
	dims := s.weight.Dims
	outer, size, inner := int(prod(dims[:s.axis])), int(dims[s.axis]), int(prod(dims[s.axis+1:]))
	scores := make([]float64, size)
	for o := range outer {
		for c := range size {
			row := vals[(o*size+c)*inner : (o*size+c+1)*inner]
			for _, v := range row {
				if crit == L2 {
					scores[c] += float64(v) * float64(v)
				} else {
					scores[c] += math.Abs(float64(v))
				}
			}
		}
	}
	if crit == L2 {
		for c := range scores {
			scores[c] = math.Sqrt(scores[c])
		}
	}
	return scores, nil
}
