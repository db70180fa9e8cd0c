package prune

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/bits"
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
// packed 8 elements to a byte (element i in bit i%8 of byte i/8), as
// "sha256:<hex>". Two weights have the same digest exactly when they have
// the same shape and the same zeros.
func (k *Mask) Digest() string {
	packed := make([]byte, (len(k.Pruned)+7)/8)
	for i, p := range k.Pruned {
		if p {
			packed[i/8] |= 1 << (i % 8)
		}
	}
	return digest(k.Dims, packed)
}

func digest(dims []int64, packed []byte) string {
	h := sha256.New()
	for _, d := range dims {
		binary.Write(h, binary.LittleEndian, d)
	}
	h.Write(packed)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// isZero is 1 for ±0 and 0 otherwise, without a branch: about half the
// values of a pruned weight are zero, in no order a branch predictor can
// follow.
func isZero(v float32) byte {
	return byte((uint64(math.Float32bits(v)<<1) - 1) >> 63)
}

// zeroPattern returns the digest Mask.Digest gives for the zeros of vals
// and their count, in one pass without building the mask: the report
// needs both for every pruned weight, and weights can be large.
func zeroPattern(dims []int64, vals []float32) (string, int) {
	packed := make([]byte, (len(vals)+7)/8)
	zeros := 0
	full := len(vals) / 8 * 8
	for i := 0; i < full; i += 8 {
		var b byte
		for j, v := range vals[i : i+8] {
			b |= isZero(v) << j
		}
		packed[i/8] = b
		zeros += bits.OnesCount8(b)
	}
	for i := full; i < len(vals); i++ {
		if vals[i] == 0 {
			packed[i/8] |= 1 << (i % 8)
			zeros++
		}
	}
	return digest(dims, packed), zeros
}

// Masks returns the zero pattern of every prunable weight of m (the weight
// inputs of Conv, ConvTranspose, Gemm, MatMul, LSTM, GRU and RNN, wherever
// stored) that has at least one zero, by weight name. Read from a pruned
// model, it is the mask pruning left; ApplyMasks puts it back after a
// stage that moved weights.
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
