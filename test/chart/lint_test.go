package chart

import (
	"path/filepath"
	"strings"
	"testing"
)

const allValues = "testdata/all-values.yaml"

// chartDir is charts/kompress of this checkout.
func chartDir(t *testing.T) string {
	t.Helper()
	return filepath.Join(repoRoot(t), "charts", "kompress")
}

func TestHelmLintStrict(t *testing.T) {
	h := newHelm(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"default values", nil},
		{"every option set", []string{"-f", allValues}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"lint", "--strict", chartDir(t)}, tc.args...)
			out := h.mustRun(t, args...)
			if !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
				t.Errorf("helm lint --strict output does not report success:\n%s", out)
			}
		})
	}
}

// Bad values fail at install time with a message naming the value.
func TestTemplateRejectsBadValues(t *testing.T) {
	h := newHelm(t)
	for _, tc := range []struct {
		name string
		set  string
		want string
	}{
		{"unknown top-level key", "imagee.tag=x", "additional properties 'imagee' not allowed"},
		{"stage resource other than cpu, memory and ephemeral-storage", "stages.resources.requests.nvidia\\.com/gpu=1", "at '/stages/resources/requests': additional properties 'nvidia.com/gpu' not allowed"},
		{"no bound on stage pods' local disk", "stages.resources.limits.ephemeral-storage=null", "stages.resources.limits.ephemeral-storage is required: it bounds every stage pod's local disk"},
		{"Custom stages without an allowlist", "customStages.enabled=true", "customStages.enabled needs customStages.images"},
		{"Custom stage image wildcard", "customStages.images[0]=registry.example/*", "at '/customStages/images/0'"},
		{"allowed ServiceAccount not a name", "stages.allowedServiceAccounts[0]=Team_A/s3", "at '/stages/allowedServiceAccounts/0'"},
		{"stage quantity", "stages.resources.limits.memory=lots", "at '/stages/resources/limits/memory'"},
		{"log level", "logLevel=verbose", "at '/logLevel'"},
		{"replica count type", "replicaCount=two", "at '/replicaCount'"},
		{"pull policy", "runner.image.pullPolicy=Sometimes", "at '/runner/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'"},
		{"toleration operator", "stages.tolerations[0].operator=Maybe", "at '/stages/tolerations/0/operator': value must be one of 'Exists', 'Equal'"},
		{"watch namespace", "watchNamespace=Team_A", "at '/watchNamespace'"},
		{"metrics port", "metrics.port=70000", "at '/metrics/port'"},
		{"replicas without leader election", "replicaCount=2,leaderElection.enabled=false", "replicaCount > 1 needs leaderElection.enabled=true"},
		{"existing manager ServiceAccount without a name", "serviceAccount.create=false", "serviceAccount.name is required when serviceAccount.create is false"},
		{"existing runner ServiceAccount without a name", "runner.serviceAccount.create=false", "runner.serviceAccount.name is required when runner.serviceAccount.create is false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := h.run("template", "kompress", chartDir(t), "--set", tc.set)
			if err == nil {
				t.Fatalf("helm template --set %s succeeded, want an error containing %q; rendered:\n%s", tc.set, tc.want, out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("helm template --set %s failed without %q:\n%v", tc.set, tc.want, err)
			}
		})
	}
}
