package jobfile

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
)

// ExpandVariants returns the variants of spec.variants, each with its own
// spec: the job's spec with the variant's values set in its stages and no
// variants. Each is validated with the CRD's OpenAPI schema and CEL rules,
// as spec.stages is when the job is applied, so a value its field's own
// rules refuse (a sparsity of 1.5, bits "eight", 4 bits with static
// quantization) is refused with the API server's words, naming the
// variant. The controller (which stalls such a job with reason
// InvalidVariants before any Job exists) and `kompress run` (which refuses
// the file) call this, so both say the same thing.
//
// A value is typed by the field's schema: an integer field takes "8" as
// 8 and a boolean field "true" as true; anything else stays a string, and
// the schema says what it expected.
func ExpandVariants(spec *v1alpha1.CompressionJobSpec) ([]pipeline.Variant, error) {
	s, err := compiled()
	if err != nil {
		return nil, err
	}
	if spec.Variants == nil {
		return nil, nil
	}
	variants := pipeline.Variants(spec.Variants)
	if len(variants) > v1alpha1.MaxVariants {
		return nil, fmt.Errorf("spec.variants: Invalid value: \"object\": spec.variants.parameters make more than %d variants (the cross product of their values): %d", v1alpha1.MaxVariants, len(variants))
	}
	base := spec.DeepCopy()
	base.Variants = nil
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&v1alpha1.CompressionJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "CompressionJob"},
		ObjectMeta: metav1.ObjectMeta{Name: "variant"},
		Spec:       *base,
	})
	if err != nil {
		return nil, err
	}
	delete(obj, "status")
	targets, err := paramTargets(s, base, spec.Variants.Parameters)
	if err != nil {
		return nil, err
	}

	type failure struct {
		first string
		more  []string
	}
	var order []string
	failures := map[string]*failure{}
	for i := range variants {
		v := &variants[i]
		o := runtime.DeepCopyJSON(obj)
		for p, t := range targets {
			t.set(o, v.Values[p])
		}
		defaulting.Default(o, s.structural)
		if errs := validate(s, o); len(errs) > 0 {
			msg := errs.ToAggregate().Error()
			if f := failures[msg]; f != nil {
				f.more = append(f.more, v.Name)
				continue
			}
			order = append(order, msg)
			failures[msg] = &failure{first: fmt.Sprintf("variant %s (%s)", v.Name, v.Describe(spec.Variants.Parameters))}
			continue
		}
		var job v1alpha1.CompressionJob
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o, &job, true); err != nil {
			return nil, fmt.Errorf("variant %s: %w", v.Name, err)
		}
		v.Spec = &job.Spec
	}
	if len(order) == 0 {
		return variants, nil
	}
	msgs := make([]string, len(order))
	for i, msg := range order {
		f := failures[msg]
		also := ""
		if len(f.more) > 0 {
			also = " (so are " + strings.Join(f.more, ", ") + ")"
		}
		msgs[i] = fmt.Sprintf("%s is not a valid spec%s: %s", f.first, also, msg)
	}
	return nil, errors.New("spec.variants: " + strings.Join(msgs, "; "))
}

// target is where a parameter's values go: a field of a stage's body in
// the unstructured job, with the field's schema type.
type target struct {
	stage int
	path  []string // "prune", "calibration", "method"
	typ   string
}

func (t target) set(obj map[string]any, value string) {
	stages := obj["spec"].(map[string]any)["stages"].([]any)
	node := stages[t.stage].(map[string]any)
	for _, k := range t.path[:len(t.path)-1] {
		next, ok := node[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			node[k] = next
		}
		node = next
	}
	var typed any = value
	switch t.typ {
	case "integer":
		if n, err := strconv.ParseInt(value, 10, 64); err == nil {
			typed = n
		}
	case "boolean":
		if value == "true" || value == "false" {
			typed = value == "true"
		}
	}
	node[t.path[len(t.path)-1]] = typed
}

// paramTargets resolves each parameter to its stage and field. The CRD's
// CEL rules refuse the same mistakes with the same words; these checks
// cover specs that did not come through them.
func paramTargets(s *schema, spec *v1alpha1.CompressionJobSpec, params []v1alpha1.VariantParameter) ([]target, error) {
	stageSchema := s.structural.Properties["spec"].Properties["stages"].Items
	out := make([]target, len(params))
	for i, p := range params {
		idx := slices.IndexFunc(spec.Stages, func(st v1alpha1.Stage) bool { return st.Name == p.Stage })
		if idx < 0 {
			return nil, fmt.Errorf("spec: Invalid value: \"object\": spec.variants.parameters[].stage must name a stage of spec.stages: %s is not one", p.Stage)
		}
		typ := spec.Stages[idx].Type
		if !slices.Contains(v1alpha1.VariableFields(typ), p.Field) {
			return nil, fmt.Errorf("spec: Invalid value: \"object\": spec.variants.parameters[].field must be a variable field of the body of the stage it names: stage %s has no variable field %s", p.Stage, p.Field)
		}
		path := append([]string{strings.ToLower(string(typ))}, strings.Split(p.Field, ".")...)
		node := stageSchema
		for _, k := range path {
			var next structuralschema.Structural
			var ok bool
			if node != nil {
				next, ok = node.Properties[k]
			}
			if !ok {
				return nil, fmt.Errorf("spec.variants.parameters[%d]: the CRD has no field %s in stage %s", i, strings.Join(path, "."), p.Stage)
			}
			node = &next
		}
		out[i] = target{stage: idx, path: path, typ: node.Type}
	}
	return out, nil
}
