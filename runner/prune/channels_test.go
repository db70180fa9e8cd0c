package prune

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/runner/dataset"
)

// TestChannelsDispatch runs the structured methods through Prune: the
// model comes back with fewer parameters, ONNX Runtime runs it, and the
// report carries the structured package's.
func TestChannelsDispatch(t *testing.T) {
	if testing.Short() {
		t.Skip("runs models with ONNX Runtime")
	}
	src := loadModel(t, "mnist-8.onnx")
	calib, eval := mnistSplit(t)
	for _, spec := range []v1alpha1.PruneSpec{
		{Method: v1alpha1.PruneStructured, Keep: "0.75", Criterion: v1alpha1.CriterionL2},
		{Method: v1alpha1.PruneEntropy, Sparsity: "0.25", CalibrationSamples: 64},
		{Method: v1alpha1.PruneStructured, Sparsity: "0.25", Criterion: v1alpha1.CriterionReconstruction, Scope: v1alpha1.ScopeGlobal, CalibrationSamples: 100},
	} {
		t.Run(string(spec.Method)+" "+string(spec.Criterion), func(t *testing.T) {
			out, rep := mustPrune(t, src, spec, calib)
			s := rep.Structured
			if s == nil || rep.Sparsity != 0.25 {
				t.Fatalf("report %+v: want the structured report and sparsity 0.25", rep)
			}
			if s.ParamsAfter >= s.ParamsBefore || s.ChannelsAfter >= s.ChannelsBefore {
				t.Errorf("nothing removed: %s", rep.Summary())
			}
			wantCrit, wantSamples := string(spec.Criterion), int(spec.CalibrationSamples)
			if spec.Method == v1alpha1.PruneEntropy {
				wantCrit = "entropy"
			}
			if string(s.Criterion) != wantCrit || s.Samples != wantSamples {
				t.Errorf("criterion %s on %d samples, want %s on %d", s.Criterion, s.Samples, wantCrit, wantSamples)
			}
			stats, err := out.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if stats.Params != s.ParamsAfter {
				t.Errorf("model has %d parameters, report says %d", stats.Params, s.ParamsAfter)
			}
			t.Logf("%s; accuracy on 800 images %.4f", rep.Summary(), accuracy(t, string(spec.Method), out, eval))
		})
	}
}

func TestChannelsBadInput(t *testing.T) {
	mnist := loadModel(t, "mnist-8.onnx")
	wrong := &dataset.Dataset{Name: "wrong.npz", Shape: []int{2, 5}, X: make([]float32, 10)}
	tests := []struct {
		name string
		spec v1alpha1.PruneSpec
		data *dataset.Dataset
		is   error
		say  string
	}{
		{"pattern", v1alpha1.PruneSpec{Method: "structured", Pattern: "2:4"}, nil, ErrSpec, "prune.pattern is only used by methods nm and hessian"},
		{"no sparsity", v1alpha1.PruneSpec{Method: "structured"}, nil, ErrSpec, "fraction of channels removed"},
		{"sparsity 1", v1alpha1.PruneSpec{Method: "structured", Sparsity: "1"}, nil, ErrSpec, "prune.sparsity"},
		{"sparse storage", v1alpha1.PruneSpec{Method: "structured", Sparsity: "0.2", Storage: "sparse"}, nil, ErrSpec, "prune.storage sparse"},
		{"entropy without data", v1alpha1.PruneSpec{Method: "entropy", Sparsity: "0.2"}, nil, ErrCalibration, "spec.dataset"},
		{"data of the wrong shape", v1alpha1.PruneSpec{Method: "entropy", Sparsity: "0.2"}, wrong, ErrCalibration, "wrong.npz"},
		{"reconstruction without data", v1alpha1.PruneSpec{Method: "structured", Sparsity: "0.2", Criterion: "reconstruction"}, nil, ErrCalibration, "spec.dataset"},
		{"unknown criterion", v1alpha1.PruneSpec{Method: "structured", Sparsity: "0.2", Criterion: "l3"}, nil, ErrSpec, "not l1, l2 or reconstruction"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, rep, err := Prune(context.Background(), mnist, tc.spec, tc.data, nil)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.say) {
				t.Fatalf("error %v, want %v saying %q", err, tc.is, tc.say)
			}
			if out != nil || rep != nil {
				t.Errorf("a model or report came back with the error")
			}
		})
	}
}
