package prune

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/kompress/kompress/runner/onnx"
)

// Mask is the zero pattern of one weight: the elements pruning removed,
// which later stages (distillation, quantization) must keep at zero.
type Mask struct {
	Weight string
	Dims   []int64
	// Pruned[i] is true where element i (row-major) is zero.
	Pruned []bool
}

// maskOf is the zero pattern of a weight's values.
func maskOf(name string, dims []int64, vals []float32) *Mask {
	k := &Mask{Weight: name, Dims: append([]int64{}, dims...), Pruned: make([]bool, len(vals))}
	for i, v := range vals {
		k.Pruned[i] = v == 0
	}
	return k
}

// Zeros counts the pruned elements.
func (k *Mask) Zeros() int {
	n := 0
	for _, p := range k.Pruned {
		if p {
			n++
		}
	}
	return n
}

// Apply zeroes the pruned elements of vals, the weight's values.
func (k *Mask) Apply(vals []float32) error {
	if len(vals) != len(k.Pruned) {
		return fmt.Errorf("mask of %q has %d elements, the values %d", k.Weight, len(k.Pruned), len(vals))
	}
	for i, p := range k.Pruned {
		if p {
			vals[i] = 0
		}
	}
	return nil
}

// Digest identifies the pattern: sha256 over the dims and the pattern
// packed 8 elements to a byte, as "sha256:<hex>". Two weights have the same
// digest exactly when they have the same shape and the same zeros.
func (k *Mask) Digest() string {
	h := sha256.New()
	for _, d := range k.Dims {
		binary.Write(h, binary.LittleEndian, d)
	}
	packed := make([]byte, (len(k.Pruned)+7)/8)
	for i, p := range k.Pruned {
		if p {
			packed[i/8] |= 1 << (i % 8)
		}
	}
	h.Write(packed)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Masks returns the zero pattern of every prunable weight of m (the weight
// inputs of Conv, ConvTranspose, Gemm and MatMul, wherever stored) that has
// at least one zero, by weight name. Read from a pruned model, it is the
// mask pruning left; ApplyMasks puts it back after a stage that moved
// weights.
func Masks(m *onnx.Model) (map[string]*Mask, error) {
	targets, _ := findTargets(m, &options{})
	masks := map[string]*Mask{}
	for _, t := range targets {
		vals, err := t.w.Float32s()
		if err != nil {
			return nil, fmt.Errorf("weight %q: %w", t.w.Name, err)
		}
		if k := maskOf(t.w.Name, t.w.Dims, vals); k.Zeros() > 0 {
			masks[t.w.Name] = k
		}
	}
	return masks, nil
}

// ApplyMasks zeroes the masked elements of m's weights in place. Every
// mask must name a weight of m with the mask's shape.
func ApplyMasks(m *onnx.Model, masks map[string]*Mask) error {
	byName := map[string]*onnx.Weight{}
	for _, w := range m.Weights() {
		byName[w.Name] = w
	}
	names := make([]string, 0, len(masks))
	for n := range masks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		k := masks[n]
		w := byName[n]
		if w == nil {
			return fmt.Errorf("mask of %q: the model has no such weight", n)
		}
		if fmt.Sprint(w.Dims) != fmt.Sprint(k.Dims) {
			return fmt.Errorf("mask of %q has shape %v, the weight %v", n, k.Dims, w.Dims)
		}
		vals, err := w.Float32s()
		if err != nil {
			return fmt.Errorf("weight %q: %w", n, err)
		}
		if err := k.Apply(vals); err != nil {
			return err
		}
		if err := setValues(w, vals); err != nil {
			return err
		}
	}
	return nil
}
