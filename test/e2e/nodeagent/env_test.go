package nodeagent

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestContainerEnv(t *testing.T) {
	yes := true
	node := &corev1.Node{Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("3500m"), corev1.ResourceMemory: resource.MustParse("4Gi"),
	}}}
	objs := Objects{
		Node: node,
		Secrets: map[string]*corev1.Secret{"creds": {Data: map[string][]byte{
			"AWS_ACCESS_KEY_ID": []byte("key"), "AWS_SECRET_ACCESS_KEY": []byte("secret"), "not a name": []byte("x"),
		}}},
		ConfigMaps: map[string]*corev1.ConfigMap{"settings": {Data: map[string]string{"LEVEL": "debug", "REGION": "eu"}}},
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u-1", Labels: map[string]string{"app": "kompress"},
			Annotations: map[string]string{"a/b": "c"}},
		Spec: corev1.PodSpec{NodeName: "edge-0", ServiceAccountName: "runner"},
	}
	limits := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("1Gi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")},
	}
	secretRef := func(name, key string, opt *bool) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: opt}}
	}
	resourceRef := func(r, divisor string) *corev1.EnvVarSource {
		s := &corev1.ResourceFieldSelector{Resource: r}
		if divisor != "" {
			s.Divisor = resource.MustParse(divisor)
		}
		return &corev1.EnvVarSource{ResourceFieldRef: s}
	}
	fieldRef := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
	}
	for _, tc := range []struct {
		name    string
		c       corev1.Container
		want    map[string]string
		order   []string
		wantErr string
	}{{
		name: "secret keys, as the controller writes them",
		c: corev1.Container{Env: []corev1.EnvVar{
			{Name: "AWS_ACCESS_KEY_ID", ValueFrom: secretRef("creds", "AWS_ACCESS_KEY_ID", nil)},
			{Name: "AWS_SECRET_ACCESS_KEY", ValueFrom: secretRef("creds", "AWS_SECRET_ACCESS_KEY", nil)},
		}},
		want: map[string]string{"AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret"},
	}, {
		name:    "missing secret",
		c:       corev1.Container{Env: []corev1.EnvVar{{Name: "K", ValueFrom: secretRef("gone", "K", nil)}}},
		wantErr: `secret "gone" not found in namespace ns (env K)`,
	}, {
		name:    "missing key",
		c:       corev1.Container{Env: []corev1.EnvVar{{Name: "K", ValueFrom: secretRef("creds", "K", nil)}}},
		wantErr: "couldn't find key K in Secret ns/creds (env K)",
	}, {
		name: "optional secret and key left unset",
		c: corev1.Container{Env: []corev1.EnvVar{
			{Name: "A", ValueFrom: secretRef("gone", "K", &yes)},
			{Name: "B", ValueFrom: secretRef("creds", "K", &yes)},
			{Name: "C", Value: "c"},
		}},
		want: map[string]string{"C": "c"},
	}, {
		name: "downward API fields",
		c: corev1.Container{Env: []corev1.EnvVar{
			{Name: "POD", ValueFrom: fieldRef("metadata.name")},
			{Name: "NS", ValueFrom: fieldRef("metadata.namespace")},
			{Name: "UID", ValueFrom: fieldRef("metadata.uid")},
			{Name: "NODE", ValueFrom: fieldRef("spec.nodeName")},
			{Name: "SA", ValueFrom: fieldRef("spec.serviceAccountName")},
			{Name: "APP", ValueFrom: fieldRef("metadata.labels['app']")},
			{Name: "ANN", ValueFrom: fieldRef("metadata.annotations['a/b']")},
		}},
		want: map[string]string{"POD": "p", "NS": "ns", "UID": "u-1", "NODE": "edge-0", "SA": "runner", "APP": "kompress", "ANN": "c"},
	}, {
		name:    "unsupported field",
		c:       corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: fieldRef("spec.hostname")}}},
		wantErr: `env X: fieldRef "spec.hostname" is not a field the downward API supports`,
	}, {
		name: "container resources: limits default to node allocatable, cpu rounds up",
		c: corev1.Container{Name: "runner", Resources: limits, Env: []corev1.EnvVar{
			{Name: "MEM_LIMIT", ValueFrom: resourceRef("limits.memory", "")},
			{Name: "MEM_LIMIT_MI", ValueFrom: resourceRef("limits.memory", "1Mi")},
			{Name: "CPU_LIMIT", ValueFrom: resourceRef("limits.cpu", "")},
			{Name: "CPU_LIMIT_M", ValueFrom: resourceRef("limits.cpu", "1m")},
			{Name: "CPU_REQUEST", ValueFrom: resourceRef("requests.cpu", "")},
			{Name: "MEM_REQUEST", ValueFrom: resourceRef("requests.memory", "")},
		}},
		want: map[string]string{
			"MEM_LIMIT": "2147483648", "MEM_LIMIT_MI": "2048", "CPU_LIMIT": "4", "CPU_LIMIT_M": "3500",
			"CPU_REQUEST": "1", "MEM_REQUEST": "1073741824",
		},
	}, {
		name: "envFrom with prefix, invalid keys skipped, env overrides",
		c: corev1.Container{
			EnvFrom: []corev1.EnvFromSource{
				{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}, Prefix: "APP_"},
				{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}}},
			},
			Env: []corev1.EnvVar{{Name: "APP_LEVEL", Value: "info"}},
		},
		want:  map[string]string{"APP_LEVEL": "info", "APP_REGION": "eu", "AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret"},
		order: []string{"APP_LEVEL", "APP_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
	}, {
		name: "values expand earlier variables only",
		c: corev1.Container{Env: []corev1.EnvVar{
			{Name: "BUCKET", Value: "models"},
			{Name: "URI", Value: "s3://$(BUCKET)/$(KEY)/$$(BUCKET)"},
			{Name: "KEY", Value: "m.onnx"},
		}},
		want:  map[string]string{"BUCKET": "models", "URI": "s3://models/$(KEY)/$(BUCKET)", "KEY": "m.onnx"},
		order: []string{"BUCKET", "URI", "KEY"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			env, err := ContainerEnv(pod, &tc.c, objs)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			var order []string
			for _, e := range env {
				got[e.Name] = e.Value
				order = append(order, e.Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
			if tc.order != nil {
				if diff := cmp.Diff(tc.order, order); diff != "" {
					t.Errorf("env order (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "a", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"$(A)", "a"},
		{"x$(A)y$(A)", "xaya"},
		{"$(EMPTY)|", "|"},
		{"$(MISSING)", "$(MISSING)"},
		{"$$(A)", "$(A)"},
		{"$$", "$"},
		{"$", "$"},
		{"a$b", "a$b"},
		{"$(A", "$(A"},
		{"cost: 5$", "cost: 5$"},
	} {
		if got := Expand(tc.in, lookup); got != tc.want {
			t.Errorf("Expand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestReferences(t *testing.T) {
	c := &corev1.Container{
		EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "s1"}}}},
		Env: []corev1.EnvVar{
			{Name: "A", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s2"}, Key: "k"}}},
			{Name: "B", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "c1"}, Key: "k"}}},
			{Name: "C", Value: "v"},
		},
	}
	secrets, configMaps := References(c)
	if diff := cmp.Diff([]string{"s1", "s2"}, secrets); diff != "" {
		t.Errorf("secrets (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"c1"}, configMaps); diff != "" {
		t.Errorf("configMaps (-want +got):\n%s", diff)
	}
}
