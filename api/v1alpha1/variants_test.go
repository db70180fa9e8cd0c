package v1alpha1_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline/jobfile"
)

// scalarLeaves lists the dotted paths of the string, integer and boolean
// properties of a schema and of the objects in it (lists and maps not).
func scalarLeaves(s apiextensionsv1.JSONSchemaProps, prefix string) []string {
	var out []string
	for name, p := range s.Properties {
		switch p.Type {
		case "string", "integer", "boolean":
			out = append(out, prefix+name+":"+p.Type)
		case "object":
			if p.AdditionalProperties == nil {
				out = append(out, scalarLeaves(p, prefix+name+".")...)
			}
		}
	}
	sort.Strings(out)
	return out
}

// The fields spec.variants may vary are every scalar field of a stage
// body, as the CRD's schema has them; the Field enum and the CEL rule
// that checks a field against its stage's type spell the same lists. A
// field added to a body fails here until all three agree.
func TestVariableFieldsMatchTheCRD(t *testing.T) {
	spec := crdSpecSchema(t)
	stage := *spec.Properties["stages"].Items.Schema
	bodies := map[v1alpha1.StageType]string{
		v1alpha1.StageTypePrune: "prune", v1alpha1.StageTypeDistill: "distill",
		v1alpha1.StageTypeQuantize: "quantize", v1alpha1.StageTypeCustom: "custom",
	}
	var rule string
	for _, r := range spec.XValidations {
		if strings.Contains(r.Message, "parameters[].field must be a variable field") {
			rule = r.Rule
		}
	}
	if rule == "" {
		t.Fatal("no CEL rule checks spec.variants.parameters[].field against the stage type")
	}
	for _, typ := range v1alpha1.StageTypes() {
		body, ok := bodies[typ]
		if !ok {
			t.Fatalf("stage type %s has no body in this test", typ)
		}
		got := v1alpha1.VariableFields(typ)
		quoted := make([]string, len(got))
		for i, f := range got {
			quoted[i] = "'" + f + "'"
		}
		if want := fmt.Sprintf("'%s': [%s]", typ, strings.Join(quoted, ", ")); !strings.Contains(rule, want) {
			t.Errorf("the CEL rule does not list %s; rule: %s", want, rule)
		}
		// Each with its JSON type: how a variant's value is typed.
		sorted := make([]string, len(got))
		for i, f := range got {
			sorted[i] = f + ":" + v1alpha1.VariableFieldType(typ, f)
		}
		sort.Strings(sorted)
		if diff := cmp.Diff(scalarLeaves(stage.Properties[body], ""), sorted); diff != "" {
			t.Errorf("VariableFields(%s) against the scalar fields of the CRD's %s (-crd +go):\n%s", typ, body, diff)
		}
	}
	var enum []string
	for _, e := range spec.Properties["variants"].Properties["parameters"].Items.Schema.Properties["field"].Enum {
		enum = append(enum, strings.Trim(string(e.Raw), `"`))
	}
	sort.Strings(enum)
	if diff := cmp.Diff(v1alpha1.VariablePaths(), enum); diff != "" {
		t.Errorf("the enum of parameters[].field (-go +crd):\n%s", diff)
	}
}

// The mistakes CEL can see in spec.variants (an unknown stage, a field
// the stage's type does not have, more than 64 variants) are refused by
// the API server and by `kompress run` (which runs the CRD's schema and
// rules in process) with the same message.
func TestVariantsRefusedAlikeByTheAPIServerAndKompressRun(t *testing.T) {
	c := apiServer(t)
	cases := []struct {
		name   string
		params []v1alpha1.VariantParameter
		want   string
	}{
		{"unknown stage", []v1alpha1.VariantParameter{param("prune", "sparsity", "0.3"), param("prunee", "sparsity", "0.3")},
			"spec.variants.parameters[].stage must name a stage of spec.stages: prunee is not one"},
		{"field of another type", []v1alpha1.VariantParameter{param("int8", "bits", "8"), param("int8", "sparsity", "0.3")},
			"spec.variants.parameters[].field must be a variable field of the body of the stage it names: stage int8 has no variable field sparsity"},
		{"65 variants", []v1alpha1.VariantParameter{param("prune", "seed", "1", "2", "3", "4", "5"), param("prune", "minParams", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13")},
			"spec.variants.parameters make more than 64 variants (the cross product of their values)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cpj := valid("variants-" + strings.ReplaceAll(tc.name, " ", "-"))
			cpj.Spec.Variants = sweep(tc.params...)
			err := c.Create(context.Background(), cpj)
			var status *apierrors.StatusError
			if !errors.As(err, &status) || status.ErrStatus.Details == nil {
				t.Fatalf("the API server: %v, want Invalid", err)
			}
			var server []string
			for _, cause := range status.ErrStatus.Details.Causes {
				server = append(server, cause.Message)
			}
			if !strings.Contains(strings.Join(server, "\n"), tc.want) {
				t.Errorf("the API server said %q, want %q", server, tc.want)
			}
			cpj.APIVersion, cpj.Kind = v1alpha1.GroupVersion.String(), "CompressionJob"
			doc, err := yaml.Marshal(cpj)
			if err != nil {
				t.Fatal(err)
			}
			_, local := jobfile.Decode(doc)
			if local == nil {
				t.Fatal("kompress run accepted it")
			}
			for _, m := range server {
				if !strings.Contains(local.Error(), m) {
					t.Errorf("kompress run said %q, without the API server's %q", local, m)
				}
			}
		})
	}
}

// A valid sweep is accepted and defaulted: select smallest, four stage Jobs
// at a time.
func TestVariantsDefaults(t *testing.T) {
	c := apiServer(t)
	cpj := valid("variants-defaults")
	cpj.Spec.Variants = sweep(param("prune", "sparsity", "0.3", "0.6", "0.9"), param("int8", "calibration.method", "minmax", "entropy"))
	if err := c.Create(context.Background(), cpj); err != nil {
		t.Fatal(err)
	}
	var got v1alpha1.CompressionJob
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(cpj), &got); err != nil {
		t.Fatal(err)
	}
	want := sweep(param("prune", "sparsity", "0.3", "0.6", "0.9"), param("int8", "calibration.method", "minmax", "entropy"))
	want.Select, want.MaxParallel = v1alpha1.SelectSmallest, 4
	if diff := cmp.Diff(want, got.Spec.Variants); diff != "" {
		t.Errorf("spec.variants (-want +got):\n%s", diff)
	}
}
