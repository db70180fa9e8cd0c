package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// maxJobName keeps Job names valid as the batch.kubernetes.io/job-name
// label value the Job controller puts on its pods.
const maxJobName = 63

// JobName is the deterministic name of a stage's Job:
// <job>-<index>-<stage>-<first 6 hex of the cache key>. The key suffix makes a
// changed stage a new Job while an unchanged one keeps its name; names too
// long are cut and end in a hash of the whole name, so they stay unique.
func JobName(job string, index int, stage, cacheKey string) string {
	key := cacheKey
	if len(key) > 6 {
		key = key[:6]
	}
	name := fmt.Sprintf("%s-%d-%s-%s", job, index, stage, key)
	if len(name) <= maxJobName {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := hex.EncodeToString(sum[:])[:8]
	head := strings.TrimRight(name[:maxJobName-len(suffix)-1], "-.")
	return head + "-" + suffix
}
