package prune

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// TestMNIST10k measures the targets on mnist-8 with the full
// 10,000-image test set, calibrating on the training set, scored by ONNX
// Runtime, and prints them as a table. It needs `make data` and takes
// about a minute: set KOMPRESS_FIGURES=1.
//
//	KOMPRESS_FIGURES=1 go test ./runner/prune -run MNIST10k -v
func TestMNIST10k(t *testing.T) {
	onnxtest.Figures(t, "needs `make data`, about a minute")
	test := onnxtest.MNIST(t, dataset.MNISTTest10k)
	train := onnxtest.MNIST(t, dataset.MNISTTrain60k)
	src := onnxtest.Model(t, onnxtest.MNIST8)
	base := orttest.MNIST8Accuracy(t, src, test)
	rows := []string{fmt.Sprintf("| source | | %.4f | | |", base)}
	drops := map[string]float64{}
	for _, spec := range []Options{
		{Method: "magnitude", Sparsity: 0.5, Scope: "layer"},
		{Method: "magnitude", Sparsity: 0.5},
		{Method: "magnitude", Sparsity: 0.7, Scope: "layer"},
		{Method: "magnitude", Sparsity: 0.7},
		{Method: "hessian", Sparsity: 0.7, CalibrationSamples: 128},
		{Method: "hessian", Sparsity: 0.7},
		{Method: "nm", Pattern: Pattern{N: 2, M: 4}},
		{Method: "hessian", Pattern: Pattern{N: 2, M: 4}, CalibrationSamples: 128},
		{Method: "hessian", Pattern: Pattern{N: 2, M: 4}},
	} {
		name := figureName(spec)
		out, rep := mustPrune(t, src, spec, train)
		acc := orttest.MNIST8Accuracy(t, out, test)
		drops[name] = base - acc
		cost := ""
		if h := rep.Hessian; h != nil {
			cost = fmt.Sprintf("%.2f s (%.0f s per million parameters, %.4f s per sample)", rep.Seconds, h.SecondsPerMParams, h.SecondsPerSample)
		}
		rows = append(rows, fmt.Sprintf("| %s | %.4f | %.4f | %.2f | %s |", name, rep.Achieved, acc, 100*(base-acc), cost))
	}
	t.Logf("mnist-8, 10,000 test images, ONNX Runtime:\n| method | sparsity | accuracy | drop (points) | hessian time |\n|---|---|---|---|---|\n%s", strings.Join(rows, "\n"))
	for name, limit := range map[string]float64{
		"magnitude 50%, scope global (default)":          0.005,
		"hessian 70%, 512 calibration samples (default)": 0.01,
		"hessian 2:4, 512 calibration samples (default)": 0.01,
	} {
		d, ok := drops[name]
		if !ok {
			t.Fatalf("no figure named %q", name)
		}
		if d > limit {
			t.Errorf("%s: drop %.2f points, target at most %.2f", name, 100*d, 100*limit)
		}
	}
	magnitude, hessian := drops["magnitude 70%, scope layer"], drops["hessian 70%, 512 calibration samples (default)"]
	if magnitude < 5*hessian {
		t.Errorf("magnitude 70%% drops %.2f points, hessian %.2f: expected magnitude to fall much further", 100*magnitude, 100*hessian)
	}
}

// figureName describes a spec as it runs, defaults included, so that a
// figure's label cannot disagree with what was measured.
func figureName(spec Options) string {
	o, err := spec.parse()
	if err != nil {
		return fmt.Sprintf("%+v: %v", spec, err)
	}
	amount := fmt.Sprintf("%g%%", 100*o.sparsity)
	if o.structured() {
		amount = fmt.Sprintf("%d:%d", o.n, o.m)
	}
	name := fmt.Sprintf("%s %s", o.method, amount)
	switch o.method {
	case Magnitude:
		name += ", scope " + string(o.scope)
		if spec.Scope == "" {
			name += " (default)"
		}
	case Hessian:
		name += fmt.Sprintf(", %d calibration samples", o.samples)
		if spec.CalibrationSamples == 0 {
			name += " (default)"
		}
	}
	return name
}

// TestHessianSpeed times hessian pruning (70%, 128 calibration samples) of
// a chain of four 1024x1024 MatMul+Add+Relu layers, 4.2 million
// parameters, and logs the time per million parameters and per sample:
// set KOMPRESS_FIGURES=1.
func TestHessianSpeed(t *testing.T) {
	onnxtest.Figures(t, "about a minute")
	const width, layers, samples = 1024, 4, 128
	b := newBuilder("chain")
	x := b.Input("x", "N", width)
	for i := 0; i < layers; i++ {
		w := b.Uniform(width * width)
		for j := range w {
			w[j] *= 0.05
		}
		n := fmt.Sprint(i)
		b.Init("w"+n, onnx.NewTensor([]int64{width, width}, w))
		b.Init("b"+n, onnx.NewTensor([]int64{width}, make([]float32, width)))
		x = b.Node("MatMul", "mm"+n, []string{x, "w" + n})
		x = b.Node("Add", "add"+n, []string{x, "b" + n})
		x = b.Node("Relu", "relu"+n, []string{x})
	}
	data := &dataset.Dataset{Name: "random", Shape: []int{samples, width}, X: b.Uniform(samples * width)}
	for _, spec := range []Options{
		{Method: "hessian", Sparsity: 0.7, CalibrationSamples: samples},
		{Method: "hessian", Pattern: Pattern{N: 2, M: 4}, CalibrationSamples: samples},
	} {
		_, rep := mustPrune(t, b.Model(17, x), spec, data)
		h := rep.Hessian
		t.Logf("%s, %d parameters, %d samples: %.1f s (calibration %.1f s in %d passes, solve %.1f s): %.2f s per million parameters, %.3f s per sample",
			optsName(spec), rep.Params, h.Samples, rep.Seconds, h.CalibrationSeconds, h.Passes, h.SolveSeconds, h.SecondsPerMParams, h.SecondsPerSample)
	}
}
