package chart

import (
	"github.com/go-logr/logr"
	"os"
	"path/filepath"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kompressv1alpha1 "github.com/kompress/kompress/api/v1alpha1"
)

// controlPlane is a real kube-apiserver and etcd, with an admin kubeconfig
// for helm and a client for assertions.
type controlPlane struct {
	env        *envtest.Environment
	client     client.Client
	kubeconfig string
}

// startControlPlane starts envtest without CRDs: the chart (or config/)
// installs them, as it would on a real cluster.
func startControlPlane(t *testing.T) *controlPlane {
	t.Helper()
	if testing.Short() {
		t.Skip("needs kube-apiserver and etcd; run without -short")
	}
	kubebuilderAssets(t)
	log.SetLogger(logr.Discard())
	env := &envtest.Environment{}
	if _, err := env.Start(); err != nil {
		t.Fatalf("starting kube-apiserver and etcd from %s: %v", os.Getenv("KUBEBUILDER_ASSETS"), err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})

	// helm and the client act as a cluster admin, like a platform engineer.
	cp := &controlPlane{env: env}
	user, path := cp.addUser(t, envtest.User{Name: "chart-admin", Groups: []string{"system:masters"}})

	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, kompressv1alpha1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	cfg := rest.CopyConfig(user.Config())
	cfg.QPS, cfg.Burst = 1000, 1000 // SubjectAccessReviews come by the hundred
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	cp.client, cp.kubeconfig = c, path
	return cp
}

// addUser adds a user authenticated by a client certificate and writes its
// kubeconfig.
func (cp *controlPlane) addUser(t *testing.T, u envtest.User) (*envtest.AuthenticatedUser, string) {
	t.Helper()
	user, err := cp.env.AddUser(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	return user, path
}

// serviceAccountKubeconfig authenticates as ServiceAccount namespace/name:
// RBAC matches ServiceAccount subjects by this user name and these groups.
func (cp *controlPlane) serviceAccountKubeconfig(t *testing.T, namespace, name string) string {
	t.Helper()
	_, path := cp.addUser(t, envtest.User{
		Name:   "system:serviceaccount:" + namespace + ":" + name,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	})
	return path
}

// access is one API request a ServiceAccount may or may not make.
type access struct {
	Namespace, Verb, Group, Resource, Subresource string
}

// allowed asks the API server's RBAC authorizer whether the ServiceAccount
// namespace/name may make the request.
func (cp *controlPlane) allowed(t *testing.T, namespace, name string, a access) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   "system:serviceaccount:" + namespace + ":" + name,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: a.Namespace, Verb: a.Verb, Group: a.Group, Resource: a.Resource, Subresource: a.Subresource,
		},
	}}
	if err := cp.client.Create(t.Context(), sar); err != nil {
		t.Fatalf("SubjectAccessReview: %v", err)
	}
	return sar.Status.Allowed
}

func sleepBriefly() { time.Sleep(100 * time.Millisecond) }
