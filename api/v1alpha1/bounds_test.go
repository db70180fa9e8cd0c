package v1alpha1_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	apiextensionsinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel/model"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/cel/environment"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kompress/kompress/api/v1alpha1"
)

// crdSpecSchema is the served version's schema of spec.
func crdSpecSchema(t *testing.T) apiextensionsv1.JSONSchemaProps {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "config", "crd", "bases", "kompress.dev_compressionjobs.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(data, &crd); err != nil {
		t.Fatal(err)
	}
	for _, v := range crd.Spec.Versions {
		if v.Name == v1alpha1.GroupVersion.Version {
			return v.Schema.OpenAPIV3Schema.Properties["spec"]
		}
	}
	t.Fatal("no served version")
	return apiextensionsv1.JSONSchemaProps{}
}

// unboundedCoreTypes are the Kubernetes core types spec embeds as they
// are (their schemas come from k8s.io/api, without length limits): no CEL
// rule may look inside them.
var unboundedCoreTypes = []string{
	"spec.storage.secretRef",
	"spec.scheduling.affinity", "spec.scheduling.resources", "spec.scheduling.tolerations",
	"spec.stages[].resources", "spec.stages[].tolerations",
}

// Every string, list and map of spec outside those core types has a bound
// (maxLength or an enum, maxItems, maxProperties), so the cost of CEL
// rules stays estimable and small, and a new field without one fails here.
func TestSpecIsBounded(t *testing.T) {
	spec := crdSpecSchema(t)
	var unbounded, celInCore []string
	var walk func(path string, s *apiextensionsv1.JSONSchemaProps, core bool)
	walk = func(path string, s *apiextensionsv1.JSONSchemaProps, core bool) {
		for _, c := range unboundedCoreTypes {
			core = core || path == c
		}
		if core {
			if len(s.XValidations) > 0 {
				celInCore = append(celInCore, path)
			}
		} else {
			switch {
			case s.Type == "string" && s.MaxLength == nil && len(s.Enum) == 0:
				unbounded = append(unbounded, path+" (string without maxLength)")
			case s.Type == "array" && s.MaxItems == nil:
				unbounded = append(unbounded, path+" (list without maxItems)")
			case s.Type == "object" && s.AdditionalProperties != nil && s.MaxProperties == nil:
				unbounded = append(unbounded, path+" (map without maxProperties)")
			}
		}
		for name, p := range s.Properties {
			walk(path+"."+name, &p, core)
		}
		if s.Items != nil && s.Items.Schema != nil {
			walk(path+"[]", s.Items.Schema, core)
		}
		if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
			// Map values: a CEL rule on the map bounds them (nodeSelector).
			if len(s.XValidations) == 0 {
				walk(path+"{}", s.AdditionalProperties.Schema, core)
			}
		}
	}
	walk("spec", &spec, false)
	sort.Strings(unbounded)
	for _, u := range unbounded {
		t.Errorf("unbounded: %s", u)
	}
	for _, c := range celInCore {
		t.Errorf("a CEL rule inside the unbounded core type at %s", c)
	}
}

// celCostBudget is the API server's budget for the estimated cost of all
// the CEL rules of one CRD (StaticEstimatedCRDCostLimit of
// k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation).
const celCostBudget = 100_000_000

// The API server estimates each CEL rule's worst-case cost from those
// bounds (the rule's own cost times how many times it can run: the
// maxItems and maxProperties of the lists and maps around it) and refuses
// a CRD past its budget. Every rule here stays under 1% of that budget
// (the share at which the API server starts listing a rule among the most
// expensive), all of them together under 10%.
func TestCELCostIsEstimated(t *testing.T) {
	spec := crdSpecSchema(t)
	var internal apiextensionsinternal.JSONSchemaProps
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(&spec, &internal, nil); err != nil {
		t.Fatal(err)
	}
	root, err := structuralschema.NewStructural(&internal)
	if err != nil {
		t.Fatal(err)
	}
	envSet := environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion())
	var total uint64
	rules := 0
	var walk func(path string, s *structuralschema.Structural, card uint64)
	walk = func(path string, s *structuralschema.Structural, card uint64) {
		if len(s.XValidations) > 0 {
			results, err := cel.Compile(s, model.SchemaDeclType(s, false), celconfig.PerCallLimit, envSet, cel.NewExpressionsEnvLoader())
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			for i, r := range results {
				if r.Error != nil {
					t.Fatalf("%s rule %d: %v", path, i, r.Error)
				}
				if r.MessageExpressionError != nil {
					t.Fatalf("%s rule %d messageExpression: %v", path, i, r.MessageExpressionError)
				}
				rules++
				c := card
				if c == 0 { // under a list or map with no bound
					c = r.MaxCardinality
				}
				// A messageExpression runs when its rule fails: its cost
				// counts as the rule's (the API server refuses an
				// unbounded one, such as a join, the same way).
				ruleCost := r.MaxCost + r.MessageExpressionMaxCost
				if ruleCost < r.MaxCost {
					ruleCost = ^uint64(0)
				}
				cost := ruleCost * c
				if c != 0 && cost/c != ruleCost {
					cost = ^uint64(0)
				}
				total += cost
				if cost > celCostBudget/100 {
					t.Errorf("%s: rule %q costs %d (%d x %d runs), over 1%% of the CRD's budget", path, s.XValidations[i].Rule, cost, ruleCost, c)
				}
			}
		}
		times := func(n *int64) uint64 {
			if n == nil || card == 0 {
				return 0
			}
			return card * uint64(*n)
		}
		for name, p := range s.Properties {
			walk(path+"."+name, &p, card)
		}
		if s.Items != nil {
			walk(path+"[]", s.Items, times(s.ValueValidation.MaxItems))
		}
		if s.AdditionalProperties != nil && s.AdditionalProperties.Structural != nil {
			walk(path+"{}", s.AdditionalProperties.Structural, times(s.ValueValidation.MaxProperties))
		}
	}
	walk("spec", root, 1)
	if rules < 30 {
		t.Fatalf("found %d CEL rules", rules)
	}
	if total > celCostBudget/10 {
		t.Errorf("the CEL rules cost %d together, over 10%% of the CRD's budget %d", total, celCostBudget)
	}
	t.Logf("estimated cost of the %d CEL rules together: %d (budget %d)", rules, total, celCostBudget)
}

// A Custom stage's env has no valueFrom: a pod-style entry that reads a
// Secret is refused by a client that validates fields strictly (kubectl's
// default) and dropped by one that does not, so no Secret of the
// namespace ever reaches a Custom image through its CompressionJob.
func TestCustomEnvHasNoValueFrom(t *testing.T) {
	c := apiServer(t)
	ctx := context.Background()
	obj := func(name string) *unstructured.Unstructured {
		cpj := valid(name)
		cpj.Spec.Stages[2] = v1alpha1.Stage{Name: "mine", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeCustom,
			Custom: &v1alpha1.CustomSpec{Image: "registry.example/mine:1"}}}
		m, err := k8sruntime.DefaultUnstructuredConverter.ToUnstructured(cpj)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: m}
		u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("CompressionJob"))
		stages, _, _ := unstructured.NestedSlice(u.Object, "spec", "stages")
		stages[2].(map[string]any)["custom"].(map[string]any)["env"] = []any{map[string]any{
			"name": "TOKEN", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "deployer-token", "key": "token"}}}}
		if err := unstructured.SetNestedSlice(u.Object, stages, "spec", "stages"); err != nil {
			t.Fatal(err)
		}
		return u
	}
	err := c.Create(ctx, obj("env-strict"), client.FieldValidation("Strict"))
	if err == nil || !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `unknown field "spec.stages[2].custom.env[0].valueFrom"`) {
		t.Fatalf("strict create with custom.env[0].valueFrom: %v, want it refused as an unknown field", err)
	}
	lax := obj("env-lax")
	if err := c.Create(ctx, lax); err != nil {
		t.Fatal(err)
	}
	var got v1alpha1.CompressionJob
	if err := c.Get(ctx, client.ObjectKeyFromObject(lax), &got); err != nil {
		t.Fatal(err)
	}
	var stored unstructured.Unstructured
	stored.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("CompressionJob"))
	if err := c.Get(ctx, client.ObjectKeyFromObject(lax), &stored); err != nil {
		t.Fatal(err)
	}
	stages, _, _ := unstructured.NestedSlice(stored.Object, "spec", "stages")
	env := stages[2].(map[string]any)["custom"].(map[string]any)["env"].([]any)[0].(map[string]any)
	if _, ok := env["valueFrom"]; ok || len(got.Spec.Stages[2].Custom.Env) != 1 || got.Spec.Stages[2].Custom.Env[0].Value != "" {
		t.Errorf("stored env %v: valueFrom kept", env)
	}
}
