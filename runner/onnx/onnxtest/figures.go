package onnxtest

import (
	"os"
	"testing"
)

// FiguresEnv is the one switch for the slow tests that measure the
// figures the README and the issues quote (the full MNIST sets, ppocr-det,
// distillation on 60,000 images): they run when it is set to anything.
// Their commands list which test measures what:
//
//	KOMPRESS_FIGURES=1 go test -count=1 -v -timeout 1h ./runner/quantize -run TestMNISTAccuracy10k
const FiguresEnv = "KOMPRESS_FIGURES"

// Figures skips t unless $KOMPRESS_FIGURES is set (and always under
// -short); cost says what the test needs and how long it takes.
func Figures(t testing.TB, cost string) {
	t.Helper()
	if testing.Short() || os.Getenv(FiguresEnv) == "" {
		t.Skipf("measures figures on request: set %s=1 (%s)", FiguresEnv, cost)
	}
}
