package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/report"
	"github.com/kompress/kompress/runner/storage"
)

// Selection is the part of a sweep's release.json that says how its model
// was chosen: the rule, the gates, and every variant with its values, its
// model (and that model's own release.json) or why it has none.
type Selection struct {
	Policy     v1alpha1.SelectPolicy       `json:"policy"`
	Selected   string                      `json:"selected"`
	Passed     bool                        `json:"passed"`
	Acceptance *v1alpha1.AcceptanceSpec    `json:"acceptance,omitempty"`
	Parameters []v1alpha1.VariantParameter `json:"parameters"`
	Variants   []Alternative               `json:"variants"`
}

// Alternative is one variant of a sweep as its release.json records it.
type Alternative struct {
	Name       string            `json:"name"`
	Parameters map[string]string `json:"parameters"`
	// Model is the variant's final model with its metrics; Release its
	// own release.json (its chain). Both unset when a stage failed.
	Model   *v1alpha1.Artifact `json:"model,omitempty"`
	Release string             `json:"release,omitempty"`
	// Passed says whether Model passed the gates; Missed lists those it
	// missed.
	Passed *bool    `json:"passed,omitempty"`
	Missed []string `json:"missed,omitempty"`
	// Reason and Message say why a variant has no model.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// executeSelect runs a sweep's select step: it reads every variant's
// final result (checking it is the model the task names), selects with
// pipeline.Select, and writes report.html, release.json and result.json
// under the task's key, write-once. Its result's output is the selected
// model. A step whose result.json exists is a cache hit.
func executeSelect(ctx context.Context, task pipeline.Task, o *Options) (pipeline.Result, error) {
	step := stepper(task, o.Progress)
	step(PhaseCache, "looking for "+task.ResultURI())
	if res, ok, err := cachedSelect(ctx, task, o.Storage); err != nil || ok {
		return res, err
	}
	sel := task.Select
	names := make([]string, len(sel.Variants))
	outputs := make([]*v1alpha1.Artifact, len(sel.Variants))
	results := make([]*pipeline.Result, len(sel.Variants))
	for i, v := range sel.Variants {
		names[i] = v.Name
		if v.Output == nil {
			continue
		}
		step(PhaseRead, fmt.Sprintf("reading the result of variant %s", v.Name))
		r, ok, err := readResult(ctx, o.Storage, v.Output.URI)
		if err != nil {
			return pipeline.Result{}, err
		}
		if !ok || r.Output.URI != v.Output.URI || r.Output.Digest != v.Output.Digest {
			return pipeline.Result{}, BadInputf("variant %s: the result.json beside %s does not describe that model (%s)", v.Name, v.Output.URI, v.Output.Digest)
		}
		outputs[i], results[i] = r.Output, &r
	}
	cands := pipeline.Candidates(sel.Acceptance, names, outputs)
	best, passed := pipeline.Select(sel.Policy, cands)
	if best < 0 {
		return pipeline.Result{}, BadInputf("no variant has a model to select")
	}
	chosen := sel.Variants[best]
	step(PhaseRead, fmt.Sprintf("selected %s by %s: reading its release", chosen.Name, sel.Policy))
	var own Release
	data, _, err := o.Storage.ReadAll(ctx, pipeline.SiblingURI(chosen.Output.URI, pipeline.ReleaseFile), "")
	if err == nil {
		err = json.Unmarshal(data, &own)
	}
	if err != nil {
		return pipeline.Result{}, fmt.Errorf("reading the release of variant %s: %w", chosen.Name, err)
	}

	rel := Release{
		Version: ReleaseVersion, Model: *outputs[best].DeepCopy(),
		Source: own.Source, Dataset: own.Dataset, Evaluation: own.Evaluation, Stages: own.Stages,
		Report: task.ReportURI(), RunnerVersion: pipeline.Version, CacheVersion: task.RunnerVersion,
		Selection: &Selection{Policy: sel.Policy, Selected: chosen.Name, Passed: passed, Acceptance: sel.Acceptance, Parameters: sel.Parameters},
	}
	for i, v := range sel.Variants {
		alt := Alternative{Name: v.Name, Parameters: pipeline.Variant{Values: v.Values}.Parameters(sel.Parameters), Reason: v.Reason, Message: v.Message}
		if outputs[i] != nil {
			ok := cands[i].Passed()
			alt.Model, alt.Release, alt.Passed, alt.Missed = outputs[i], pipeline.SiblingURI(outputs[i].URI, pipeline.ReleaseFile), &ok, cands[i].Missed
		}
		rel.Selection.Variants = append(rel.Selection.Variants, alt)
	}

	step(PhaseWrite, "writing "+rel.Report)
	d, err := sweepReport(ctx, o.Storage, task, &rel, outputs, cands)
	if err == nil {
		err = writeReport(ctx, o.Storage, rel.Report, d)
	}
	if err != nil {
		return pipeline.Result{}, err
	}
	step(PhaseWrite, "writing "+task.OutputURI)
	if err := writeJSON(ctx, o.Storage, task.OutputURI, rel); err != nil {
		return pipeline.Result{}, err
	}
	res := pipeline.Result{Version: pipeline.ContractVersion, Stage: task.Stage.Name, CacheKey: task.CacheKey, Output: outputs[best].DeepCopy()}
	body, err := res.Encode()
	if err != nil {
		return res, err
	}
	step(PhaseWrite, "writing "+task.ResultURI())
	if _, err := o.Storage.WriteBytes(ctx, task.ResultURI(), body); err != nil && !errors.Is(err, storage.ErrExists) {
		return res, err
	}
	return res, nil
}

// cachedSelect returns the result an earlier select step with the same
// key wrote, after checking it names a model of the task that is still
// the one measured.
func cachedSelect(ctx context.Context, task pipeline.Task, st *storage.Client) (pipeline.Result, bool, error) {
	data, _, err := st.ReadAll(ctx, task.ResultURI(), "")
	if errors.Is(err, storage.ErrNotFound) {
		return pipeline.Result{}, false, nil
	}
	if err != nil {
		return pipeline.Result{}, false, err
	}
	res, err := pipeline.DecodeResult(data)
	if err == nil {
		err = res.Validate(task)
	}
	if err != nil {
		return pipeline.Result{}, false, BadInputf("%s exists but is not a result for this select step (left untouched): %w", task.ResultURI(), err)
	}
	if err := verifyArtifact(ctx, st, res); err != nil {
		return pipeline.Result{}, false, err
	}
	res.Cached = true
	return res, true, nil
}

// sweepReport is the report of a sweep: every variant on the trade-off
// plots with the gates, and the selected variant's stages and layers.
func sweepReport(ctx context.Context, st *storage.Client, task pipeline.Task, rel *Release, outputs []*v1alpha1.Artifact, cands []pipeline.Candidate) (*report.Data, error) {
	sel := rel.Selection
	d, err := ChainReport(ctx, st, rel.Source, rel.Stages, nil, nil)
	if err != nil {
		return nil, err
	}
	best := outputs[0]
	for i, v := range sel.Variants {
		if v.Name == sel.Selected {
			best = outputs[i]
		}
	}
	d.Quality, _ = pipeline.Quality(best.Metrics)
	d.Source = sourcePoint(best, d.Quality)
	d.Gates = gates(sel.Acceptance, d.Quality, metricFloat(best.Metrics, pipeline.MetricSourceAccuracy))
	d.Selected, d.Policy = sel.Selected, string(sel.Policy)
	d.Points = nil
	for _, p := range sel.Parameters {
		d.Parameters = append(d.Parameters, p.Key())
	}
	npass := 0
	for i, v := range task.Select.Variants {
		p := point(v.Name, v.Values, outputs[i], d.Quality, sel.Acceptance, true)
		if outputs[i] == nil {
			p.Note = v.Reason + ": " + v.Message
		}
		if cands[i].Passed() {
			npass++
		}
		d.Points = append(d.Points, p)
	}
	d.Title = chainTitle(rel.Source.URI, rel.Stages) + fmt.Sprintf(" · %d variants", len(d.Points))
	verdict := "passed spec.acceptance"
	if !sel.Passed {
		verdict = "none passed spec.acceptance: the best of all is kept"
	}
	d.Subtitle = fmt.Sprintf("selected %s by %s (%d of %d variants %s): %s (%s, %d bytes)",
		sel.Selected, sel.Policy, npass, len(d.Points), verdict, best.URI, best.Digest, best.SizeBytes)
	if !sel.Passed {
		d.Subtitle = fmt.Sprintf("selected %s by %s; %s: %s (%s, %d bytes)", sel.Selected, sel.Policy, verdict, best.URI, best.Digest, best.SizeBytes)
	}
	return d, nil
}
