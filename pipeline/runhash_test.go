package pipeline

import (
	"testing"

	"github.com/kompress/kompress/api/v1alpha1"
)

func TestRunHash(t *testing.T) {
	a := testSpec()
	b := a.DeepCopy()
	b.Suspend = true
	if RunHash(a) != RunHash(b) {
		t.Error("suspending changes the run hash: resuming would start a new run")
	}
	b.Stages[1].Quantize.Method = v1alpha1.QuantizeDynamic
	if RunHash(a) == RunHash(b) {
		t.Error("a stage change keeps the run hash")
	}
	if b.Suspend != true || a.Suspend {
		t.Error("RunHash changed its input")
	}
}
