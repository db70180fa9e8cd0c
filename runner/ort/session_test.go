package ort_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/x448/float16"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/ort"
	"github.com/kompress/kompress/runner/ort/orttest"
)

const models = "../../testdata/models"

func readModel(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(models, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMNISTMatchesReferenceOutput(t *testing.T) {
	orttest.Require(t)
	s, err := ort.NewSession("mnist-8.onnx", readModel(t, "mnist-8.onnx"), ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wantIO := []ort.IOInfo{{Name: "Input3", DType: onnx.Float, Shape: []int64{1, 1, 28, 28}}}
	if diff := cmp.Diff(wantIO, s.Inputs); diff != "" {
		t.Errorf("inputs (-want +got):\n%s", diff)
	}
	wantOut := []ort.IOInfo{{Name: "Plus214_Output_0", DType: onnx.Float, Shape: []int64{1, 10}}}
	if diff := cmp.Diff(wantOut, s.Outputs); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	in, err := onnx.ReadTensorFile(filepath.Join(models, "mnist-8_test_data_set_0", "input_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := onnx.ReadTensorFile(filepath.Join(models, "mnist-8_test_data_set_0", "output_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Run(map[string]*onnx.Tensor{"Input3": in})
	if err != nil {
		t.Fatal(err)
	}
	out := got["Plus214_Output_0"]
	if out == nil {
		t.Fatalf("no output Plus214_Output_0 in %v", got)
	}
	if d := orttest.MaxDiff(want, out); d > 1e-4 {
		t.Errorf("output differs from the reference by %g relative (want <= 1e-4):\n got %v\nwant %v", d, out.Data, want.Data)
	}
}

// TestDynamicBatch runs ppocr-det ([N,3,H,W]) with batch 1 and 2: the
// batch-2 result must be the two batch-1 results side by side.
func TestDynamicBatch(t *testing.T) {
	orttest.Require(t)
	s, err := ort.NewSession("ppocr-det.onnx", readModel(t, "ppocr-det.onnx"), ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if diff := cmp.Diff([]int64{-1, 3, -1, -1}, s.Inputs[0].Shape); diff != "" {
		t.Fatalf("input shape (-want +got):\n%s", diff)
	}
	const hw = 64
	img := func(seed int) []float32 {
		v := make([]float32, 3*hw*hw)
		for i := range v {
			v[i] = float32((i*7+seed*13)%29)/29 - 0.5
		}
		return v
	}
	run := func(data []float32, n int64) *onnx.Tensor {
		out, err := s.Run(map[string]*onnx.Tensor{s.Inputs[0].Name: onnx.NewTensor([]int64{n, 3, hw, hw}, data)})
		if err != nil {
			t.Fatal(err)
		}
		return out[s.Outputs[0].Name]
	}
	a, b := run(img(1), 1), run(img(2), 1)
	both := run(append(img(1), img(2)...), 2)
	if diff := cmp.Diff([]int64{2, 1, hw, hw}, both.Dims); diff != "" {
		t.Fatalf("batch-2 output dims (-want +got):\n%s", diff)
	}
	half := len(a.Data.([]float32))
	first := onnx.NewTensor(a.Dims, both.Data.([]float32)[:half])
	second := onnx.NewTensor(b.Dims, both.Data.([]float32)[half:])
	if d := orttest.MaxDiff(a, first); d > 1e-5 {
		t.Errorf("sample 0 differs by %g between batch 1 and batch 2", d)
	}
	if d := orttest.MaxDiff(b, second); d > 1e-5 {
		t.Errorf("sample 1 differs by %g between batch 1 and batch 2", d)
	}
}

// identityModel passes one input of type dt and dims straight through.
func identityModel(t *testing.T, dt onnx.DataType, dims []onnx.Dim) []byte {
	t.Helper()
	g := &onnxpb.GraphProto{
		Name:   proto.String("identity"),
		Node:   []*onnxpb.NodeProto{onnx.NewNode("Identity", "id", []string{"x"}, []string{"y"})},
		Input:  []*onnxpb.ValueInfoProto{onnx.ValueInfo("x", dt, dims)},
		Output: []*onnxpb.ValueInfoProto{onnx.ValueInfo("y", dt, dims)},
	}
	b, err := onnx.NewModel(g, 21).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestElementTypes round-trips every element type the runner feeds through
// an Identity model, with dynamic, static and scalar shapes.
func TestElementTypes(t *testing.T) {
	orttest.Require(t)
	tests := []struct {
		name string
		dims []onnx.Dim
		in   *onnx.Tensor
	}{
		{"float32 dynamic", []onnx.Dim{"N", 3}, onnx.NewTensor([]int64{2, 3}, []float32{1, -2, 3.5, 4, 5, 6})},
		{"float32 scalar", []onnx.Dim{}, onnx.NewTensor([]int64{}, []float32{7.25})},
		{"uint8", []onnx.Dim{"N"}, onnx.NewTensor([]int64{4}, []uint8{0, 1, 128, 255})},
		{"int8", []onnx.Dim{"N"}, onnx.NewTensor([]int64{4}, []int8{-128, -1, 0, 127})},
		{"int64", []onnx.Dim{2, "M"}, onnx.NewTensor([]int64{2, 1}, []int64{-1 << 40, 1 << 40})},
		{"int64 scalar", []onnx.Dim{}, onnx.NewTensor([]int64{}, []int64{42})},
		{"int32", []onnx.Dim{"N"}, onnx.NewTensor([]int64{2}, []int32{-5, 5})},
		{"double", []onnx.Dim{"N"}, onnx.NewTensor([]int64{2}, []float64{1e-300, -2.5})},
		{"bool", []onnx.Dim{"N"}, onnx.NewTensor([]int64{3}, []bool{true, false, true})},
		{"float16 dynamic", []onnx.Dim{"N", 2}, onnx.NewTensor([]int64{3, 2}, onnx.Float16s([]float32{0.5, -1, 65504, 1e-3, 2, 3}))},
		{"float16 static", []onnx.Dim{5}, onnx.NewTensor([]int64{5}, onnx.Float16s([]float32{1, 2, 3, 4, 5}))},
		{"bfloat16", []onnx.Dim{"N"}, onnx.NewTensor([]int64{3}, []onnx.BF16{onnx.BF16FromFloat32(1.5), onnx.BF16FromFloat32(-3), 0})},
		{"int4", []onnx.Dim{"N"}, &onnx.Tensor{DType: onnx.Int4, Dims: []int64{3}, Data: []int8{-8, 7, -1}}},
		{"uint4", []onnx.Dim{"N"}, &onnx.Tensor{DType: onnx.Uint4, Dims: []int64{4}, Data: []uint8{0, 15, 9, 1}}},
		{"string", []onnx.Dim{"N"}, onnx.NewTensor([]int64{2}, []string{"a", "ünï"})},
		{"float32 zero elements", []onnx.Dim{"N", 3}, onnx.NewTensor([]int64{0, 3}, []float32{})},
		{"float16 zero elements", []onnx.Dim{"N"}, onnx.NewTensor([]int64{0}, []float16.Float16{})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ort.NewSession(tc.name, identityModel(t, tc.in.DType, tc.dims), ort.Options{IntraOpThreads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			out, err := s.Run(map[string]*onnx.Tensor{"x": tc.in})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.in, out["y"]); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	orttest.Require(t)
	s, err := ort.NewSession("mnist-8.onnx", readModel(t, "mnist-8.onnx"), ort.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	good := onnx.NewTensor([]int64{1, 1, 28, 28}, make([]float32, 784))
	tests := []struct {
		name   string
		inputs map[string]*onnx.Tensor
		want   string
	}{
		{"missing input", map[string]*onnx.Tensor{}, `mnist-8.onnx: input "Input3" is missing`},
		{"unknown input", map[string]*onnx.Tensor{"Input3": good, "extra": good}, `inputs ["extra"] are not inputs of the model`},
		{"wrong type", map[string]*onnx.Tensor{"Input3": onnx.NewTensor([]int64{1, 1, 28, 28}, make([]float64, 784))}, `input "Input3" is DOUBLE, the model expects FLOAT`},
		{"wrong size", map[string]*onnx.Tensor{"Input3": onnx.NewTensor([]int64{1, 1, 28, 28}, make([]float32, 10))}, `needs 784 elements, has 10`},
		{"wrong shape", map[string]*onnx.Tensor{"Input3": onnx.NewTensor([]int64{1, 1, 28, 27}, make([]float32, 756))}, `mnist-8.onnx: ONNX Runtime run failed`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Run(tc.inputs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := ort.NewSession("junk.onnx", []byte("not a model"), ort.Options{}); err == nil || !strings.Contains(err.Error(), "junk.onnx: not an ONNX model") {
		t.Errorf("loading junk: error = %v", err)
	}
	if _, err := ort.NewSession("mnist-8.onnx", readModel(t, "mnist-8.onnx"), ort.Options{IntraOpThreads: -1}); err == nil || !strings.Contains(err.Error(), "IntraOpThreads is -1") {
		t.Errorf("negative threads: error = %v", err)
	}
}

// TestOptimizedModel checks that ONNX Runtime's rewritten graph comes back:
// at the default level it fuses mnist-8's MatMul+Add into Gemm and folds
// Relu into Conv; with optimizations off the graph is as written.
func TestOptimizedModel(t *testing.T) {
	orttest.Require(t)
	src := readModel(t, "mnist-8.onnx")
	for _, tc := range []struct {
		level     ort.Optimization
		wantFused bool
	}{{ort.OptimizeDisabled, false}, {ort.OptimizeAll, true}} {
		b, err := ort.OptimizedModel("mnist-8.onnx", src, ort.Options{Optimization: tc.level})
		if err != nil {
			t.Fatal(err)
		}
		m, err := onnx.Load(b)
		if err != nil {
			t.Fatal(err)
		}
		ops := map[string]int{}
		for _, n := range m.Proto.GetGraph().GetNode() {
			ops[n.GetOpType()]++
		}
		fused := ops["Gemm"] == 1 && ops["MatMul"] == 0 && ops["Relu"] == 0
		if fused != tc.wantFused {
			t.Errorf("level %d: fused = %v, want %v (ops %v)", tc.level, fused, tc.wantFused, ops)
		}
	}
}

func TestLibraryPath(t *testing.T) {
	t.Setenv("ONNXRUNTIME_LIB", "")
	t.Setenv("KOMPRESS_CACHE", "/c")
	if got, want := ort.LibraryPath(), "/c/onnxruntime-1.30.0/libonnxruntime.so"; got != want {
		t.Errorf("LibraryPath with KOMPRESS_CACHE = %q, want %q", got, want)
	}
	t.Setenv("KOMPRESS_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "/x")
	if got, want := ort.LibraryPath(), "/x/kompress/onnxruntime-1.30.0/libonnxruntime.so"; got != want {
		t.Errorf("LibraryPath with XDG_CACHE_HOME = %q, want %q", got, want)
	}
	t.Setenv("ONNXRUNTIME_LIB", "/lib/ort.so")
	if got, want := ort.LibraryPath(), "/lib/ort.so"; got != want {
		t.Errorf("LibraryPath with ONNXRUNTIME_LIB = %q, want %q", got, want)
	}
}

// TestConcurrentRuns shares one session between goroutines, as the
// evaluation of large datasets does.
func TestConcurrentRuns(t *testing.T) {
	orttest.Require(t)
	s, err := ort.NewSession("mnist-8.onnx", readModel(t, "mnist-8.onnx"), ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in, err := onnx.ReadTensorFile(filepath.Join(models, "mnist-8_test_data_set_0", "input_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.Run(map[string]*onnx.Tensor{"Input3": in})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for range 25 {
				got, err := s.Run(map[string]*onnx.Tensor{"Input3": in})
				if err == nil && !cmp.Equal(want, got) {
					err = fmt.Errorf("concurrent run gave %v, want %v", got["Plus214_Output_0"].Data, want["Plus214_Output_0"].Data)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
