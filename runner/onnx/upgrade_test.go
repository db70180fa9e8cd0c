package onnx_test

import (
	"errors"
	"math"
	"os"
	"sort"
	"testing"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort"
	"github.com/kompress/kompress/runner/ort/orttest"
)

func TestUpgradeRealModels(t *testing.T) {
	tests := []struct {
		model  string
		from   int64
		inputs func(t *testing.T) map[string]*onnx.Tensor
	}{
		{"mnist-8.onnx", 7, mnistInput},
		{"ppocr-det.onnx", 11, func(*testing.T) map[string]*onnx.Tensor { return map[string]*onnx.Tensor{"x": ppocrInput(2)} }},
	}
	for _, tc := range tests {
		t.Run(tc.model, func(t *testing.T) {
			m := onnxtest.Model(t, tc.model)
			if got := m.Opset(""); got != tc.from {
				t.Fatalf("opset %d, want %d", got, tc.from)
			}
			// Without graph optimizations both versions run the same kernels:
			// outputs must be identical. With them, ONNX Runtime fuses
			// differently per opset (last-bit differences).
			plain := ort.Options{Optimization: ort.OptimizeDisabled}
			want := run(t, session(t, tc.model, mustBytes(t, m), plain), tc.inputs(t))
			wantOpt := run(t, session(t, tc.model, mustBytes(t, m), ort.Options{}), tc.inputs(t))
			if err := m.UpgradeOpset(21); err != nil {
				t.Fatal(err)
			}
			if m.Opset("") != 21 || m.Proto.GetIrVersion() < 10 {
				t.Errorf("after upgrade: opset %d, IR %d; want 21 and IR >= 10", m.Opset(""), m.Proto.GetIrVersion())
			}
			got := run(t, session(t, tc.model+"@21", mustBytes(t, m), plain), tc.inputs(t))
			sameOutputs(t, "upgraded", want, got, 0)
			gotOpt := run(t, session(t, tc.model+"@21", mustBytes(t, m), ort.Options{}), tc.inputs(t))
			sameOutputs(t, "upgraded, optimized", wantOpt, gotOpt, 1e-5)
		})
	}
}

// TestUpgradeCorpus upgrades every corpus model below opset 21 and runs the
// original and the upgraded model on the reference inputs.
func TestUpgradeCorpus(t *testing.T) {
	orttest.Require(t)
	var upgraded, identical, close, current, tooOld, refused, notRunnable, untestable int
	var refusedNames []string
	for _, c := range onnxtest.Corpus(t) {
		m, err := onnx.LoadFile(c.ModelPath())
		if err != nil {
			t.Fatal(err)
		}
		if m.Opset("") >= 21 || m.Opset("") == 0 {
			current++
			continue
		}
		if m.Opset("") < onnx.MinUpgradeOpset {
			tooOld++
			continue
		}
		inputs, reason := c.Inputs(m)
		if reason != "" {
			untestable++
			continue
		}
		orig, err := os.ReadFile(c.ModelPath())
		if err != nil {
			t.Fatal(err)
		}
		want, err := runOnce(c.Name, orig, inputs)
		if err != nil {
			notRunnable++
			continue
		}
		from := m.Opset("")
		if err := m.UpgradeOpset(21); err != nil {
			var r *onnx.RefusalError
			if !errors.As(err, &r) {
				t.Errorf("%s: %v", c.Name, err)
				continue
			}
			refused++
			refusedNames = append(refusedNames, c.Name+": "+err.Error())
			continue
		}
		got, err := runOnce(c.Name+"@21", mustBytes(t, m), inputs)
		if err != nil {
			t.Errorf("%s: upgraded from opset %d, ONNX Runtime fails: %v", c.Name, from, err)
			continue
		}
		// Newer kernels of some operators (AveragePool-19, the flattened
		// Softmax) round differently in the last bit.
		switch d := maxOutputDiff(want, got); {
		case d == 0:
			identical++
		case d <= 1e-5:
			close++
		default:
			t.Errorf("%s: upgraded from opset %d, outputs differ by %g", c.Name, from, d)
		}
		upgraded++
	}
	sort.Strings(refusedNames)
	t.Logf("opset upgrade over the corpus: %d upgraded to 21 (%d with identical outputs, %d within 1e-5), %d refused, %d below opset %d, %d at 21+ or without the default domain, %d not runnable by ONNX Runtime, %d with non-tensor inputs", upgraded, identical, close, refused, tooOld, onnx.MinUpgradeOpset, current, notRunnable, untestable)
	for _, r := range refusedNames {
		t.Logf("refused %s", r)
	}
	if upgraded < 700 {
		t.Errorf("only %d corpus models upgraded", upgraded)
	}
}

// maxOutputDiff is the largest MaxDiff over outputs; +Inf when the output
// sets differ.
func maxOutputDiff(want, got map[string]*onnx.Tensor) float64 {
	worst := 0.0
	if len(want) != len(got) {
		return math.Inf(1)
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			return math.Inf(1)
		}
		worst = math.Max(worst, orttest.MaxDiff(g, w))
	}
	return worst
}
