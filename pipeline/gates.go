package pipeline

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/kompress/kompress/api/v1alpha1"
)

// CheckGates compares the final model's metrics with spec.acceptance and
// returns one line per missed gate, in a fixed order; nil means every gate
// passed. A gate whose metric was not measured is missed: a gate nobody
// could check must not pass silently. Fidelity gates (top-1 agreement,
// cosine, relative error, SNR) hold for every output: a model with
// several outputs is checked on each output its metrics name
// (OutputMetric), in name order.
func CheckGates(a *v1alpha1.AcceptanceSpec, metrics map[string]string) []string {
	if a == nil {
		return nil
	}
	var missed []string
	check := func(gate, limit, metric string, atMost bool) {
		if limit == "" {
			return
		}
		if msg := checkGate(gate, limit, metric, metrics[metric], atMost); msg != "" {
			missed = append(missed, msg)
		}
	}
	outputs := MetricOutputNames(metrics)
	checkOutputs := func(gate, limit, metric string, atMost bool) {
		if limit == "" {
			return
		}
		names := []string{metric}
		if len(outputs) > 0 {
			names = names[:0]
			for _, out := range outputs {
				names = append(names, OutputMetric(metric, out))
			}
		}
		for _, name := range names {
			msg := checkGate(gate, limit, name, metrics[name], atMost)
			if msg != "" && metrics[name] == "" && (metric == MetricCosine || metric == MetricTop1Agreement) {
				if _, ok := metrics[strings.Replace(name, metric, MetricRelativeError, 1)]; ok {
					msg += " (an output of one value per sample has no " + metric + ": gate it with maxRelativeError or minSnrDb)"
				}
			}
			if msg != "" {
				missed = append(missed, msg)
			}
		}
	}
	check("maxAccuracyDrop", a.MaxAccuracyDrop, MetricAccuracyDrop, true)
	checkOutputs("minTop1Agreement", a.MinTop1Agreement, MetricTop1Agreement, false)
	checkOutputs("minCosine", a.MinCosine, MetricCosine, false)
	checkOutputs("maxRelativeError", a.MaxRelativeError, MetricRelativeError, true)
	checkOutputs("minSnrDb", a.MinSnrDb, MetricSNRDb, false)
	if a.MaxBytes != nil {
		check("maxBytes", strconv.FormatInt(*a.MaxBytes, 10), MetricBytes, true)
	}
	if a.MaxLatency != nil {
		ms := strconv.FormatFloat(float64(a.MaxLatency.Duration)/float64(time.Millisecond), 'f', -1, 64)
		check("maxLatency", ms, MetricLatencyP95Ms, true)
	}
	return missed
}

// checkGate returns why value misses the gate, or "" when it passes.
func checkGate(gate, limit, metric, value string, atMost bool) string {
	lim, err := strconv.ParseFloat(limit, 64)
	if err != nil {
		return fmt.Sprintf("%s: limit %q is not a number", gate, limit)
	}
	if value == "" {
		return fmt.Sprintf("%s: metric %s was not measured", gate, metric)
	}
	v, err := strconv.ParseFloat(value, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		// ParseFloat accepts "NaN" and "Inf"; a NaN compares false both
		// ways and would pass every gate.
		return fmt.Sprintf("%s: metric %s = %q is not a number", gate, metric, value)
	}
	switch {
	case atMost && v > lim:
		return fmt.Sprintf("%s: %s %s is above %s", gate, metric, value, limit)
	case !atMost && v < lim:
		return fmt.Sprintf("%s: %s %s is below %s", gate, metric, value, limit)
	}
	return ""
}
