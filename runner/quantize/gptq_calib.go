package quantize

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/kompress/kompress/runner/feed"
	hess "github.com/kompress/kompress/runner/hessian"
	"github.com/kompress/kompress/runner/onnx"
)

// gptqHessians holds the Hessians GPTQ rounds weights with, one per
// input tensor of the layers it takes (layers reading the same input
// share it).
type gptqHessians struct {
	damp float64
	// h is H = 2·XᵀX/n of each input; users counts the weights left to
	// read it, so it is freed after the last.
	h     map[string][]float64
	users map[string]int
	// blocks are the weights already rounded block by block
	// (gptqByBlocks), by name.
	mu     sync.Mutex
	blocks map[string]*gptqBlocks
}

var errGPTQData = errors.New("quantize.algorithm gptq needs calibration data (the job's dataset)")

// gptqInput returns the tensor whose rows a slot's weight multiplies, or
// "" when GPTQ does not take the slot: MatMul and Gemm (without transA)
// in the main graph with a 2-D weight as their right-hand input and a
// left-hand input the model computes.
func gptqInput(ix *index, s weightSlot) string {
	l := s.layer
	if (l.Kind != onnx.LayerMatMul && l.Kind != onnx.LayerGemm) || l.TransA || s.input != 1 || l.Data != 0 {
		return ""
	}
	if s.graph != ix.model.Proto.GetGraph() || len(s.weight.dims()) != 2 {
		return ""
	}
	x := input(s.node, 0)
	if x == "" || ix.consts[x] != nil {
		return ""
	}
	return x
}

// collectHessians runs the float model over the calibration data once,
// with the inputs of every slot GPTQ takes exposed, and accumulates each
// input's XᵀX.
func collectHessians(ctx context.Context, m *onnx.Model, ix *index, slots []weightSlot, o *options, calib Calibration) (*gptqHessians, error) {
	if calib == nil {
		return nil, errGPTQData
	}
	g := &gptqHessians{damp: o.damp, h: map[string][]float64{}, users: map[string]int{}}
	c := hessianCollector{}
	var inputs []string
	for _, s := range slots {
		x := gptqInput(ix, s)
		if x == "" {
			continue
		}
		if g.users[x] == 0 {
			_, in, _ := s.layer.WeightAxes(2)
			c[x] = hess.NewAcc(int(s.weight.dims()[in]))
			inputs = append(inputs, x)
		}
		g.users[x]++
	}
	if len(inputs) == 0 {
		return g, nil
	}
	if _, err := calibrate(ctx, m, inputs, calib, c, o.calib.Samples); err != nil {
		return nil, fmt.Errorf("gptq: %w", err)
	}
	for x, acc := range c {
		g.h[x] = acc.Hessian()
	}
	return g, nil
}

// round rounds a slot's weight with GPTQ, or returns nil when GPTQ does
// not take it (it is rounded to nearest).
func (g *gptqHessians) round(ix *index, s weightSlot, data []float32, blockSize int, t QType, symmetric bool) (*gptqBlocks, int, error) {
	if g == nil {
		return nil, 0, nil
	}
	if g.blocks != nil {
		b := g.blocks[s.weight.name]
		if b == nil || b.blockSize != blockSize || b.t != t {
			return nil, 0, nil
		}
		delete(g.blocks, s.weight.name)
		_, in, _ := s.layer.WeightAxes(len(s.weight.dims()))
		return b, in, nil
	}
	x := gptqInput(ix, s)
	h := g.h[x]
	if h == nil {
		return nil, 0, nil
	}
	g.users[x]--
	if g.users[x] > 0 {
		h = append([]float64(nil), h...) // gptq consumes its copy
	} else {
		delete(g.h, x)
	}
	dims := s.weight.dims()
	_, in, _ := s.layer.WeightAxes(len(dims))
	m, err := gptqMatrixOf(data, dims, in)
	if err != nil {
		return nil, 0, err
	}
	b, err := gptq(m, h, g.damp, blockSize, t, symmetric)
	if err != nil {
		return nil, 0, fmt.Errorf("weight %q: %w", s.weight.name, err)
	}
	return b, in, nil
}

// hessianCollector accumulates XᵀX of each calibrated tensor, read as
// rows of its last dimension.
type hessianCollector map[string]*hess.Acc

func (c hessianCollector) Collect(name string, data []float32) { c[name].Add(data) }
func (c hessianCollector) Ranges() map[string]Range            { return nil }

// algorithmOf names the algorithm that rounded a weight for the report.
func algorithmOf(g *gptqBlocks) string {
	if g == nil {
		return ""
	}
	return string(GPTQ)
}

// replayable reads up to samples calibration samples once and returns a
// source of passes over them: GPTQ and the 4-bit guard each read them.
func replayable(m *onnx.Model, data Calibration, samples int) (func() Calibration, error) {
	if data == nil {
		return func() Calibration { return nil }, nil
	}
	held, _, err := feed.Collect(feed.Inputs(m), data, samples)
	if err != nil {
		return nil, fmt.Errorf("calibration data: %w", err)
	}
	return func() Calibration { return feed.NewBatches(held...) }, nil
}
