package controllers

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CacheOptions limit what the manager holds in memory: only Jobs and pods
// labelled kompress.dev/job (not every Job and pod of the cluster), without
// managed fields, in one namespace when namespace is set.
func CacheOptions(namespace string) cache.Options {
	req, err := labels.NewRequirement(LabelJob, selection.Exists, nil)
	if err != nil {
		panic("controllers: label requirement: " + err.Error())
	}
	owned := labels.NewSelector().Add(*req)
	opts := cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&batchv1.Job{}: {Label: owned},
			&corev1.Pod{}:  {Label: owned},
		},
	}
	if namespace != "" {
		opts.DefaultNamespaces = map[string]cache.Config{namespace: {}}
	}
	return opts
}
