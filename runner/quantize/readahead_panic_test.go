package quantize

import (
	"errors"
	"testing"

	"github.com/kompress/kompress/runner/panics"
)

type panickingReader struct{}

func (panickingReader) Read([]byte) (int, error) { panic("bad read") }

// raised runs f and returns what it panicked with.
func raised(f func()) (p any) {
	defer func() { p = recover() }()
	f()
	return nil
}

// A panic on a goroutine that reads rows (a worker of MatMulNBitsRows) or
// weights ahead reaches the quantizing goroutine as a *panics.Panic (which the runner reports as
// InternalError), instead of crashing the process or leaving it waiting.
func TestReadAheadPanicsReachTheCaller(t *testing.T) {
	for name, f := range map[string]func(){
		"rows": func() {
			_, _ = MatMulNBitsRows(panickingReader{}, 32, 4, 4, 16, false)
		},
		"weights": func() {
			p := prefetch([]weightSlot{{}}, func(weightSlot) bool { panic("bad weight") })
			defer p.stop()
			p.take(0)
		},
	} {
		var pv *panics.Panic
		if err, _ := raised(f).(error); !errors.As(err, &pv) {
			t.Errorf("%s: raised %v, want a *panics.Panic", name, raised(f))
		}
	}
}
