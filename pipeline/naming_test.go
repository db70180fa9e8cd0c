package pipeline

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestJobNameShapes(t *testing.T) {
	key := strings.Repeat("ab", 32)
	long := strings.Repeat("x", 63)
	cases := []struct {
		name     string
		job      string
		index    int
		stage    string
		key      string
		want     string
		wantLen  int
		wantHead string
	}{
		{name: "short", job: "mnist", index: 0, stage: "prune", key: key, want: "mnist-0-prune-ababab"},
		{name: "index and stage", job: "resnet", index: 12, stage: "int8", key: "0123456789", want: "resnet-12-int8-012345"},
		{name: "short key kept whole", job: "j", index: 1, stage: "s", key: "abc", want: "j-1-s-abc"},
		{name: "exactly 63", job: strings.Repeat("a", 49), index: 0, stage: "abcd", key: key, want: strings.Repeat("a", 49) + "-0-abcd-ababab"},
		{name: "too long is cut and hashed", job: long, index: 3, stage: "quantize", key: key, wantLen: 63, wantHead: long[:54] + "-"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := JobName(tc.job, tc.index, tc.stage, tc.key)
			if tc.want != "" && got != tc.want {
				t.Errorf("JobName = %q, want %q", got, tc.want)
			}
			if tc.wantLen != 0 && len(got) != tc.wantLen {
				t.Errorf("JobName = %q (%d chars), want %d chars", got, len(got), tc.wantLen)
			}
			if tc.wantHead != "" && !strings.HasPrefix(got, tc.wantHead) {
				t.Errorf("JobName = %q, want prefix %q", got, tc.wantHead)
			}
			if errs := validation.IsDNS1123Label(got); len(errs) > 0 {
				t.Errorf("JobName = %q is not a DNS label (it is the job-name label of pods): %v", got, errs)
			}
		})
	}
}

// TestJobNameDistinct checks that names cut to 63 characters still differ
// when their job, stage index, stage or key differ.
func TestJobNameDistinct(t *testing.T) {
	job := strings.Repeat("long-name-", 6)
	key1, key2 := strings.Repeat("a", 64), strings.Repeat("b", 64)
	names := map[string]string{}
	for _, in := range []struct {
		index      int
		stage, key string
		job        string
	}{{0, "prune", key1, job}, {1, "prune", key1, job}, {0, "quant", key1, job}, {0, "prune", key2, job}, {0, "prune", key1, job + "y"}} {
		n := JobName(in.job, in.index, in.stage, in.key)
		if prev, dup := names[n]; dup {
			t.Fatalf("JobName(%s, %d, %s, %s) = %q, same as %s", in.job, in.index, in.stage, in.key[:4], n, prev)
		}
		names[n] = in.job + "/" + in.stage
	}
	if JobName(job, 0, "prune", key1) != JobName(job, 0, "prune", key1) {
		t.Fatal("JobName is not deterministic")
	}
}
