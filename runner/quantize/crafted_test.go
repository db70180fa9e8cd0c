package quantize

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/fault"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
)

// TestCraftedModelsAreBadInput quantizes the crafted models of issue 11
// as built in memory, bypassing onnx.Load's checks: the malformed tensor
// is met deep inside quantization (constant folding, weight reads) and
// must fail the stage as bad input, without a panic and without
// allocating what its dims claim.
func TestCraftedModelsAreBadInput(t *testing.T) {
	specs := []Options{
		{Method: Dynamic},
		{Method: WeightOnly, Bits: 4},
		{Method: FP16},
	}
	for _, c := range onnxtest.CraftedModels() {
		if c.Structural {
			continue // only Load checks structure; its tensors are fine
		}
		for _, spec := range specs {
			t.Run(c.Name+"/"+specName(spec), func(t *testing.T) {
				m := &onnx.Model{Proto: proto.Clone(c.Model).(*onnxpb.ModelProto), Name: c.Name}
				var err error
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				func() {
					defer func() {
						if p := recover(); p != nil {
							t.Fatalf("panic: %v", p)
						}
					}()
					_, _, err = Quantize(context.Background(), m, spec, nil)
				}()
				runtime.ReadMemStats(&after)
				if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
					t.Errorf("allocated %d bytes for a model of %d bytes", n, len(c.Bytes()))
				}
				if err == nil || !fault.IsBadInput(err) {
					t.Errorf("error %v, want bad input", err)
				}
			})
		}
	}
}

// TestCraftedReshapeTargetIsBadInput: a Reshape of a weight to a target
// whose dims multiply past 2^64 and wrap around to the weight's size
// ([3, 6148914691236517206] for 2 values) is met in constant folding:
// the stage fails as bad input, with no panic, instead of folding a
// tensor whose dims claim 2^64 elements.
func TestCraftedReshapeTargetIsBadInput(t *testing.T) {
	w, err := onnx.TensorToProto(onnx.NewTensor([]int64{2}, []float32{1, 2}), "W")
	if err != nil {
		t.Fatal(err)
	}
	target, err := onnx.TensorToProto(onnx.NewTensor([]int64{2}, []int64{3, 6148914691236517206}), "target")
	if err != nil {
		t.Fatal(err)
	}
	g := &onnxpb.GraphProto{
		Name:        proto.String("reshape"),
		Initializer: []*onnxpb.TensorProto{w, target},
		Node: []*onnxpb.NodeProto{
			onnx.NewNode("Reshape", "reshape", []string{"W", "target"}, []string{"Wr"}),
			onnx.NewNode("MatMul", "mm", []string{"x", "Wr"}, []string{"y"}),
		},
		Input:  []*onnxpb.ValueInfoProto{onnx.ValueInfo("x", onnx.Float, []onnx.Dim{1, 3})},
		Output: []*onnxpb.ValueInfoProto{onnx.ValueInfo("y", onnx.Float, nil)},
	}
	m, err := onnx.Load(mustMarshalModel(t, onnx.NewModel(g, 13)))
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("panic: %v", p)
			}
		}()
		_, _, err = Quantize(context.Background(), m, Options{Method: Dynamic}, nil)
	}()
	if err == nil || !fault.IsBadInput(err) || !strings.Contains(err.Error(), "multiply to more than 1099511627776 elements") {
		t.Errorf("error %v, want bad input naming the overflowing dims", err)
	}
}

func mustMarshalModel(t *testing.T, m *onnx.Model) []byte {
	t.Helper()
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
