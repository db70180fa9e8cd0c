package controllers

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
)

// Metric names, served on the manager's metrics endpoint with
// controller-runtime's own.
const (
	MetricJobs            = "kompress_compressionjobs"
	MetricStageDuration   = "kompress_stage_duration_seconds"
	MetricReconcileErrors = "kompress_reconcile_errors_total"
)

var (
	jobsByState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricJobs,
		Help: "CompressionJobs by the state of their current run: InProgress, Suspended, Succeeded or Failed.",
	}, []string{"state"})
	stageDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    MetricStageDuration,
		Help:    "Wall time of finished stages, from Job creation to completion, by stage type and outcome.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 16), // 1 s to 9 h
	}, []string{"type", "state"})
	reconcileErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricReconcileErrors,
		Help: "Reconciles of CompressionJobs that returned an error, by the step that failed.",
	}, []string{"step"})
)

func init() {
	metrics.Registry.MustRegister(jobsByState, stageDuration, reconcileErrors)
	for _, p := range []pipeline.Phase{pipeline.PhaseInProgress, pipeline.PhaseSuspended, pipeline.PhaseSucceeded, pipeline.PhaseFailed} {
		jobsByState.WithLabelValues(string(p))
	}
}

// stateTracker keeps the state of every CompressionJob the manager has seen
// so the gauge counts each once, moving it between states on change.
type stateTracker struct {
	mu    sync.Mutex
	state map[types.NamespacedName]pipeline.Phase
}

var tracker = &stateTracker{state: map[types.NamespacedName]pipeline.Phase{}}

func (t *stateTracker) set(key types.NamespacedName, p pipeline.Phase) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old, seen := t.state[key]
	if seen && old == p {
		return
	}
	if seen {
		jobsByState.WithLabelValues(string(old)).Dec()
	}
	t.state[key] = p
	jobsByState.WithLabelValues(string(p)).Inc()
}

func (t *stateTracker) forget(key types.NamespacedName) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, seen := t.state[key]; seen {
		jobsByState.WithLabelValues(string(old)).Dec()
		delete(t.state, key)
	}
}

// observeStageDuration records a stage that just finished.
func observeStageDuration(t v1alpha1.StageType, s v1alpha1.StageStatus) {
	if s.StartTime == nil || s.CompletionTime == nil {
		return
	}
	d := s.CompletionTime.Sub(s.StartTime.Time).Seconds()
	if d < 0 {
		d = 0
	}
	stageDuration.WithLabelValues(string(t), string(s.State)).Observe(d)
}
