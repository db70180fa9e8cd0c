package feed_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/fault"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/panics"
)

// Old models list their weights as graph inputs too, and pruning with
// sparse storage keeps them listed while moving them to sparse
// initializers: neither kind is an input a caller feeds.
func TestInputsLeaveOutInitializers(t *testing.T) {
	dense, err := onnx.TensorToProto(onnx.NewTensor([]int64{2}, []float32{0, 3}), "dense_w")
	if err != nil {
		t.Fatal(err)
	}
	sparseValues, err := onnx.TensorToProto(onnx.NewTensor([]int64{1}, []float32{3}), "sparse_w")
	if err != nil {
		t.Fatal(err)
	}
	sparseIndices, err := onnx.TensorToProto(onnx.NewTensor([]int64{1}, []int64{1}), "")
	if err != nil {
		t.Fatal(err)
	}
	g := &onnxpb.GraphProto{
		Name: proto.String("listed"),
		Input: []*onnxpb.ValueInfoProto{
			onnx.ValueInfo("x", onnx.Float, []onnx.Dim{"N", int64(2)}),
			onnx.ValueInfo("dense_w", onnx.Float, []onnx.Dim{int64(2)}),
			onnx.ValueInfo("sparse_w", onnx.Float, []onnx.Dim{int64(2)}),
			onnx.ValueInfo("sr", onnx.Int64, []onnx.Dim{}),
			onnx.ValueInfo("half", onnx.Float16, []onnx.Dim{int64(1), "T"}),
			{Name: proto.String("untyped")},
			{Name: proto.String("noshape"), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
				TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(onnx.Int32))}}}},
		},
		Initializer:       []*onnxpb.TensorProto{dense},
		SparseInitializer: []*onnxpb.SparseTensorProto{{Values: sparseValues, Indices: sparseIndices, Dims: []int64{2}}},
	}
	got := feed.Inputs(onnx.NewModel(g, 13))
	want := []feed.Input{
		{Name: "x", DType: onnx.Float, Dims: []int64{-1, 2}},
		{Name: "sr", DType: onnx.Int64, Dims: []int64{}},
		{Name: "half", DType: onnx.Float16, Dims: []int64{1, -1}},
		{Name: "untyped"},
		{Name: "noshape", DType: onnx.Int32},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fed inputs (-want +got):\n%s", diff)
	}
}

// seqF is n float32 values counting up from start.
func seqF(n int, start float32) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = start + float32(i)
	}
	return out
}

func seqI(n int, start int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = start + int64(i)
	}
	return out
}

// fed summarizes what Data feeds: per input, whether it takes samples and
// the dims of what it holds.
type fed struct {
	Len     int
	Batched map[string]bool
	Shapes  map[string][]int64
	Labels  []int64
}

func summary(d *feed.Data) fed {
	f := fed{Len: d.Len(), Batched: map[string]bool{}, Shapes: d.SampleShapes(), Labels: d.Labels()}
	for _, in := range d.Inputs() {
		f.Batched[in.Name] = d.Batched(in.Name)
	}
	return f
}

// vadInputs are a voice-activity detector's: audio chunks, a recurrent
// state that has no batch axis, and a sample-rate scalar.
var vadInputs = []feed.Input{
	{Name: "input", DType: onnx.Float, Dims: []int64{-1, 4}},
	{Name: "state", DType: onnx.Float, Dims: []int64{2, 1, 3}},
	{Name: "sr", DType: onnx.Int64, Dims: []int64{}},
}

func TestFromDataset(t *testing.T) {
	mnist := []feed.Input{{Name: "Input3", DType: onnx.Float, Dims: []int64{1, 1, 28, 28}}}
	flat := &dataset.Dataset{Name: "flat.npz", Shape: []int{3, 784}, X: make([]float32, 3*784), Labels: []int64{7, 2, 1}}
	audio := dataset.Array{Name: "input", Shape: []int{5, 4}, Data: seqF(20, 0)}
	state := dataset.Array{Name: "state", Shape: []int{2, 1, 3}, Data: make([]float32, 6)}
	sr := dataset.Array{Name: "sr", Shape: []int{}, Data: []int64{16000}}
	tests := []struct {
		name    string
		ins     []feed.Input
		d       *dataset.Dataset
		want    fed
		wantLog string
		wantErr string
	}{
		{
			name: "single input: flat x reshaped, labels kept", ins: mnist, d: flat,
			want: fed{Len: 3, Batched: map[string]bool{"Input3": true}, Shapes: map[string][]int64{"Input3": {1, 28, 28}}, Labels: []int64{7, 2, 1}},
			// The log names the file, the array and both shapes.
			wantLog: `msg="dataset: reshaping x to fit the model input" file=flat.npz from="[3 784]" to="[3 1 28 28]" input=Input3`,
		},
		{
			name: "single input: the array named by the input is preferred to x",
			ins:  []feed.Input{{Name: "ids", DType: onnx.Int64, Dims: []int64{-1, 3}}},
			d: &dataset.Dataset{Name: "ids.npz", Shape: []int{2, 2}, X: make([]float32, 4), Arrays: []dataset.Array{
				{Name: "x", Shape: []int{2, 2}, Data: make([]float32, 4)}, {Name: "ids", Shape: []int{2, 3}, Data: seqI(6, 0)}}},
			want: fed{Len: 2, Batched: map[string]bool{"ids": true}, Shapes: map[string][]int64{"ids": {3}}},
		},
		{
			name: "several inputs: samples, a state and a scalar fed whole", ins: vadInputs,
			d: &dataset.Dataset{Name: "vad.npz", Arrays: []dataset.Array{audio, state, sr}},
			want: fed{Len: 5, Batched: map[string]bool{"input": true, "state": false, "sr": false},
				Shapes: map[string][]int64{"input": {4}, "state": {2, 1, 3}, "sr": {}}},
		},
		{
			// With 2 labels, the state's first dimension counts samples.
			name: "an array that fits the whole input holds samples when it has one per label",
			ins:  []feed.Input{{Name: "a", DType: onnx.Float, Dims: []int64{2, 3}}},
			d:    &dataset.Dataset{Name: "two.npz", Labels: []int64{0, 1}, Arrays: []dataset.Array{{Name: "a", Shape: []int{2, 3}, Data: make([]float32, 6)}}},
			want: fed{Len: 2, Batched: map[string]bool{"a": true}, Shapes: map[string][]int64{"a": {3}}, Labels: []int64{0, 1}},
		},
		{
			name: "a scalar input takes a one-element array",
			ins:  []feed.Input{{Name: "x", DType: onnx.Float, Dims: []int64{-1, 4}}, {Name: "sr", DType: onnx.Int64, Dims: []int64{}}},
			d: &dataset.Dataset{Name: "sr.npz", Arrays: []dataset.Array{
				{Name: "x", Shape: []int{3, 4}, Data: make([]float32, 12)}, {Name: "sr", Shape: []int{1}, Data: []int32{8000}}}},
			want: fed{Len: 3, Batched: map[string]bool{"x": true, "sr": false}, Shapes: map[string][]int64{"x": {4}, "sr": {}}},
		},
		{
			name: "x of the wrong size", ins: mnist, d: &dataset.Dataset{Name: "wrong.npz", Shape: []int{2, 785}, X: make([]float32, 2*785)},
			wantErr: `wrong.npz: x has shape [2 785], model input "Input3" expects [N 1 28 28] (785 values per sample, the input takes 784)`,
		},
		{
			name: "no x for a single input", ins: mnist,
			d:       &dataset.Dataset{Name: "bad.npz", Arrays: []dataset.Array{{Name: "inputs", Shape: []int{1}, Data: []uint8{1}}}},
			wantErr: `bad.npz: no array "x" (the inputs); the file has [inputs] (a single-input model takes x, or an array named by its input "Input3")`,
		},
		{
			name: "an input without its array", ins: vadInputs, d: &dataset.Dataset{Name: "vad.npz", Arrays: []dataset.Array{audio, sr}},
			wantErr: `vad.npz: no array "state" for model input "state", which takes FLOAT [2 1 3]; the file has [input sr]`,
		},
		{
			name: "arrays with different sample counts",
			ins:  []feed.Input{{Name: "a", DType: onnx.Float, Dims: []int64{-1, 4}}, {Name: "b", DType: onnx.Float, Dims: []int64{-1}}},
			d: &dataset.Dataset{Name: "ab.npz", Arrays: []dataset.Array{
				{Name: "a", Shape: []int{3, 4}, Data: make([]float32, 12)}, {Name: "b", Shape: []int{2}, Data: make([]float32, 2)}}},
			wantErr: `ab.npz: b has 2 samples, a has 3`,
		},
		{
			name: "labels for another number of samples", ins: vadInputs,
			d:       &dataset.Dataset{Name: "vad.npz", Labels: []int64{1, 0}, Arrays: []dataset.Array{audio, state, sr}},
			wantErr: `vad.npz: y has 2 labels, but input has 5 samples`,
		},
		{
			name: "floats for an integer input", ins: []feed.Input{{Name: "ids", DType: onnx.Int64, Dims: []int64{-1, 2}}},
			d:       &dataset.Dataset{Name: "f.npz", Arrays: []dataset.Array{{Name: "ids", Shape: []int{1, 2}, Data: []float32{1, 2}}}},
			wantErr: `f.npz: ids is FLOAT; model input "ids" takes INT64 [? 2], which it is not converted to`,
		},
		{
			name: "an array for no input", ins: vadInputs,
			d:       &dataset.Dataset{Name: "vad.npz", Arrays: []dataset.Array{audio, state, sr, {Name: "h", Shape: []int{2, 1, 3}, Data: make([]float32, 6)}}},
			wantErr: `vad.npz: array "h" feeds no input of the model, whose inputs are "input" (FLOAT [? 4]), "state" (FLOAT [2 1 3]), "sr" (an INT64 scalar); the file has [input state sr h]`,
		},
		{
			name: "a state of the wrong shape", ins: vadInputs,
			d:       &dataset.Dataset{Name: "vad.npz", Arrays: []dataset.Array{audio, {Name: "state", Shape: []int{2, 1, 4}, Data: make([]float32, 8)}, sr}},
			wantErr: `vad.npz: state has shape [2 1 4]; model input "state" takes FLOAT [2 1 3], fed whole with every batch (or samples of it along a first dimension)`,
		},
		{
			name: "a scalar input given many values", ins: vadInputs,
			d:       &dataset.Dataset{Name: "vad.npz", Arrays: []dataset.Array{audio, state, {Name: "sr", Shape: []int{2}, Data: []int64{1, 2}}}},
			wantErr: `vad.npz: sr has shape [2]; model input "sr" is a scalar`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			prev := slog.Default()
			slog.SetDefault(slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{ReplaceAttr: dropTime})))
			defer slog.SetDefault(prev)
			d, err := feed.FromDataset(tc.ins, tc.d)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tc.wantErr)
				}
				if !fault.IsBadInput(err) {
					t.Errorf("error %v is not bad input: the data does not fit the model, retrying cannot help", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, summary(d)); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
			if !strings.Contains(log.String(), tc.wantLog) || tc.wantLog == "" && log.Len() > 0 {
				t.Errorf("log %q, want %q", log.String(), tc.wantLog)
			}
		})
	}
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// TestFit: the runner fits the job's dataset once (the reshape logged
// once); feeding the fitted dataset reshapes nothing. A single-input
// model fed from an array named by its input gets it as x (XName).
func TestFit(t *testing.T) {
	mnist := []feed.Input{{Name: "Input3", DType: onnx.Float, Dims: []int64{1, 1, 28, 28}}}
	var log bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&log, nil)))
	defer slog.SetDefault(prev)
	raw := &dataset.Dataset{Name: "flat.npz", Shape: []int{2, 784}, X: seqF(2*784, 0),
		Arrays: []dataset.Array{{Name: "x", Shape: []int{2, 784}, Data: make([]uint8, 2*784)}}}
	fit, err := feed.Fit(mnist, raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := feed.FromDataset(mnist, fit); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(log.String(), "reshaping x"); n != 1 {
		t.Errorf("logged %d reshapes, want 1:\n%s", n, log.String())
	}
	if diff := cmp.Diff([][]int{{2, 1, 28, 28}, {2, 1, 28, 28}, {2, 784}}, [][]int{fit.Shape, fit.Arrays[0].Shape, raw.Shape}); diff != "" {
		t.Errorf("shapes of X, x and the original X (-want +got):\n%s", diff)
	}

	named := &dataset.Dataset{Name: "n.npz", Arrays: []dataset.Array{{Name: "img", Shape: []int{2, 3}, Data: []uint8{1, 2, 3, 4, 5, 6}}}}
	fit, err = feed.Fit([]feed.Input{{Name: "img", DType: onnx.Float, Dims: []int64{-1, 3}}}, named)
	if err != nil {
		t.Fatal(err)
	}
	// The array named by the input becomes x, as stored: no float32
	// copy, read as float32 a sample at a time.
	if diff := cmp.Diff(&dataset.Dataset{Name: "n.npz", Shape: []int{2, 3}, XName: "img", XType: "uint8", Arrays: named.Arrays}, fit); diff != "" {
		t.Errorf("fitted (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]float32{1, 2, 3, 4, 5, 6}, fit.Float32s(0, 2)); diff != "" {
		t.Errorf("samples as float32 (-want +got):\n%s", diff)
	}
}

// TestParallelRaisesAWorkerPanic: a panic in work stops the work and is
// raised on the calling goroutine (where runner.Execute recovers it) as
// a *panics.Panic naming the worker's line: it neither crashes the
// process nor leaves Parallel waiting for a result that never comes.
func TestParallelRaisesAWorkerPanic(t *testing.T) {
	var ran atomic.Int32
	done := make(chan any)
	go func() {
		defer func() { done <- recover() }()
		feed.Parallel(context.Background(), 100000, 3, func(i int) (int, error) {
			ran.Add(1)
			if i == 5 {
				panic("work 5 failed")
			}
			// Work that takes time: the others stop once the panic is
			// recovered, and on a loaded machine instant calls could
			// all run before that.
			time.Sleep(50 * time.Microsecond)
			return i, nil
		}, func(int, int) error { return nil })
	}()
	var p any
	select {
	case p = <-done:
	case <-time.After(time.Minute):
		t.Fatal("Parallel did not return after a worker panicked")
	}
	pv, ok := p.(*panics.Panic)
	if !ok || pv.Value != "work 5 failed" || !strings.Contains(pv.Message(), "feed_test.go:") {
		t.Fatalf("recovered %T %v; want a *panics.Panic of the worker's value, at its line in feed_test.go", p, p)
	}
	if r := ran.Load(); r > 1000 {
		t.Errorf("%d calls ran after the panic at call 5: the work must stop", r)
	}
}

// TestFeedConvertsABatchAtATime: a uint8 dataset is fed as float32 a
// batch at a time: matching it to a model copies nothing, and a batch
// costs its own values as float32, once.
func TestFeedConvertsABatchAtATime(t *testing.T) {
	const n, size = 4096, 784
	var buf bytes.Buffer
	if err := dataset.WriteNPZ(&buf, dataset.Array{Name: "x", Shape: []int{n, 1, 28, 28}, Data: make([]uint8, n*size)}); err != nil {
		t.Fatal(err)
	}
	ds, err := dataset.Load("u8.npz", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	ins := []feed.Input{{Name: "Input3", DType: onnx.Float, Dims: []int64{-1, 1, 28, 28}}}
	var d *feed.Data
	if got := allocated(func() { d, err = feed.FromDataset(ins, ds) }); err != nil || got > 64<<10 {
		t.Fatalf("matching %d bytes of uint8 to the model allocated %d bytes (%v)", n*size, got, err)
	}
	var in map[string]*onnx.Tensor
	batch := feed.Span{Start: 100, N: 32, Size: 32}
	if got := allocated(func() { in, err = d.Tensors(batch.Samples()) }); err != nil || got > 32*size*4+16<<10 {
		t.Fatalf("a batch of 32 samples allocated %d bytes (%v), want about %d (its float32 values once)", got, err, 32*size*4)
	}
	if x := in["Input3"]; x.DType != onnx.Float || len(x.Data.([]float32)) != 32*size {
		t.Errorf("fed %v of %d values", x.DType, x.Len())
	}
}

// allocated runs f and returns the bytes it allocated.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestTensors checks what one run is fed: samples in order, padding
// repeats, inputs fed whole with every batch, each converted to its
// input's element type.
func TestTensors(t *testing.T) {
	ins := []feed.Input{
		{Name: "half", DType: onnx.Float16, Dims: []int64{-1, 2}},
		{Name: "ids", DType: onnx.Int64, Dims: []int64{-1, 2}},
		{Name: "sr", DType: onnx.Int64, Dims: []int64{}},
		{Name: "state", DType: onnx.Float, Dims: []int64{2, 1}},
	}
	d, err := feed.FromDataset(ins, &dataset.Dataset{Name: "t.npz", Arrays: []dataset.Array{
		{Name: "half", Shape: []int{3, 2}, Data: []float32{0.5, 1, 1.5, 2, 2.5, 3}},
		{Name: "ids", Shape: []int{3, 2}, Data: []int32{10, 11, 20, 21, 300, 31}},
		{Name: "sr", Shape: []int{}, Data: []uint8{16}},
		{Name: "state", Shape: []int{2, 1}, Data: []float64{-1, 1}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Tensors(feed.Span{Start: 1, N: 2, Size: 4}.Samples())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*onnx.Tensor{
		"half":  onnx.NewTensor([]int64{4, 2}, onnx.Float16s([]float32{1.5, 2, 2.5, 3, 2.5, 3, 2.5, 3})),
		"ids":   onnx.NewTensor([]int64{4, 2}, []int64{20, 21, 300, 31, 300, 31, 300, 31}),
		"sr":    onnx.NewTensor([]int64{}, []int64{16}),
		"state": onnx.NewTensor([]int64{2, 1}, []float32{-1, 1}),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tensors (-want +got):\n%s", diff)
	}
	// The same data for a model taking float32 and int32: For converts
	// when fed.
	other := []feed.Input{
		{Name: "half", DType: onnx.Float, Dims: []int64{-1, 2}}, {Name: "ids", DType: onnx.Int32, Dims: []int64{-1, 2}},
		{Name: "sr", DType: onnx.Int64, Dims: []int64{}}, {Name: "state", DType: onnx.Float, Dims: []int64{2, -1}},
	}
	o, err := d.For(other)
	if err != nil {
		t.Fatal(err)
	}
	got, err = o.Take(1).Tensors([]int{0})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(onnx.NewTensor([]int64{1, 2}, []int32{10, 11}), got["ids"]); diff != "" {
		t.Errorf("ids for the int32 model (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(onnx.NewTensor([]int64{1, 2}, []float32{0.5, 1}), got["half"]); diff != "" {
		t.Errorf("half for the float32 model (-want +got):\n%s", diff)
	}
	// Values an input's type cannot hold are refused when fed.
	small, err := d.For([]feed.Input{ins[0], {Name: "ids", DType: onnx.Int8, Dims: []int64{-1, 2}}, ins[2], ins[3]})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := small.Tensors([]int{0}); err != nil {
		t.Errorf("ids 10 and 11 fed as INT8: %v", err)
	}
	if _, err := small.Tensors([]int{2}); err == nil || !strings.Contains(err.Error(), `input "ids" takes INT8, which ids cannot be converted to: value 300 does not fit INT8`) {
		t.Errorf("int32 ids fed as INT8: error %v", err)
	}
	if _, err := d.For([]feed.Input{{Name: "half", DType: onnx.Float, Dims: []int64{-1, 3}}, ins[1], ins[2], ins[3]}); err == nil ||
		!strings.Contains(err.Error(), `input "half" takes samples shaped [3], the data's are [2]`) {
		t.Errorf("For a model of another sample shape: error %v", err)
	}
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name        string
		n, size     int
		fixed       bool
		last        feed.Remainder
		want        []feed.Span
		wantSamples [][]int
	}{
		{"dynamic: the last batch holds what is left", 5, 2, false, feed.Drop,
			[]feed.Span{{0, 2, 2}, {2, 2, 2}, {4, 1, 1}}, [][]int{{0, 1}, {2, 3}, {4}}},
		{"fixed, padded with the last sample", 5, 2, true, feed.Pad,
			[]feed.Span{{0, 2, 2}, {2, 2, 2}, {4, 1, 2}}, [][]int{{0, 1}, {2, 3}, {4, 4}}},
		{"fixed, remainder dropped", 5, 2, true, feed.Drop,
			[]feed.Span{{0, 2, 2}, {2, 2, 2}}, [][]int{{0, 1}, {2, 3}}},
		{"fixed batch larger than the data, padded", 2, 4, true, feed.Pad,
			[]feed.Span{{0, 2, 4}}, [][]int{{0, 1, 1, 1}}},
		{"fixed batch larger than the data, dropped", 2, 4, true, feed.Drop, nil, nil},
		{"fixed batch of 1", 3, 1, true, feed.Drop, []feed.Span{{0, 1, 1}, {1, 1, 1}, {2, 1, 1}}, [][]int{{0}, {1}, {2}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := feed.Plan(tc.n, tc.size, tc.fixed, tc.last)
			var samples [][]int
			for _, s := range got {
				samples = append(samples, s.Samples())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("spans (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantSamples, samples); diff != "" {
				t.Errorf("samples (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBatchSize(t *testing.T) {
	data := func(ins ...feed.Input) *feed.Data {
		var arrays []dataset.Array
		for _, in := range ins {
			shape := []int{8}
			for _, d := range in.Dims[1:] {
				shape = append(shape, int(max(d, 5)))
			}
			arrays = append(arrays, dataset.Array{Name: in.Name, Shape: shape, Data: make([]float32, onnx.NumElements(toInt64(shape)))})
		}
		d, err := feed.FromDataset(ins, &dataset.Dataset{Name: "d.npz", Arrays: arrays})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	state, err := feed.FromDataset([]feed.Input{
		{Name: "img", DType: onnx.Float, Dims: []int64{-1, 1024}},
		{Name: "state", DType: onnx.Float, Dims: []int64{2, -1, 3}},
	}, &dataset.Dataset{Name: "vad.npz", Arrays: []dataset.Array{
		{Name: "img", Shape: []int{8, 1024}, Data: make([]float32, 8*1024)},
		{Name: "state", Shape: []int{2, 1, 3}, Data: make([]float32, 6)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	img := feed.Input{Name: "img", DType: onnx.Float, Dims: []int64{-1, 1024}}    // 4 KiB a sample
	half := feed.Input{Name: "img", DType: onnx.Float16, Dims: []int64{-1, 1024}} // 2 KiB a sample
	four := feed.Input{Name: "img", DType: onnx.Float, Dims: []int64{4, 1024}}
	two := feed.Input{Name: "img", DType: onnx.Float, Dims: []int64{2, 1024}}
	type result struct {
		Size  int
		Fixed bool
	}
	tests := []struct {
		name                string
		preferred, maxBytes int
		ds                  []*feed.Data
		want                result
		wantErr             string
	}{
		{"dynamic: preferred", 64, 0, []*feed.Data{data(img)}, result{64, false}, ""},
		{"dynamic: capped by bytes", 64, 40 << 10, []*feed.Data{data(img)}, result{10, false}, ""},
		{"dynamic: bytes of the input's type", 64, 40 << 10, []*feed.Data{data(half)}, result{20, false}, ""},
		{"dynamic: at least one", 64, 100, []*feed.Data{data(img)}, result{1, false}, ""},
		{"fixed by the model", 64, 100, []*feed.Data{data(four)}, result{4, true}, ""},
		{"fixed by the source", 64, 0, []*feed.Data{data(img), data(four)}, result{4, true}, ""},
		{"model and source disagree", 64, 0, []*feed.Data{data(two), data(four)}, result{}, `input "img" fixes the batch at 4, input "img" at 2`},
		// Silero VAD's state [2, N, 128] fed whole holds one sample's
		// state: samples go one at a time.
		{"a state fed whole with a dynamic dimension", 64, 0, []*feed.Data{state}, result{1, true}, ""},
		{"a state and a fixed batch disagree", 64, 0, []*feed.Data{state, data(four)}, result{},
			`input "img" fixes the batch at 4, input "state" at 1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			size, fixed, err := feed.BatchSize(tc.preferred, tc.maxBytes, tc.ds...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, result{size, fixed}); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func toInt64(s []int) []int64 {
	out := make([]int64, len(s))
	for i, v := range s {
		out[i] = int64(v)
	}
	return out
}

// TestBatches: calibration reads every sample once, in order, in batches
// of the model's fixed size, leaving out what cannot fill the last one;
// an input fed whole comes with every batch.
func TestBatches(t *testing.T) {
	ins := []feed.Input{{Name: "x", DType: onnx.Float, Dims: []int64{2, 1}}, {Name: "sr", DType: onnx.Int64, Dims: []int64{}}}
	d, err := feed.FromDataset(ins, &dataset.Dataset{Name: "c.npz", Arrays: []dataset.Array{
		{Name: "x", Shape: []int{5, 1}, Data: seqF(5, 0)}, {Name: "sr", Shape: []int{}, Data: []int64{3}}}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Batches(32)
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]*onnx.Tensor
	for {
		b, err := c.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b)
	}
	sr := onnx.NewTensor([]int64{}, []int64{3})
	want := []map[string]*onnx.Tensor{
		{"x": onnx.NewTensor([]int64{2, 1}, []float32{0, 1}), "sr": sr},
		{"x": onnx.NewTensor([]int64{2, 1}, []float32{2, 3}), "sr": sr},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("batches (-want +got):\n%s", diff)
	}
}

// TestCollect checks batches against the model's inputs: what does not
// fit is an error naming the input and both shapes, and a model with a
// fixed batch dimension gets batches of exactly that size.
func TestCollect(t *testing.T) {
	ins := func(batch int64) []feed.Input {
		return []feed.Input{{Name: "x", DType: onnx.Float, Dims: []int64{batch, 3}}}
	}
	x := func(first float32, dims ...int64) *onnx.Tensor {
		return onnx.NewTensor(dims, seqF(onnx.NumElements(dims), first))
	}
	tests := []struct {
		name    string
		batch   int64
		batches []map[string]*onnx.Tensor
		limit   int
		want    []map[string]*onnx.Tensor
		samples int
		err     string
	}{
		{"dynamic batch, limit cuts the second", -1, []map[string]*onnx.Tensor{{"x": x(0, 2, 3)}, {"x": x(6, 2, 3)}}, 3,
			[]map[string]*onnx.Tensor{{"x": x(0, 2, 3)}, {"x": x(6, 1, 3)}}, 3, ""},
		{"fixed batch 2 regroups, the odd sample left out", 2, []map[string]*onnx.Tensor{{"x": x(0, 3, 3)}, {"x": x(9, 2, 3)}}, 100,
			[]map[string]*onnx.Tensor{{"x": x(0, 2, 3)}, {"x": x(6, 2, 3)}}, 4, ""},
		{"wrong sample shape", -1, []map[string]*onnx.Tensor{{"x": x(0, 4, 5)}}, 10, nil, 0, `batch 1: input "x" has shape [4 5], the model takes [N 3]`},
		{"wrong type", -1, []map[string]*onnx.Tensor{{"x": onnx.NewTensor([]int64{1, 3}, []int64{1, 2, 3})}}, 10, nil, 0, `input "x" is INT64, the model takes FLOAT`},
		{"missing input", -1, []map[string]*onnx.Tensor{{"z": x(0, 1, 3)}}, 10, nil, 0, `no tensor for model input "x"`},
		{"extra input", -1, []map[string]*onnx.Tensor{{"x": x(0, 1, 3), "z": x(0, 1, 3)}}, 10, nil, 0, `tensors ["z"] are not inputs of the model`},
		{"no samples", -1, nil, 10, nil, 0, "no samples"},
		{"fewer samples than the fixed batch", 4, []map[string]*onnx.Tensor{{"x": x(0, 3, 3)}}, 10, nil, 0, "fewer samples than the model's fixed batch of 4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, samples, err := feed.Collect(ins(tc.batch), feed.NewBatches(tc.batches...), tc.limit)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !fault.IsBadInput(err) {
					t.Fatalf("error %v, want bad input saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("batches (-want +got):\n%s", diff)
			}
			if samples != tc.samples {
				t.Errorf("%d samples, want %d", samples, tc.samples)
			}
		})
	}
}

// Truncate cuts the samples of a batch and keeps what is fed whole: a
// scalar, and a recurrent state whose first dimension the model fixes
// (Silero VAD's state [2, N, 128]) beside samples of another count.
func TestTruncate(t *testing.T) {
	x := onnx.NewTensor([]int64{3, 2}, seqF(6, 0))
	flag := onnx.NewTensor([]int64{}, []bool{true})
	state := onnx.NewTensor([]int64{2, 1, 4}, seqF(8, 0))
	vad := []feed.Input{
		{Name: "x", DType: onnx.Float, Dims: []int64{-1, 2}},
		{Name: "state", DType: onnx.Float, Dims: []int64{2, -1, 4}},
		{Name: "flag", DType: onnx.Bool, Dims: []int64{}},
	}
	tests := []struct {
		name  string
		ins   []feed.Input
		batch map[string]*onnx.Tensor
		limit int
		want  map[string]*onnx.Tensor
		n     int
		err   string
	}{
		{"samples cut, scalar kept", nil, map[string]*onnx.Tensor{"x": x, "flag": flag}, 2,
			map[string]*onnx.Tensor{"x": onnx.NewTensor([]int64{2, 2}, seqF(4, 0)), "flag": flag}, 2, ""},
		{"under the limit", nil, map[string]*onnx.Tensor{"x": x, "flag": flag}, 5, map[string]*onnx.Tensor{"x": x, "flag": flag}, 3, ""},
		{"state fed whole", vad, map[string]*onnx.Tensor{"x": x, "state": state, "flag": flag}, 1,
			map[string]*onnx.Tensor{"x": onnx.NewTensor([]int64{1, 2}, seqF(2, 0)), "state": state, "flag": flag}, 1, ""},
		{"without the model's inputs the state counts samples", nil, map[string]*onnx.Tensor{"x": x, "state": state}, 1, nil, 0,
			`input "x" has 3 samples, input "state" has 2`},
		{"different sample counts", nil, map[string]*onnx.Tensor{"a": onnx.NewTensor([]int64{2}, []float32{1, 2}), "b": onnx.NewTensor([]int64{3}, []float32{1, 2, 3})}, 1, nil, 0,
			`input "b" has 3 samples, input "a" has 2`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, n, err := feed.Truncate(tc.ins, tc.batch, tc.limit)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !fault.IsBadInput(err) {
					t.Fatalf("error %v, want bad input saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" || n != tc.n {
				t.Errorf("%d samples (want %d), batch (-want +got):\n%s", n, tc.n, diff)
			}
		})
	}
}

func TestSynthesize(t *testing.T) {
	ins := []feed.Input{
		{Name: "img", DType: onnx.Float, Dims: []int64{-1, 2, -1}},
		{Name: "ids", DType: onnx.Int64, Dims: []int64{-1, 3}},
		{Name: "sr", DType: onnx.Int64, Dims: []int64{}},
		{Name: "half", DType: onnx.Float16, Dims: []int64{1, 2}},
	}
	seven := 7.0
	synth := feed.Synth{Samples: 2, Seed: 11, Stream: 5, Field: "Shapes", Specs: map[string]feed.Spec{
		"img": {Shape: []int64{2, 3}},
		"sr":  {Value: &seven},
		"ids": {Range: &[2]float64{0, 100}},
	}}
	d, err := feed.Synthesize(ins, synth)
	if err != nil {
		t.Fatal(err)
	}
	again, err := feed.Synthesize(ins, synth)
	if err != nil {
		t.Fatal(err)
	}
	in, err := d.Tensors([]int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	in2, err := again.Tensors([]int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, in2); diff != "" {
		t.Errorf("two syntheses differ (-first +second):\n%s", diff)
	}
	// Input i draws from PCG(Seed, Stream+i): img is the first.
	r := rand.New(rand.NewPCG(11, 5))
	wantImg := make([]float32, 12)
	for i := range wantImg {
		wantImg[i] = r.Float32()
	}
	r = rand.New(rand.NewPCG(11, 8))
	wantHalf := []float32{r.Float32(), r.Float32(), r.Float32(), r.Float32()}
	if diff := cmp.Diff(onnx.NewTensor([]int64{2, 2, 3}, wantImg), in["img"]); diff != "" {
		t.Errorf("img (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(onnx.NewTensor([]int64{2, 2}, onnx.Float16s(wantHalf)), in["half"]); diff != "" {
		t.Errorf("half, float16 (-want +got):\n%s", diff)
	}
	// half fixes the batch at 1: two samples are two runs.
	if b, err := feed.FixedBatch(d); b != 1 || err != nil {
		t.Errorf("FixedBatch = %d, %v; want 1", b, err)
	}
	if diff := cmp.Diff(onnx.NewTensor([]int64{}, []int64{7}), in["sr"]); diff != "" {
		t.Errorf("sr: a scalar fed whole (-want +got):\n%s", diff)
	}
	ids := in["ids"].Data.([]int64)
	if len(ids) != 6 || slicesMin(ids) < 0 || slicesMax(ids) >= 100 || slicesMax(ids) == slicesMin(ids) {
		t.Errorf("ids %v: want 6 different values in [0, 100)", ids)
	}
	summary := summary(d)
	want := fed{Len: 2, Batched: map[string]bool{"img": true, "ids": true, "sr": false, "half": true},
		Shapes: map[string][]int64{"img": {2, 3}, "ids": {3}, "sr": {}, "half": {2}}}
	if diff := cmp.Diff(want, summary); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
	// Without specs integers are zero and dynamic dims DefaultDynamicDim.
	plain, err := feed.Synthesize(ins[:2], feed.Synth{Samples: 1})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]int64{"img": {2, feed.DefaultDynamicDim}, "ids": {3}}, plain.SampleShapes()); diff != "" {
		t.Errorf("default shapes (-want +got):\n%s", diff)
	}
	zeros, _ := plain.Tensors([]int{0})
	if diff := cmp.Diff([]int64{0, 0, 0}, zeros["ids"].Data); diff != "" {
		t.Errorf("integer input without a spec (-want +got):\n%s", diff)
	}
}

func slicesMin(v []int64) int64 {
	m := v[0]
	for _, x := range v {
		m = min(m, x)
	}
	return m
}

func slicesMax(v []int64) int64 {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

func TestSynthesizeErrors(t *testing.T) {
	two := []feed.Input{{Name: "a", DType: onnx.Float, Dims: []int64{-1, 4}}, {Name: "b", DType: onnx.Float, Dims: []int64{-1, 4}}}
	state := []feed.Input{{Name: "state", DType: onnx.Float, Dims: []int64{2, -1, 8}}}
	ids := []feed.Input{{Name: "ids", DType: onnx.Int32, Dims: []int64{-1, 4}}}
	undeclared := []feed.Input{{Name: "u", DType: onnx.Float}}
	half := 0.5
	tests := []struct {
		name  string
		ins   []feed.Input
		specs map[string]feed.Spec
		want  string // error; "" for none
	}{
		{"unknown input", two, map[string]feed.Spec{"c": {Shape: []int64{4}}}, `Shapes names input "c"; the model's inputs are ["a" "b"]`},
		{"wrong rank", two, map[string]feed.Spec{"a": {Shape: []int64{4, 1}}}, `Shapes["a"] is [4 1]: input "a" has shape [-1 4], expected 1 sample dims (batch excluded)`},
		{"against a fixed dim", two, map[string]feed.Spec{"a": {Shape: []int64{5}}}, `Shapes["a"] is [5]: input "a" has the fixed shape [-1 4]`},
		{"not positive", two, map[string]feed.Spec{"a": {Shape: []int64{0}}}, `Shapes["a"] is [0]: dims must be positive`},
		{"undeclared shape", undeclared, nil, `input "u" declares no shape: give its sample dims (batch excluded) in Shapes`},
		{"undeclared shape given", undeclared, map[string]feed.Spec{"u": {Shape: []int64{3}}}, ""},
		{"a whole state", state, map[string]feed.Spec{"state": {Shape: []int64{2, 1, 8}}}, ""},
		{"a whole state of another shape", state, map[string]feed.Spec{"state": {Shape: []int64{3, 1, 8}}}, `Shapes["state"] is [3 1 8]: input "state" has the fixed shape [2 -1 8]`},
		{"value and range", two, map[string]feed.Spec{"a": {Value: &half, Range: &[2]float64{0, 1}}}, `Shapes["a"] sets both a value and a range`},
		{"empty range", two, map[string]feed.Spec{"a": {Range: &[2]float64{1, 1}}}, `Shapes["a"] has the range [1, 1): it needs low < high`},
		{"fraction for integers", ids, map[string]feed.Spec{"ids": {Value: &half}}, `Shapes["ids"] has the value 0.5: input "ids" takes whole numbers (INT32)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := feed.Synthesize(tc.ins, feed.Synth{Specs: tc.specs, Samples: 2, Field: "Shapes"})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !fault.IsBadInput(err) {
				t.Fatalf("error %v, want bad input saying %q", err, tc.want)
			}
		})
	}
}

// TestParallel: results reach deliver in order whatever order the work
// finishes in, and the first error stops the work.
func TestParallel(t *testing.T) {
	const n = 40
	var got []int
	err := feed.Parallel(context.Background(), n, 4, func(i int) (int, error) {
		time.Sleep(time.Duration((n-i)%7) * time.Millisecond)
		return i * i, nil
	}, func(i, r int) error {
		if r != i*i {
			return fmt.Errorf("result %d for work %d", r, i)
		}
		got = append(got, i)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delivery order (-want +got):\n%s", diff)
	}

	var ran atomic.Int32
	boom := errors.New("boom")
	err = feed.Parallel(context.Background(), 1000, 2, func(i int) (int, error) {
		ran.Add(1)
		if i == 3 {
			return 0, boom
		}
		return i, nil
	}, func(int, int) error { return nil })
	if !errors.Is(err, boom) {
		t.Errorf("error %v, want boom", err)
	}
	if r := ran.Load(); r > 20 {
		t.Errorf("%d calls ran after the error at call 3: the work must stop", r)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := feed.Parallel(ctx, 10, 2, func(i int) (int, error) { return i, nil }, func(int, int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: error %v", err)
	}
}

// TestXForIntegerInputs: token ids in x reach an integer input exactly,
// whether float32 can hold them (X is read back in x's type) or not (x is
// kept as stored).
func TestXForIntegerInputs(t *testing.T) {
	ids := []feed.Input{{Name: "input_ids", DType: onnx.Int64, Dims: []int64{-1, 2}}}
	tests := []struct {
		name string
		x    dataset.Array
		want *onnx.Tensor
	}{
		{"uint8", dataset.Array{Name: "x", Shape: []int{2, 2}, Data: []uint8{1, 2, 250, 4}}, onnx.NewTensor([]int64{2, 2}, []int64{1, 2, 250, 4})},
		{"int64 beyond float32", dataset.Array{Name: "x", Shape: []int{2, 2}, Data: []int64{1<<40 + 1, 2, 3, 4}}, onnx.NewTensor([]int64{2, 2}, []int64{1<<40 + 1, 2, 3, 4})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := dataset.WriteNPZ(&buf, tc.x); err != nil {
				t.Fatal(err)
			}
			ds, err := dataset.Load("ids.npz", buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			d, err := feed.FromDataset(ids, ds)
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.Tensors([]int{0, 1})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got["input_ids"]); diff != "" {
				t.Errorf("input_ids (-want +got):\n%s", diff)
			}
		})
	}
}
