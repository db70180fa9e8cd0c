package jobfile

import (
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
)

// ExpandVariants is pipeline.ExpandVariants checking each variant with the
// CRD's OpenAPI schema and CEL rules compiled in, as the API server checks
// spec.stages when the job is applied: `kompress run` refuses the file
// with the words the controller, which asks the API server, stalls the
// job with (reason InvalidVariants).
func ExpandVariants(spec *v1alpha1.CompressionJobSpec) ([]pipeline.Variant, error) {
	s, err := compiled()
	if err != nil {
		return nil, err
	}
	return pipeline.ExpandVariants(spec, func(obj map[string]any) (*v1alpha1.CompressionJobSpec, string, error) {
		defaulting.Default(obj, s.structural)
		if errs := validate(s, obj); len(errs) > 0 {
			return nil, errs.ToAggregate().Error(), nil
		}
		var job v1alpha1.CompressionJob
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(obj, &job, true); err != nil {
			return nil, "", err
		}
		return &job.Spec, "", nil
	})
}
