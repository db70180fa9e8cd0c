package prune

import (
	"fmt"
	"slices"

	"github.com/kompress/kompress/runner/exchange"
	"github.com/kompress/kompress/runner/onnx"
)

// accCodec encodes a shard's partial XᵀX sums (by target index), which
// the shards of a wave exchange: the rows, then each group's matrix, in
// target order.
func accCodec(targets []*target, biases []*onnx.Weight) exchange.Codec[map[int]*hessianAcc] {
	return exchange.Codec[map[int]*hessianAcc]{
		Encode: func(accs map[int]*hessianAcc) []byte {
			var w exchange.Writer
			ids := make([]int, 0, len(accs))
			for i := range accs {
				ids = append(ids, i)
			}
			slices.Sort(ids)
			w.Int(int64(len(ids)))
			for _, i := range ids {
				a := accs[i]
				w.Int(int64(i))
				w.Int(a.rows)
				w.Int(int64(len(a.h)))
				for _, h := range a.h {
					w.Float64s(h)
				}
			}
			return w.Bytes()
		},
		Decode: func(b []byte) (map[int]*hessianAcc, error) {
			r := exchange.NewReader(b)
			n := r.Len(8)
			accs := make(map[int]*hessianAcc, n)
			for range n {
				i := int(r.Int())
				if i < 0 || i >= len(targets) || accs[i] != nil {
					return nil, fmt.Errorf("target %d is not one of the %d, or comes twice", i, len(targets))
				}
				// Not newHessianAcc: nothing is gathered into a decoded sum,
				// and its matrices are the decoded ones.
				l := targets[i].lay
				a := &hessianAcc{lay: l, cols: l.cols, h: make([][]float64, l.groups)}
				if biases[i] != nil {
					a.cols++
				}
				a.rows = r.Int()
				if groups := r.Len(8); groups != len(a.h) {
					return nil, fmt.Errorf("weight %q: %d groups, the layout has %d", targets[i].w.Name, groups, len(a.h))
				}
				for g := range a.h {
					if a.h[g] = r.Float64s(); len(a.h[g]) != a.cols*a.cols {
						return nil, fmt.Errorf("weight %q: group %d has %d values, want %d", targets[i].w.Name, g, len(a.h[g]), a.cols*a.cols)
					}
				}
				accs[i] = a
			}
			return accs, r.Err()
		},
	}
}
