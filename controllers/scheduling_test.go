package controllers

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kompress/kompress/api/v1alpha1"
)

func rl(kv ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return l
}

var quantityEq = cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })

func TestMergePlacement(t *testing.T) {
	tolA := corev1.Toleration{Key: "a", Operator: corev1.TolerationOpExists}
	tolB := corev1.Toleration{Key: "b", Operator: corev1.TolerationOpExists}
	tolC := corev1.Toleration{Key: "c", Operator: corev1.TolerationOpEqual, Value: "x", Effect: corev1.TaintEffectNoSchedule}
	aff := &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{}}
	defaults := StageDefaults{
		NodeSelector: map[string]string{"pool": "compress", "arch": "amd64"},
		Tolerations:  []corev1.Toleration{tolA},
		Resources:    corev1.ResourceRequirements{Requests: rl("cpu", "500m", "memory", "512Mi"), Limits: rl("cpu", "2", "memory", "2Gi")},
	}
	cases := []struct {
		name  string
		d     StageDefaults
		sched *v1alpha1.SchedulingSpec
		stage v1alpha1.Stage
		want  Placement
	}{
		{"defaults only", defaults, nil, v1alpha1.Stage{}, Placement{
			NodeSelector: map[string]string{"pool": "compress", "arch": "amd64"}, Tolerations: []corev1.Toleration{tolA},
			Resources: defaults.Resources}},
		{"nothing anywhere", StageDefaults{}, nil, v1alpha1.Stage{}, Placement{}},
		{"job level over defaults, stage over job, the admin's keys over both", defaults,
			&v1alpha1.SchedulingSpec{NodeSelector: map[string]string{"pool": "edge", "zone": "z1"}, Tolerations: []corev1.Toleration{tolB},
				Affinity: aff, PriorityClassName: "batch-low",
				Resources: &corev1.ResourceRequirements{Requests: rl("cpu", "1")}},
			v1alpha1.Stage{NodeSelector: map[string]string{"zone": "z2"}, Tolerations: []corev1.Toleration{tolC},
				Resources: &corev1.ResourceRequirements{Limits: rl("cpu", "4")}},
			Placement{
				NodeSelector: map[string]string{"pool": "compress", "arch": "amd64", "zone": "z2"},
				Tolerations:  []corev1.Toleration{tolA, tolB, tolC}, Affinity: aff, PriorityClassName: "batch-low",
				Resources: corev1.ResourceRequirements{Requests: rl("cpu", "1", "memory", "512Mi"), Limits: rl("cpu", "4", "memory", "2Gi")}}},
		{"a bigger request lifts the inherited limit", defaults, nil,
			v1alpha1.Stage{Resources: &corev1.ResourceRequirements{Requests: rl("memory", "8Gi")}},
			Placement{NodeSelector: defaults.NodeSelector, Tolerations: []corev1.Toleration{tolA},
				Resources: corev1.ResourceRequirements{Requests: rl("cpu", "500m", "memory", "8Gi"), Limits: rl("cpu", "2", "memory", "8Gi")}}},
		{"a smaller limit lowers the inherited request", defaults,
			&v1alpha1.SchedulingSpec{Resources: &corev1.ResourceRequirements{Limits: rl("cpu", "250m")}}, v1alpha1.Stage{},
			Placement{NodeSelector: defaults.NodeSelector, Tolerations: []corev1.Toleration{tolA},
				Resources: corev1.ResourceRequirements{Requests: rl("cpu", "250m", "memory", "512Mi"), Limits: rl("cpu", "250m", "memory", "2Gi")}}},
		{"a layer contradicting itself is left to the API server", defaults, nil,
			v1alpha1.Stage{Resources: &corev1.ResourceRequirements{Requests: rl("memory", "8Gi"), Limits: rl("memory", "1Gi")}},
			Placement{NodeSelector: defaults.NodeSelector, Tolerations: []corev1.Toleration{tolA},
				Resources: corev1.ResourceRequirements{Requests: rl("cpu", "500m", "memory", "8Gi"), Limits: rl("cpu", "2", "memory", "1Gi")}}},
		{"extended resources pass through", StageDefaults{}, nil,
			v1alpha1.Stage{Resources: &corev1.ResourceRequirements{Limits: rl("nvidia.com/gpu", "1")}},
			Placement{Resources: corev1.ResourceRequirements{Limits: rl("nvidia.com/gpu", "1")}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := MergePlacement(tc.d, tc.sched, &tc.stage)
			if diff := cmp.Diff(tc.want, got, quantityEq); diff != "" {
				t.Errorf("MergePlacement (-want +got):\n%s", diff)
			}
		})
	}
	// Merging must not write into the inputs.
	if got := defaults.Resources.Limits[corev1.ResourceMemory]; got.Cmp(resource.MustParse("2Gi")) != 0 {
		t.Errorf("MergePlacement changed the defaults: memory limit %s", got.String())
	}
}
