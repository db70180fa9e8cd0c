package controllers

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/kompress/kompress/api/v1alpha1"
)

func TestAdmit(t *testing.T) {
	admin := unitDefaults
	admin.NodeSelector = map[string]string{"pool": "compress"}
	admin.Tolerations = []corev1.Toleration{{Key: "pool", Operator: corev1.TolerationOpEqual, Value: "compress", Effect: corev1.TaintEffectNoSchedule}}
	open := Policy{CustomStages: true, CustomImages: []string{"registry.example/team/", "sha256:" + strings.Repeat("ab", 32)}, ServiceAccounts: []string{"s3-reader", "ml/gcs-writer"}}
	quant := v1alpha1.Stage{Name: "int8", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize, Quantize: &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeDynamic}}}
	custom := func(image string) v1alpha1.Stage {
		return v1alpha1.Stage{Name: "mine", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeCustom, Custom: &v1alpha1.CustomSpec{Image: image}}}
	}
	distill := v1alpha1.Stage{Name: "recover", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeDistill, Distill: &v1alpha1.DistillSpec{
		Teacher: &v1alpha1.ModelRef{URI: "file:///models/teacher.onnx"}, Dataset: &v1alpha1.DatasetSpec{URI: "mem://train.npz"}}}}
	tol := func(key string, op corev1.TolerationOperator) corev1.Toleration {
		return corev1.Toleration{Key: key, Operator: op, Effect: corev1.TaintEffectNoSchedule}
	}
	cases := []struct {
		name   string
		policy Policy
		cpj    func() *v1alpha1.CompressionJob
		want   []string // "Reason field"
		msgs   []string // in the joined message
	}{
		{"built-in stages on object storage", Policy{}, func() *v1alpha1.CompressionJob { return unitCPJ(quant) }, nil, nil},
		{"file:// source", Policy{}, func() *v1alpha1.CompressionJob {
			c := unitCPJ(quant)
			c.Spec.Source.URI = "file://./models/mnist-8.onnx"
			return c
		}, []string{"UnsupportedStorage spec.source.uri"},
			[]string{"spec.source.uri is a file:// URI, which in a cluster names a path inside the stage pod's own container", "`kompress run -f FILE`"}},
		{"mem:// output, dataset and distill inputs", Policy{}, func() *v1alpha1.CompressionJob {
			c := unitCPJ(quant, distill)
			c.Spec.Output.URI = "mem://out"
			c.Spec.Dataset = &v1alpha1.DatasetSpec{URI: "file:///data/x.npz"}
			return c
		}, []string{"UnsupportedStorage spec.output.uri", "UnsupportedStorage spec.dataset.uri",
			"UnsupportedStorage spec.stages[1].distill.teacher.uri", "UnsupportedStorage spec.stages[1].distill.dataset.uri"},
			[]string{"spec.output.uri is a mem:// URI, which in a cluster names the memory of one process"}},
		{"Custom stages off", Policy{}, func() *v1alpha1.CompressionJob { return unitCPJ(quant, custom("registry.example/team/awq:1")) },
			[]string{"CustomStagesDisabled spec.stages[1]"},
			[]string{"stage mine is a Custom stage, and this cluster does not run Custom stages", "--custom-stages (chart value customStages.enabled)", "kompress run --allow-exec"}},
		{"image under an allowed prefix", open, func() *v1alpha1.CompressionJob { return unitCPJ(custom("registry.example/team/awq:1")) }, nil, nil},
		{"image pinned to an allowed digest", open, func() *v1alpha1.CompressionJob {
			return unitCPJ(custom("elsewhere.example/tool@sha256:" + strings.Repeat("ab", 32)))
		}, nil, nil},
		{"image outside the allowlist", open, func() *v1alpha1.CompressionJob { return unitCPJ(custom("registry.example/teamevil/awq:1")) },
			[]string{"ImageNotAllowed spec.stages[0].custom.image"},
			[]string{`spec.stages[0].custom.image "registry.example/teamevil/awq:1" is not on the allowlist`, "--custom-stage-images (chart value customStages.images): registry.example/team/, sha256:abab"}},
		{"image with another digest", open, func() *v1alpha1.CompressionJob {
			return unitCPJ(custom("elsewhere.example/tool@sha256:" + strings.Repeat("cd", 32)))
		}, []string{"ImageNotAllowed spec.stages[0].custom.image"}, nil},
		{"not an image reference", open, func() *v1alpha1.CompressionJob { return unitCPJ(custom("registry.example/team/../x")) },
			[]string{"ImageNotAllowed spec.stages[0].custom.image"}, []string{"is not an image reference"}},
		{"the runner's ServiceAccount by name", Policy{}, func() *v1alpha1.CompressionJob {
			c := unitCPJ(quant)
			c.Spec.Storage = &v1alpha1.StorageSpec{ServiceAccountName: "kompress-runner"}
			return c
		}, nil, nil},
		{"an allowed ServiceAccount, by name and by namespace/name", open, func() *v1alpha1.CompressionJob {
			c := unitCPJ(quant) // namespace ml
			c.Spec.Storage = &v1alpha1.StorageSpec{ServiceAccountName: "gcs-writer"}
			return c
		}, nil, nil},
		{"a ServiceAccount allowed in another namespace only", Policy{ServiceAccounts: []string{"team-b/gcs-writer"}}, func() *v1alpha1.CompressionJob {
			c := unitCPJ(quant)
			c.Spec.Storage = &v1alpha1.StorageSpec{ServiceAccountName: "gcs-writer"}
			return c
		}, []string{"ServiceAccountNotAllowed spec.storage.serviceAccountName"},
			[]string{"spec.storage.serviceAccountName gcs-writer is not a ServiceAccount stage pods may run as in this cluster: they run as the runner's (kompress-runner)",
				"--allowed-service-accounts (chart value stages.allowedServiceAccounts): team-b/gcs-writer"}},
		{"any ServiceAccount, none allowed", Policy{}, func() *v1alpha1.CompressionJob {
			c := unitCPJ(quant)
			c.Spec.Storage = &v1alpha1.StorageSpec{ServiceAccountName: "deployer"}
			return c
		}, []string{"ServiceAccountNotAllowed spec.storage.serviceAccountName"}, []string{"stages.allowedServiceAccounts): none"}},
		{"placement that adds to the admin's", Policy{}, func() *v1alpha1.CompressionJob {
			q := quant
			q.NodeSelector = map[string]string{"zone": "z1", "pool": "compress"}
			q.Tolerations = []corev1.Toleration{tol("gpu", corev1.TolerationOpExists)}
			c := unitCPJ(q)
			c.Spec.Scheduling = &v1alpha1.SchedulingSpec{NodeSelector: map[string]string{"arch": "arm64"}}
			return c
		}, nil, nil},
		{"node selectors that move out of the admin's pool", Policy{}, func() *v1alpha1.CompressionJob {
			q := quant
			q.NodeSelector = map[string]string{"pool": "gpu"}
			c := unitCPJ(q)
			c.Spec.Scheduling = &v1alpha1.SchedulingSpec{NodeSelector: map[string]string{"pool": "general"}}
			return c
		}, []string{"PlacementNotAllowed spec.scheduling.nodeSelector", "PlacementNotAllowed spec.stages[0].nodeSelector"},
			[]string{"spec.scheduling.nodeSelector sets pool=general, but the cluster admin places stage pods on pool=compress by --stage-node-selector (chart value stages.nodeSelector): a job may add node selector keys, not change the admin's"}},
		{"tolerations of the control plane", Policy{}, func() *v1alpha1.CompressionJob {
			q := quant
			q.Tolerations = []corev1.Toleration{tol("node-role.kubernetes.io/master", corev1.TolerationOpExists)}
			c := unitCPJ(q)
			c.Spec.Scheduling = &v1alpha1.SchedulingSpec{Tolerations: []corev1.Toleration{
				tol("pool", corev1.TolerationOpExists), tol("node-role.kubernetes.io/control-plane", corev1.TolerationOpExists), {Operator: corev1.TolerationOpExists}}}
			return c
		}, []string{"PlacementNotAllowed spec.scheduling.tolerations[1]", "PlacementNotAllowed spec.scheduling.tolerations[2]", "PlacementNotAllowed spec.stages[0].tolerations[0]"},
			[]string{"spec.scheduling.tolerations[1] tolerates the control plane's taint node-role.kubernetes.io/control-plane",
				"spec.scheduling.tolerations[2] has no key and operator Exists, which tolerates every taint"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Admit(tc.cpj(), admin, tc.policy)
			var short []string
			for _, r := range got {
				short = append(short, r.Reason+" "+r.Field)
			}
			if diff := cmp.Diff(tc.want, short); diff != "" {
				t.Errorf("refusals (-want +got):\n%s", diff)
			}
			msg := refusalMessage(got)
			for _, m := range tc.msgs {
				if !strings.Contains(msg, m) {
					t.Errorf("message %q does not contain %q", msg, m)
				}
			}
		})
	}
}

func TestImageAllowed(t *testing.T) {
	digest := "sha256:" + strings.Repeat("0f", 32)
	p := Policy{CustomImages: []string{"registry.example/team/", "ghcr.io/org/tool", "docker.io/library/python", "team/", digest}}
	for image, want := range map[string]bool{
		"registry.example/team/awq:1.4":                    true,
		"registry.example/team/sub/awq@" + digest:          true,
		"registry.example/teamevil/awq:1":                  false,
		"registry.example/team":                            false, // the entry ends with '/': only what is under it
		"ghcr.io/org/tool":                                 true,
		"ghcr.io/org/tool:2":                               true,
		"ghcr.io/org/tool/plugin:2":                        true,
		"ghcr.io/org/toolbox:2":                            false, // not at a boundary
		"python:3.12":                                      true,  // docker.io/library/python:3.12
		"library/python":                                   true,
		"pythonista:1":                                     false,
		"team/awq:1":                                       true, // as written
		"docker.io/team/awq:1":                             false,
		"localhost:5000/team/awq":                          false,
		"evil.example/x@" + digest:                         true, // pinned by the allowed digest
		"evil.example/x@sha256:" + strings.Repeat("1", 64): false,
		"evil.example/x:" + digest:                         false,
		"registry.example/team/../x":                       false,
		"REGISTRY.example/team/x":                          false,
		"registry.example/team/x y":                        false,
		"registry.example/team/x:1@sha256:" + strings.Repeat("f", 64): true,
	} {
		if got, why := p.imageAllowed(image); got != want {
			t.Errorf("imageAllowed(%q) = %t (%s), want %t", image, got, why, want)
		}
	}
	if ok, _ := (Policy{}).imageAllowed("registry.example/team/awq:1"); ok {
		t.Error("an empty allowlist allows an image")
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, tc := range []struct {
		p       Policy
		wantErr string
	}{
		{Policy{}, ""},
		{Policy{CustomStages: true, CustomImages: []string{"registry.example/team/"}, ServiceAccounts: []string{"s3", "ml/s3"}}, ""},
		{Policy{CustomStages: true}, "--custom-stages needs --custom-stage-images"},
		{Policy{CustomImages: []string{"sha256:abc"}}, `entry "sha256:abc" is not a digest`},
		{Policy{CustomImages: []string{"registry.example/*"}}, "no spaces or wildcards"},
		{Policy{ServiceAccounts: []string{"Bad_Name"}}, `--allowed-service-accounts entry "Bad_Name"`},
		{Policy{ServiceAccounts: []string{"a.b/sa"}}, `entry "a.b/sa": namespace`},
	} {
		err := tc.p.Validate()
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%+v: Validate() = %v, want %q", tc.p, err, tc.wantErr)
		}
	}
	if diff := cmp.Diff([]string{"a", "b/c"}, ParsePolicyList(" a, ,b/c,")); diff != "" {
		t.Errorf("ParsePolicyList (-want +got):\n%s", diff)
	}
}
