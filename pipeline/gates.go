package pipeline

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/kompress/kompress/api/v1alpha1"
)

// CheckGates compares the final model's metrics with spec.acceptance and
// returns one line per missed gate, in a fixed order; nil means every gate
// passed. A gate whose metric was not measured is missed: a gate nobody
// could check must not pass silently.
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
	check("maxAccuracyDrop", a.MaxAccuracyDrop, MetricAccuracyDrop, true)
	check("minTop1Agreement", a.MinTop1Agreement, MetricTop1Agreement, false)
	check("minCosine", a.MinCosine, MetricCosine, false)
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
