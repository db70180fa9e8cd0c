package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
)

// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get

// stageServiceAccount is the ServiceAccount stage pods run as: the job's
// spec.storage.serviceAccountName, else the manager's runner ServiceAccount.
func stageServiceAccount(cpj *v1alpha1.CompressionJob, d StageDefaults) string {
	if cpj.Spec.Storage != nil && cpj.Spec.Storage.ServiceAccountName != "" {
		return cpj.Spec.Storage.ServiceAccountName
	}
	return d.ServiceAccount
}

// requireServiceAccount checks that the ServiceAccount stage pods run as
// exists in the job's namespace before a stage Job is created. Without it
// the Job controller cannot create the pod, and the stage would wait with
// nothing in the CompressionJob's status to say why; instead the run
// stalls with reason ServiceAccountNotFound naming the account and how to
// provide it, and is looked at again every SecretRetryInterval. stop is
// true when no Job may be created now.
func (s *runState) requireServiceAccount(ctx context.Context, st *v1alpha1.StageStatus) (stop bool, err error) {
	name := stageServiceAccount(s.cpj, s.r.Defaults)
	if name == "" || name == "default" {
		return false, nil // every namespace has it
	}
	var sa corev1.ServiceAccount
	err = s.r.APIReader.Get(ctx, types.NamespacedName{Namespace: s.cpj.Namespace, Name: name}, &sa)
	switch {
	case err == nil:
		return false, nil
	case apierrors.IsNotFound(err):
		st.Reason = v1alpha1.ReasonServiceAccountNotFound
		st.Message = fmt.Sprintf("ServiceAccount %s/%s, which stage pods run as, does not exist; no stage Job is created until it does. "+
			"Install the chart with --set runner.serviceAccount.namespaces={%s}, create the ServiceAccount, or name another in spec.storage.serviceAccountName",
			s.cpj.Namespace, name, s.cpj.Namespace)
		s.stalled = true
		s.requeue = minPositive(s.requeue, s.r.SecretRetryInterval)
		return true, nil
	}
	st.Reason = v1alpha1.ReasonJobCreateFailed
	st.Message = pipeline.Truncate(fmt.Sprintf("reading ServiceAccount %s/%s: %v", s.cpj.Namespace, name, err), pipeline.MaxStatusMessage)
	return true, err
}
