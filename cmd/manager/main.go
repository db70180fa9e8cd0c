// Command manager runs the kompress controller: it reconciles
// CompressionJobs into stage Jobs. Flags set the runner image and the
// default resources and placement of stage pods (the Helm chart renders
// them from its values).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/controllers"
	"github.com/kompress/kompress/pipeline"
)

// LeaderElectionID names the Lease replicas of the manager compete for.
const LeaderElectionID = "kompress-manager.kompress.dev"

// options are the manager's flags.
type options struct {
	metricsAddr, probeAddr    string
	metricsSecure             bool
	leaderElect               bool
	leaderElectionNamespace   string
	runnerImage               string
	runnerPullPolicy          string
	runnerServiceAccount      string
	runnerVersion             string
	cpuRequest, memoryRequest string
	cpuLimit, memoryLimit     string
	storageRequest            string
	storageLimit              string
	nodeSelector, tolerations string
	customStages              bool
	customImages              string
	serviceAccounts           string
	maxConcurrentReconciles   int
	watchNamespace            string
	imagePullStallAfter       time.Duration
}

func (o *options) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", `Address of the Prometheus metrics endpoint; "0" disables it.`)
	fs.BoolVar(&o.metricsSecure, "metrics-secure", false, "Serve metrics over HTTPS (self-signed) to clients the API server authenticates and authorizes (get on the non-resource URL /metrics).")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader among replicas, so only one reconciles.")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader-election Lease (default: the manager's own).")
	fs.StringVar(&o.runnerImage, "runner-image", "ghcr.io/kompress/kompress-runner:"+pipeline.Version, "Image of the stage runner.")
	fs.StringVar(&o.runnerPullPolicy, "runner-image-pull-policy", string(corev1.PullIfNotPresent), "Pull policy of the runner image: Always, IfNotPresent or Never.")
	fs.StringVar(&o.runnerServiceAccount, "runner-service-account", "kompress-runner", "ServiceAccount of stage pods unless spec.storage.serviceAccountName names another.")
	fs.StringVar(&o.runnerVersion, "runner-version", pipeline.Version, "Runner version in cache keys: change it and stages run again.")
	fs.StringVar(&o.cpuRequest, "stage-cpu-request", "500m", "Default CPU request of a stage pod.")
	fs.StringVar(&o.memoryRequest, "stage-memory-request", "512Mi", "Default memory request of a stage pod.")
	fs.StringVar(&o.cpuLimit, "stage-cpu-limit", "2", "Default CPU limit of a stage pod.")
	fs.StringVar(&o.memoryLimit, "stage-memory-limit", "2Gi", "Default memory limit of a stage pod.")
	fs.StringVar(&o.storageRequest, "stage-ephemeral-storage-request", "256Mi", "Default local disk request of a stage pod.")
	fs.StringVar(&o.storageLimit, "stage-ephemeral-storage-limit", controllers.DefaultEphemeralStorageLimit,
		"Default local disk limit of a stage pod, also the size limit of its /tmp; must be set.")
	fs.StringVar(&o.nodeSelector, "stage-node-selector", "", "Node selector of every stage pod, as k=v,k2=v2: a job may add keys, not change these.")
	fs.StringVar(&o.tolerations, "stage-tolerations", "", "Tolerations of every stage pod, as a JSON array of tolerations; a job may add others, never the control plane's.")
	fs.BoolVar(&o.customStages, "custom-stages", false, "Run Custom stages (user images, from --custom-stage-images only); off, a job with one stalls with reason CustomStagesDisabled.")
	fs.StringVar(&o.customImages, "custom-stage-images", "", "Images Custom stages may run, comma-separated: prefixes (registry.example/team/) or digests (sha256:<64 hex>).")
	fs.StringVar(&o.serviceAccounts, "allowed-service-accounts", "", "ServiceAccounts spec.storage.serviceAccountName may name besides the runner's, comma-separated: name (any namespace) or namespace/name.")
	fs.IntVar(&o.maxConcurrentReconciles, "max-concurrent-reconciles", 4, "CompressionJobs reconciled at once.")
	fs.StringVar(&o.watchNamespace, "watch-namespace", "", "Only reconcile CompressionJobs in this namespace (default: all).")
	fs.DurationVar(&o.imagePullStallAfter, "image-pull-stall-after", controllers.DefaultImagePullStallAfter,
		"How long a stage pod may fail to pull its image before its CompressionJob is Stalled (the kubelet keeps trying).")
}

// stageDefaults checks the stage flags and turns them into defaults.
func (o *options) stageDefaults() (controllers.StageDefaults, error) {
	d := controllers.StageDefaults{
		RunnerImage:     o.runnerImage,
		ImagePullPolicy: corev1.PullPolicy(o.runnerPullPolicy),
		ServiceAccount:  o.runnerServiceAccount,
		RunnerVersion:   o.runnerVersion,
	}
	var err error
	switch d.ImagePullPolicy {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		return d, fmt.Errorf("--runner-image-pull-policy=%q is not Always, IfNotPresent or Never", o.runnerPullPolicy)
	}
	if o.runnerImage == "" || o.runnerVersion == "" {
		return d, errors.New("--runner-image and --runner-version must not be empty")
	}
	if o.imagePullStallAfter <= 0 {
		return d, fmt.Errorf("--image-pull-stall-after=%s must be positive", o.imagePullStallAfter)
	}
	if o.maxConcurrentReconciles < 1 {
		return d, fmt.Errorf("--max-concurrent-reconciles=%d must be at least 1", o.maxConcurrentReconciles)
	}
	if d.Resources, err = controllers.ParseResources(o.cpuRequest, o.memoryRequest, o.cpuLimit, o.memoryLimit, o.storageRequest, o.storageLimit); err != nil {
		return d, err
	}
	if o.storageLimit == "" {
		return d, errors.New("--stage-ephemeral-storage-limit must be set: it bounds every stage pod's local disk and /tmp")
	}
	if d.NodeSelector, err = controllers.ParseNodeSelector(o.nodeSelector); err != nil {
		return d, fmt.Errorf("--stage-node-selector: %w", err)
	}
	if d.Tolerations, err = controllers.ParseTolerations(o.tolerations); err != nil {
		return d, fmt.Errorf("--stage-tolerations: %w", err)
	}
	return d, nil
}

// policy checks what the admin lets CompressionJobs do.
func (o *options) policy() (controllers.Policy, error) {
	p := controllers.Policy{
		CustomStages:    o.customStages,
		CustomImages:    controllers.ParsePolicyList(o.customImages),
		ServiceAccounts: controllers.ParsePolicyList(o.serviceAccounts),
	}
	return p, p.Validate()
}

func main() {
	var o options
	o.bind(flag.CommandLine)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	if err := run(&o); err != nil {
		ctrl.Log.Error(err, "manager stopped")
		os.Exit(1)
	}
}

func run(o *options) error {
	defaults, err := o.stageDefaults()
	if err != nil {
		return err
	}
	policy, err := o.policy()
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("no Kubernetes API configuration (in-cluster, --kubeconfig or KUBECONFIG): %w", err)
	}
	metrics := metricsserver.Options{BindAddress: o.metricsAddr}
	if o.metricsSecure {
		// TokenReview and SubjectAccessReview against the API server for
		// every scrape; a self-signed certificate unless CertDir is set.
		metrics.SecureServing = true
		metrics.FilterProvider = metricsAuth
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Cache:                         controllers.CacheOptions(o.watchNamespace),
		Metrics:                       metrics,
		HealthProbeBindAddress:        o.probeAddr,
		LeaderElection:                o.leaderElect,
		LeaderElectionID:              LeaderElectionID,
		LeaderElectionNamespace:       o.leaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	r := &controllers.CompressionJobReconciler{
		Client:                  mgr.GetClient(),
		APIReader:               mgr.GetAPIReader(),
		Recorder:                mgr.GetEventRecorder("kompress-manager"),
		Defaults:                defaults,
		Policy:                  policy,
		MaxConcurrentReconciles: o.maxConcurrentReconciles,
		ImagePullStallAfter:     o.imagePullStallAfter,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the CompressionJob controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	ctrl.Log.Info("starting manager", "runnerImage", defaults.RunnerImage, "runnerVersion", defaults.RunnerVersion,
		"watchNamespace", o.watchNamespace, "leaderElect", o.leaderElect,
		"customStages", policy.CustomStages, "customStageImages", policy.CustomImages, "allowedServiceAccounts", policy.ServiceAccounts)
	return mgr.Start(ctrl.SetupSignalHandler())
}
