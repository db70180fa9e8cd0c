package prune

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort/orttest"
	"github.com/kompress/kompress/runner/prune/structured"
)

// TestChannelsDispatch runs the structured methods through Prune: the
// model comes back with fewer parameters, ONNX Runtime runs it, and the
// report carries the structured package's.
func TestChannelsDispatch(t *testing.T) {
	if testing.Short() {
		t.Skip("runs models with ONNX Runtime")
	}
	src := onnxtest.Model(t, onnxtest.MNIST8)
	calib, eval := mnistSplit(t)
	for _, c := range []struct {
		spec     Options
		sparsity float64
		recovery bool // the report says the model needs recovery
	}{
		// Output cosine about 0.95 on the calibration samples.
		{Options{Method: Structured, Sparsity: 0.25, Criterion: structured.L2}, 0.25, true},
		{Options{Method: Entropy, Sparsity: 0.25, CalibrationSamples: 64}, 0.25, true},
		// About 0.98.
		{Options{Method: Structured, Sparsity: 0.25, Criterion: structured.Reconstruction, Scope: ScopeGlobal, CalibrationSamples: 100}, 0.25, true},
		// Above 0.99.
		{Options{Method: Structured, Sparsity: 0.1, Criterion: structured.Reconstruction, Scope: ScopeGlobal, CalibrationSamples: 100}, 0.1, false},
	} {
		spec := c.spec
		t.Run(fmt.Sprintf("%s %s %g", spec.Method, spec.Criterion, spec.Sparsity), func(t *testing.T) {
			out, rep := mustPrune(t, src, spec, calib)
			s := rep.Structured
			if s == nil || rep.Sparsity != c.sparsity {
				t.Fatalf("report %+v: want the structured report and sparsity %v", rep, c.sparsity)
			}
			if rep.NeedsRecovery != c.recovery || c.recovery != strings.Contains(rep.Summary(), "needs recovery") ||
				c.recovery != (len(rep.Warnings) > 0 && strings.Contains(strings.Join(rep.Warnings, " "), "Distill stage")) {
				t.Errorf("output cosine %.4f: needs recovery %v, warnings %q, summary %q; want recovery %v", s.Cosine, rep.NeedsRecovery, rep.Warnings, rep.Summary(), c.recovery)
			}
			if rep.Scope == "" {
				t.Errorf("the report does not say which scope ran")
			}
			if s.ParamsAfter >= s.ParamsBefore || s.ChannelsAfter >= s.ChannelsBefore {
				t.Errorf("nothing removed: %s", rep.Summary())
			}
			wantCrit, wantSamples := spec.Criterion, spec.CalibrationSamples
			if spec.Method == Entropy {
				wantCrit = "entropy"
			}
			if s.Criterion != wantCrit || s.Samples != wantSamples {
				t.Errorf("criterion %s on %d samples, want %s on %d", s.Criterion, s.Samples, wantCrit, wantSamples)
			}
			stats, err := out.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if stats.Params != s.ParamsAfter {
				t.Errorf("model has %d parameters, report says %d", stats.Params, s.ParamsAfter)
			}
			t.Logf("%s; accuracy on 800 images %.4f", rep.Summary(), orttest.MNIST8Accuracy(t, out, eval))
		})
	}
}

func TestChannelsBadInput(t *testing.T) {
	mnist := onnxtest.Model(t, onnxtest.MNIST8)
	wrong := &dataset.Dataset{Name: "wrong.npz", Shape: []int{2, 5}, X: make([]float32, 10)}
	tests := []struct {
		name string
		opts Options
		data *dataset.Dataset
		is   error
		say  string
	}{
		{"pattern", Options{Method: Structured, Sparsity: 0.2, Pattern: Pattern{N: 2, M: 4}}, nil, ErrSpec, "prune.pattern is only used by methods nm and hessian (method structured takes sparsity)"},
		{"no sparsity", Options{Method: Structured}, nil, ErrSpec, "prune.sparsity, the fraction of channels removed, is required for method structured"},
		{"sparsity 1", Options{Method: Structured, Sparsity: 1}, nil, ErrSpec, "prune.sparsity 1: want a fraction in (0, 1)"},
		{"sparse storage", Options{Method: Entropy, Sparsity: 0.2, Storage: Sparse}, nil, ErrSpec, "prune.storage sparse stores zeros compactly; method entropy removes channels"},
		{"entropy without data", Options{Method: Entropy, Sparsity: 0.2}, nil, ErrCalibration, "spec.dataset"},
		{"data of the wrong shape", Options{Method: Entropy, Sparsity: 0.2}, wrong, ErrCalibration, "wrong.npz"},
		{"reconstruction without data", Options{Method: Structured, Sparsity: 0.2, Criterion: structured.Reconstruction}, nil, ErrCalibration, "spec.dataset"},
		{"unknown criterion", Options{Method: Structured, Sparsity: 0.2, Criterion: "l3"}, nil, ErrSpec, `prune.criterion "l3" is not l1, l2 or reconstruction`},
		{"entropy is a method", Options{Method: Structured, Sparsity: 0.2, Criterion: structured.Entropy}, nil, ErrSpec, `prune.criterion "entropy" is not l1, l2 or reconstruction`},
		{"no channel at this sparsity", Options{Method: Structured, Sparsity: 0.01}, nil, ErrNothingPrunable, "removes no channel"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, rep, err := Prune(context.Background(), mnist, tc.opts, tc.data, nil)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.say) {
				t.Fatalf("error %v, want %v saying %q", err, tc.is, tc.say)
			}
			if out != nil || rep != nil {
				t.Errorf("a model or report came back with the error")
			}
		})
	}
}
