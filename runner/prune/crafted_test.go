package prune

import (
	"context"
	"runtime"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/fault"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
)

// TestCraftedModelsAreBadInput prunes the crafted models of issue 11 as
// built in memory, bypassing onnx.Load's checks: reading the malformed
// weight must fail as bad input, without a panic and without allocating
// what its dims claim.
func TestCraftedModelsAreBadInput(t *testing.T) {
	specs := []Options{
		{Method: Magnitude, Sparsity: 0.5},
		{Method: NM, Pattern: Pattern{N: 2, M: 4}},
	}
	for _, c := range onnxtest.CraftedModels() {
		if c.Structural {
			continue // only Load checks structure; its tensors are fine
		}
		for _, spec := range specs {
			t.Run(c.Name+"/"+string(spec.Method), func(t *testing.T) {
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
					_, _, err = Prune(context.Background(), m, spec, nil, nil)
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
