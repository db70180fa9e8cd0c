package distill

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// trainer computes, for one shard of a batch, the distillation loss and
// the gradient of every trained weight. It is the one interface between
// the training loop and the engine behind it (a gorgonia graph and tape
// machine); one trainer runs on one goroutine.
type trainer interface {
	// step runs the shard: x holds n samples, soft n·k teacher
	// probabilities, labels n class indices (nil without labels).
	step(x, soft []float32, labels []int64) (loss float64, err error)
	// grad returns the gradient of plan param i from the last step (nil
	// for params this student graph does not read).
	grad(i int) []float32
	close()
}

// replica is a trainer: the student's graph for a fixed shard size with
// the loss and its gradients, run by its own tape machine.
type replica struct {
	net    *net
	n      int
	soft   *G.Node
	labels *G.Node
	vm     G.VM
	loss   G.Value
	grads  []G.Value // Read targets, parallel to plan.params
	xBuf   []float32
	pBuf   []float32
	yBuf   []float32
}

// newReplica builds the training graph for shards of n samples.
func newReplica(p *plan, n int, sample []int, lg lossGeom) (*replica, error) {
	nt, err := p.buildForward(n, sample, tensor.Float32)
	if err != nil {
		return nil, err
	}
	r := &replica{net: nt, n: n, grads: make([]G.Value, len(p.params))}
	r.xBuf = nt.x.Value().Data().([]float32)
	r.pBuf = make([]float32, n*nt.k)
	r.soft = G.NewMatrix(nt.g, tensor.Float32, G.WithShape(n, nt.k), G.WithName("teacher"),
		G.WithValue(tensor.New(tensor.WithShape(n, nt.k), tensor.WithBacking(r.pBuf))))
	if lg.labels {
		r.yBuf = make([]float32, n)
		r.labels = G.NewVector(nt.g, tensor.Float32, G.WithShape(n), G.WithName("labels"),
			G.WithValue(tensor.New(tensor.WithShape(n), tensor.WithBacking(r.yBuf))))
	}
	lg.b, lg.k = n, nt.k
	loss, err := distillLoss(lg, nt.logits, r.soft, r.labels)
	if err != nil {
		return nil, err
	}
	var wrt G.Nodes
	var idx []int
	for i, pn := range nt.params {
		if pn != nil {
			wrt = append(wrt, pn)
			idx = append(idx, i)
		}
	}
	grads, err := G.Grad(loss, wrt...)
	if err != nil {
		return nil, fmt.Errorf("differentiating the student: %w", err)
	}
	// Values are read through Read nodes into buffers of our own: the
	// tape machine reuses the buffers of intermediate nodes (NOTES).
	for j, g := range grads {
		i := idx[j]
		r.grads[i] = tensor.New(tensor.WithShape(p.params[i].dims...), tensor.Of(tensor.Float32))
		G.Read(g, &r.grads[i])
	}
	r.loss = G.NewF32(0)
	G.Read(loss, &r.loss)
	r.vm = G.NewTapeMachine(nt.g)
	return r, nil
}

func (r *replica) step(x, soft []float32, labels []int64) (float64, error) {
	copy(r.xBuf, x)
	copy(r.pBuf, soft)
	for i, y := range labels {
		r.yBuf[i] = float32(y)
	}
	err := r.vm.RunAll()
	r.vm.Reset()
	if err != nil {
		return 0, err
	}
	return float64(*r.loss.(*G.F32)), nil
}

func (r *replica) grad(i int) []float32 {
	if r.grads[i] == nil {
		return nil
	}
	return r.grads[i].Data().([]float32)
}

func (r *replica) close() {
	r.vm.Close()
}

// forward runs the student's forward pass on batches of a fixed size and
// returns its output, for checking the written model against ONNX
// Runtime.
type forward struct {
	net  *net
	vm   G.VM
	out  G.Value
	xBuf []float32
}

func newForward(p *plan, n int, sample []int) (*forward, error) {
	nt, err := p.buildForward(n, sample, tensor.Float32)
	if err != nil {
		return nil, err
	}
	f := &forward{net: nt, xBuf: nt.x.Value().Data().([]float32)}
	f.out = tensor.New(tensor.WithShape(n, nt.k), tensor.Of(tensor.Float32))
	G.Read(nt.output, &f.out)
	f.vm = G.NewTapeMachine(nt.g)
	return f, nil
}

// run returns the outputs of n samples (a copy).
func (f *forward) run(x []float32) ([]float32, error) {
	copy(f.xBuf, x)
	err := f.vm.RunAll()
	f.vm.Reset()
	if err != nil {
		return nil, err
	}
	return append([]float32(nil), f.out.Data().([]float32)...), nil
}

func (f *forward) close() { f.vm.Close() }
