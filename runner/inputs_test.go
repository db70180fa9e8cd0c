package runner

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// Old models list their weights as graph inputs too, and pruning with
// sparse storage keeps them listed while moving them to sparse
// initializers: neither kind is an input a dataset feeds.
func TestModelInputsLeaveOutInitializers(t *testing.T) {
	w := onnx.NewTensor([]int64{2}, []float32{0, 3})
	dense, err := onnx.TensorToProto(w, "dense_w")
	if err != nil {
		t.Fatal(err)
	}
	sparseValues, err := onnx.TensorToProto(onnx.NewTensor([]int64{1}, []float32{3}), "sparse_w")
	if err != nil {
		t.Fatal(err)
	}
	sparseIndices, err := onnx.TensorToProto(onnx.NewTensor([]int64{1}, []int64{1}), "")
	if err != nil {
		t.Fatal(err)
	}
	g := &onnxpb.GraphProto{
		Name: proto.String("listed"),
		Input: []*onnxpb.ValueInfoProto{
			onnx.ValueInfo("x", onnx.Float, []onnx.Dim{"N", int64(2)}),
			onnx.ValueInfo("dense_w", onnx.Float, []onnx.Dim{int64(2)}),
			onnx.ValueInfo("sparse_w", onnx.Float, []onnx.Dim{int64(2)}),
		},
		Initializer:       []*onnxpb.TensorProto{dense},
		SparseInitializer: []*onnxpb.SparseTensorProto{{Values: sparseValues, Indices: sparseIndices, Dims: []int64{2}}},
	}
	got := modelInputs(onnx.NewModel(g, 13))
	want := []dataset.Input{{Name: "x", ElemType: dataset.Float32, Shape: []int64{-1, 2}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fed inputs (-want +got):\n%s", diff)
	}
}
