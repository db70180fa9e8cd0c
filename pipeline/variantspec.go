package pipeline

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kompress/kompress/api/v1alpha1"
)

// VariantChecker validates the object of one variant (a CompressionJob
// whose spec is the variant's: values set, no spec.variants) as the API
// server validates a CompressionJob. It returns the spec with the CRD's
// defaults applied; or, when the object is not valid, the API server's
// words for why (invalid); or an error when it could not tell.
type VariantChecker func(obj map[string]any) (spec *v1alpha1.CompressionJobSpec, invalid string, err error)

// InvalidVariantsError is ExpandVariants' refusal of the variants
// themselves, as opposed to a failure to check them.
type InvalidVariantsError struct{ msg string }

func (e *InvalidVariantsError) Error() string { return e.msg }

func invalidVariants(format string, args ...any) error {
	return &InvalidVariantsError{msg: fmt.Sprintf(format, args...)}
}

// ExpandVariants returns the variants of spec.variants, each with its own
// spec: the job's spec with the variant's values set in its stages and no
// variants, checked by check. `kompress run` checks with the CRD's
// OpenAPI schema and CEL rules compiled in (package jobfile); the
// controller asks the API server (a dry-run create), so a value its
// field's own rules refuse (a sparsity of 1.5, bits "eight", 4 bits with
// static quantization) is refused with the API server's words, naming the
// variant, in both. Variants refused for the same reason are named in one
// sentence.
//
// A value is typed by the field's Go type (v1alpha1.VariableFieldType):
// an integer field takes "8" as 8 and a boolean field "true" as true;
// anything else stays a string, and the schema says what it expected.
func ExpandVariants(spec *v1alpha1.CompressionJobSpec, check VariantChecker) ([]Variant, error) {
	if spec.Variants == nil {
		return nil, nil
	}
	variants := Variants(spec.Variants)
	if len(variants) > v1alpha1.MaxVariants {
		return nil, invalidVariants("spec.variants: Invalid value: \"object\": spec.variants.parameters make more than %d variants (the cross product of their values): %d", v1alpha1.MaxVariants, len(variants))
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
	targets, err := paramTargets(base, spec.Variants.Parameters)
	if err != nil {
		return nil, err
	}
	var refusals variantRefusals
	for i := range variants {
		v := &variants[i]
		o := runtime.DeepCopyJSON(obj)
		for p, t := range targets {
			t.set(o, v.Values[p])
		}
		s, invalid, err := check(o)
		if err != nil {
			return nil, fmt.Errorf("variant %s: %w", v.Name, err)
		}
		if invalid != "" {
			refusals.add(invalid, v.Name, v.Describe(spec.Variants.Parameters))
			continue
		}
		v.Spec = s
	}
	if err := refusals.err(); err != nil {
		return nil, err
	}
	return variants, nil
}

// variantRefusals groups refused variants by the reason: the first one
// named with its values, the others after it.
type variantRefusals struct {
	order []string
	by    map[string]*variantRefusal
}

type variantRefusal struct {
	first string
	more  []string
}

func (r *variantRefusals) add(reason, name, values string) {
	if f := r.by[reason]; f != nil {
		f.more = append(f.more, name)
		return
	}
	if r.by == nil {
		r.by = map[string]*variantRefusal{}
	}
	r.order = append(r.order, reason)
	r.by[reason] = &variantRefusal{first: fmt.Sprintf("variant %s (%s)", name, values)}
}

func (r *variantRefusals) err() error {
	if len(r.order) == 0 {
		return nil
	}
	msgs := make([]string, len(r.order))
	for i, reason := range r.order {
		f := r.by[reason]
		also := ""
		if len(f.more) > 0 {
			also = " (so are " + strings.Join(f.more, ", ") + ")"
		}
		msgs[i] = fmt.Sprintf("%s is not a valid spec%s: %s", f.first, also, reason)
	}
	return &InvalidVariantsError{msg: "spec.variants: " + strings.Join(msgs, "; ")}
}

// IsInvalidVariants tells a refusal of the variants from a failure to
// check them (which is worth retrying).
func IsInvalidVariants(err error) bool {
	var e *InvalidVariantsError
	return errors.As(err, &e)
}

// variantTarget is where a parameter's values go: a field of a stage's
// body in the unstructured job, with the field's JSON type.
type variantTarget struct {
	stage int
	path  []string // "prune", "calibration", "method"
	typ   string
}

func (t variantTarget) set(obj map[string]any, value string) {
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
func paramTargets(spec *v1alpha1.CompressionJobSpec, params []v1alpha1.VariantParameter) ([]variantTarget, error) {
	out := make([]variantTarget, len(params))
	for i, p := range params {
		idx := slices.IndexFunc(spec.Stages, func(st v1alpha1.Stage) bool { return st.Name == p.Stage })
		if idx < 0 {
			return nil, invalidVariants("spec: Invalid value: \"object\": spec.variants.parameters[].stage must name a stage of spec.stages: %s is not one", p.Stage)
		}
		typ := spec.Stages[idx].Type
		ftype := v1alpha1.VariableFieldType(typ, p.Field)
		if ftype == "" {
			return nil, invalidVariants("spec: Invalid value: \"object\": spec.variants.parameters[].field must be a variable field of the body of the stage it names: stage %s has no variable field %s", p.Stage, p.Field)
		}
		path := append([]string{strings.ToLower(string(typ))}, strings.Split(p.Field, ".")...)
		out[i] = variantTarget{stage: idx, path: path, typ: ftype}
	}
	return out, nil
}
