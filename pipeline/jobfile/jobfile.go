// Package jobfile reads CompressionJob manifests for the local pipeline. It
// applies the CRD's defaults and runs its OpenAPI and CEL validation with the
// API server's own code, so `kompress run -f job.yaml` accepts, rejects and
// defaults exactly what `kubectl apply -f job.yaml` would.
package jobfile

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	apiextensionsinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/config/crd"
)

// schema is the compiled CRD schema of the served version.
type schema struct {
	structural *structuralschema.Structural
	openAPI    apiservervalidation.SchemaValidator
	cel        *cel.Validator
}

var (
	loadOnce   sync.Once
	loaded     *schema
	loadFailed error
)

func compiled() (*schema, error) {
	loadOnce.Do(func() { loaded, loadFailed = compile(crd.CompressionJob) })
	return loaded, loadFailed
}

func compile(crdYAML []byte) (*schema, error) {
	var def apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(crdYAML, &def); err != nil {
		return nil, fmt.Errorf("embedded CRD does not parse: %w", err)
	}
	for _, v := range def.Spec.Versions {
		if v.Name != v1alpha1.GroupVersion.Version || v.Schema == nil {
			continue
		}
		var internal apiextensionsinternal.JSONSchemaProps
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, &internal, nil); err != nil {
			return nil, fmt.Errorf("embedded CRD schema does not convert: %w", err)
		}
		s, err := structuralschema.NewStructural(&internal)
		if err != nil {
			return nil, fmt.Errorf("embedded CRD schema is not structural: %w", err)
		}
		validator, _, err := apiservervalidation.NewSchemaValidator(&internal)
		if err != nil {
			return nil, fmt.Errorf("embedded CRD schema does not compile: %w", err)
		}
		return &schema{structural: s, openAPI: validator, cel: cel.NewValidator(s, true, celconfig.PerCallLimit)}, nil
	}
	return nil, fmt.Errorf("embedded CRD has no schema for version %s", v1alpha1.GroupVersion.Version)
}

// ReadFile reads every CompressionJob in a YAML file ("-" is stdin).
func ReadFile(path string) ([]*v1alpha1.CompressionJob, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	jobs, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return jobs, nil
}

// Parse reads every CompressionJob of a multi-document YAML stream, then
// defaults and validates each. Documents of other kinds are an error: a
// job file holds jobs.
func Parse(data []byte) ([]*v1alpha1.CompressionJob, error) {
	var jobs []*v1alpha1.CompressionJob
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		job, err := Decode(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		jobs = append(jobs, job)
	}
	if len(jobs) == 0 {
		return nil, errors.New("no CompressionJob found")
	}
	return jobs, nil
}

// Decode defaults and validates one CompressionJob document.
func Decode(doc []byte) (*v1alpha1.CompressionJob, error) {
	s, err := compiled()
	if err != nil {
		return nil, err
	}
	// Decode as the API server does: integers stay int64 (CEL rules on
	// integer fields reject float64).
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	var obj map[string]any
	if err := utiljson.Unmarshal(js, &obj); err != nil {
		return nil, fmt.Errorf("not a YAML object: %w", err)
	}
	if err := checkKind(obj); err != nil {
		return nil, err
	}
	if unknown := pruning.PruneWithOptions(obj, s.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}); len(unknown) > 0 {
		return nil, fmt.Errorf("unknown field(s) %s: not part of CompressionJob %s", strings.Join(unknown, ", "), v1alpha1.GroupVersion)
	}
	defaulting.Default(obj, s.structural)
	if errs := validate(s, obj); len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	var job v1alpha1.CompressionJob
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(obj, &job, true); err != nil {
		return nil, err
	}
	if job.Name == "" {
		return nil, field.Required(field.NewPath("metadata", "name"), "a CompressionJob needs a name")
	}
	if _, err := ExpandVariants(&job.Spec); err != nil {
		return nil, err
	}
	return &job, nil
}

func validate(s *schema, obj map[string]any) field.ErrorList {
	errs := apiservervalidation.ValidateCustomResource(nil, obj, s.openAPI)
	errs = append(errs, listtype.ValidateListSetsAndMaps(nil, s.structural, obj)...)
	celErrs, _ := s.cel.Validate(context.Background(), nil, s.structural, obj, nil, celconfig.RuntimeCELCostBudget)
	return append(errs, celErrs...)
}

func checkKind(obj map[string]any) error {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	if want := v1alpha1.GroupVersion.String(); apiVersion != want || kind != "CompressionJob" {
		return fmt.Errorf("apiVersion %q kind %q: expected apiVersion %s kind CompressionJob", apiVersion, kind, want)
	}
	return nil
}

func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line)
		}
	}
	return bytes.Join(out, []byte("\n"))
}
