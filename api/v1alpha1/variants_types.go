package v1alpha1

import (
	"reflect"
	"sort"
	"strings"
)

// MaxVariants bounds the cross product of spec.variants.parameters.
const MaxVariants = 64

// SelectPolicy says which variant a sweep keeps, among those that pass
// spec.acceptance.
// +kubebuilder:validation:Enum=smallest;fastest;mostAccurate
type SelectPolicy string

const (
	// SelectSmallest keeps the smallest model file; ties go to fewer
	// nonzero parameters, then to higher accuracy.
	SelectSmallest SelectPolicy = "smallest"
	// SelectFastest keeps the lowest p95 latency; ties go to the smaller
	// file.
	SelectFastest SelectPolicy = "fastest"
	// SelectMostAccurate keeps the highest accuracy (top-1 agreement with
	// the source, then cosine, when the dataset has no labels); ties go
	// to the smaller file.
	SelectMostAccurate SelectPolicy = "mostAccurate"
)

// VariantsSpec turns the chain into a sweep: the chain runs once per
// combination of parameter values (the cross product, at most 64
// variants), as concurrent stage Jobs, and one variant is selected.
// Stages that are the same in several variants (same input, same body:
// the same cache key) run once.
// +kubebuilder:validation:XValidation:rule="(size(self.parameters) > 0 ? size(self.parameters[0].values) : 1) * (size(self.parameters) > 1 ? size(self.parameters[1].values) : 1) * (size(self.parameters) > 2 ? size(self.parameters[2].values) : 1) * (size(self.parameters) > 3 ? size(self.parameters[3].values) : 1) * (size(self.parameters) > 4 ? size(self.parameters[4].values) : 1) * (size(self.parameters) > 5 ? size(self.parameters[5].values) : 1) <= 64",message="spec.variants.parameters make more than 64 variants (the cross product of their values)"
type VariantsSpec struct {
	// Parameters each name a stage, a field of its body and the values
	// the field takes; every combination of values is a variant, named
	// v1, v2, ... in the order of nested loops (the first parameter
	// changes slowest). Values are strings as in YAML, whatever the
	// field's type ("8", "true"); each variant's stage is validated as
	// spec.stages is, so a value the field's own rules refuse is refused.
	// +listType=map
	// +listMapKey=stage
	// +listMapKey=field
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=6
	Parameters []VariantParameter `json:"parameters"`

	// Select says which variant becomes status.output, among those that
	// pass spec.acceptance: smallest (file size), fastest (p95 latency)
	// or mostAccurate.
	// +optional
	// +kubebuilder:default=smallest
	Select SelectPolicy `json:"select,omitempty"`

	// MaxParallel bounds the stage Jobs of the sweep that exist unfinished
	// at once (with spec.scheduling.queueName, Kueue then admits them as
	// its quotas allow).
	// +optional
	// +kubebuilder:default=4
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=64
	MaxParallel int32 `json:"maxParallel,omitempty"`
}

// VariantParameter is one axis of a sweep.
type VariantParameter struct {
	// Stage is the name of a stage of spec.stages.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=40
	Stage string `json:"stage"`

	// Field is a scalar field of that stage's body, by its JSON name
	// within the body (sparsity for prune.sparsity; calibration.method for
	// quantize.calibration.method). VariableFields lists them by type.
	// +kubebuilder:validation:Enum=method;sparsity;keep;pattern;scope;criterion;storage;minParams;calibrationSamples;dampening;seed;teacher.uri;student.uri;dataset.uri;dataset.format;dataset.sha256;epochs;batchSize;maxSteps;temperature;alpha;optimizer;learningRate;schedule;momentum;weightDecay;bits;perChannel;symmetric;activationType;blockSize;format;algorithm;sensitiveLayers;calibration.method;calibration.samples;calibration.percentile;smoothQuant.alpha;ioType;image
	Field string `json:"field"`

	// Values the field takes, as strings.
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=2048
	Values []string `json:"values"`
}

// Key is "stage.field", the parameter's name in status and reports.
func (p VariantParameter) Key() string { return p.Stage + "." + p.Field }

// VariableFields lists, for a stage type, the fields spec.variants may
// vary: every scalar (string, integer or boolean) field of the type's
// body, and of the objects in it, by its dotted JSON path within the
// body; lists and maps are not variable. The CRD's rules spell the same
// lists (TestVariableFieldsMatchTheCRD).
func VariableFields(t StageType) []string {
	var out []string
	for _, f := range variableFields(t) {
		out = append(out, f.path)
	}
	return out
}

// VariableFieldType is the JSON type ("string", "integer" or "boolean") of
// a variable field of a stage type's body, "" when the field is not one:
// how a value of spec.variants, always a string, is typed in the stage.
func VariableFieldType(t StageType, field string) string {
	for _, f := range variableFields(t) {
		if f.path == field {
			return f.typ
		}
	}
	return ""
}

type variableField struct{ path, typ string }

func variableFields(t StageType) []variableField {
	all := StageBody{Prune: &PruneSpec{}, Distill: &DistillSpec{}, Quantize: &QuantizeSpec{}, Custom: &CustomSpec{}}
	for _, tb := range all.bodies() {
		if tb.typ != t || tb.body == nil {
			continue
		}
		var out []variableField
		scalarPaths(reflect.TypeOf(tb.body).Elem(), "", &out)
		return out
	}
	return nil
}

func scalarPaths(t reflect.Type, prefix string, out *[]variableField) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.String:
			*out = append(*out, variableField{prefix + name, "string"})
		case reflect.Bool:
			*out = append(*out, variableField{prefix + name, "boolean"})
		case reflect.Int32, reflect.Int64:
			*out = append(*out, variableField{prefix + name, "integer"})
		case reflect.Struct:
			scalarPaths(ft, prefix+name+".", out)
		}
	}
}

// VariablePaths is every field spec.variants may name, whatever the stage
// type, sorted: the enum of VariantParameter.Field.
func VariablePaths() []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range StageTypes() {
		for _, f := range VariableFields(t) {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	sort.Strings(out)
	return out
}

// VariantPhase is where one variant of a sweep is.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed;Suspended
type VariantPhase string

const (
	VariantPending   VariantPhase = "Pending"
	VariantRunning   VariantPhase = "Running"
	VariantSucceeded VariantPhase = "Succeeded"
	// VariantFailed: a stage of the variant failed, or its model missed
	// spec.acceptance (reason QualityGateFailed; its output is kept).
	VariantFailed    VariantPhase = "Failed"
	VariantSuspended VariantPhase = "Suspended"
)

// VariantStatus is the observed state of one variant of spec.variants.
type VariantStatus struct {
	// Name is v1, v2, ... in the order of the cross product.
	Name string `json:"name"`
	// Parameters are the variant's values by "stage.field".
	// +optional
	Parameters map[string]string `json:"parameters,omitempty"`
	// Phase: Pending, Running, Succeeded (its model passed
	// spec.acceptance), Failed (a stage failed, or the model missed a
	// gate) or Suspended.
	Phase VariantPhase `json:"phase"`
	// Stages names the entries of status.stages that make up the
	// variant's chain, in order (a stage shared with other variants is
	// one entry).
	// +optional
	Stages []string `json:"stages,omitempty"`
	// Output is the variant's final model with its metrics.
	// +optional
	Output *Artifact `json:"output,omitempty"`
	// Passed says whether the output passed spec.acceptance; unset until
	// the variant has a model.
	// +optional
	Passed *bool `json:"passed,omitempty"`
	// Reason is a CamelCase word for a failed variant.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message says which stage failed or which gates were missed.
	// +optional
	Message string `json:"message,omitempty"`
}

// SelectionStatus is the outcome of a sweep's select step.
type SelectionStatus struct {
	// Policy is spec.variants.select.
	Policy SelectPolicy `json:"policy"`
	// Variant is the selected variant: the best by Policy among those
	// that passed spec.acceptance, else (Passed false) the best of those
	// that produced a model.
	// +optional
	Variant string `json:"variant,omitempty"`
	// Passed says whether the selected variant passed spec.acceptance.
	// +optional
	Passed *bool `json:"passed,omitempty"`
	// Release is the URI of the sweep's release.json: the selected model,
	// its chain, the rule and every alternative.
	// +optional
	Release string `json:"release,omitempty"`
	// Report is the URI of the sweep's report.html.
	// +optional
	Report string `json:"report,omitempty"`
}
