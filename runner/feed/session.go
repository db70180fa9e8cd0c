package feed

import (
	"context"
	"fmt"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort"
)

// Options configure a session.
type Options struct {
	// Name identifies the model in errors; Open defaults it to the
	// model's name.
	Name string
	// Expose names intermediate tensors of the main graph returned as
	// extra outputs (calibration reads activations this way).
	Expose []string
	// Threads bounds ONNX Runtime's intra-op threads; 0 lets it choose
	// (one per core). Sessions run batches in parallel with 1.
	Threads int
	// Optimization is ONNX Runtime's graph optimization level.
	Optimization ort.Optimization
}

// Session is a model loaded into ONNX Runtime. Run may be called from
// several goroutines at once.
type Session struct {
	s      *ort.Session
	inputs []Input
}

// Open loads m into ONNX Runtime, with the tensors o.Expose names as
// extra outputs (m itself is not modified).
func Open(m *onnx.Model, o Options) (*Session, error) {
	if o.Name == "" {
		o.Name = m.Name
	}
	if len(o.Expose) > 0 {
		var err error
		if m, err = m.ExposeOutputs(o.Expose); err != nil {
			return nil, err
		}
	}
	if m.Streamed() {
		// Weights streamed from external data (past 2 GiB, say) stay
		// there: ONNX Runtime reads them from the model's directory.
		b, err := m.HeaderBytes()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.Name, err)
		}
		dir, err := m.ExternalDir()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.Name, err)
		}
		return open(o.Name, b, o, dir)
	}
	b, err := m.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Name, err)
	}
	return open(o.Name, b, o, "")
}

// OpenBytes loads a serialized model: the bytes ONNX Runtime sees are
// exactly these (the evaluator measures the model it publishes). name
// identifies it in errors.
func OpenBytes(name string, model []byte, o Options) (*Session, error) {
	o.Name = name
	if len(o.Expose) > 0 {
		m, err := onnx.Load(model)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		m.Name = name
		return Open(m, o)
	}
	return open(name, model, o, "")
}

func open(name string, b []byte, o Options, externalDir string) (*Session, error) {
	s, err := ort.NewSession(name, b, ort.Options{IntraOpThreads: o.Threads, Optimization: o.Optimization, ExternalDataDir: externalDir})
	if err != nil {
		return nil, err
	}
	return &Session{s: s, inputs: fromSession(s.Inputs)}, nil
}

// Inputs are the inputs the session is fed, in graph order.
func (s *Session) Inputs() []Input { return s.inputs }

// Outputs are the model's outputs, in graph order, exposed tensors last.
func (s *Session) Outputs() []ort.IOInfo { return s.s.Outputs }

// Run feeds every input by name and returns every output by name.
func (s *Session) Run(inputs map[string]*onnx.Tensor) (map[string]*onnx.Tensor, error) {
	return s.s.Run(inputs)
}

// Close releases the session.
func (s *Session) Close() error { return s.s.Close() }

// Each runs the session on every span of d in order and hands fn each
// batch's inputs and outputs; it stops at fn's first error or when ctx
// is done.
func (s *Session) Each(ctx context.Context, d *Data, spans []Span, fn func(sp Span, in, out map[string]*onnx.Tensor) error) error {
	for _, sp := range spans {
		if err := ctx.Err(); err != nil {
			return err
		}
		in, err := d.Tensors(sp.Samples())
		if err != nil {
			return err
		}
		out, err := s.Run(in)
		if err != nil {
			return err
		}
		if err := fn(sp, in, out); err != nil {
			return err
		}
	}
	return nil
}
