package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kompress/kompress/api/v1alpha1"
)

// MaxTerminationMessage is the kubelet's limit on a termination message.
const MaxTerminationMessage = 4096

// Result is what a runner reports for one stage: in full as result.json
// beside the artifact, compacted into the pod's termination message.
type Result struct {
	Version  string `json:"version"`
	Stage    string `json:"stage"`
	CacheKey string `json:"cacheKey"`
	// ContentKey, when set, is the key the artifacts live under instead
	// of CacheKey: the task read blobs it did not pin, and the runner
	// keyed the work by their measured digests (Task.Resolve).
	ContentKey string `json:"contentKey,omitempty"`
	// Output is the written model; nil when the stage failed.
	Output *v1alpha1.Artifact `json:"output,omitempty"`
	// Input is the model the stage read, with the digest it measured.
	Input Ref `json:"input"`
	// DurationSeconds of the stage, decimal string.
	DurationSeconds string `json:"durationSeconds,omitempty"`
	// Cached is true when an earlier run's artifact was reused.
	Cached bool `json:"cached,omitempty"`
	// Reason and Message explain a failure.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// Warnings say where a successful stage fell short of what it was
	// asked (weights left out of the requested sparsity or bit-width, and
	// why): the stage's status message and an event carry them, and
	// `kompress run` prints them. At most MaxWarnings, each at most
	// MaxWarning bytes (Warn bounds them).
	Warnings []string `json:"warnings,omitempty"`
	// Details hold what does not fit a termination message: per-layer
	// sparsity, tensors left in float and why, masks. Only in result.json.
	Details json.RawMessage `json:"details,omitempty"`
}

// Bounds of Result.Warnings: they travel in the termination message.
const (
	MaxWarnings = 4
	MaxWarning  = 400
)

// Warn bounds warnings for a result: the first MaxWarnings, each cut to
// MaxWarning bytes, the last saying how many more there were.
func Warn(warnings []string) []string {
	var out []string
	for i, w := range warnings {
		if i == MaxWarnings-1 && len(warnings) > MaxWarnings {
			out = append(out, fmt.Sprintf("and %d more warnings (result.json lists what was left out)", len(warnings)-i))
			break
		}
		out = append(out, Truncate(w, MaxWarning))
	}
	return out
}

// Succeeded reports whether the stage produced an artifact.
func (r Result) Succeeded() bool { return r.Output != nil && r.Reason == "" }

// Encode renders the whole result (for result.json).
func (r Result) Encode() ([]byte, error) {
	return json.MarshalIndent(r, "", "  ")
}

// TerminationMessage renders the result compactly within the kubelet's
// 4 KiB limit: details are dropped, then the warnings bounded (Warn), then
// the message is shortened, on a rune boundary. JSON escapes make a byte of the message worth up to six
// encoded bytes ("<" is \u003c), so it is cut, by the excess or in
// proportion when escapes dominate, until the encoding fits.
func (r Result) TerminationMessage() ([]byte, error) {
	r.Details = nil
	r.Warnings = Warn(r.Warnings)
	b, err := json.Marshal(r)
	for err == nil && len(b) > MaxTerminationMessage && r.Message != "" {
		n := len(r.Message)
		keep := max(n-(len(b)-MaxTerminationMessage), n*MaxTerminationMessage/len(b))
		if keep <= len("...") {
			r.Message = ""
		} else {
			r.Message = Truncate(r.Message, keep)
		}
		b, err = json.Marshal(r)
	}
	if err != nil || len(b) <= MaxTerminationMessage {
		return b, err
	}
	return nil, fmt.Errorf("result of stage %s is %d bytes, over the %d-byte termination message limit even without details", r.Stage, len(b), MaxTerminationMessage)
}

// DecodeResult parses a result a runner wrote.
func DecodeResult(data []byte) (Result, error) {
	var r Result
	if len(data) > MaxTerminationMessage*64 {
		return r, fmt.Errorf("result is %d bytes, far beyond any result a runner writes", len(data))
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("result is not valid JSON: %w", err)
	}
	return r, nil
}

// Validate checks a successful result against the task it answers, so a
// confused or hostile runner cannot point status at someone else's blob.
func (r Result) Validate(t Task) error {
	var errs []error
	if r.Stage != t.Stage.Name {
		errs = append(errs, fmt.Errorf("result.stage is %q, expected %q", r.Stage, t.Stage.Name))
	}
	if r.CacheKey != t.CacheKey {
		errs = append(errs, fmt.Errorf("result.cacheKey is %q, expected %q", r.CacheKey, t.CacheKey))
	}
	if t.Select != nil {
		if r.ContentKey != "" {
			errs = append(errs, fmt.Errorf("result.contentKey is %q, but a select step has none", r.ContentKey))
		}
		if _, err := t.selected(r); err != nil {
			errs = append(errs, err)
		}
	} else if err := r.checkContentKey(t); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(append(errs, r.ValidateShape())...)
}

// ValidateShape checks a successful result on its own: what every field
// must look like, whatever the task.
func (r Result) ValidateShape() error {
	var errs []error
	if r.Version != ContractVersion {
		errs = append(errs, fmt.Errorf("result.version is %q, expected %q", r.Version, ContractVersion))
	}
	if r.Stage == "" {
		errs = append(errs, errors.New("result.stage is empty"))
	}
	if !isHexKey(r.CacheKey) {
		errs = append(errs, fmt.Errorf("result.cacheKey %q is not 64 lowercase hex digits", r.CacheKey))
	}
	if r.Output == nil {
		return errors.Join(append(errs, errors.New("result.output is missing"))...)
	}
	if r.Output.URI == "" {
		errs = append(errs, errors.New("result.output.uri is empty"))
	}
	if !validDigest(r.Output.Digest) {
		errs = append(errs, fmt.Errorf("result.output.digest %q is not sha256:<64 hex digits>", r.Output.Digest))
	}
	if r.Output.SizeBytes <= 0 {
		errs = append(errs, fmt.Errorf("result.output.sizeBytes is %d, expected a positive size", r.Output.SizeBytes))
	}
	for k, v := range r.Output.Metrics {
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			errs = append(errs, fmt.Errorf("result.output.metrics[%s] = %q is not a decimal number", k, v))
		}
	}
	if len(r.Output.Files) > 0 {
		errs = append(errs, checkFiles(*r.Output))
	}
	return errors.Join(errs...)
}

func validDigest(d string) bool {
	hex, ok := strings.CutPrefix(d, "sha256:")
	return ok && isHexKey(hex)
}

// NormalizeDigest turns an optional "sha256:" pin into the sha256:<hex> form.
func NormalizeDigest(d string) string {
	if d == "" || strings.HasPrefix(d, "sha256:") {
		return d
	}
	return "sha256:" + d
}
