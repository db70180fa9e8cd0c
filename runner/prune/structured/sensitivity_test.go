package structured

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort/orttest"
)

func TestChooseCounts(t *testing.T) {
	for _, c := range []struct {
		name   string
		curves []curve
		target int
		want   []int
	}{{
		name:   "cheapest per channel first",
		curves: []curve{{[]int{2, 4}, []float64{0.01, 0.02}}, {[]int{2, 4}, []float64{0.1, 0.2}}},
		target: 4,
		want:   []int{4, 0},
	}, {
		name:   "a flat stretch after a step is taken as one move",
		curves: []curve{{[]int{1, 2, 3}, []float64{0.05, 0.05, 0.05}}, {[]int{1, 2, 3}, []float64{0.02, 0.04, 0.06}}},
		target: 3,
		want:   []int{3, 0},
	}, {
		name:   "the last move stops at the target",
		curves: []curve{{[]int{10}, []float64{0.01}}, {[]int{10}, []float64{0.02}}},
		target: 13,
		want:   []int{10, 3},
	}, {
		name:   "a target past every measured share takes them all",
		curves: []curve{{[]int{1}, []float64{0.5}}, {nil, nil}},
		target: 5,
		want:   []int{1, 0},
	}} {
		if got := chooseCounts(c.curves, c.target); !cmp.Equal(got, c.want) {
			t.Errorf("%s: counts %v, want %v", c.name, got, c.want)
		}
	}
}

// TestSensitivityScope measures mnist-8's two convolutions on real digits
// and spends the layer scope's budget where the outputs move least.
func TestSensitivityScope(t *testing.T) {
	orttest.Require(t)
	m := onnxtest.Model(t, onnxtest.MNIST8)
	p, err := dataset.MNISTPath(dataset.MNISTTest1k)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dataset.LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	calib := d.Take(64)
	_, layer, err := Prune(context.Background(), m, Options{Fraction: 0.25, Calibration: calib})
	if err != nil {
		t.Fatal(err)
	}
	_, sens, err := Prune(context.Background(), m, Options{Fraction: 0.25, Calibration: calib, Scope: ScopeSensitivity})
	if err != nil {
		t.Fatal(err)
	}
	removed := func(r *Report) int { return r.ChannelsBefore - r.ChannelsAfter }
	if removed(sens) != removed(layer) || removed(layer) != 6 {
		t.Errorf("sensitivity scope removed %d channels, layer scope %d: want 6 each", removed(sens), removed(layer))
	}
	for _, g := range sens.Groups[:2] {
		if len(g.Sensitivity) < 5 {
			t.Errorf("group %v measured at %d shares, want at least 5", g.Layers, len(g.Sensitivity))
		}
		for i := 1; i < len(g.Sensitivity); i++ {
			if a, b := g.Sensitivity[i-1], g.Sensitivity[i]; b.Removed <= a.Removed || b.Loss < a.Loss {
				t.Errorf("group %v curve %v is not increasing", g.Layers, g.Sensitivity)
			}
		}
	}
	if sens.Cosine < layer.Cosine-1e-9 {
		t.Errorf("sensitivity scope fidelity %v is below the layer scope's %v", sens.Cosine, layer.Cosine)
	}
}
