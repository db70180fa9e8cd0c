package pipeline

import (
	"regexp"
	"strings"
	"testing"
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func TestJobName(t *testing.T) {
	key := strings.Repeat("ab", 32)
	long := strings.Repeat("x", 60)
	tests := []struct {
		job, stage string
		index      int
		want       string
	}{
		{"mnist", "prune", 0, "mnist-0-prune-ababab"},
		{"mnist", "int8", 2, "mnist-2-int8-ababab"},
	}
	for _, tc := range tests {
		if got := JobName(tc.job, tc.index, tc.stage, key); got != tc.want {
			t.Errorf("JobName(%s,%d,%s) = %q, want %q", tc.job, tc.index, tc.stage, got, tc.want)
		}
	}
	a := JobName(long, 0, "prune", key)
	b := JobName(long+"y", 0, "prune", key)
	if len(a) > 63 || !dnsLabel.MatchString(a) {
		t.Errorf("long name %q is not a DNS label of at most 63 characters", a)
	}
	if a == b {
		t.Errorf("different long jobs share the name %q", a)
	}
	if JobName("j", 0, "s", key) == JobName("j", 0, "s", strings.Repeat("cd", 32)) {
		t.Error("a changed cache key must give a new Job name")
	}
}
