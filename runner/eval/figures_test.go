package eval_test

import (
	"context"
	"testing"
	"time"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/eval"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// TestMNIST10kFigures reports mnist-8 on the full 10,000-image MNIST test
// set: accuracy (checked against a plain one-image-at-a-time loop) and how
// long Evaluate takes. It only reports figures, so it runs on request:
//
//	make data && KOMPRESS_FIGURES=1 go test -count=1 -run TestMNIST10kFigures -v ./runner/eval/
func TestMNIST10kFigures(t *testing.T) {
	onnxtest.Figures(t, "the 10k set comes from `make data`")
	orttest.Require(t)
	data := onnxtest.MNIST(t, dataset.MNISTTest10k)
	model := readModel(t, "mnist-8.onnx")
	if err := ort.Init(); err != nil { // not part of the timing
		t.Fatal(err)
	}
	want := plainAccuracy(t, model, data)
	for _, tc := range []struct {
		name    string
		source  []byte
		threads int
	}{
		{"model only, 1 thread", nil, 1},
		{"model only, 2 threads", nil, 2},
		{"model and source, 1 thread", model, 1},
		{"model and source, 2 threads", model, 2},
	} {
		start := time.Now()
		rep, err := eval.Evaluate(context.Background(), eval.Request{
			Model: model, Name: "mnist-8.onnx", Source: tc.source, Data: data, Threads: tc.threads,
			Spec: eval.Settings{LatencyRuns: 50},
		})
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Samples != 10000 || rep.Accuracy != want {
			t.Errorf("%s: %d samples, accuracy %v; want 10000 and %v (plain loop)", tc.name, rep.Samples, rep.Accuracy, want)
		}
		t.Logf("%s: accuracy %v on %d images in %v (latency p50 %v p95 %v)", tc.name, rep.Accuracy, rep.Samples, took.Round(time.Millisecond), rep.LatencyP50, rep.LatencyP95)
	}
}
