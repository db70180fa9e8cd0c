package structured

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// The figures of the pruning targets take minutes (the full MNIST test
// set, latency over many runs, ppocr-det's sensitivity analysis):
//
//	KOMPRESS_FIGURES=1 go test ./runner/prune/structured -run TestFigures -v -timeout 30m
func figures(t *testing.T) {
	onnxtest.Figures(t, "needs `make data`; minutes")
	orttest.Require(t)
}

func TestFiguresMNIST8(t *testing.T) {
	figures(t)
	m := onnxtest.Model(t, onnxtest.MNIST8)
	test := onnxtest.MNIST(t, dataset.MNISTTest10k)
	calib := onnxtest.MNIST(t, dataset.MNISTTrain60k).Take(1000)
	srcAcc := accuracy(t, m, test)
	t.Logf("source: %d bytes, %d MACs, accuracy %.4f", modelBytes(t, m), macs(t, m), srcAcc)
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"l1 25% (no data: bias correction on the probe input)", Options{Fraction: 0.25}},
		{"l1 25% without bias correction", Options{Fraction: 0.25, NoBiasCorrection: true}},
		{"l1 25% with 1000 training images", Options{Fraction: 0.25, Calibration: calib}},
		{"entropy 25% with 1000 training images", Options{Fraction: 0.25, Criterion: Entropy, Calibration: calib}},
		{"entropy 25% without bias correction", Options{Fraction: 0.25, Criterion: Entropy, Calibration: calib, NoBiasCorrection: true}},
		{"l1 25% sensitivity scope", Options{Fraction: 0.25, Calibration: calib, Scope: ScopeSensitivity}},
		{"reconstruction 25% with 1000 training images", Options{Fraction: 0.25, Criterion: Reconstruction, Calibration: calib}},
		{"reconstruction 25% global scope", Options{Fraction: 0.25, Criterion: Reconstruction, Calibration: calib, Scope: ScopeGlobal}},
	} {
		start := time.Now()
		out, rep, err := Prune(context.Background(), m, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		acc := accuracy(t, out, test)
		t.Logf("%s: pruned in %v; channels %d -> %d; %d -> %d bytes (%.1f%% smaller); %d -> %d MACs (%.1f%% fewer); accuracy %.4f (drop %.2f points)",
			c.name, took.Round(time.Millisecond), rep.ChannelsBefore, rep.ChannelsAfter,
			modelBytes(t, m), modelBytes(t, out), 100*(1-float64(modelBytes(t, out))/float64(modelBytes(t, m))),
			macs(t, m), macs(t, out), 100*(1-float64(macs(t, out))/float64(macs(t, m))), acc, 100*(srcAcc-acc))
		// The targets: the file at least 20% smaller, at least 20%
		// fewer multiply-accumulates.
		if smaller := 1 - float64(modelBytes(t, out))/float64(modelBytes(t, m)); smaller < 0.2 {
			t.Errorf("%s: file %.1f%% smaller, want at least 20%%", c.name, 100*smaller)
		}
		if fewer := 1 - float64(macs(t, out))/float64(macs(t, m)); fewer < 0.2 {
			t.Errorf("%s: %.1f%% fewer MACs, want at least 20%%", c.name, 100*fewer)
		}
		if c.name == "l1 25% (no data: bias correction on the probe input)" {
			for _, batch := range []int{1, 64} {
				src, pruned := latency(t, dynamicBatch(t, m), dynamicBatch(t, out), "Input3", []int64{int64(batch), 1, 28, 28})
				t.Logf("latency at batch %d (median of 2000 runs each, 1 thread): source %v, pruned %v (%.1f%% lower)", batch, src, pruned, 100*(1-float64(pruned)/float64(src)))
			}
		}
	}
}

func TestFiguresPPOCR(t *testing.T) {
	figures(t)
	m := onnxtest.Model(t, onnxtest.PPOCRDet)
	held := []*onnx.Tensor{}
	for s := range 4 {
		held = append(held, images(1, 320, 320, uint64(100+s)))
	}
	calib := imageData(8, 99)
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"l1 20% of every group", Options{Fraction: 0.2}},
		{"l1 20% of every group, image calibration", Options{Fraction: 0.2, Calibration: calib}},
		{"l1 20% global scope, image calibration", Options{Fraction: 0.2, Calibration: calib, Scope: ScopeGlobal}},
		{"l1 20% sensitivity scope, image calibration", Options{Fraction: 0.2, Calibration: calib, Scope: ScopeSensitivity}},
		{"reconstruction 20% of every group, image calibration", Options{Fraction: 0.2, Calibration: calib, Criterion: Reconstruction}},
		{"reconstruction 20% global scope, image calibration", Options{Fraction: 0.2, Calibration: calib, Criterion: Reconstruction, Scope: ScopeGlobal}},
	} {
		start := time.Now()
		out, rep, err := Prune(context.Background(), m, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		var cos []string
		for _, x := range held {
			want := orttest.Run(t, m, map[string]*onnx.Tensor{"x": x})["sigmoid_0.tmp_0"]
			got := orttest.Run(t, out, map[string]*onnx.Tensor{"x": x})["sigmoid_0.tmp_0"]
			v, err := cosine(got, want)
			if err != nil {
				t.Fatal(err)
			}
			cos = append(cos, fmt.Sprintf("%.4f", v))
			// The target, met by measuring what channels cost.
			if (c.opts.Scope == ScopeSensitivity || c.opts.Criterion == Reconstruction && c.opts.Scope == ScopeGlobal) && v < 0.95 {
				t.Errorf("%s: output cosine %.4f < 0.95", c.name, v)
			}
		}
		t.Logf("%s: pruned in %v; channels %d -> %d; params %d -> %d; %d -> %d bytes; %d -> %d MACs (%.1f%% fewer); cosine on 4 held-out 320x320 images %v",
			c.name, took.Round(time.Millisecond), rep.ChannelsBefore, rep.ChannelsAfter, rep.ParamsBefore, rep.ParamsAfter,
			modelBytes(t, m), modelBytes(t, out), macs(t, m), macs(t, out), 100*(1-float64(macs(t, out))/float64(macs(t, m))), cos)
		if c.opts.Scope == ScopeSensitivity {
			src, pruned := latency(t, m, out, "x", []int64{1, 3, 320, 320})
			t.Logf("latency at 1x3x320x320 (median, 1 thread): source %v, pruned %v", src, pruned)
		}
	}
}

// accuracy scores m's top-1 on d (mnist-8 with its batch made dynamic, in
// batches of 100).
func accuracy(t *testing.T, m *onnx.Model, d *dataset.Dataset) float64 {
	t.Helper()
	dm := dynamicBatch(t, m)
	fit, err := feed.FromDataset(feed.Inputs(dm), d)
	if err != nil {
		t.Fatal(err)
	}
	var batches []map[string]*onnx.Tensor
	for _, sp := range feed.Plan(fit.Len(), 100, false, feed.Pad) {
		in, err := fit.Tensors(sp.Samples())
		if err != nil {
			t.Fatal(err)
		}
		batches = append(batches, in)
	}
	outs, err := runEach(dm, batches, 0)
	if err != nil {
		t.Fatal(err)
	}
	right := 0
	for i, out := range outs {
		logits := out[dm.Proto.GetGraph().GetOutput()[0].GetName()].Data.([]float32)
		for s := range len(logits) / 10 {
			row := logits[s*10 : s*10+10]
			if int64(slices.Index(row, slices.Max(row))) == fit.Labels()[i*100+s] {
				right++
			}
		}
	}
	return float64(right) / float64(fit.Len())
}

// dynamicBatch makes mnist-8's batch dimension dynamic: its input and
// output declare N, and its Reshape to [1, features] becomes [-1, features].
func dynamicBatch(t *testing.T, m *onnx.Model) *onnx.Model {
	t.Helper()
	c := m.Clone()
	g := c.Proto.GetGraph()
	var fed []*onnxpb.ValueInfoProto
	for _, vi := range g.GetInput() {
		if slices.Contains(feed.Names(feed.Inputs(c)), vi.GetName()) {
			fed = append(fed, vi)
		}
	}
	for _, vi := range append(fed, g.GetOutput()...) {
		d := vi.GetType().GetTensorType().GetShape().GetDim()[0]
		d.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}
	}
	for _, n := range g.GetNode() {
		if n.GetOpType() != "Reshape" {
			continue
		}
		w := c.Weight(input(n, 1))
		v, err := w.Tensor()
		if err != nil {
			t.Fatal(err)
		}
		if s := v.Data.([]int64); len(s) == 2 && s[0] == 1 {
			s[0] = -1
			if err := w.Set(v); err != nil {
				t.Fatal(err)
			}
		}
	}
	return c
}

// latency returns the median wall time of a run of each model on inputs of
// the given shape, timed in alternating blocks so both see the same
// machine.
func latency(t *testing.T, a, b *onnx.Model, input string, dims []int64) (time.Duration, time.Duration) {
	t.Helper()
	in := normalInputs(1, input, dims...)
	var times [2][]time.Duration
	var sess [2]*ort.Session
	for i, m := range []*onnx.Model{a, b} {
		bytes, err := m.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if sess[i], err = ort.NewSession(m.Name, bytes, ort.Options{IntraOpThreads: 1}); err != nil {
			t.Fatal(err)
		}
		defer sess[i].Close()
	}
	runs := 2000
	if onnx.NumElements(dims) > 100000 {
		runs = 60
	}
	for block := range 20 {
		for i := range sess {
			for r := range runs/20 + 2 {
				start := time.Now()
				if _, err := sess[i].Run(in); err != nil {
					t.Fatal(err)
				}
				if r >= 2 || block > 0 { // the first runs warm up
					times[i] = append(times[i], time.Since(start))
				}
			}
		}
	}
	median := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	return median(times[0]), median(times[1])
}
