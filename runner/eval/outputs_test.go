package eval_test

import (
	"context"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kompress/kompress/runner/compare"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/eval"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// Every output is compared with the source's, each as its kind asks: a
// sequence [N, T, C] position by position on its last axis, a one-value
// output [N] by its relative error over the samples (no cosine or top-1,
// which would be 1 by construction), and class scores [N, C] one top-1
// per sample. The model scales class 1 of x [N, 3, 2] by 0.5 where the
// source keeps it.
func TestEveryOutputIsCompared(t *testing.T) {
	orttest.Require(t)
	build := func(w1 float32) []byte {
		return newGraph(t).input("x", onnx.Float, "N", 3, 2).
			init("w", onnx.NewTensor([]int64{1, 1, 2}, []float32{1, w1})).
			init("axes", onnx.NewTensor([]int64{2}, []int64{1, 2})).
			init("last", onnx.NewTensor([]int64{1}, []int64{1})).
			node("Mul", []string{"x", "w"}, []string{"seq"}).
			node("ReduceSum", []string{"seq", "axes"}, []string{"sum"}, onnx.AttrInt("keepdims", 0)).
			node("ReduceMax", []string{"seq"}, []string{"scores"}, onnx.AttrInts("axes", 1), onnx.AttrInt("keepdims", 0)).
			output("seq", onnx.Float).output("sum", onnx.Float).output("scores", onnx.Float).bytes(13)
	}
	// Positions agreeing: sample 0 [1 2] [3 1] [1 1.5] becomes [1 1] [3
	// .5] [1 .75] (argmax 1,0,1 -> 0,0,0: one of three); sample 1 [0 1]
	// [2 3] [5 4] becomes [0 .5] [2 1.5] [5 2] (1,1,0 -> 1,0,0: two).
	// One argmax over the 6 values of a sample agrees on both samples.
	x := []float32{1, 2, 3, 1, 1, 1.5, 0, 1, 2, 3, 5, 4}
	data := &dataset.Dataset{Name: "x.npz", Shape: []int{2, 3, 2}, X: x}
	rep, err := eval.Evaluate(context.Background(), eval.Request{
		Model: build(0.5), Name: "half.onnx", Source: build(1), SourceName: "source.onnx", Data: data, Threads: 1,
		Spec: eval.Settings{LatencyRuns: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	// sum: source 9.5 and 15, model 7.25 and 11.
	sumErr := math.Sqrt((2.25*2.25 + 4*4) / (9.5*9.5 + 15*15))
	// scores (max over T per class): source [3 2] and [5 4], model
	// [3 1] and [5 2]; per-sample relative errors 1/√13 and 2/√41.
	scoreRel := (1/math.Sqrt(13) + 2/math.Sqrt(41)) / 2
	seqSignal, seqNoise := compare.Energies(
		[]float32{1, 1, 3, .5, 1, .75, 0, .5, 2, 1.5, 5, 2}, x)
	want := []eval.OutputFidelity{
		{Name: "seq", Kind: eval.OutputSequence, Classes: 2, Positions: 3, Top1Agreement: 0.5,
			Cosine:        (compare.Cosine([]float32{1, 1, 3, .5, 1, .75}, x[:6]) + compare.Cosine([]float32{0, .5, 2, 1.5, 5, 2}, x[6:])) / 2,
			RelativeError: (compare.RelativeError([]float32{1, 1, 3, .5, 1, .75}, x[:6]) + compare.RelativeError([]float32{0, .5, 2, 1.5, 5, 2}, x[6:])) / 2,
			MaxAbsError:   2, SNRDb: compare.SNRDb(seqSignal, seqNoise)},
		{Name: "sum", Kind: eval.OutputValue, RelativeError: sumErr, MaxAbsError: 4, SNRDb: 10 * math.Log10((9.5*9.5+15*15)/(2.25*2.25+4*4))},
		{Name: "scores", Kind: eval.OutputScores, Classes: 2, Positions: 1, Top1Agreement: 1,
			Cosine:        (compare.Cosine([]float32{3, 1}, []float32{3, 2}) + compare.Cosine([]float32{5, 2}, []float32{5, 4})) / 2,
			RelativeError: scoreRel, MaxAbsError: 2, SNRDb: 10 * math.Log10((9+4+25+16)/(1+4.0))},
	}
	if diff := cmp.Diff(want, rep.Outputs, cmpopts.EquateApprox(0, 1e-6)); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	// The plain figures are the first output's.
	if rep.Top1Agreement != 0.5 || math.Abs(rep.Cosine-want[0].Cosine) > 1e-9 {
		t.Errorf("top1Agreement %v, cosine %v: want the first output's", rep.Top1Agreement, rep.Cosine)
	}
}
