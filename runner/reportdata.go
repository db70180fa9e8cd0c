package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/report"
	"github.com/kompress/kompress/runner/storage"
)

// readResult reads the result.json beside a model; ok is false when there
// is none or it does not parse (a report then shows the stage without
// numbers rather than failing).
func readResult(ctx context.Context, st *storage.Client, modelURI string) (pipeline.Result, bool, error) {
	if modelURI == "" {
		return pipeline.Result{}, false, nil
	}
	data, _, err := st.ReadAll(ctx, pipeline.SiblingURI(modelURI, pipeline.ResultFile), "")
	if errors.Is(err, storage.ErrNotFound) {
		return pipeline.Result{}, false, nil
	}
	if err != nil {
		return pipeline.Result{}, false, err
	}
	r, err := pipeline.DecodeResult(data)
	return r, err == nil && r.Output != nil, nil
}

// chainResults reads the result of every link of a chain; final, when
// set, is the last link's result, already in hand.
func chainResults(ctx context.Context, st *storage.Client, links []pipeline.ChainLink, final *pipeline.Result) ([]*pipeline.Result, error) {
	out := make([]*pipeline.Result, len(links))
	for i, l := range links {
		if i == len(links)-1 && final != nil {
			out[i] = final
			continue
		}
		r, ok, err := readResult(ctx, st, l.Output.URI)
		if err != nil {
			return nil, fmt.Errorf("reading the result of stage %s for the report: %w", l.Stage.Name, err)
		}
		if ok {
			out[i] = &r
		}
	}
	return out, nil
}

func metricInt(m map[string]string, k string) int64 {
	v, err := strconv.ParseInt(m[k], 10, 64)
	if err != nil {
		return -1
	}
	return v
}

func metricFloat(m map[string]string, k string) float64 {
	v, err := strconv.ParseFloat(m[k], 64)
	if err != nil {
		return -1
	}
	return v
}

// stageBars are the source and every stage's output, for the bars.
func stageBars(links []pipeline.ChainLink, results []*pipeline.Result) []report.Stage {
	out := []report.Stage{{Name: "source", Bytes: -1, MACs: -1, LatencyP95: -1}}
	for i, l := range links {
		s := report.Stage{Name: l.Stage.Name, Bytes: -1, MACs: -1, LatencyP95: -1}
		if r := results[i]; r != nil && r.Output != nil {
			m := r.Output.Metrics
			s.Bytes, s.MACs, s.LatencyP95 = r.Output.SizeBytes, metricInt(m, pipeline.MetricMACs), metricFloat(m, pipeline.MetricLatencyP95Ms)
			if b := metricInt(m, pipeline.MetricSourceBytes); b > 0 {
				out[0].Bytes = b
			}
		}
		out = append(out, s)
	}
	return out
}

// stageDetails are the parts of a stage's result.json details the report
// reads: Prune's per-layer sparsity and Quantize's stored types (their
// JSON names match case-insensitively).
type stageDetails struct {
	Stage struct {
		Layers []struct {
			Name     string  `json:"name"`
			Node     string  `json:"node"`
			OpType   string  `json:"opType"`
			Sparsity float64 `json:"sparsity"`
		} `json:"layers"`
		Quantized []struct {
			Name   string `json:"name"`
			Node   string `json:"node"`
			OpType string `json:"opType"`
			Type   string `json:"type"`
		} `json:"quantized"`
	} `json:"stage"`
}

// bitsOf is the width of a stored element type; 0 for biases (int32),
// which are not layers of their own.
func bitsOf(t string) int {
	switch t {
	case "int8", "uint8":
		return 8
	case "int4", "uint4":
		return 4
	case "float16", "bfloat16":
		return 16
	case "int32":
		return 0
	}
	return 32
}

// chainLayers folds the stages' details into one row per layer (keyed by
// the weight's consuming node, which survives renames of the weight): the
// last Prune stage's sparsity and the last Quantize stage's bit-width.
func chainLayers(links []pipeline.ChainLink, results []*pipeline.Result) []report.Layer {
	var order []string
	rows := map[string]*report.Layer{}
	get := func(node, name, op string) *report.Layer {
		key := node
		if key == "" {
			key = name
		}
		l := rows[key]
		if l == nil {
			label := key
			if node != "" && name != "" {
				label = node + " (" + name + ")"
			}
			l = &report.Layer{Name: label, OpType: op, Sparsity: -1, Bits: 32}
			rows[key] = l
			order = append(order, key)
		}
		if op != "" {
			l.OpType = op
		}
		return l
	}
	for i, l := range links {
		r := results[i]
		if r == nil || len(r.Details) == 0 {
			continue
		}
		var d stageDetails
		if json.Unmarshal(r.Details, &d) != nil {
			continue
		}
		switch l.Stage.Type {
		case v1alpha1.StageTypePrune:
			for _, x := range d.Stage.Layers {
				get(x.Node, x.Name, x.OpType).Sparsity = x.Sparsity
			}
		case v1alpha1.StageTypeQuantize:
			for _, x := range d.Stage.Quantized {
				if b := bitsOf(x.Type); b > 0 {
					get(x.Node, x.Name, x.OpType).Bits = b
				}
			}
		}
	}
	out := make([]report.Layer, len(order))
	for i, k := range order {
		out[i] = *rows[k]
	}
	return out
}

// point is a model on the trade-off plots, with its gates checked when
// acceptance is known.
func point(name string, values []string, out *v1alpha1.Artifact, quality string, acceptance *v1alpha1.AcceptanceSpec, gated bool) report.Point {
	p := report.Point{Name: name, Values: values}
	if out == nil {
		return p
	}
	m := out.Metrics
	p.HasModel, p.Bytes, p.Nonzero = true, out.SizeBytes, metricInt(m, pipeline.MetricNonzeroParams)
	if v := metricFloat(m, quality); quality != "" && v >= 0 {
		p.Quality, p.HasQuality = v, true
	}
	p.AccuracyDrop, p.LatencyP95Ms = m[pipeline.MetricAccuracyDrop], m[pipeline.MetricLatencyP95Ms]
	if gated {
		missed := pipeline.CheckGates(acceptance, m)
		ok := len(missed) == 0
		p.Passed = &ok
		p.Note = strings.Join(missed, "; ")
	}
	return p
}

// gates turns spec.acceptance into the lines of the plots: the quality
// floor when the gate is on the plotted metric, the byte ceiling, and the
// rest as text.
func gates(a *v1alpha1.AcceptanceSpec, quality string, sourceAccuracy float64) report.Gates {
	var g report.Gates
	if a == nil {
		return g
	}
	floor := func(limit, label string) {
		if v, err := strconv.ParseFloat(limit, 64); err == nil {
			g.MinQuality, g.MinQualityLabel = &v, label
		}
	}
	if a.MaxAccuracyDrop != "" {
		drop, _ := strconv.ParseFloat(a.MaxAccuracyDrop, 64)
		if quality == pipeline.MetricAccuracy && sourceAccuracy >= 0 {
			floor(strconv.FormatFloat(sourceAccuracy-drop, 'f', -1, 64), fmt.Sprintf("maxAccuracyDrop %s: accuracy ≥ %.2f%%", a.MaxAccuracyDrop, 100*(sourceAccuracy-drop)))
		} else {
			g.Other = append(g.Other, "maxAccuracyDrop "+a.MaxAccuracyDrop)
		}
	}
	for _, x := range []struct{ limit, metric, gate string }{
		{a.MinTop1Agreement, pipeline.MetricTop1Agreement, "minTop1Agreement"},
		{a.MinCosine, pipeline.MetricCosine, "minCosine"},
	} {
		switch {
		case x.limit == "":
		case quality == x.metric && g.MinQuality == nil:
			floor(x.limit, x.gate+" "+x.limit)
		default:
			g.Other = append(g.Other, x.gate+" "+x.limit)
		}
	}
	if a.MaxBytes != nil {
		v := *a.MaxBytes
		g.MaxBytes = &v
	}
	if a.MaxLatency != nil {
		g.Other = append(g.Other, "maxLatency "+a.MaxLatency.Duration.String())
	}
	return g
}

// sourcePoint is the source model on the bytes panel: its size and its
// quality (its own accuracy; a fidelity of 1 to itself).
func sourcePoint(final *v1alpha1.Artifact, quality string) *report.Point {
	if final == nil {
		return nil
	}
	p := &report.Point{Name: "source", HasModel: true, Bytes: metricInt(final.Metrics, pipeline.MetricSourceBytes), Nonzero: -1}
	switch quality {
	case pipeline.MetricAccuracy:
		if v := metricFloat(final.Metrics, pipeline.MetricSourceAccuracy); v >= 0 {
			p.Quality, p.HasQuality = v, true
		}
	case pipeline.MetricTop1Agreement, pipeline.MetricCosine:
		p.Quality, p.HasQuality = 1, true
	}
	if p.Bytes <= 0 {
		return nil
	}
	return p
}

func chainTitle(source string, links []pipeline.ChainLink) string {
	names := make([]string, len(links))
	for i, l := range links {
		names[i] = l.Stage.Name
	}
	return path.Base(strings.SplitN(source, "?", 2)[0]) + " → " + strings.Join(names, " → ")
}

// ChainReport is the report of one chain: its final model against the
// source, its stages and its layers. acceptance draws the gates; the
// report written beside a final model has none (the model is shared by
// every job that produces it, and gates are a job's), `kompress run
// --report` has the job's.
func ChainReport(ctx context.Context, st *storage.Client, source pipeline.Ref, links []pipeline.ChainLink, final *pipeline.Result, acceptance *v1alpha1.AcceptanceSpec) (*report.Data, error) {
	if len(links) == 0 {
		return nil, errors.New("a report needs at least one stage")
	}
	results, err := chainResults(ctx, st, links, final)
	if err != nil {
		return nil, err
	}
	var out *v1alpha1.Artifact
	if r := results[len(results)-1]; r != nil {
		out = r.Output
	}
	d := &report.Data{Title: chainTitle(source.URI, links), Stages: stageBars(links, results), Layers: chainLayers(links, results)}
	if out == nil {
		d.Subtitle = "the final stage has no result"
		return d, nil
	}
	d.Quality, _ = pipeline.Quality(out.Metrics)
	d.Source = sourcePoint(out, d.Quality)
	d.Gates = gates(acceptance, d.Quality, metricFloat(out.Metrics, pipeline.MetricSourceAccuracy))
	d.Points = []report.Point{point("final", nil, out, d.Quality, acceptance, acceptance != nil)}
	d.Subtitle = fmt.Sprintf("final model %s (%s, %d bytes)", out.URI, out.Digest, out.SizeBytes)
	return d, nil
}

// renderReport renders d and writes it to uri, write-once (an existing
// report is kept).
func writeReport(ctx context.Context, st *storage.Client, uri string, d *report.Data) error {
	var b strings.Builder
	if err := report.Render(&b, d); err != nil {
		return err
	}
	if _, err := st.WriteBytes(ctx, uri, []byte(b.String())); err != nil && !errors.Is(err, storage.ErrExists) {
		return fmt.Errorf("writing %s: %w", uri, err)
	}
	return nil
}
