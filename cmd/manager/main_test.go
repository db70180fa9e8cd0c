package main

import (
	"flag"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kompress/kompress/controllers"
	"github.com/kompress/kompress/pipeline"
)

func parse(t *testing.T, args ...string) (*options, error) {
	t.Helper()
	var o options
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	o.bind(fs)
	return &o, fs.Parse(args)
}

func TestStageDefaults(t *testing.T) {
	q := resource.MustParse
	cases := []struct {
		name    string
		args    []string
		want    controllers.StageDefaults
		wantErr string
	}{
		{"flag defaults", nil, controllers.StageDefaults{
			RunnerImage: "ghcr.io/kompress/kompress-runner:" + pipeline.Version, ImagePullPolicy: corev1.PullIfNotPresent,
			ServiceAccount: "kompress-runner", RunnerVersion: pipeline.Version,
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: q("500m"), corev1.ResourceMemory: q("512Mi"), corev1.ResourceEphemeralStorage: q("256Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: q("2"), corev1.ResourceMemory: q("2Gi"), corev1.ResourceEphemeralStorage: q("8Gi")},
			}}, ""},
		{"everything set", []string{"--runner-image=r:2", "--runner-image-pull-policy=Always", "--runner-service-account=sa",
			"--runner-version=v9", "--stage-cpu-request=1", "--stage-memory-request=1Gi", "--stage-cpu-limit=", "--stage-memory-limit=",
			"--stage-ephemeral-storage-request=", "--stage-ephemeral-storage-limit=20Gi",
			"--stage-node-selector=pool=edge", `--stage-tolerations=[{"key":"pool","operator":"Exists"}]`}, controllers.StageDefaults{
			RunnerImage: "r:2", ImagePullPolicy: corev1.PullAlways, ServiceAccount: "sa", RunnerVersion: "v9",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: q("1"), corev1.ResourceMemory: q("1Gi")},
				Limits: corev1.ResourceList{corev1.ResourceEphemeralStorage: q("20Gi")}},
			NodeSelector: map[string]string{"pool": "edge"},
			Tolerations:  []corev1.Toleration{{Key: "pool", Operator: corev1.TolerationOpExists}}}, ""},
		{"bad pull policy", []string{"--runner-image-pull-policy=Sometimes"}, controllers.StageDefaults{}, `--runner-image-pull-policy="Sometimes"`},
		{"bad node selector", []string{"--stage-node-selector=pool"}, controllers.StageDefaults{}, "--stage-node-selector"},
		{"bad tolerations", []string{"--stage-tolerations=pool"}, controllers.StageDefaults{}, "--stage-tolerations"},
		{"request above limit", []string{"--stage-memory-request=4Gi"}, controllers.StageDefaults{}, "memory request 4Gi is above its limit 2Gi"},
		{"no workers", []string{"--max-concurrent-reconciles=0"}, controllers.StageDefaults{}, "--max-concurrent-reconciles=0"},
		{"empty image", []string{"--runner-image="}, controllers.StageDefaults{}, "--runner-image and --runner-version must not be empty"},
		{"no local disk limit", []string{"--stage-ephemeral-storage-limit="}, controllers.StageDefaults{}, "--stage-ephemeral-storage-limit must be set"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parse(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := o.stageDefaults()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })); diff != "" {
				t.Errorf("stageDefaults (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFlagNames pins the flags the Helm chart renders.
func TestFlagNames(t *testing.T) {
	var o options
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	o.bind(fs)
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	want := []string{"allowed-service-accounts", "custom-stage-images", "custom-stages", "health-probe-bind-address",
		"image-pull-stall-after", "leader-elect", "leader-election-namespace", "max-concurrent-reconciles",
		"metrics-bind-address", "metrics-secure", "runner-image", "runner-image-pull-policy", "runner-service-account", "runner-version",
		"stage-cpu-limit", "stage-cpu-request", "stage-ephemeral-storage-limit", "stage-ephemeral-storage-request",
		"stage-memory-limit", "stage-memory-request", "stage-node-selector", "stage-tolerations", "watch-namespace"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("flags (-want +got):\n%s", diff)
	}
}

// TestPolicy: Custom stages are off unless asked for, and then need an
// allowlist; allowlists are checked at start-up.
func TestPolicy(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		want    controllers.Policy
		wantErr string
	}{
		{"flag defaults: nothing beyond the built-in stages", nil, controllers.Policy{}, ""},
		{"everything set", []string{"--custom-stages", "--custom-stage-images=registry.example/team/, sha256:" + strings.Repeat("a", 64),
			"--allowed-service-accounts=s3-reader,ml/gcs-writer"}, controllers.Policy{CustomStages: true,
			CustomImages: []string{"registry.example/team/", "sha256:" + strings.Repeat("a", 64)}, ServiceAccounts: []string{"s3-reader", "ml/gcs-writer"}}, ""},
		{"Custom stages without an allowlist", []string{"--custom-stages"}, controllers.Policy{}, "--custom-stages needs --custom-stage-images"},
		{"a bad digest", []string{"--custom-stage-images=sha256:1234"}, controllers.Policy{}, "is not a digest"},
		{"a bad ServiceAccount", []string{"--allowed-service-accounts=ml/Not_A_Name"}, controllers.Policy{}, `entry "ml/Not_A_Name"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parse(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := o.policy()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("policy (-want +got):\n%s", diff)
			}
		})
	}
}
