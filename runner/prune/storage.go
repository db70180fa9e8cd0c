package prune

import (
	"github.com/kompress/kompress/runner/onnx"
)

// store writes the pruned weights as sparse initializers when the options
// ask for sparse storage and that is smaller, and returns the names
// stored sparse. Indices are compact (int8/int16/int32 offsets, which
// ONNX Runtime reads in the main graph): with int64 indices a weight must
// be more than two thirds zeros before sparse storage pays at all. Inside
// subgraphs ONNX Runtime checks sparse initializers as the ONNX checker
// does and wants int64 indices, so those weights get them.
func store(m *onnx.Model, targets []*target, o *options) (map[string]bool, error) {
	stored := map[string]bool{}
	if o.storage != Sparse {
		return stored, nil
	}
	var main, sub []string
	for _, t := range targets {
		if t.w.Graph.Path == "" {
			main = append(main, t.w.Name)
		} else {
			sub = append(sub, t.w.Name)
		}
	}
	for _, part := range []struct {
		names   []string
		indices onnx.SparseIndices
	}{{main, onnx.CompactIndices}, {sub, onnx.LinearIndices}} {
		if len(part.names) == 0 {
			continue
		}
		converted, err := m.Sparsify(part.names, part.indices)
		if err != nil {
			return nil, err
		}
		for _, n := range converted {
			stored[n] = true
		}
	}
	return stored, nil
}
