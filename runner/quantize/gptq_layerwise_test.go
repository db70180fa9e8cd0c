package quantize

import (
	"context"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/kompress/kompress/hack/modelgen"
	"github.com/kompress/kompress/runner/compare"
	"github.com/kompress/kompress/runner/layerwise"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// TestGPTQBlockByBlock rounds a small decoder with GPTQ block by block
// (runner/layerwise: each layer calibrated on the outputs of the rounded
// layers before it) and, with no cut, on one pass of the float model
// (with a warning saying so): both round every linear layer, and the
// block path's last hidden state is at least as close to the float
// model's. The block path writes the same model on 1 and 4 shards.
func TestGPTQBlockByBlock(t *testing.T) {
	ctx := context.Background()
	cfg, m, calib, _, in, want := gptqDecoder(t)
	run := func(shards int) ([]float32, [32]byte, []string) {
		t.Helper()
		q, rep, err := Quantize(ctx, m, Options{
			Method: WeightOnly, Bits: 4, BlockSize: 32, Format: MatMulNBits, SensitiveLayers: SensitiveInt4, Algorithm: GPTQ,
			Calibration: CalibrationOptions{Shards: shards},
		}, calib.batches(t))
		if err != nil {
			t.Fatal(err)
		}
		rounded := 0
		for _, qt := range rep.Quantized {
			if qt.Algorithm == string(GPTQ) {
				rounded++
			}
		}
		if rounded != 4*cfg.Layers {
			t.Errorf("%d weights rounded by GPTQ, want %d", rounded, 4*cfg.Layers)
		}
		got, err := orttest.Run(t, q, in)[modelgen.LastHiddenState].Float32s()
		if err != nil {
			t.Fatal(err)
		}
		b, err := q.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return got, sha256.Sum256(b), rep.Warnings
	}
	blocks, one, warnings := run(1)
	if len(warnings) != 0 {
		t.Errorf("block path warnings: %q", warnings)
	}
	if _, four, _ := run(4); four != one {
		t.Errorf("4 shards wrote sha256:%x, one wrote sha256:%x", four, one)
	}
	defer func(c func(*onnxpb.GraphProto, [][]*onnxpb.NodeProto) (*layerwise.Plan, string)) { cutBlocks = c }(cutBlocks)
	cutBlocks = func(*onnxpb.GraphProto, [][]*onnxpb.NodeProto) (*layerwise.Plan, string) { return nil, "test" }
	whole, _, warnings := run(1)
	if w := strings.Join(warnings, "\n"); !strings.Contains(w, "gptq calibrated every layer on the float model in one pass, not block by block: test") {
		t.Errorf("whole-model path warnings: %q", warnings)
	}
	cb, cw := compare.Cosine(want, blocks), compare.Cosine(want, whole)
	t.Logf("last hidden state cosine: %.4f block by block, %.4f float model in one pass", cb, cw)
	if cb < cw-0.002 {
		t.Errorf("last hidden state cosine %.4f block by block, %.4f with the float model's Hessians", cb, cw)
	}
}

// TestGPTQLayerSharding rounds the decoder with every block calibrated on
// the float model's block inputs (OriginalLayerInputs): 1 and 3 workers,
// each rounding its own range of blocks, write the same model.
func TestGPTQLayerSharding(t *testing.T) {
	orttest.Require(t)
	cfg := modelgen.SmallDecoder
	m := modelgen.Decoder(cfg)
	calib := decoderData{m, modelgen.DecoderTokens(cfg, 16, 32, 2)}
	digests := map[int][32]byte{}
	for _, layers := range []int{1, 3} {
		q, _, err := Quantize(context.Background(), m, Options{
			Method: WeightOnly, Bits: 4, BlockSize: 32, Format: MatMulNBits, SensitiveLayers: SensitiveInt4, Algorithm: GPTQ,
			Calibration: CalibrationOptions{OriginalLayerInputs: true, Layers: layers},
		}, calib.batches(t))
		if err != nil {
			t.Fatal(err)
		}
		b, err := q.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		digests[layers] = sha256.Sum256(b)
	}
	if digests[3] != digests[1] {
		t.Errorf("3 layer workers wrote sha256:%x, one wrote sha256:%x", digests[3], digests[1])
	}
}
