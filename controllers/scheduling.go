package controllers

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kompress/kompress/api/v1alpha1"
)

// Placement is where a stage pod runs and how big it is.
type Placement struct {
	NodeSelector      map[string]string
	Tolerations       []corev1.Toleration
	Affinity          *corev1.Affinity
	PriorityClassName string
	Resources         corev1.ResourceRequirements
}

// MergePlacement layers the manager's defaults, then spec.scheduling, then
// the stage. Node selectors merge key by key, the stage's over the job's,
// and the admin's (the manager's) over both: a job adds keys to the
// admin's pool, it never moves out of it (Admit refuses a job that tries,
// so this only backs that up). Tolerations add up, affinity and priority
// class come from spec.scheduling, and resources merge per resource name
// (see mergeResources).
func MergePlacement(d StageDefaults, sched *v1alpha1.SchedulingSpec, stage *v1alpha1.Stage) Placement {
	if sched == nil {
		sched = &v1alpha1.SchedulingSpec{}
	}
	p := Placement{
		NodeSelector:      mergeSelectors(sched.NodeSelector, stage.NodeSelector, d.NodeSelector),
		Affinity:          sched.Affinity.DeepCopy(),
		PriorityClassName: sched.PriorityClassName,
		Resources:         mergeResources(&d.Resources, sched.Resources, stage.Resources),
	}
	for _, ts := range [][]corev1.Toleration{d.Tolerations, sched.Tolerations, stage.Tolerations} {
		for _, t := range ts {
			p.Tolerations = append(p.Tolerations, *t.DeepCopy())
		}
	}
	return p
}

func mergeSelectors(layers ...map[string]string) map[string]string {
	var out map[string]string
	for _, l := range layers {
		for k, v := range l {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

// mergeResources overlays the layers per resource name, later layers
// winning. When a layer sets a request or limit that conflicts with one it
// inherited (a stage asking for 8Gi under a default 2Gi limit), the inherited
// counterpart yields: the limit is raised to the request, or the request
// lowered to the limit. A layer contradicting itself is left for the API
// server to reject.
func mergeResources(layers ...*corev1.ResourceRequirements) corev1.ResourceRequirements {
	var out corev1.ResourceRequirements
	reqLayer := map[corev1.ResourceName]int{}
	limLayer := map[corev1.ResourceName]int{}
	for i, l := range layers {
		if l == nil {
			continue
		}
		for name, q := range l.Requests {
			out.Requests = setQuantity(out.Requests, name, q)
			reqLayer[name] = i
		}
		for name, q := range l.Limits {
			out.Limits = setQuantity(out.Limits, name, q)
			limLayer[name] = i
		}
		for name := range out.Requests {
			req, lim := out.Requests[name], out.Limits[name]
			if _, ok := out.Limits[name]; !ok || req.Cmp(lim) <= 0 {
				continue
			}
			switch {
			case reqLayer[name] == i && limLayer[name] < i:
				out.Limits[name] = req.DeepCopy()
				limLayer[name] = i
			case limLayer[name] == i && reqLayer[name] < i:
				out.Requests[name] = lim.DeepCopy()
				reqLayer[name] = i
			}
		}
	}
	return out
}

func setQuantity(l corev1.ResourceList, name corev1.ResourceName, q resource.Quantity) corev1.ResourceList {
	if l == nil {
		l = corev1.ResourceList{}
	}
	l[name] = q.DeepCopy()
	return l
}
