package prune

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// TestHessianShardsAreBitIdentical prunes mnist-8 with hessian on 1, 2, 4
// and 16 workers, block by block: every shard count writes the same
// model, byte for byte (the unit sums are merged in one fixed tree,
// package shard).
func TestHessianShardsAreBitIdentical(t *testing.T) {
	orttest.Require(t)
	calib, _ := mnistSplit(t)
	src := onnxtest.Model(t, onnxtest.MNIST8)
	for _, spec := range []Options{
		{Method: Hessian, Sparsity: 0.7, CalibrationSamples: 200},
		{Method: Hessian, Pattern: Pattern{N: 2, M: 4}, CalibrationSamples: 100},
	} {
		digests := map[int]string{}
		for _, shards := range []int{1, 2, 4, 16} {
			spec.Shards = shards
			out, rep, err := Prune(t.Context(), src, spec, calib, nil)
			if err != nil {
				t.Fatalf("%d shards: %v", shards, err)
			}
			if rep.Hessian.Blocks < 2 {
				t.Errorf("%d shards: %d blocks (%s): want mnist-8 cut between its layers", shards, rep.Hessian.Blocks, rep.Hessian.WholeModel)
			}
			b, err := out.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			digests[shards] = hex.EncodeToString(sum[:])
		}
		for shards, d := range digests {
			if d != digests[1] {
				t.Errorf("%+v: %d shards wrote sha256:%s, one wrote sha256:%s", spec, shards, d, digests[1])
			}
		}
	}
}
