package quantize

import (
	"math"
	"sort"

	"github.com/kompress/kompress/runner/compare"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
)

// meanCosine averages, over batches and float outputs, the cosine
// similarity of got to want.
func meanCosine(want, got []map[string]*onnx.Tensor) float64 {
	sum, n := 0.0, 0
	for i := range want {
		for name, w := range want[i] {
			a, err1 := w.Float32s()
			b, err2 := got[i][name].Float32s()
			if err1 != nil || err2 != nil || len(a) != len(b) || !onnx.IsFloat(w.DType) {
				continue
			}
			sum += compare.Cosine(a, b)
			n++
		}
	}
	if n == 0 {
		return 1
	}
	return sum / float64(n)
}

// sensitivityOrder ranks the quantized nodes of plan p, most sensitive
// first, by the relative RMS error quantization adds to their input and
// output activations on the held calibration batches. It returns the
// nodes' positions in the main graph.
func sensitivityOrder(m *onnx.Model, ix *index, p *staticPlan, cal *calibration, o *options) ([]int, error) {
	roots := p.roots()
	sess, err := feed.Open(m, feed.Options{Name: m.Name + " (sensitivity)", Expose: roots})
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	num, den := map[string]float64{}, map[string]float64{}
	for _, b := range cal.held {
		out, err := sess.Run(b)
		if err != nil {
			return nil, err
		}
		for _, name := range roots {
			rg := cal.ranges[name]
			pr := ComputeParams(rg.Min, rg.Max, o.activation, false)
			v, err := out[name].Float32s()
			if err != nil {
				return nil, err
			}
			for _, x := range v {
				d := float64(pr.Dequantize(pr.Quantize(x, o.activation)) - x)
				num[name] += d * d
				den[name] += float64(x) * float64(x)
			}
		}
	}
	relErr := func(act string) float64 {
		a := p.byName[act]
		if a == nil || den[a.root] == 0 {
			return 0
		}
		return math.Sqrt(num[a.root] / den[a.root])
	}
	pos := map[string]int{}
	for i, n := range ix.model.Proto.GetGraph().GetNode() {
		pos[n.GetName()+"\\x00"+n.GetOutput()[0]] = i
	}
	type scored struct {
		pos   int
		score float64
	}
	var nodes []scored
	for _, s := range p.slots {
		if !s.integer {
			continue
		}
		out := s.node.GetOutput()[0]
		for act, n := range p.folded {
			if n == s.node {
				out = act.GetOutput()[0]
			}
		}
		i := pos[s.node.GetName()+"\\x00"+s.node.GetOutput()[0]]
		nodes = append(nodes, scored{i, relErr(s.node.GetInput()[0]) + relErr(out)})
	}
	sort.SliceStable(nodes, func(a, b int) bool { return nodes[a].score > nodes[b].score })
	order := make([]int, len(nodes))
	for i, n := range nodes {
		order[i] = n.pos
	}
	return order, nil
}
