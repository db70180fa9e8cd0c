package layerwise

import (
	"fmt"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// Segment is a contiguous run of the main graph's nodes between two cuts.
type Segment struct {
	// Nodes are the segment's nodes, in graph order.
	Nodes []*onnxpb.NodeProto
	// Inputs are the tensors its nodes read that come from before it
	// (graph inputs, or the state of the previous cut); initializers are
	// not among them.
	Inputs []string
	// Live are the tensors alive after its last node, in graph order: the
	// state the next segment starts from. Those it does not produce pass
	// through it unchanged.
	Live []string
	// Outputs are the tensors it produces that are alive after it or are
	// graph outputs: what running it returns.
	Outputs []string
	// Produced says which names its nodes output.
	Produced map[string]bool
	// Layers are the indexes of the layers whose nodes it holds.
	Layers []int
}

// Plan is a model's main graph cut into segments.
type Plan struct {
	Segments []Segment
}

// Cut splits a topologically sorted main graph into segments, each
// holding at least one layer (layers[i] are the nodes of layer i, which
// read the weight processed and their input 0). A cut falls where at
// most one tensor that depends on a layer's output is alive: in a
// transformer, the residual stream between blocks (and between a block's
// attention and its feed-forward half); the tensors alive there that no
// layer changes (an attention bias, positions, the graph inputs read
// later) go along as they are. It returns a reason instead of a plan when
// the graph has no such cut between two layers.
func Cut(g *onnxpb.GraphProto, layers [][]*onnxpb.NodeProto) (*Plan, string) {
	nodes := hoistSinks(g)
	layerOf := map[*onnxpb.NodeProto]int{}
	for i, ns := range layers {
		for _, n := range ns {
			layerOf[n] = i
		}
	}
	constant := map[string]bool{}
	for _, t := range g.GetInitializer() {
		constant[t.GetName()] = true
	}
	for _, st := range g.GetSparseInitializer() {
		constant[st.GetValues().GetName()] = true
	}
	reads := make([][]string, len(nodes))
	lastUse := map[string]int{}
	for p, n := range nodes {
		reads[p] = onnx.Reads(n)
		for _, name := range reads[p] {
			lastUse[name] = p
		}
	}
	// A graph output is returned by the segment that makes it, not
	// carried to the end: a decoder's present keys and values would
	// otherwise be alive across every later block, leaving no cut.
	graphOut := map[string]bool{}
	for _, o := range g.GetOutput() {
		graphOut[o.GetName()] = true
	}
	// dep marks what a layer's weight changes; alive counts those alive.
	dep := map[string]bool{}
	var order []string // every non-constant tensor, graph inputs first
	for _, in := range g.GetInput() {
		if name := in.GetName(); !constant[name] {
			order = append(order, name)
		}
	}
	layersAfter := make([]int, len(nodes)+1)
	for p := len(nodes) - 1; p >= 0; p-- {
		layersAfter[p] = layersAfter[p+1]
		if _, ok := layerOf[nodes[p]]; ok {
			layersAfter[p]++
		}
	}
	// A layer's nodes stay in one segment (a weight read twice): split
	// counts the layers begun and not finished at each point.
	first, last := map[int]int{}, map[int]int{}
	for p, n := range nodes {
		if i, ok := layerOf[n]; ok {
			if _, seen := first[i]; !seen {
				first[i] = p
			}
			last[i] = p
		}
	}
	split := make([]int, len(nodes)+1)
	for i := range first {
		split[first[i]]++
		split[last[i]]--
	}
	// Between two layers the cut falls where the fewest tensors are alive
	// (the latest of those): the state carried is smallest there.
	plan := &Plan{}
	start, cand, alive, total, open := 0, -1, 0, 0, 0
	candTotal := 0
	defined := make([]int, len(nodes)) // len(order) after each node
	dies := map[int][]string{}
	for _, name := range order {
		if u, ok := lastUse[name]; ok {
			dies[u] = append(dies[u], name)
			total++
		}
	}
	cut := func(at int) {
		plan.Segments = append(plan.Segments, segment(nodes[start:at+1], reads[start:at+1], order[:defined[at]], lastUse, graphOut, constant, at, layerOf))
		start = at + 1
	}
	for p, n := range nodes {
		_, isLayer := layerOf[n]
		if isLayer && cand >= 0 {
			cut(cand)
			cand = -1
		}
		d := isLayer
		for _, name := range reads[p] {
			d = d || dep[name]
		}
		for _, o := range n.GetOutput() {
			if o == "" {
				continue
			}
			order = append(order, o)
			dep[o] = d
			u, used := lastUse[o]
			if !used {
				continue // nothing reads it
			}
			dies[u] = append(dies[u], o)
			total++
			if d {
				alive++
			}
		}
		for _, name := range dies[p] {
			total--
			if dep[name] {
				alive--
			}
		}
		defined[p] = len(order)
		open += split[p]
		if alive <= 1 && open == 0 && layersAfter[start]-layersAfter[p+1] > 0 && layersAfter[p+1] > 0 && (cand < 0 || total <= candTotal) {
			cand, candTotal = p, total
		}
	}
	if len(plan.Segments) == 0 {
		return nil, fmt.Sprintf("no cut between its %d layers: every point between them has several tensors a layer changes alive", len(layers))
	}
	plan.Segments = append(plan.Segments, segment(nodes[start:], reads[start:], order, lastUse, graphOut, constant, len(nodes), layerOf))
	return plan, ""
}

// segment builds the segment of nodes, which end at position end of the
// graph; order lists every tensor defined so far, in graph order.
func segment(nodes []*onnxpb.NodeProto, reads [][]string, order []string, lastUse map[string]int, graphOut, constant map[string]bool, end int, layerOf map[*onnxpb.NodeProto]int) Segment {
	s := Segment{Nodes: nodes, Produced: map[string]bool{}}
	seenLayer := map[int]bool{}
	for _, n := range nodes {
		for _, o := range n.GetOutput() {
			if o != "" {
				s.Produced[o] = true
			}
		}
		if i, ok := layerOf[n]; ok && !seenLayer[i] {
			seenLayer[i] = true
			s.Layers = append(s.Layers, i)
		}
	}
	seen := map[string]bool{}
	for _, rs := range reads {
		for _, name := range rs {
			if !s.Produced[name] && !constant[name] && !seen[name] {
				seen[name] = true
				s.Inputs = append(s.Inputs, name)
			}
		}
	}
	for _, name := range order {
		u, ok := lastUse[name]
		if ok && u > end && !constant[name] {
			s.Live = append(s.Live, name)
		}
		if (ok && u > end || graphOut[name]) && s.Produced[name] {
			s.Outputs = append(s.Outputs, name)
		}
	}
	return s
}

// Waves numbers each layer (layers[i] are its nodes) by the number of
// layers on its longest path from the graph inputs: the layers of a wave
// read nothing the others change, so they can be calibrated in the same
// pass, once the waves before theirs are processed.
func Waves(g *onnxpb.GraphProto, layers [][]*onnxpb.NodeProto) []int {
	users := map[*onnxpb.NodeProto]int{}
	for i, ns := range layers {
		for _, n := range ns {
			users[n] = i
		}
	}
	wave := make([]int, len(layers))
	level := map[string]int{} // layers upstream of each tensor
	for _, n := range g.GetNode() {
		l := 0
		for _, in := range n.GetInput() {
			l = max(l, level[in])
		}
		if i, ok := users[n]; ok {
			wave[i] = max(wave[i], l)
			l = max(l, wave[i]+1)
		}
		for _, out := range n.GetOutput() {
			level[out] = l
		}
	}
	return wave
}
