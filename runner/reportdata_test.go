package runner

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/prune"
	"github.com/kompress/kompress/runner/quantize"
	"github.com/kompress/kompress/runner/report"
)

// The report reads per-layer sparsity and bit-width from the details the
// algorithms' own reports put in result.json: a renamed field there fails
// here, not silently in a report with no layers. Rows are keyed by the
// consuming node, since quantization may rename a weight; biases (int32)
// are not rows.
func TestChainLayersFromTheAlgorithmsReports(t *testing.T) {
	res := func(stage any) *pipeline.Result {
		b, err := json.Marshal(details{Stage: stage})
		if err != nil {
			t.Fatal(err)
		}
		return &pipeline.Result{Details: b}
	}
	links := []pipeline.ChainLink{
		{Stage: pipeline.StageSpec{Name: "prune", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypePrune}}},
		{Stage: pipeline.StageSpec{Name: "recover", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeDistill}}},
		{Stage: pipeline.StageSpec{Name: "int8", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize}}},
	}
	results := []*pipeline.Result{
		res(&prune.Report{Layers: []prune.Layer{
			{Name: "Parameter193", Node: "Times212", OpType: "MatMul", Sparsity: 0.6},
			{Name: "Parameter5", Node: "Convolution28", OpType: "Conv", Sparsity: 0.5},
		}}),
		nil,
		res(&quantize.Report{Quantized: []quantize.QuantizedTensor{
			{Name: "Parameter5", Node: "Convolution28", OpType: "Conv", Type: "int8"},
			{Name: "Convolution28_Output_0_bias", Node: "Convolution28", OpType: "Conv", Type: "int32"},
			{Name: "Parameter193_reshape1", Node: "Times212", OpType: "Gemm", Type: "int4"},
			{Name: "Parameter88", Node: "Plus112", OpType: "Add", Type: "float16"},
		}}),
	}
	want := []report.Layer{
		{Name: "Times212 (Parameter193)", OpType: "Gemm", Sparsity: 0.6, Bits: 4},
		{Name: "Convolution28 (Parameter5)", OpType: "Conv", Sparsity: 0.5, Bits: 8},
		{Name: "Plus112 (Parameter88)", OpType: "Add", Sparsity: -1, Bits: 16},
	}
	if diff := cmp.Diff(want, chainLayers(links, results)); diff != "" {
		t.Errorf("layers (-want +got):\n%s", diff)
	}
}

// The gate drawn is the one on the plotted metric; the others are listed.
func TestReportGates(t *testing.T) {
	a := &v1alpha1.AcceptanceSpec{MaxAccuracyDrop: "0.01", MinCosine: "0.99", MaxBytes: new(int64)}
	*a.MaxBytes = 20000
	g := gates(a, pipeline.MetricAccuracy, 0.987)
	if g.MinQuality == nil || *g.MinQuality < 0.9769 || *g.MinQuality > 0.9771 || g.MaxBytes == nil || *g.MaxBytes != 20000 ||
		!cmp.Equal(g.Other, []string{"minCosine 0.99"}) {
		t.Errorf("gates on accuracy: %+v (floor %v)", g, g.MinQuality)
	}
	g = gates(a, pipeline.MetricCosine, -1)
	if g.MinQuality == nil || *g.MinQuality != 0.99 || !cmp.Equal(g.Other, []string{"maxAccuracyDrop 0.01"}) {
		t.Errorf("gates on cosine: %+v", g)
	}
}
