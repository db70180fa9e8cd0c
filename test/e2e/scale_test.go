//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kompress/kompress/api/v1alpha1"
)

// scaleJobs is how many CompressionJobs are applied at once.
const scaleJobs = 50

// Fifty CompressionJobs applied at once, each real work (a distinct
// calibration size, so no two share a cache key): every one reaches Ready
// with its own model in the bucket; none is lost. Reports the total time and
// the manager's peak memory.
func TestFiftyJobsAtOnce(t *testing.T) {
	const ns = "e2e-scale"
	var all bytes.Buffer
	for i := 0; i < scaleJobs; i++ {
		cpj := quantizeJob(ns, fmt.Sprintf("job-%02d", i))
		cpj.Spec.Stages[0].Quantize.Calibration.Samples = int32(16 + i)
		all.WriteString("---\n")
		all.Write(manifest(t, cpj))
	}
	start := time.Now()
	apply(t, ns, all.Bytes())
	var left int
	eventually(t, 10*time.Minute, fmt.Sprintf("%d CompressionJobs Ready", scaleJobs), func() (bool, string) {
		var list v1alpha1.CompressionJobList
		if err := cl.client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		left = scaleJobs - len(list.Items)
		var stuck []string
		for i := range list.Items {
			c := &list.Items[i]
			if !ready(c) {
				left++
				if meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ConditionStalled) {
					stuck = append(stuck, c.Name+": "+conditionSummary(c))
				}
			}
		}
		if len(stuck) > 0 {
			t.Fatalf("CompressionJobs failed: %v", stuck)
		}
		return left == 0 && len(list.Items) == scaleJobs, fmt.Sprintf("%d of %d not Ready", left, scaleJobs)
	})
	elapsed := time.Since(start)
	rss, err := cl.manager.peakRSS()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("TARGET %d CompressionJobs applied at once -> all Ready: %s; manager peak RSS (VmHWM) %.1f MiB",
		scaleJobs, elapsed.Round(100*time.Millisecond), float64(rss)/(1<<20))

	var list v1alpha1.CompressionJobList
	if err := cl.client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	digests := map[string]string{}
	for i := range list.Items {
		c := &list.Items[i]
		if res, err := kstatus.Compute(toUnstructured(c)); err != nil || res.Status != kstatus.CurrentStatus {
			t.Errorf("%s: kstatus %v (%v), want Current", c.Name, res, err)
		}
		verifyArtifact(t, c.Status.Output)
		if other, dup := digests[c.Status.Output.URI]; dup {
			t.Errorf("%s and %s report the same artifact %s", c.Name, other, c.Status.Output.URI)
		}
		digests[c.Status.Output.URI] = c.Name
	}
	if n := len(startsIn(ns)); n != scaleJobs {
		t.Errorf("%d runner processes for %d one-stage jobs", n, scaleJobs)
	}
}
