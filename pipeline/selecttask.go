package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kompress/kompress/api/v1alpha1"
)

// Files the select step writes under <output>/<select-key>/, beside its
// result.json; a final stage writes ReportFile beside its model too.
const ReportFile = "report.html"

// SelectTask is the work of a sweep's select step, a task the runner
// executes once every variant has finished: it reads each variant's
// results, applies the policy (Select) and writes the sweep's
// release.json and report.html. It returns the selected variant's model
// as its output. The controller, which never opens storage, computes the
// same selection from status and checks the two agree.
type SelectTask struct {
	Policy     v1alpha1.SelectPolicy       `json:"policy"`
	Acceptance *v1alpha1.AcceptanceSpec    `json:"acceptance,omitempty"`
	Parameters []v1alpha1.VariantParameter `json:"parameters"`
	Variants   []SelectVariant             `json:"variants"`
}

// SelectVariant is one variant of a select task.
type SelectVariant struct {
	Name   string   `json:"name"`
	Values []string `json:"values"`
	// Output is the variant's final model; nil when a stage failed, then
	// Reason and Message say why.
	Output  *Ref   `json:"output,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// NewSelectTask plans the select step of a sweep whose variants are all
// done: outputs[v] is variant v's final model (nil when it failed, with
// its reason and message in fails[v]).
func NewSelectTask(jobName string, spec *v1alpha1.CompressionJobSpec, sw *Sweep, outputs []*v1alpha1.Artifact, fails [][2]string, runnerVersion string) (Task, error) {
	st := &SelectTask{Policy: sw.Policy, Acceptance: spec.Acceptance, Parameters: sw.Params}
	for v, vr := range sw.Variants {
		sv := SelectVariant{Name: vr.Name, Values: vr.Values}
		if o := outputs[v]; o != nil {
			sv.Output = &Ref{URI: o.URI, Digest: o.Digest}
		} else if v < len(fails) {
			sv.Reason, sv.Message = fails[v][0], Truncate(fails[v][1], 512)
		}
		st.Variants = append(st.Variants, sv)
	}
	t := Task{
		Version:       ContractVersion,
		Job:           jobName,
		Index:         len(spec.Stages),
		Stages:        len(spec.Stages) + 1,
		Stage:         StageSpec{Name: SelectStep},
		Source:        SourceRef(spec),
		Evaluation:    spec.Evaluation,
		RunnerVersion: runnerVersion,
		Select:        st,
	}
	if spec.Dataset != nil {
		t.Dataset = &DatasetRef{
			Ref:    Ref{URI: spec.Dataset.URI, Digest: NormalizeDigest(spec.Dataset.SHA256)},
			Format: spec.Dataset.Format,
		}
	}
	t.CacheKey = selectKey(t)
	t.OutputURI = JoinURI(spec.Output.URI, t.CacheKey, ReleaseFile)
	return t, t.Validate()
}

// selectKey is sha256 over everything the select step's files depend on:
// the variants (values, and the digests of their models or why they
// failed), the policy, the gates, the source, dataset and evaluation the
// release records, and the runner version.
func selectKey(t Task) string {
	b, err := json.Marshal(struct {
		Contract      string      `json:"contract"`
		RunnerVersion string      `json:"runnerVersion"`
		Source        Ref         `json:"source"`
		Dataset       *DatasetRef `json:"dataset,omitempty"`
		Evaluation    any         `json:"evaluation"`
		Select        *SelectTask `json:"select"`
	}{ContractVersion, t.RunnerVersion, t.Source, t.Dataset, t.Evaluation, t.Select})
	if err != nil {
		panic("pipeline: select key material does not encode: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ReportURI is where the select step writes report.html.
func (t Task) ReportURI() string { return SiblingURI(t.OutputURI, ReportFile) }

func (t Task) validateSelect() error {
	var errs []error
	if t.Version != ContractVersion {
		errs = append(errs, fmt.Errorf("task.version is %q, this runner speaks %q", t.Version, ContractVersion))
	}
	if t.Stage.Name != SelectStep || t.Stage.Type != "" {
		errs = append(errs, fmt.Errorf("task.stage of a select task must be {name: %s}", SelectStep))
	}
	if t.OutputURI == "" {
		errs = append(errs, errors.New("task.outputURI is empty"))
	}
	if !isHexKey(t.CacheKey) {
		errs = append(errs, fmt.Errorf("task.cacheKey %q is not 64 lowercase hex digits", t.CacheKey))
	}
	switch t.Select.Policy {
	case v1alpha1.SelectSmallest, v1alpha1.SelectFastest, v1alpha1.SelectMostAccurate:
	default:
		errs = append(errs, fmt.Errorf("task.select.policy %q is not smallest, fastest or mostAccurate", t.Select.Policy))
	}
	models := 0
	for i, v := range t.Select.Variants {
		if v.Name == "" || len(v.Values) != len(t.Select.Parameters) {
			errs = append(errs, fmt.Errorf("task.select.variants[%d] needs a name and one value per parameter", i))
		}
		if v.Output != nil {
			models++
			if v.Output.URI == "" || !validDigest(v.Output.Digest) {
				errs = append(errs, fmt.Errorf("task.select.variants[%d].output needs a URI and a sha256 digest", i))
			}
		}
	}
	if models == 0 {
		errs = append(errs, errors.New("task.select has no variant with a model to select"))
	}
	return errors.Join(errs...)
}

// selected is the variant of a select task whose model the result names.
func (t Task) selected(r Result) (SelectVariant, error) {
	if r.Output == nil {
		return SelectVariant{}, errors.New("result.output is missing")
	}
	for _, v := range t.Select.Variants {
		if v.Output != nil && v.Output.URI == r.Output.URI && v.Output.Digest == r.Output.Digest {
			return v, nil
		}
	}
	return SelectVariant{}, fmt.Errorf("result.output %s (%s) is not the model of any variant of the task", r.Output.URI, r.Output.Digest)
}

// SelectedVariant names the variant a select step's result chose.
func SelectedVariant(t Task, r Result) (string, error) {
	v, err := t.selected(r)
	return v.Name, err
}
