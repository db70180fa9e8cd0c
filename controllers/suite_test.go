package controllers_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/controllers"
	"github.com/kompress/kompress/test/controlplane"
)

var scheme = k8sruntime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
}

// testDefaults are the manager flags of the test managers.
var testDefaults = controllers.StageDefaults{
	RunnerImage:     "registry.example/kompress-runner:test",
	ImagePullPolicy: corev1.PullIfNotPresent,
	ServiceAccount:  "kompress-runner",
	RunnerVersion:   "v-test",
	Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("512Mi"),
			corev1.ResourceEphemeralStorage: resource.MustParse("256Mi")},
		Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("2Gi"),
			corev1.ResourceEphemeralStorage: resource.MustParse("4Gi")},
	},
	NodeSelector: map[string]string{"kompress.dev/pool": "compress"},
	Tolerations:  []corev1.Toleration{{Key: "kompress.dev/dedicated", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
}

// testPolicy is what the test managers' admin allows: Custom stages from
// registry.example/allowed/, and one workload-identity ServiceAccount.
var testPolicy = controllers.Policy{
	CustomStages:    true,
	CustomImages:    []string{"registry.example/allowed/"},
	ServiceAccounts: []string{"workload-identity"},
}

// env is a control plane with the CRD installed and a manager running the
// reconciler, shared by the integration tests of this package.
type env struct {
	cp          *controlplane.ControlPlane
	client      client.Client
	mgr         *manager
	secretRetry time.Duration
}

var (
	shared     *env
	sharedErr  error
	sharedOnce sync.Once
)

func crdDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "config", "crd", "bases")
}

// sharedEnv starts the package's control plane on first use (unit tests
// never pay for it) and fails the test loudly when the binaries are missing.
func sharedEnv(t testing.TB) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("needs kube-apiserver and etcd (KUBEBUILDER_ASSETS); skipped with -short")
	}
	sharedOnce.Do(func() {
		shared, sharedErr = startEnv(controlplane.Options{CRDDirectoryPaths: []string{crdDir()}}, time.Second)
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

func startEnv(opts controlplane.Options, secretRetry time.Duration) (*env, error) {
	// Controller logs only when asked: expected failures would drown the
	// test output.
	var logs io.Writer = io.Discard
	if os.Getenv("KOMPRESS_TEST_LOG") != "" {
		logs = os.Stderr
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(logs), zap.UseDevMode(true)))
	cp, err := controlplane.Start(opts)
	if err != nil {
		return nil, err
	}
	c, err := client.New(cp.Config, client.Options{Scheme: scheme})
	if err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	e := &env{cp: cp, client: c, secretRetry: secretRetry}
	if e.mgr, err = startManager(cp, testDefaults, secretRetry); err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	return e, nil
}

// manager is a controller manager running in the test process.
type manager struct {
	cancel context.CancelFunc
	done   chan error
}

// startManager runs the reconciler with the given manager flags against
// the control plane, with the cache the real manager uses.
func startManager(cp *controlplane.ControlPlane, d controllers.StageDefaults, secretRetry time.Duration) (*manager, error) {
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  controllers.CacheOptions(""),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Several managers may run in one test binary.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	r := &controllers.CompressionJobReconciler{
		Client:                  mgr.GetClient(),
		APIReader:               mgr.GetAPIReader(),
		Recorder:                mgr.GetEventRecorder("kompress-manager"),
		Defaults:                d,
		Policy:                  testPolicy,
		MaxConcurrentReconciles: 4,
		SecretRetryInterval:     secretRetry,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &manager{cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- mgr.Start(ctx) }()
	return m, nil
}

func (m *manager) stop() error {
	m.cancel()
	select {
	case err := <-m.done:
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("the manager did not stop within 30s")
	}
}

func (e *env) stop() error {
	return errors.Join(e.mgr.stop(), e.cp.Stop())
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		if err := shared.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the test control plane:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// namespace creates a fresh namespace for one test, with the runner
// ServiceAccount stage pods run as (the chart creates it).
func (e *env) namespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}
	if err := e.client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: testDefaults.ServiceAccount}}
	if err := e.client.Create(context.Background(), sa); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}
