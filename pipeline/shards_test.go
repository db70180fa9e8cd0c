package pipeline

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline/shard"
)

func TestCheckShards(t *testing.T) {
	cases := []struct {
		shards, samples int
		want            string
	}{
		{1, 1, ""},
		{4, 4, ""},
		{16, 1000, ""},
		{4, 3, "spec.parallelism.shards: Invalid value: 4: more shards than the data pass has samples (3): every shard needs at least one"},
		{16, 15, "spec.parallelism.shards: Invalid value: 16: more shards than the data pass has samples (15): every shard needs at least one"},
	}
	for _, tc := range cases {
		got := ""
		if err := CheckShards(tc.shards, tc.samples); err != nil {
			got = err.Error()
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("CheckShards(%d, %d) (-want +got):\n%s", tc.shards, tc.samples, diff)
		}
	}
}

// The CRD's bound and the number of units the runner cuts data into are
// one number.
func TestShardUnitsAreTheCRDBound(t *testing.T) {
	if shard.Units != v1alpha1.MaxShards {
		t.Errorf("shard.Units = %d, v1alpha1.MaxShards = %d", shard.Units, v1alpha1.MaxShards)
	}
}
