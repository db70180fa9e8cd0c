package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
)

// printSummary prints what each stage gained and cost, then the final
// artifact: the numbers a user reads after `kompress run`.
func printSummary(w io.Writer, job *v1alpha1.CompressionJob) error {
	if len(job.Status.Variants) > 0 {
		return printSweep(w, job)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tSTATE\tBYTES\tPARAMS\tSPARSITY\tMACS\tACCURACY\tDROP\tAGREEMENT\tCOSINE\tREL ERROR\tP50 MS\tP95 MS")
	for _, s := range job.Status.Stages {
		m := map[string]string{}
		if s.Output != nil {
			m = s.Output.Metrics
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.State,
			get(m, pipeline.MetricBytes), get(m, pipeline.MetricParams), pct(m, pipeline.MetricSparsity),
			get(m, pipeline.MetricMACs), pct(m, pipeline.MetricAccuracy), points(m, pipeline.MetricAccuracyDrop),
			pct(m, pipeline.MetricTop1Agreement), get(m, pipeline.MetricCosine), get(m, pipeline.MetricRelativeError),
			get(m, pipeline.MetricLatencyP50Ms), get(m, pipeline.MetricLatencyP95Ms))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if out := job.Status.Output; out != nil {
		if err := printOutputs(w, out.Metrics); err != nil {
			return err
		}
	}
	for _, s := range job.Status.Stages {
		if warnings := pipeline.StageWarnings(s); len(warnings) > 0 {
			fmt.Fprintf(w, "\nstage %s fell short of its spec:\n  - %s\n", s.Name, strings.Join(warnings, "\n  - "))
		}
	}
	printOutcome(w, job)
	return nil
}

// printOutcome prints the Ready condition and the final artifact.
func printOutcome(w io.Writer, job *v1alpha1.CompressionJob) {
	ready := meta.FindStatusCondition(job.Status.Conditions, v1alpha1.ConditionReady)
	if ready != nil {
		fmt.Fprintf(w, "\n%s: Ready=%s reason=%s\n  %s\n", job.Name, ready.Status, ready.Reason, ready.Message)
	}
	if out := job.Status.Output; out != nil {
		fmt.Fprintf(w, "output: %s\ndigest: %s\nsize:   %d bytes%s\n", out.URI, out.Digest, out.SizeBytes, sizeChange(out))
		printMetrics(w, out.Metrics)
	}
	if sel := job.Status.Selection; sel != nil && sel.Release != "" {
		fmt.Fprintf(w, "release: %s\nreport:  %s\n", sel.Release, sel.Report)
	}
}

// printSweep prints one row per variant, the selected one marked with
// "*", then how the stage runs went and the selected model.
func printSweep(w io.Writer, job *v1alpha1.CompressionJob) error {
	st := &job.Status
	var params []string
	if v := job.Spec.Variants; v != nil {
		for _, p := range v.Parameters {
			params = append(params, p.Key())
		}
	}
	selected := ""
	if st.Selection != nil {
		selected = st.Selection.Variant
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := []string{"", "VARIANT"}
	for _, p := range params {
		head = append(head, strings.ToUpper(p))
	}
	head = append(head, "STATE", "GATES", "BYTES", "NONZERO", "SPARSITY", "ACCURACY", "DROP", "AGREEMENT", "P95 MS", "NOTE")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, v := range st.Variants {
		mark := " "
		if v.Name == selected {
			mark = "*"
		}
		cols := []string{mark, v.Name}
		for _, p := range params {
			cols = append(cols, v.Parameters[p])
		}
		m := map[string]string{}
		if v.Output != nil {
			m = v.Output.Metrics
		}
		gates := "-"
		if v.Passed != nil {
			gates = map[bool]string{true: "passed", false: "missed"}[*v.Passed]
		}
		note := ""
		if v.Phase == v1alpha1.VariantFailed {
			note = v.Message
		}
		cols = append(cols, string(v.Phase), gates, get(m, pipeline.MetricBytes), get(m, pipeline.MetricNonzeroParams), pct(m, pipeline.MetricSparsity),
			pct(m, pipeline.MetricAccuracy), points(m, pipeline.MetricAccuracyDrop), pct(m, pipeline.MetricTop1Agreement),
			get(m, pipeline.MetricLatencyP95Ms), note)
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var ran, cached, failed, other int
	for _, s := range st.Stages {
		if s.Name == pipeline.SelectStep {
			continue
		}
		switch s.State {
		case v1alpha1.StageSucceeded:
			ran++
		case v1alpha1.StageCached:
			cached++
		case v1alpha1.StageFailed:
			failed++
		default:
			other++
		}
	}
	fmt.Fprintf(w, "\n%d variants in %d stage runs (%d of %d variant stages shared): %d ran, %d cached, %d failed, %d not run\n",
		len(st.Variants), ran+cached+failed+other, len(st.Variants)*len(job.Spec.Stages)-(ran+cached+failed+other), len(st.Variants)*len(job.Spec.Stages),
		ran, cached, failed, other)
	if selected != "" {
		fmt.Fprintf(w, "* selected %s by %s\n", selected, st.Selection.Policy)
	}
	printOutcome(w, job)
	return nil
}

// printOutputs says which output the fidelity columns are for when the
// model has several, and lists each output's fidelity.
func printOutputs(w io.Writer, m map[string]string) error {
	outs := pipeline.MetricOutputNames(m)
	if len(outs) == 0 {
		return nil
	}
	// The plain metrics are the first output's: the output whose
	// metrics are the same (outputs with identical figures are all
	// named).
	var first []string
	for _, o := range outs {
		same := true
		for _, metric := range pipeline.OutputMetrics {
			same = same && m[pipeline.OutputMetric(metric, o)] == m[metric]
		}
		if same {
			first = append(first, strconv.Quote(o))
		}
	}
	n := m[pipeline.MetricOutputs]
	if n == "" {
		n = strconv.Itoa(len(outs))
	}
	fmt.Fprintf(w, "\nthe model has %s outputs: AGREEMENT, COSINE and REL ERROR are the first's (%s); each output against the source's:\n", n, strings.Join(first, " or "))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OUTPUT\tAGREEMENT\tCOSINE\tREL ERROR\tMAX ABS ERROR\tSNR DB")
	for _, o := range outs {
		q := func(metric string) string { return pipeline.OutputMetric(metric, o) }
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", o, pct(m, q(pipeline.MetricTop1Agreement)), get(m, q(pipeline.MetricCosine)),
			get(m, q(pipeline.MetricRelativeError)), get(m, q(pipeline.MetricMaxAbsError)), get(m, q(pipeline.MetricSNRDb)))
	}
	return tw.Flush()
}

// sizeChange compares the output's size with the source's: a chain that
// only prunes densely or distills may not shrink the file at all.
func sizeChange(out *v1alpha1.Artifact) string {
	src, err := strconv.ParseInt(out.Metrics[pipeline.MetricSourceBytes], 10, 64)
	switch {
	case err != nil || src <= 0 || out.SizeBytes <= 0:
		return ""
	case src > out.SizeBytes:
		return fmt.Sprintf(" (%.2fx smaller than the source's %d)", float64(src)/float64(out.SizeBytes), src)
	case src < out.SizeBytes:
		return fmt.Sprintf(" (%.2fx larger than the source's %d)", float64(out.SizeBytes)/float64(src), src)
	}
	return " (the source's size)"
}

func printMetrics(w io.Writer, m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprint(w, "metrics:")
	for _, k := range keys {
		fmt.Fprintf(w, " %s=%s", k, m[k])
	}
	fmt.Fprintln(w)
}

func get(m map[string]string, k string) string {
	if v, ok := m[k]; ok {
		return v
	}
	return "-"
}

// pct renders a fraction as a percentage.
func pct(m map[string]string, k string) string {
	f, err := strconv.ParseFloat(m[k], 64)
	if err != nil {
		return "-"
	}
	return strconv.FormatFloat(100*f, 'f', 2, 64) + "%"
}

// points renders an accuracy drop (a fraction) in percentage points.
func points(m map[string]string, k string) string {
	f, err := strconv.ParseFloat(m[k], 64)
	if err != nil {
		return "-"
	}
	return strconv.FormatFloat(100*f, 'f', 2, 64) + "pt"
}
