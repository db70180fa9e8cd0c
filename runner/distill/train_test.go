package distill

import (
	"strings"
	"testing"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/panics"
)

// panicky is a replica whose step panics.
type panicky struct{}

func (panicky) step([]float32, []float32, []int64) (float64, error) { panic("replica broke") }
func (panicky) grad(int) []float32                                  { return nil }
func (panicky) close()                                              {}

// TestReplicaPanicIsRaisedOnTheCaller: a replica panicking on its own
// goroutine does not crash the process: step raises it on the training
// loop's goroutine as a *panics.Panic at the replica's line, where
// runner.Execute recovers it.
func TestReplicaPanicIsRaisedOnTheCaller(t *testing.T) {
	r := &run{data: &dataset.Dataset{Shape: []int{2, 3}, X: make([]float32, 6)}, k: 1,
		reps: []trainer{panicky{}, panicky{}}, shards: []int{1, 1}}
	p := func() (p any) {
		defer func() { p = recover() }()
		r.step(make([]float32, 6), make([]float32, 2), nil, nil)
		return nil
	}()
	pv, ok := p.(*panics.Panic)
	if !ok || pv.Value != "replica broke" || !strings.Contains(pv.Message(), "train_test.go:") {
		t.Fatalf("recovered %T %v; want a *panics.Panic at the replica's line", p, p)
	}
}
