package jobfile

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
)

const sweep = valid + `  variants:
    parameters:
    - {stage: prune, field: sparsity, values: ["0.3", "0.6", "0.9"]}
    - {stage: int8, field: bits, values: ["8"]}
    - {stage: int8, field: perChannel, values: ["false", "true"]}
    - {stage: int8, field: calibration.method, values: [entropy]}
`

func TestExpandVariants(t *testing.T) {
	job, err := Decode([]byte(sweep))
	if err != nil {
		t.Fatal(err)
	}
	if got := job.Spec.Variants; got.Select != v1alpha1.SelectSmallest || got.MaxParallel != 4 {
		t.Errorf("variants defaults: select %q maxParallel %d, want smallest and 4", got.Select, got.MaxParallel)
	}
	vs, err := ExpandVariants(&job.Spec)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Name, Sparsity, Calibration string
		Bits                        int32
		PerChannel                  bool
		Variants                    bool
	}
	var got []row
	for _, v := range vs {
		p, q := v.Spec.Stages[0].Prune, v.Spec.Stages[1].Quantize
		got = append(got, row{v.Name, p.Sparsity, string(q.Calibration.Method), q.Bits, *q.PerChannel, v.Spec.Variants != nil})
	}
	want := []row{
		{"v1", "0.3", "entropy", 8, false, false}, {"v2", "0.3", "entropy", 8, true, false},
		{"v3", "0.6", "entropy", 8, false, false}, {"v4", "0.6", "entropy", 8, true, false},
		{"v5", "0.9", "entropy", 8, false, false}, {"v6", "0.9", "entropy", 8, true, false},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("variants (-want +got):\n%s", diff)
	}
	// Everything but the varied fields is the job's own, defaults included.
	if q := vs[0].Spec.Stages[1].Quantize; q.Calibration.Samples != 256 || q.BlockSize != 32 || job.Spec.Stages[1].Quantize.Calibration.Method != v1alpha1.CalibrationMinMax {
		t.Errorf("variant v1's quantize %+v lost the job's defaults, or the job was changed", q)
	}
}

// Sweeping smoothQuant.alpha on a static stage without smoothQuant turns
// SmoothQuant on in each variant with that alpha; "off" is the variant
// without it (the runner migrates nothing), "auto" searches alpha.
func TestExpandVariantsSmoothQuantAlpha(t *testing.T) {
	job, err := Decode([]byte(valid + "  variants:\n    parameters:\n    - {stage: int8, field: smoothQuant.alpha, values: [\"off\", \"0.5\", \"0.8\", \"auto\"]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	vs, err := ExpandVariants(&job.Spec)
	if err != nil {
		t.Fatal(err)
	}
	var got []*v1alpha1.SmoothQuant
	for _, v := range vs {
		got = append(got, v.Spec.Stages[1].Quantize.SmoothQuant)
	}
	if diff := cmp.Diff([]*v1alpha1.SmoothQuant{{Alpha: "off"}, {Alpha: "0.5"}, {Alpha: "0.8"}, {Alpha: "auto"}}, got); diff != "" {
		t.Errorf("smoothQuant of the variants (-want +got):\n%s", diff)
	}
}

// A value the field's own rules refuse is refused with the API server's
// words for that field, naming the variant and its values; a variant that
// fails the same way as an earlier one is listed with it.
func TestExpandVariantsRejects(t *testing.T) {
	cases := []struct {
		name   string
		params string
		want   []string
	}{
		{"sparsity out of range", `{stage: prune, field: sparsity, values: ["0.5", "1.5"]}`,
			[]string{`spec.variants: variant v2 (prune.sparsity=1.5) is not a valid spec: spec.stages[0].prune.sparsity: Invalid value: "1.5": prune.sparsity must be a decimal string in (0, 1), such as "0.5"`}},
		{"not an integer", `{stage: int8, field: bits, values: ["eight"]}`,
			[]string{`variant v1 (int8.bits=eight) is not a valid spec: `, `spec.stages[1].quantize.bits: Invalid value: "string": spec.stages[1].quantize.bits in body must be of type integer: "string"`}},
		{"not a boolean", `{stage: int8, field: symmetric, values: ["yes"]}`,
			[]string{`spec.stages[1].quantize.symmetric in body must be of type boolean: "string"`}},
		{"enum", `{stage: int8, field: method, values: [dynamic, awq]}`,
			[]string{`variant v2 (int8.method=awq) is not a valid spec: spec.stages[1].quantize.method: Unsupported value: "awq"`}},
		{"a combination", "{stage: int8, field: method, values: [static, weightOnly]}\n    - {stage: int8, field: bits, values: [\"8\", \"4\"]}\n    - {stage: prune, field: seed, values: [\"1\", \"2\"]}",
			[]string{`variant v3 (int8.method=static, int8.bits=4, prune.seed=1) is not a valid spec (so are v4): spec.stages[1].quantize: Invalid value: quantize.bits 4 is only supported with method weightOnly`}},
		{"a rule across fields", `{stage: prune, field: pattern, values: ["2:4"]}`,
			[]string{`variant v1 (prune.pattern=2:4) is not a valid spec: `, `prune: set sparsity or pattern, not both`, `prune.pattern is only used by methods nm and hessian`}},
		{"smoothQuant alpha above 1", `{stage: int8, field: smoothQuant.alpha, values: ["0.5", "2"]}`,
			[]string{`variant v2 (int8.smoothQuant.alpha=2) is not a valid spec: spec.stages[1].quantize.smoothQuant.alpha: Invalid value: "2": quantize.smoothQuant.alpha must be a decimal string in (0, 1]`}},
		{"unknown stage", `{stage: prunee, field: sparsity, values: ["0.3"]}`,
			[]string{`spec.variants.parameters[].stage must name a stage of spec.stages: prunee is not one`}},
		{"field of another type", `{stage: int8, field: sparsity, values: ["0.3"]}`,
			[]string{`spec.variants.parameters[].field must be a variable field of the body of the stage it names: stage int8 has no variable field sparsity`}},
		{"more than 64", "{stage: prune, field: sparsity, values: [\"0.1\", \"0.2\", \"0.3\", \"0.4\", \"0.5\"]}\n    - {stage: prune, field: seed, values: [\"1\", \"2\", \"3\", \"4\"]}\n    - {stage: int8, field: calibration.samples, values: [\"1\", \"2\", \"3\", \"4\"]}",
			[]string{`spec.variants.parameters make more than 64 variants (the cross product of their values)`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(valid + "  variants:\n    parameters:\n    - " + tc.params + "\n"))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}
