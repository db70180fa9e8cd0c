package quantize

import (
	"context"
	"testing"

	"github.com/kompress/kompress/hack/modelgen"
	"github.com/kompress/kompress/runner/compare"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// decoderData feeds a generated decoder: calibration or held-out token
// ids (another seed), in batches of 8.
type decoderData struct {
	m      *onnx.Model
	tokens []dataset.Array
}

func (d decoderData) batches(t *testing.T) Calibration {
	t.Helper()
	data, err := feed.FromDataset(feed.Inputs(d.m), &dataset.Dataset{Name: "tokens", Arrays: d.tokens})
	if err != nil {
		t.Fatal(err)
	}
	c, err := data.Batches(8)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (d decoderData) first(t *testing.T, n int) map[string]*onnx.Tensor {
	t.Helper()
	data, err := feed.FromDataset(feed.Inputs(d.m), &dataset.Dataset{Name: "tokens", Arrays: d.tokens})
	if err != nil {
		t.Fatal(err)
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	in, err := data.Tensors(idx)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// gptqDecoder is a small GPT-2-style decoder with outlier channels, its
// calibration and held-out tokens, the first 8 held-out samples and its
// last hidden state on them.
func gptqDecoder(t *testing.T) (modelgen.DecoderConfig, *onnx.Model, decoderData, decoderData, map[string]*onnx.Tensor, []float32) {
	t.Helper()
	orttest.Require(t)
	cfg := modelgen.SmallDecoder
	cfg.Hidden, cfg.Outliers = 128, 3
	m := modelgen.Decoder(cfg)
	calib := decoderData{m, modelgen.DecoderTokens(cfg, 32, 32, 2)}
	held := decoderData{m, modelgen.DecoderTokens(cfg, 8, 32, 3)}
	in := held.first(t, 8)
	want, err := orttest.Run(t, m, in)[modelgen.LastHiddenState].Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return cfg, m, calib, held, in, want
}

// On a small GPT-2-style decoder with outlier channels, int4 GPTQ
// (MatMulNBits, blocks of 32) rounds every linear layer, its layers'
// output errors on held-out tokens average at most 0.7x round to
// nearest's, and ONNX Runtime runs the model it writes, closer to the
// float model's last hidden state than round to nearest's; the qdq form
// runs too.
func TestGPTQDecoder(t *testing.T) {
	ctx := context.Background()
	cfg, m, calib, held, in, wantVals := gptqDecoder(t)
	meanError := map[Algorithm]float64{}
	cosine := map[Algorithm]float64{}
	for _, alg := range []Algorithm{RTN, GPTQ} {
		q, rep, err := Quantize(ctx, m, Options{
			Method: WeightOnly, Bits: 4, BlockSize: 32, Format: MatMulNBits, SensitiveLayers: SensitiveInt4, Algorithm: alg,
		}, calib.batches(t))
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		var rounded int
		for _, qt := range rep.Quantized {
			if qt.OpType == "MatMul" && qt.Algorithm == string(GPTQ) {
				rounded++
			}
		}
		if wantRounded := map[Algorithm]int{RTN: 0, GPTQ: 4 * cfg.Layers}; rounded != wantRounded[alg] {
			t.Errorf("%s: %d MatMul weights rounded by GPTQ, want %d", alg, rounded, wantRounded[alg])
		}
		errs, err := LayerErrors(ctx, m, q, held.batches(t), 8, 256)
		if err != nil {
			t.Fatal(err)
		}
		if len(errs) != 4*cfg.Layers {
			t.Fatalf("%s: %d layer errors, want %d", alg, len(errs), 4*cfg.Layers)
		}
		for _, e := range errs {
			meanError[alg] += e.Relative / float64(len(errs))
		}
		got, err := orttest.Run(t, q, in)[modelgen.LastHiddenState].Float32s()
		if err != nil {
			t.Fatal(err)
		}
		cosine[alg] = compare.Cosine(wantVals, got)
	}
	t.Logf("mean layer error: rtn %.4f, gptq %.4f (ratio %.2f); last hidden state cosine: rtn %.4f, gptq %.4f",
		meanError[RTN], meanError[GPTQ], meanError[GPTQ]/meanError[RTN], cosine[RTN], cosine[GPTQ])
	if meanError[GPTQ] > 0.7*meanError[RTN] {
		t.Errorf("mean layer error: gptq %.4f, rtn %.4f: want gptq <= 0.7x rtn", meanError[GPTQ], meanError[RTN])
	}
	// The floor counts the embeddings too: the Gather quantizer stores
	// them at 4 bits as well (0.944 measured; 0.966 with float embeddings).
	if cosine[GPTQ] < cosine[RTN] || cosine[GPTQ] < 0.93 {
		t.Errorf("last hidden state cosine: gptq %.4f, rtn %.4f: want gptq >= rtn and >= 0.93", cosine[GPTQ], cosine[RTN])
	}
	qdq, _, err := Quantize(ctx, m, Options{Method: WeightOnly, Bits: 4, SensitiveLayers: SensitiveInt4, Algorithm: GPTQ}, calib.batches(t))
	if err != nil {
		t.Fatal(err)
	}
	got, err := orttest.Run(t, qdq, in)[modelgen.LastHiddenState].Float32s()
	if err != nil {
		t.Fatal(err)
	}
	if c := compare.Cosine(wantVals, got); c < 0.93 {
		t.Errorf("gptq qdq: last hidden state cosine %.4f, want >= 0.93", c)
	}
}

// GPTQ refuses to run without calibration data, naming the field.
func TestGPTQNeedsData(t *testing.T) {
	m := modelgen.Decoder(modelgen.SmallDecoder)
	_, _, err := Quantize(context.Background(), m, Options{Method: WeightOnly, Bits: 4, SensitiveLayers: SensitiveInt4, Algorithm: GPTQ}, nil)
	if err == nil || err.Error() != "quantize.algorithm gptq needs calibration data (the job's dataset)" {
		t.Errorf("error = %v", err)
	}
}
