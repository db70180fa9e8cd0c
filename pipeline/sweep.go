package pipeline

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kompress/kompress/api/v1alpha1"
)

// SelectStep is the name of a sweep's select step in status.stages. Stage
// runs of a sweep are named <stage>/<variant>, so it never clashes with one.
const SelectStep = "select"

// Variant is one combination of spec.variants values: a chain of its own.
type Variant struct {
	// Name is v1, v2, ... in cross-product order.
	Name string
	// Values[i] is the value of spec.variants.parameters[i].
	Values []string
	// Spec is the job's spec with the values set in its stages and no
	// variants: a plain chain. Set by jobfile.ExpandVariants, which
	// validates it as the API server validates spec.stages.
	Spec *v1alpha1.CompressionJobSpec
}

// Parameters maps "stage.field" to the variant's value of each parameter.
func (v Variant) Parameters(params []v1alpha1.VariantParameter) map[string]string {
	m := make(map[string]string, len(params))
	for i, p := range params {
		if i < len(v.Values) {
			m[p.Key()] = v.Values[i]
		}
	}
	return m
}

// Describe is "prune.sparsity=0.3, int8.bits=8".
func (v Variant) Describe(params []v1alpha1.VariantParameter) string {
	parts := make([]string, 0, len(params))
	for i, p := range params {
		if i < len(v.Values) {
			parts = append(parts, p.Key()+"="+v.Values[i])
		}
	}
	return strings.Join(parts, ", ")
}

// Variants is the cross product of the parameters' values, in the order of
// nested loops (the first parameter changes slowest), named v1, v2, ...
// Their specs are not set (see jobfile.ExpandVariants).
func Variants(vs *v1alpha1.VariantsSpec) []Variant {
	if vs == nil || len(vs.Parameters) == 0 {
		return nil
	}
	combos := [][]string{{}}
	for _, p := range vs.Parameters {
		next := make([][]string, 0, len(combos)*len(p.Values))
		for _, c := range combos {
			for _, v := range p.Values {
				next = append(next, append(append([]string(nil), c...), v))
			}
		}
		combos = next
	}
	out := make([]Variant, len(combos))
	for i, c := range combos {
		out[i] = Variant{Name: fmt.Sprintf("v%d", i+1), Values: c}
	}
	return out
}

// Run is one stage Job of a sweep: stage Index of every variant in
// Variants, whose chains are the same up to and including that stage
// (same stage bodies, so the same input and the same cache key).
type Run struct {
	// Name is <stage>/<first variant>, the run's entry in status.stages.
	Name  string
	Index int
	Stage string
	// Parent is the run this one reads the output of (index into
	// Sweep.Runs), -1 for the first stage.
	Parent int
	// Variants run this stage, by index into Sweep.Variants; the first
	// one's spec plans the task.
	Variants []int
}

// Sweep is the plan of a CompressionJob with spec.variants: its variants
// and its stage runs, each shared by the variants whose chains agree up to
// it, ordered by stage, then by the first variant running it (a run comes
// after its parent).
type Sweep struct {
	Params   []v1alpha1.VariantParameter
	Policy   v1alpha1.SelectPolicy
	Variants []Variant
	Runs     []Run
	// Chains[v] lists variant v's runs, stage by stage.
	Chains [][]int
}

// PlanSweep groups the variants' stages into runs. Every variant must have
// its Spec set, with the same number of stages.
func PlanSweep(vs *v1alpha1.VariantsSpec, variants []Variant) (*Sweep, error) {
	if vs == nil || len(variants) == 0 {
		return nil, fmt.Errorf("spec.variants has no variants")
	}
	sw := &Sweep{Params: vs.Parameters, Policy: vs.Select, Variants: variants, Chains: make([][]int, len(variants))}
	if sw.Policy == "" {
		sw.Policy = v1alpha1.SelectSmallest
	}
	stages := -1
	for _, v := range variants {
		if v.Spec == nil {
			return nil, fmt.Errorf("variant %s has no spec", v.Name)
		}
		if stages >= 0 && len(v.Spec.Stages) != stages {
			return nil, fmt.Errorf("variant %s has %d stages, another %d", v.Name, len(v.Spec.Stages), stages)
		}
		stages = len(v.Spec.Stages)
	}
	// parent[v] is the run variant v reached at the previous stage.
	parent := make([]int, len(variants))
	for i := range parent {
		parent[i] = -1
	}
	for i := 0; i < stages; i++ {
		byKey := map[string]int{}
		for v, vr := range variants {
			body, err := json.Marshal(vr.Spec.Stages[i].StageBody)
			if err != nil {
				return nil, err
			}
			key := fmt.Sprintf("%d|%s", parent[v], body)
			r, ok := byKey[key]
			if !ok {
				r = len(sw.Runs)
				byKey[key] = r
				name := vr.Spec.Stages[i].Name
				sw.Runs = append(sw.Runs, Run{Name: name + "/" + vr.Name, Index: i, Stage: name, Parent: parent[v]})
			}
			sw.Runs[r].Variants = append(sw.Runs[r].Variants, v)
			sw.Chains[v] = append(sw.Chains[v], r)
			parent[v] = r
		}
	}
	return sw, nil
}

// Final is the index of variant v's last run.
func (sw *Sweep) Final(v int) int {
	c := sw.Chains[v]
	return c[len(c)-1]
}

// Spec is the spec that plans run r: its first variant's.
func (sw *Sweep) Spec(r int) *v1alpha1.CompressionJobSpec {
	return sw.Variants[sw.Runs[r].Variants[0]].Spec
}

// ChainBefore lists the statuses of the runs before run r in its chain, in
// order: what Task.SetChain records for release.json. runs holds one
// status per run.
func (sw *Sweep) ChainBefore(r int, runs []v1alpha1.StageStatus) []v1alpha1.StageStatus {
	var chain []v1alpha1.StageStatus
	for p := sw.Runs[r].Parent; p >= 0; p = sw.Runs[p].Parent {
		chain = append([]v1alpha1.StageStatus{runs[p]}, chain...)
	}
	return chain
}

// RunTask plans run r given its input (nil for a first stage, else its
// parent's output), with the chain before it for release.json.
func (sw *Sweep) RunTask(jobName string, r int, input *v1alpha1.Artifact, runs []v1alpha1.StageStatus, runnerVersion string) (Task, error) {
	spec := sw.Spec(r)
	run := sw.Runs[r]
	in, err := StageInput(spec, run.Index, input)
	if err != nil {
		return Task{}, err
	}
	t, err := NewTask(jobName, spec, run.Index, in, runnerVersion)
	t.SetChain(spec, sw.ChainBefore(r, runs))
	return t, err
}

// VariantStages names variant v's runs, in order.
func (sw *Sweep) VariantStages(v int) []string {
	out := make([]string, len(sw.Chains[v]))
	for i, r := range sw.Chains[v] {
		out[i] = sw.Runs[r].Name
	}
	return out
}
