package pipeline

import (
	"math"
	"sort"
	"strconv"

	"github.com/kompress/kompress/api/v1alpha1"
)

// Candidate is a variant as the select step sees it: its final model (nil
// when a stage failed) and the gates the model missed.
type Candidate struct {
	Name   string
	Output *v1alpha1.Artifact
	Missed []string
}

// Passed reports whether the candidate has a model that passed every gate.
func (c Candidate) Passed() bool { return c.Output != nil && len(c.Missed) == 0 }

// Candidates pairs each variant's output with the gates it missed.
func Candidates(a *v1alpha1.AcceptanceSpec, names []string, outputs []*v1alpha1.Artifact) []Candidate {
	out := make([]Candidate, len(names))
	for i, n := range names {
		out[i] = Candidate{Name: n, Output: outputs[i]}
		if outputs[i] != nil {
			out[i].Missed = CheckGates(a, outputs[i].Metrics)
		}
	}
	return out
}

// Select picks the best candidate by policy among those that passed every
// gate, else among those that have a model (passed is then false); -1
// when no candidate has a model. The order is total, so the controller,
// the select step and `kompress run` always agree:
//
//   - smallest: fewest bytes, then fewest nonzero parameters (what a
//     sparse format or compression would store), then the better quality;
//   - fastest: lowest p95 latency, then fewest bytes;
//   - mostAccurate: best quality (accuracy, or top-1 agreement with the
//     source, or cosine, whichever the dataset allowed), then fewest bytes;
//
// and ties go to the earlier variant. A metric that was not measured
// ranks last.
func Select(policy v1alpha1.SelectPolicy, cands []Candidate) (index int, passed bool) {
	var pool []int
	for i, c := range cands {
		if c.Passed() {
			pool = append(pool, i)
		}
	}
	passed = len(pool) > 0
	if !passed {
		for i, c := range cands {
			if c.Output != nil {
				pool = append(pool, i)
			}
		}
	}
	if len(pool) == 0 {
		return -1, false
	}
	keys := func(i int) []float64 {
		o := cands[i].Output
		bytes := float64(o.SizeBytes)
		if bytes <= 0 {
			bytes = metricOr(o.Metrics, MetricBytes, math.Inf(1))
		}
		_, q := Quality(o.Metrics)
		switch policy {
		case v1alpha1.SelectFastest:
			return []float64{metricOr(o.Metrics, MetricLatencyP95Ms, math.Inf(1)), bytes}
		case v1alpha1.SelectMostAccurate:
			return []float64{-q, bytes}
		default:
			return []float64{bytes, metricOr(o.Metrics, MetricNonzeroParams, math.Inf(1)), -q}
		}
	}
	sort.SliceStable(pool, func(a, b int) bool {
		ka, kb := keys(pool[a]), keys(pool[b])
		for i := range ka {
			if ka[i] != kb[i] {
				return ka[i] < kb[i]
			}
		}
		return false
	})
	return pool[0], passed
}

// Quality is the model's quality metric and its value: accuracy when the
// dataset has labels, else top-1 agreement with the source, else cosine;
// ("", -Inf) when none was measured.
func Quality(m map[string]string) (string, float64) {
	for _, k := range []string{MetricAccuracy, MetricTop1Agreement, MetricCosine} {
		if v, ok := metric(m, k); ok {
			return k, v
		}
	}
	return "", math.Inf(-1)
}

func metric(m map[string]string, k string) (float64, bool) {
	s, ok := m[k]
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

func metricOr(m map[string]string, k string, def float64) float64 {
	if v, ok := metric(m, k); ok {
		return v
	}
	return def
}
