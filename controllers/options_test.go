package controllers

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func TestParseNodeSelector(t *testing.T) {
	cases := []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{"", nil, ""},
		{"pool=edge", map[string]string{"pool": "edge"}, ""},
		{" pool=edge , kubernetes.io/arch=arm64", map[string]string{"pool": "edge", "kubernetes.io/arch": "arm64"}, ""},
		{"pool=", map[string]string{"pool": ""}, ""},
		{"pool", nil, `entry "pool" is not key=value`},
		{"pool=a,pool=b", nil, `key "pool" appears twice`},
		{"bad key!=x", nil, `node selector key "bad key!"`},
		{"pool=" + strings.Repeat("v", 64), nil, "node selector value"},
	}
	for _, tc := range cases {
		got, err := ParseNodeSelector(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseNodeSelector(%q) error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseNodeSelector(%q): %v", tc.in, err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseNodeSelector(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestParseTolerations(t *testing.T) {
	cases := []struct {
		in      string
		want    []corev1.Toleration
		wantErr string
	}{
		{"", nil, ""},
		{`[{"key":"pool","operator":"Equal","value":"edge","effect":"NoSchedule"}]`,
			[]corev1.Toleration{{Key: "pool", Operator: corev1.TolerationOpEqual, Value: "edge", Effect: corev1.TaintEffectNoSchedule}}, ""},
		{`[{"operator":"Exists"}]`, []corev1.Toleration{{Operator: corev1.TolerationOpExists}}, ""},
		{`{"key":"pool"}`, nil, "tolerations must be a JSON array"},
		{`[{"key":"pool","efect":"NoSchedule"}]`, nil, `unknown field "efect"`},
		{`[{"key":"pool","operator":"In"}]`, nil, `operator "In" is not Equal or Exists`},
		{`[{"key":"pool","effect":"NoRun"}]`, nil, `effect "NoRun"`},
	}
	for _, tc := range cases {
		got, err := ParseTolerations(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseTolerations(%q) error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseTolerations(%q): %v", tc.in, err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseTolerations(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestParseResources(t *testing.T) {
	cases := []struct {
		name                                 string
		cpuR, memR, cpuL, memL, diskR, diskL string
		want                                 corev1.ResourceRequirements
		wantErr                              string
	}{
		{"flag defaults", "500m", "512Mi", "2", "2Gi", "256Mi", "8Gi",
			corev1.ResourceRequirements{Requests: rl("cpu", "500m", "memory", "512Mi", "ephemeral-storage", "256Mi"), Limits: rl("cpu", "2", "memory", "2Gi", "ephemeral-storage", "8Gi")}, ""},
		{"no limits", "1", "1Gi", "", "", "", "", corev1.ResourceRequirements{Requests: rl("cpu", "1", "memory", "1Gi")}, ""},
		{"nothing", "", "", "", "", "", "", corev1.ResourceRequirements{}, ""},
		{"not a quantity", "half", "", "", "", "", "", corev1.ResourceRequirements{}, `--stage-cpu-request="half" is not a quantity`},
		{"request above limit", "", "4Gi", "", "2Gi", "", "", corev1.ResourceRequirements{}, "stage memory request 4Gi is above its limit 2Gi"},
		{"disk request above limit", "", "", "", "", "9Gi", "8Gi", corev1.ResourceRequirements{}, "stage ephemeral-storage request 9Gi is above its limit 8Gi"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseResources(tc.cpuR, tc.memR, tc.cpuL, tc.memL, tc.diskR, tc.diskL)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, quantityEq); diff != "" {
				t.Errorf("ParseResources (-want +got):\n%s", diff)
			}
		})
	}
}
