package prune

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strings"
	"testing"

	"github.com/kompress/kompress/hack/modelgen"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/layerwise"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// TestHessianBlockByBlock prunes a GPT-2-style decoder (2 blocks) with
// hessian block by block (runner/layerwise: segments cut at the
// residual stream) and through the whole-model
// path, once per wave: both calibrate every layer on the outputs of the
// layers pruned before it, so each layer's predicted loss agrees to
// float32 noise and the last hidden states are equally close to the
// float model's. The block path runs a segment once per wave and once
// more to propagate, and writes the same model on 1 and 4 shards.
func TestHessianBlockByBlock(t *testing.T) {
	m, calib, held, want := decoderCase(t)
	spec := Options{Method: Hessian, Sparsity: 0.5, CalibrationSamples: 32}

	blocks, br := mustPrune(t, m, spec, calib)
	// 8 waves (c_attn, attn.c_proj, c_fc, mlp.c_proj per block) and 4
	// propagations between 5 segments: in the first block the residual
	// is the embeddings, which no layer changes, so the first cut falls
	// right after c_attn.
	if h := br.Hessian; h.Blocks != 5 || h.WholeModel != "" || h.Passes != 8+4 {
		t.Errorf("block path: %d blocks, %d passes, whole model %q; want 5 blocks, 12 passes", h.Blocks, h.Passes, h.WholeModel)
	}
	defer func(c func(*onnxpb.GraphProto, [][]*onnxpb.NodeProto) (*layerwise.Plan, string)) { cutBlocks = c }(cutBlocks)
	cutBlocks = func(*onnxpb.GraphProto, [][]*onnxpb.NodeProto) (*layerwise.Plan, string) { return nil, "test" }
	whole, wr := mustPrune(t, m, spec, calib)
	cutBlocks = layerwise.Cut
	if h := wr.Hessian; h.Blocks != 0 || h.Passes != 8 || !strings.Contains(strings.Join(wr.Warnings, "\n"), "whole model per wave: test") {
		t.Errorf("whole-model path: %d blocks, %d passes, warnings %q", h.Blocks, h.Passes, wr.Warnings)
	}
	for i, l := range br.Layers {
		w := wr.Layers[i]
		if l.Name != w.Name || math.Abs(l.Loss-w.Loss) > 1e-3*w.Loss {
			t.Errorf("%s: loss %.6g block by block, %.6g whole model", l.Name, l.Loss, w.Loss)
		}
	}
	cb, cw := cosine(want, decoderOutput(t, blocks, held)), cosine(want, decoderOutput(t, whole, held))
	t.Logf("last hidden state cosine: %.5f block by block, %.5f whole model", cb, cw)
	if math.Abs(cb-cw) > 1e-3 || cb < 0.9 {
		t.Errorf("last hidden state cosine %.5f block by block, %.5f whole model", cb, cw)
	}

	digests := map[int]string{}
	for _, shards := range []int{1, 4} {
		spec.Shards = shards
		out, _ := mustPrune(t, m, spec, calib)
		digests[shards] = digestOf(t, out)
	}
	if digests[1] != digests[4] {
		t.Errorf("4 shards wrote sha256:%s, one wrote sha256:%s", digests[4], digests[1])
	}
}

// decoderOutput runs a decoder on every sample of data in one batch.
func decoderOutput(t *testing.T, m *onnx.Model, data *dataset.Dataset) []float32 {
	t.Helper()
	v, err := runAll(t, "decoder", m, data)[modelgen.LastHiddenState].Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// decoderCase is the small decoder, its calibration tokens and its last
// hidden state on held-out tokens.
func decoderCase(t *testing.T) (m *onnx.Model, calib, held *dataset.Dataset, want []float32) {
	orttest.Require(t)
	cfg := modelgen.SmallDecoder
	m = modelgen.Decoder(cfg)
	calib = &dataset.Dataset{Name: "tokens", Arrays: modelgen.DecoderTokens(cfg, 32, 32, 1)}
	held = &dataset.Dataset{Name: "held-out", Arrays: modelgen.DecoderTokens(cfg, 8, 32, 2)}
	return m, calib, held, decoderOutput(t, m, held)
}

// digestOf is the sha256 of a model's bytes.
func digestOf(t *testing.T, m *onnx.Model) string {
	t.Helper()
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestHessianLayerSharding prunes the decoder with every block calibrated
// on the float model's block inputs (OriginalLayerInputs): the blocks are
// independent, and 1, 2 and 3 workers, each pruning its own range of
// blocks, write the same model, byte for byte. The float inputs make a
// different model than propagation does, close to the float model still.
func TestHessianLayerSharding(t *testing.T) {
	m, calib, held, want := decoderCase(t)
	digest := func(spec Options) (string, *onnx.Model, *Report) {
		out, rep := mustPrune(t, m, spec, calib)
		return digestOf(t, out), out, rep
	}
	spec := Options{Method: Hessian, Sparsity: 0.5, CalibrationSamples: 32}
	propagated, _, _ := digest(spec)
	spec.OriginalLayerInputs = true
	one, out, rep := digest(spec)
	if one == propagated {
		t.Errorf("original layer inputs wrote the propagated model, sha256:%s", one)
	}
	// 4 captures between 5 blocks and 8 waves.
	if rep.Hessian.Blocks != 5 || rep.Hessian.Passes != 4+8 {
		t.Errorf("%d blocks, %d passes: want 5 blocks, 12 passes", rep.Hessian.Blocks, rep.Hessian.Passes)
	}
	for _, layers := range []int{2, 3} {
		spec.Layers = layers
		if d, _, _ := digest(spec); d != one {
			t.Errorf("%d layer workers wrote sha256:%s, one wrote sha256:%s", layers, d, one)
		}
	}
	c := cosine(want, decoderOutput(t, out, held))
	t.Logf("last hidden state cosine with the float model's block inputs: %.5f", c)
	if c < 0.9 {
		t.Errorf("last hidden state cosine %.5f, want >= 0.9", c)
	}
	spec.OriginalLayerInputs = false
	if _, _, err := Prune(t.Context(), m, spec, calib, nil); err == nil || !strings.Contains(err.Error(), "parallelism.layers 3: blocks are independent only with parallelism.layerInputs: Original") {
		t.Errorf("layers without original inputs: %v", err)
	}
}
