package quantize

import (
	"fmt"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// Opsets the quantized forms need: per-channel QuantizeLinear and
// DequantizeLinear (axis) from 13, int4 types and block_size from 21.
const (
	opsetPerChannel = 13
	opsetBlocked    = 21
)

// ensureOpset raises the model's default-domain opset to at least min,
// rewriting operators whose signature changed on the way.
//
// onnx.UpgradeOpset converts a copy of the model (so a refusal leaves it
// unchanged); the data of large tensors, which no operator conversion
// reads, is held aside meanwhile so the copy does not double the model in
// memory.
func ensureOpset(m *onnx.Model, min int64) error {
	if m.Opset("") >= min {
		return nil
	}
	held := map[string][]byte{}
	eachTensor(m, func(name string, t *onnxpb.TensorProto) {
		if len(t.RawData) >= largeTensor {
			held[name] = t.RawData
			t.RawData = []byte{}
		}
	})
	err := m.UpgradeOpset(min)
	eachTensor(m, func(name string, t *onnxpb.TensorProto) {
		if data, ok := held[name]; ok {
			t.RawData = data
		}
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	return nil
}

// largeTensor is the size from which tensor data is held aside.
const largeTensor = 1 << 16

// eachTensor calls f for every initializer and Constant value tensor of
// every graph, with the name the graph knows it by.
func eachTensor(m *onnx.Model, f func(name string, t *onnxpb.TensorProto)) {
	for _, ref := range m.Graphs() {
		for _, t := range ref.Graph.GetInitializer() {
			f(t.GetName(), t)
		}
		for _, n := range ref.Graph.GetNode() {
			if n.GetOpType() != "Constant" || len(n.GetOutput()) != 1 {
				continue
			}
			for _, a := range n.GetAttribute() {
				if a.GetT() != nil {
					f(n.GetOutput()[0], a.GetT())
				}
			}
		}
	}
}
