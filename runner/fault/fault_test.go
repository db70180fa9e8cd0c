package fault

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestClassification(t *testing.T) {
	errSpec := New("invalid spec")
	cases := []struct {
		name    string
		err     error
		bad     bool
		spec    bool
		message string
	}{
		{"nil", nil, false, false, ""},
		{"plain", io.ErrUnexpectedEOF, false, false, "unexpected EOF"},
		{"sentinel", errSpec, true, true, "invalid spec"},
		{"wrapped sentinel", fmt.Errorf("%w: sparsity 2", errSpec), true, true, "invalid spec: sparsity 2"},
		{"marked", BadInput(io.ErrUnexpectedEOF), true, false, "unexpected EOF"},
		{"formatted", Badf("model %s: %w", "m.onnx", io.ErrUnexpectedEOF), true, false, "model m.onnx: unexpected EOF"},
		{"marked twice", BadInput(BadInput(errSpec)), true, true, "invalid spec"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := IsBadInput(c.err); got != c.bad {
				t.Errorf("IsBadInput = %v, want %v", got, c.bad)
			}
			if got := errors.Is(c.err, errSpec); got != c.spec {
				t.Errorf("errors.Is(err, errSpec) = %v, want %v", got, c.spec)
			}
			if c.err != nil && c.err.Error() != c.message {
				t.Errorf("message %q, want %q", c.err.Error(), c.message)
			}
		})
	}
	if errors.Is(Badf("x"), io.ErrUnexpectedEOF) {
		t.Error("Badf without %w must not wrap io.ErrUnexpectedEOF")
	}
	if !errors.Is(BadInput(io.ErrUnexpectedEOF), io.ErrUnexpectedEOF) {
		t.Error("BadInput must keep the wrapped error reachable")
	}
}
