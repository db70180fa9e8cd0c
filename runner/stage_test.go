package runner

import (
	"testing"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
)

// TestEveryStageTypeIsRegistered fails when the API gains a stage type
// that no runner file registers (or the runner keeps one the API dropped).
func TestEveryStageTypeIsRegistered(t *testing.T) {
	api := map[v1alpha1.StageType]bool{}
	for _, st := range v1alpha1.StageTypes() {
		api[st] = true
		if _, err := stageOf(st); err != nil {
			t.Errorf("stage type %s: %v", st, err)
		}
	}
	for st := range stages {
		if !api[st] {
			t.Errorf("runner registers %s, which the API does not define", st)
		}
	}
	if _, err := stageOf("Sparsify"); ExitCode(err) != pipeline.ExitUsage {
		t.Errorf("an unknown stage type gave %v (exit %d), want exit %d", err, ExitCode(err), pipeline.ExitUsage)
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		body v1alpha1.StageBody
		want string
	}{
		{v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize, Quantize: &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic, Bits: 8}}, "method=static bits=8"},
		{v1alpha1.StageBody{Type: v1alpha1.StageTypePrune, Prune: &v1alpha1.PruneSpec{Method: v1alpha1.PruneNM, Pattern: "2:4"}}, "method=nm sparsity= pattern=2:4"},
		{v1alpha1.StageBody{Type: v1alpha1.StageTypeDistill, Distill: &v1alpha1.DistillSpec{Epochs: 2, BatchSize: 64, Optimizer: v1alpha1.OptimizerAdam}}, "epochs=2 batch=64 optimizer=adam"},
		{v1alpha1.StageBody{Type: v1alpha1.StageTypeCustom, Custom: &v1alpha1.CustomSpec{Image: "example.com/r:1"}}, "image=example.com/r:1"},
	}
	for _, tt := range tests {
		s, err := stageOf(tt.body.Type)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Describe(pipeline.StageSpec{Name: "x", StageBody: tt.body}); got != tt.want {
			t.Errorf("%s: Describe = %q, want %q", tt.body.Type, got, tt.want)
		}
	}
}
