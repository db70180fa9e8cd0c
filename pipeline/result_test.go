package pipeline

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kompress/kompress/api/v1alpha1"
)

func okResult(task Task) Result {
	return Result{
		Version: ContractVersion, Stage: task.Stage.Name, CacheKey: task.CacheKey,
		Output: &v1alpha1.Artifact{URI: task.OutputURI, Digest: "sha256:" + strings.Repeat("c", 64), SizeBytes: 100,
			Metrics: map[string]string{MetricAccuracy: "0.987"}},
	}
}

func TestResultValidate(t *testing.T) {
	task, err := NewTask("j", testSpec(), 0, SourceRef(testSpec()), "v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := okResult(task).Validate(task); err != nil {
		t.Fatalf("good result rejected: %v", err)
	}
	bad := map[string]func(*Result){
		"other stage":   func(r *Result) { r.Stage = "x" },
		"other key":     func(r *Result) { r.CacheKey = strings.Repeat("d", 64) },
		"other uri":     func(r *Result) { r.Output.URI = "s3://elsewhere/model.onnx" },
		"bad digest":    func(r *Result) { r.Output.Digest = "md5:abc" },
		"zero size":     func(r *Result) { r.Output.SizeBytes = 0 },
		"bad metric":    func(r *Result) { r.Output.Metrics["accuracy"] = "high" },
		"no output":     func(r *Result) { r.Output = nil },
		"wrong version": func(r *Result) { r.Version = "v0" },
	}
	for name, edit := range bad {
		r := okResult(task)
		edit(&r)
		if err := r.Validate(task); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Long failure messages are cut to fit, whatever their bytes: multi-byte
// runes must not be split (an invalid byte encodes as six), and characters
// JSON escapes ("<" is six bytes, a quote two) must still be cut enough.
func TestTerminationMessageCutsLongMessages(t *testing.T) {
	tests := []struct {
		name, message string
	}{
		{"ascii", strings.Repeat("m", 5000)},
		{"two-byte runes", strings.Repeat("é", 3000)},
		{"three-byte runes, odd offset", "x" + strings.Repeat("€", 2000)},
		{"three-byte runes, even offset", "xy" + strings.Repeat("€", 2000)},
		{"html-escaped", strings.Repeat("<", 5000)},
		{"quoted words", strings.Repeat(`input "x" `, 600)},
		{"fits as is", "short"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Result{Version: ContractVersion, Stage: "s", Reason: "BadInput", Message: tc.message}
			b, err := r.TerminationMessage()
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > MaxTerminationMessage {
				t.Fatalf("termination message is %d bytes", len(b))
			}
			back, err := DecodeResult(b)
			if err != nil {
				t.Fatal(err)
			}
			if !utf8.ValidString(back.Message) || strings.ContainsRune(back.Message, utf8.RuneError) {
				t.Errorf("message was cut inside a rune: ...%q", back.Message[max(0, len(back.Message)-8):])
			}
			if back.Reason != "BadInput" {
				t.Errorf("reason %q, want BadInput kept", back.Reason)
			}
			if back.Message == tc.message {
				return // it fitted
			}
			kept, cut := strings.CutSuffix(back.Message, "...")
			if !cut || !strings.HasPrefix(tc.message, kept) || len(kept) < 100 {
				t.Errorf("message %q... (%d bytes), want a marked prefix of the original, not emptied", back.Message[:min(20, len(back.Message))], len(back.Message))
			}
		})
	}
}

func TestTerminationMessageFits(t *testing.T) {
	task, err := NewTask("j", testSpec(), 0, SourceRef(testSpec()), "v1")
	if err != nil {
		t.Fatal(err)
	}
	r := okResult(task)
	r.Details = json.RawMessage(`{"layers":"` + strings.Repeat("x", 10000) + `"}`)
	r.Message = strings.Repeat("m", 5000)
	b, err := r.TerminationMessage()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxTerminationMessage {
		t.Fatalf("termination message is %d bytes", len(b))
	}
	back, err := DecodeResult(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.Details != nil || !strings.HasSuffix(back.Message, "...") {
		t.Errorf("details kept or message not shortened: %d details bytes, message ends %q", len(back.Details), back.Message[len(back.Message)-5:])
	}
	if err := back.Validate(task); err != nil {
		t.Errorf("compacted result no longer valid: %v", err)
	}
}
