package v1alpha1_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
)

func TestStageBody(t *testing.T) {
	prune := &v1alpha1.PruneSpec{Method: v1alpha1.PruneMagnitude}
	quant := &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeDynamic}
	tests := []struct {
		name string
		body v1alpha1.StageBody
		want any // Body()
		err  string
	}{
		{"prune", v1alpha1.StageBody{Type: v1alpha1.StageTypePrune, Prune: prune}, prune, ""},
		{"quantize", v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize, Quantize: quant}, quant, ""},
		{"custom", v1alpha1.StageBody{Type: v1alpha1.StageTypeCustom, Custom: &v1alpha1.CustomSpec{Image: "i"}}, &v1alpha1.CustomSpec{Image: "i"}, ""},
		{"distill", v1alpha1.StageBody{Type: v1alpha1.StageTypeDistill, Distill: &v1alpha1.DistillSpec{Epochs: 2}}, &v1alpha1.DistillSpec{Epochs: 2}, ""},
		{"missing body", v1alpha1.StageBody{Type: v1alpha1.StageTypePrune}, nil,
			"task.stage must set exactly one body, the one matching type Prune"},
		{"other body", v1alpha1.StageBody{Type: v1alpha1.StageTypePrune, Quantize: quant}, nil,
			"task.stage must set exactly one body, the one matching type Prune"},
		{"two bodies", v1alpha1.StageBody{Type: v1alpha1.StageTypePrune, Prune: prune, Quantize: quant}, prune,
			"task.stage must set exactly one body, the one matching type Prune"},
		{"unknown type", v1alpha1.StageBody{Type: "Sparsify", Prune: prune}, nil,
			`task.stage.type "Sparsify" is not one of Prune, Distill, Quantize, Custom`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, tt.body.Body()); d != "" {
				t.Errorf("Body() (-want +got):\n%s", d)
			}
			got := ""
			if err := tt.body.CheckBody("task.stage"); err != nil {
				got = err.Error()
			}
			if got != tt.err {
				t.Errorf("CheckBody = %q, want %q", got, tt.err)
			}
		})
	}
	want := []v1alpha1.StageType{v1alpha1.StageTypePrune, v1alpha1.StageTypeDistill, v1alpha1.StageTypeQuantize, v1alpha1.StageTypeCustom}
	if d := cmp.Diff(want, v1alpha1.StageTypes()); d != "" {
		t.Errorf("StageTypes (-want +got):\n%s", d)
	}
}
