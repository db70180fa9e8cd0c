package controllers_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kompress/kompress/api/v1alpha1"
)

// A namespace without the runner ServiceAccount: the run stalls with
// ServiceAccountNotFound naming it and the fix, no Job is created (the Job
// controller could not create its pod), and once the account exists the
// stage starts.
func TestMissingRunnerServiceAccount(t *testing.T) {
	e := sharedEnv(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "no-sa-"}}
	if err := e.client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, account string }{
		{"the manager's runner account", testDefaults.ServiceAccount},
		{"spec.storage.serviceAccountName", "workload-identity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cpj := newCPJ(ns.Name, "sa-"+strings.ReplaceAll(tc.account, "-", ""), pruneStage("prune"))
			if tc.account != testDefaults.ServiceAccount {
				cpj.Spec.Storage = &v1alpha1.StorageSpec{ServiceAccountName: tc.account}
			}
			e.create(t, cpj)
			key := client.ObjectKeyFromObject(cpj)
			got := e.waitCPJ(t, key, "ServiceAccountNotFound", func(c *v1alpha1.CompressionJob) bool {
				return hasCond(c, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonServiceAccountNotFound)
			})
			msg := cond(got, v1alpha1.ConditionReady).Message
			for _, want := range []string{"ServiceAccount " + ns.Name + "/" + tc.account, "runner.serviceAccount.namespaces={" + ns.Name + "}", "spec.storage.serviceAccountName"} {
				if !strings.Contains(msg, want) {
					t.Errorf("Ready message %q does not contain %q", msg, want)
				}
			}
			if s := kstatusOf(t, got); s != kstatus.FailedStatus {
				t.Errorf("kstatus %s, want Failed", s)
			}
			if n := len(e.jobs(t, cpj)); n != 0 {
				t.Fatalf("%d Jobs created without the ServiceAccount", n)
			}
			e.create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: tc.account}})
			jobs := e.waitJobs(t, cpj, 1)
			if sa := jobs[0].Spec.Template.Spec.ServiceAccountName; sa != tc.account {
				t.Errorf("stage pod runs as %q, want %q", sa, tc.account)
			}
			e.waitCPJ(t, key, "no longer stalled", func(c *v1alpha1.CompressionJob) bool {
				return hasCond(c, v1alpha1.ConditionStalled, metav1.ConditionFalse, v1alpha1.ReasonPending)
			})
		})
	}
}
