package distill

import (
	"context"
	"testing"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// BenchmarkMNISTStep measures training throughput on mnist-8 (one
// iteration: 100 steps of 64 images).
func BenchmarkMNISTStep(b *testing.B) {
	orttest.Require(b)
	train := loadMNIST(b, dataset.MNISTTest1k)
	teacher, err := loadMNISTModel(b).Bytes()
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		student := loadMNISTModel(b)
		_, rep, err := Distill(context.Background(), student, teacher, train, v1alpha1.DistillSpec{Epochs: 7, MaxSteps: 100, BatchSize: 64}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(rep.ImagesPerSec, "images/s")
	}
}
