package onnxtest

import (
	"path/filepath"
	"runtime"
	"testing"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
)

// The models of the repository's testdata/models.
const (
	// MNIST8 is the ONNX model zoo's MNIST CNN (opset 7, input Input3
	// [1,1,28,28] of raw 0-255 pixels, output Plus214_Output_0 [1,10]).
	MNIST8 = "mnist-8.onnx"
	// PPOCRDet is PaddleOCR's v4 text detector (opset 11, weights in
	// Constant nodes, input x [N,3,H,W]).
	PPOCRDet = "ppocr-det.onnx"
)

// ModelPath is the path of testdata/models/<name> in this checkout.
func ModelPath(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "models", name)
}

// Model loads testdata/models/<name>.
func Model(t testing.TB, name string) *onnx.Model {
	t.Helper()
	m, err := onnx.LoadFile(ModelPath(name))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// MNIST loads an MNIST set (dataset.MNISTTest1k, MNISTTest10k,
// MNISTTrain60k: the last two are built by `make data`) checked against
// MNIST8's input.
func MNIST(t testing.TB, name string) *dataset.Dataset {
	t.Helper()
	path, err := dataset.MNISTPath(name)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dataset.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err = d.Fit(dataset.Input{Name: "Input3", Shape: []int64{1, 1, 28, 28}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}
