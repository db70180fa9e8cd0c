package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/kompress/kompress/api/v1alpha1"
)

// RunHash identifies the work a spec asks for: the spec less spec.suspend,
// so suspending and resuming continue a run while any other change starts a
// new one. The controller and `kompress run` both record it in
// status.runHash.
func RunHash(spec *v1alpha1.CompressionJobSpec) string {
	s := spec.DeepCopy()
	s.Suspend = false
	b, err := json.Marshal(s)
	if err != nil {
		panic("pipeline: a CompressionJobSpec does not encode: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
