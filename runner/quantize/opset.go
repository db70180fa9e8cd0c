package quantize

import (
	"github.com/kompress/kompress/runner/onnx"
)

// Opsets the quantized forms need: per-channel QuantizeLinear and
// DequantizeLinear (axis) from 13, int4 types and block_size from 21.
const (
	opsetPerChannel = 13
	opsetBlocked    = 21
)

// ensureOpset raises the model's default-domain opset to at least min,
// rewriting operators whose signature changed on the way.
func ensureOpset(m *onnx.Model, min int64) error {
	if m.Opset("") >= min {
		return nil
	}
	return m.UpgradeOpset(min)
}
