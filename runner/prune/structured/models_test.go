package structured

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// TestRewriteEqualsMasking checks the rewriting of real models against an
// oracle that removes nothing: the same model with every read of a removed
// channel zeroed. Both must compute the same outputs, whatever the
// channels held.
func TestRewriteEqualsMasking(t *testing.T) {
	orttest.Require(t)
	for _, c := range []struct {
		name  string
		path  string
		input map[string]*onnx.Tensor
	}{
		{"mnist-8", onnxtest.MNIST8, normalInputs(9, "Input3", 1, 1, 28, 28)},
		{"ppocr-det", onnxtest.PPOCRDet, map[string]*onnx.Tensor{"x": images(1, 96, 128, 9)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := onnxtest.Model(t, c.path)
			pr, p := planned(t, m, Options{Fraction: 0.3, Seed: 3})
			oracle := masked(t, pr, p)
			if err := pr.a.apply(p); err != nil {
				t.Fatal(err)
			}
			in := c.input
			if d := maxDiff(t, pr.a.m, oracle, in); d > 1e-4 {
				t.Errorf("pruned model differs from the masked oracle by %g", d)
			}
			if d := maxDiff(t, pr.a.m, m, in); d < 1e-3 {
				t.Errorf("pruned model equals the source (difference %g): nothing was removed", d)
			}
		})
	}
}

func TestPruneMNIST8(t *testing.T) {
	orttest.Require(t)
	m := onnxtest.Model(t, onnxtest.MNIST8)
	out, rep, err := Prune(context.Background(), m, Options{Fraction: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	type layer struct {
		Node           string
		Channels, Kept int
		Protected      string
	}
	var got []layer
	for _, l := range rep.Layers {
		got = append(got, layer{l.Node, l.Channels, l.Kept, l.Protected})
	}
	want := []layer{{"Convolution28", 8, 6, ""}, {"Convolution110", 16, 12, ""}, {"Times212", 10, 10, "graph output"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("layers (-want +got):\n%s", d)
	}
	before, after := modelBytes(t, m), modelBytes(t, out)
	if after > before*8/10 {
		t.Errorf("pruned file %d bytes, source %d: want at least 20%% smaller", after, before)
	}
	if mb, ma := macs(t, m), macs(t, out); ma > mb*8/10 {
		t.Errorf("pruned model %d MACs, source %d: want at least 20%% fewer", ma, mb)
	}
	in := normalInputs(1, "Input3", 1, 1, 28, 28)
	res := orttest.Run(t, out, in)
	if got := res["Plus214_Output_0"].Dims; !cmp.Equal(got, []int64{1, 10}) {
		t.Errorf("output shape %v, want [1 10]", got)
	}
}

func TestPrunePPOCR(t *testing.T) {
	orttest.Require(t)
	m := onnxtest.Model(t, onnxtest.PPOCRDet)
	out, rep, err := Prune(context.Background(), m, Options{Fraction: 0.2, InputShapes: map[string][]int64{"x": {1, 3, 96, 128}}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ChannelsAfter >= rep.ChannelsBefore*85/100 || rep.ParamsAfter >= rep.ParamsBefore*85/100 {
		t.Errorf("channels %d -> %d, params %d -> %d: want at least 15%% fewer of each", rep.ChannelsBefore, rep.ChannelsAfter, rep.ParamsBefore, rep.ParamsAfter)
	}
	if mb, ma := macs(t, m), macs(t, out); ma > mb*85/100 {
		t.Errorf("pruned model %d MACs, source %d: want at least 15%% fewer", ma, mb)
	}
	// Weights stay where they were: in Constant nodes.
	for _, w := range out.Weights() {
		if w.Kind != onnx.KindConstant {
			t.Errorf("weight %q is now a %s, want a Constant node", w.Name, w.Kind)
		}
	}
	// The dynamic input still takes any size.
	res := orttest.Run(t, out, map[string]*onnx.Tensor{"x": images(2, 64, 160, 1)})
	if got := res["sigmoid_0.tmp_0"].Dims; !cmp.Equal(got, []int64{2, 1, 64, 160}) {
		t.Errorf("output shape %v, want [2 1 64 160]", got)
	}
}

func modelBytes(t testing.TB, m *onnx.Model) int {
	t.Helper()
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

// macs counts the multiply-accumulates of Conv, ConvTranspose, Gemm and
// MatMul on the probe inputs, from the shapes ONNX Runtime computes.
func macs(t testing.TB, m *onnx.Model) int64 {
	t.Helper()
	in, err := probeInputs(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	shapes, _, err := probeShapes(m, in, 1)
	if err != nil {
		t.Fatal(err)
	}
	ws := weights(t, m)
	dims := func(name string) []int64 {
		if w, ok := ws[name]; ok {
			return w.Dims
		}
		return shapes[name]
	}
	var total int64
	for _, n := range m.Proto.GetGraph().GetNode() {
		w := dims(input(n, 1))
		switch n.GetOpType() {
		case "Conv":
			total += prod(shapes[output(n, 0)]) * prod(w[1:])
		case "ConvTranspose":
			total += prod(shapes[input(n, 0)]) * prod(w[1:])
		case "Gemm":
			k := w[0]
			if onnx.IntAttr(n, "transB", 0) != 0 {
				k = w[1]
			}
			total += prod(shapes[output(n, 0)]) * k
		case "MatMul":
			total += prod(shapes[output(n, 0)]) * w[len(w)-2]
		}
	}
	return total
}
