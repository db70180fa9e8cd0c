package controllers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// StageDefaults are the manager's settings for every stage pod, from its
// flags: the runner image and version, its ServiceAccount, and the default
// resources and placement that spec.scheduling and each stage override.
type StageDefaults struct {
	RunnerImage     string
	ImagePullPolicy corev1.PullPolicy
	// ServiceAccount runs stage pods unless spec.storage.serviceAccountName
	// names another.
	ServiceAccount string
	// RunnerVersion is part of every cache key.
	RunnerVersion string
	Resources     corev1.ResourceRequirements
	NodeSelector  map[string]string
	Tolerations   []corev1.Toleration
}

// ParseNodeSelector parses "k=v,k2=v2" (the --stage-node-selector flag).
func ParseNodeSelector(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			return nil, fmt.Errorf("node selector entry %q is not key=value", pair)
		}
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return nil, fmt.Errorf("node selector key %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return nil, fmt.Errorf("node selector value %q of key %s: %s", v, k, strings.Join(errs, "; "))
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("node selector key %q appears twice", k)
		}
		out[k] = v
	}
	return out, nil
}

// ParseTolerations parses a JSON array of corev1.Toleration (the
// --stage-tolerations flag); unknown fields are errors, so a typo is not
// silently dropped.
func ParseTolerations(s string) ([]corev1.Toleration, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.DisallowUnknownFields()
	var ts []corev1.Toleration
	if err := dec.Decode(&ts); err != nil {
		return nil, fmt.Errorf("tolerations must be a JSON array of tolerations such as "+
			`[{"key":"pool","operator":"Equal","value":"edge","effect":"NoSchedule"}]: %w`, err)
	}
	for i, t := range ts {
		switch t.Operator {
		case "", corev1.TolerationOpEqual, corev1.TolerationOpExists:
		default:
			return nil, fmt.Errorf("toleration %d: operator %q is not Equal or Exists", i, t.Operator)
		}
		switch t.Effect {
		case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			return nil, fmt.Errorf("toleration %d: effect %q is not NoSchedule, PreferNoSchedule or NoExecute", i, t.Effect)
		}
	}
	return ts, nil
}

// ParseResources builds requests and limits from the --stage-* flags; an
// empty string leaves that entry unset.
func ParseResources(cpuRequest, memoryRequest, cpuLimit, memoryLimit, storageRequest, storageLimit string) (corev1.ResourceRequirements, error) {
	var rr corev1.ResourceRequirements
	set := func(list *corev1.ResourceList, flag string, name corev1.ResourceName, value string) error {
		if value == "" {
			return nil
		}
		q, err := resource.ParseQuantity(value)
		if err != nil {
			return fmt.Errorf("--%s=%q is not a quantity such as 500m or 2Gi: %w", flag, value, err)
		}
		if *list == nil {
			*list = corev1.ResourceList{}
		}
		(*list)[name] = q
		return nil
	}
	for _, e := range []struct {
		list  *corev1.ResourceList
		flag  string
		name  corev1.ResourceName
		value string
	}{
		{&rr.Requests, "stage-cpu-request", corev1.ResourceCPU, cpuRequest},
		{&rr.Requests, "stage-memory-request", corev1.ResourceMemory, memoryRequest},
		{&rr.Limits, "stage-cpu-limit", corev1.ResourceCPU, cpuLimit},
		{&rr.Limits, "stage-memory-limit", corev1.ResourceMemory, memoryLimit},
		{&rr.Requests, "stage-ephemeral-storage-request", corev1.ResourceEphemeralStorage, storageRequest},
		{&rr.Limits, "stage-ephemeral-storage-limit", corev1.ResourceEphemeralStorage, storageLimit},
	} {
		if err := set(e.list, e.flag, e.name, e.value); err != nil {
			return rr, err
		}
	}
	for _, name := range sortedKeys(rr.Requests) {
		req, lim := rr.Requests[name], rr.Limits[name]
		if _, ok := rr.Limits[name]; ok && req.Cmp(lim) > 0 {
			return rr, fmt.Errorf("stage %s request %s is above its limit %s", name, req.String(), lim.String())
		}
	}
	return rr, nil
}

func sortedKeys(l corev1.ResourceList) []corev1.ResourceName {
	keys := make([]corev1.ResourceName, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}
