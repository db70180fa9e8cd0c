package distill

import (
	"context"
	"testing"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// BenchmarkMNISTStep measures training throughput on mnist-8, pruned to
// 80% per layer and dense (one iteration: 300 steps of 64 images), as
// images per second and per CPU second.
func BenchmarkMNISTStep(b *testing.B) {
	orttest.Require(b)
	train := onnxtest.MNIST(b, dataset.MNISTTrain60k)
	teacher, err := onnxtest.Model(b, onnxtest.MNIST8).Bytes()
	if err != nil {
		b.Fatal(err)
	}
	for _, pruned := range []bool{true, false} {
		name := "dense"
		if pruned {
			name = "pruned80"
		}
		b.Run(name, func(b *testing.B) { benchDistill(b, train, teacher, pruned) })
	}
}

func benchDistill(b *testing.B, train *dataset.Dataset, teacher []byte, pruned bool) {
	for i := 0; i < b.N; i++ {
		student := onnxtest.Model(b, onnxtest.MNIST8)
		if pruned {
			magnitudePrune(b, student, 0.8, false)
		}
		_, rep, err := Distill(context.Background(), student, teacher, train, withDefaults(func(o *Options) { o.MaxSteps, o.BatchSize = 300, 64 }))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(rep.ImagesPerSec, "images/s")
		b.ReportMetric(float64(rep.Steps*int64(rep.BatchSize))/rep.TrainCPUSeconds, "images/cpu-s")
	}
}
