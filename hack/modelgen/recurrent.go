package modelgen

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
)

// ControllerConfig sizes a recurrent controller.
type ControllerConfig struct {
	// Cell is "GRU" (default) or "LSTM".
	Cell string
	// Features in, Hidden units, Outputs out per step; defaults 16, 64, 4.
	Features, Hidden, Outputs int
	// Seed draws every weight.
	Seed uint64
}

func (c ControllerConfig) withDefaults() ControllerConfig {
	if c.Cell == "" {
		c.Cell = "GRU"
	}
	if c.Features == 0 {
		c.Features = 16
	}
	if c.Hidden == 0 {
		c.Hidden = 64
	}
	if c.Outputs == 0 {
		c.Outputs = 4
	}
	return c
}

// Controller input and output names.
const (
	ControllerX     = "x"
	ControllerState = "h0"
	ControllerCell  = "c0"
	ControllerY     = "y"
	ControllerNext  = "h"
)

// Controller builds a recurrent controller at opset 17, as PyTorch exports
// a batch-first GRU (or LSTM) with its state: inputs x float [batch, seq,
// features] and h0 float [batch, hidden] (and c0 for an LSTM); a linear
// input layer with Tanh, the recurrent layer (transposed to sequence-first
// and back), a linear head per step; outputs y [batch, seq, outputs] and
// the last state h [batch, hidden].
func Controller(cfg ControllerConfig) *onnx.Model {
	c := cfg.withDefaults()
	b := New(fmt.Sprintf("controller-%s-%d", c.Cell, c.Hidden), c.Seed)
	x := b.Input(ControllerX, onnx.Float, "batch", "sequence", c.Features)
	h0 := b.Input(ControllerState, onnx.Float, "batch", c.Hidden)
	stateAxes := b.Ints("state_axes", 0)
	seqFirst := func(t string) string { return b.Op("Transpose", []string{t}, onnx.AttrInts("perm", 1, 0, 2)) }
	in := b.Op("Tanh", []string{b.Linear(x, c.Features, c.Hidden, "input")})
	state := b.Op("Unsqueeze", []string{h0, stateAxes})
	var y, yh string
	switch c.Cell {
	case "GRU":
		y, yh = b.GRU(seqFirst(in), state, c.Hidden, c.Hidden, "rnn")
	case "LSTM":
		c0 := b.Input(ControllerCell, onnx.Float, "batch", c.Hidden)
		y, yh, _ = b.LSTM(seqFirst(in), state, b.Op("Unsqueeze", []string{c0, stateAxes}), c.Hidden, c.Hidden, "rnn")
	default:
		panic(fmt.Sprintf("modelgen: cell %q: want GRU or LSTM", c.Cell))
	}
	steps := seqFirst(b.Op("Squeeze", []string{y, b.Ints("direction_axis", 1)})) // [batch, seq, hidden]
	b.Output(b.Linear(steps, c.Hidden, c.Outputs, "head"), ControllerY, onnx.Float, "batch", "sequence", c.Outputs)
	b.Output(b.Op("Squeeze", []string{yh, stateAxes}), ControllerNext, onnx.Float, "batch", c.Hidden)
	return b.Model(17)
}

// Sequences makes n samples for a controller of cfg: x [n, seq, features]
// of smooth signals (random walks through a few sinusoids), h0 (and c0)
// [n, hidden] small random states; arrays named by the model's inputs.
func Sequences(cfg ControllerConfig, n, seq int, seed uint64) []dataset.Array {
	c := cfg.withDefaults()
	r := rand.New(rand.NewPCG(seed, 0x73657173))
	x := make([]float32, n*seq*c.Features)
	for s := range n {
		for f := range c.Features {
			freq, phase, amp := 0.05+0.3*r.Float64(), 6.28*r.Float64(), 0.5+r.Float64()
			walk := 0.0
			for t := range seq {
				walk += 0.1 * r.NormFloat64()
				x[(s*seq+t)*c.Features+f] = float32(amp*math.Sin(freq*float64(t)+phase) + walk)
			}
		}
	}
	state := func(name string) dataset.Array {
		v := make([]float32, n*c.Hidden)
		for i := range v {
			v[i] = float32(0.3 * r.NormFloat64())
		}
		return dataset.Array{Name: name, Shape: []int{n, c.Hidden}, Data: v}
	}
	out := []dataset.Array{{Name: ControllerX, Shape: []int{n, seq, c.Features}, Data: x}, state(ControllerState)}
	if c.Cell == "LSTM" {
		out = append(out, state(ControllerCell))
	}
	return out
}
