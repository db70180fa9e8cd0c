// Package fold turns weights a model computes at run time from constants
// alone (a ConstantOfShape bias, a weight Transposed or scaled by a
// constant, a chain of such operators) into initializers, before an
// algorithm looks for weights: the chain is run once in ONNX Runtime
// (through runner/feed) and its value replaces it. A weight input that
// cannot be folded (drawn by a random operator, computed by a subgraph
// operator, or from a graph input where the operator's weight cannot be
// an activation) is named in the report with the reason, so the caller
// can say why that layer was left alone. Chains that compute the same
// value (one weight prepared in each branch of an If) share one
// initializer, in the innermost graph that holds them all.
//
// Which inputs are weights is the operator table's answer (onnx.LayerOf):
// the weight, a recurrent layer's R, the bias and a peephole.
package fold

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// Folded is a weight computed at run time that is now an initializer.
type Folded struct {
	// Name is the weight; Node and OpType the layer that reads it.
	Name   string `json:"name"`
	Node   string `json:"node"`
	OpType string `json:"opType"`
	// Ops are the operators of the chain that computed it, in order.
	Ops []string `json:"ops"`
	// SameAs is the weight folded before it to the same value, which
	// its readers now read: two chains computing one weight (Silero VAD
	// computes each LSTM weight once in each of two If branches) stay
	// one tensor, not two copies.
	SameAs string `json:"sameAs,omitempty"`
}

// Refused is a weight input computed at run time that stays so.
type Refused struct {
	Name   string `json:"name"`
	Node   string `json:"node"`
	OpType string `json:"opType"`
	// Reason says why it is not folded, naming the node or input at
	// fault.
	Reason string `json:"reason"`
	// Tied is the initializer it is computed from when that is read by
	// other nodes too (WeightsKeepingTied).
	Tied string `json:"tied,omitempty"`
}

// Report is what Weights did.
type Report struct {
	Folded  []Folded  `json:"folded,omitempty"`
	Refused []Refused `json:"refused,omitempty"`
}

// Skip lets a caller leave chains it handles itself alone (prune follows
// Reshape chains to the initializer they read): it gets the chain's
// operators in order.
type Skip func(ops []string) bool

// random operators draw new values at every run: never folded.
var random = map[string]bool{
	"RandomNormal": true, "RandomUniform": true, "RandomNormalLike": true,
	"RandomUniformLike": true, "Multinomial": true, "Bernoulli": true,
}

// model is the index of every graph of a model.
type model struct {
	m        *onnx.Model
	consts   map[string]*onnx.Weight
	producer map[string]*onnxpb.NodeProto
	graphOf  map[*onnxpb.NodeProto]*onnxpb.GraphProto
	inputs   map[string]bool // inputs of any graph (main or subgraph)
	order    map[*onnxpb.NodeProto]int
	depth    map[*onnxpb.GraphProto]int
	parent   map[*onnxpb.GraphProto]*onnxpb.GraphProto
}

func index(m *onnx.Model) *model {
	x := &model{m: m, consts: map[string]*onnx.Weight{}, producer: map[string]*onnxpb.NodeProto{},
		graphOf: map[*onnxpb.NodeProto]*onnxpb.GraphProto{}, inputs: map[string]bool{},
		order: map[*onnxpb.NodeProto]int{}, depth: map[*onnxpb.GraphProto]int{}, parent: map[*onnxpb.GraphProto]*onnxpb.GraphProto{}}
	for _, w := range m.Weights() {
		x.consts[w.Name] = w
	}
	for _, ref := range m.Graphs() {
		g := ref.Graph
		if ref.Parent != nil {
			x.depth[g] = x.depth[ref.Parent] + 1
			x.parent[g] = ref.Parent
		}
		for _, vi := range g.GetInput() {
			if x.consts[vi.GetName()] == nil || x.consts[vi.GetName()].Graph.Graph != g {
				x.inputs[vi.GetName()] = true
			}
		}
		for i, n := range g.GetNode() {
			x.graphOf[n] = g
			x.order[n] = i
			for _, out := range n.GetOutput() {
				if out != "" {
					x.producer[out] = n
				}
			}
		}
	}
	return x
}

// chain is the nodes computing one tensor, or why it is not foldable.
type chain struct {
	nodes []*onnxpb.NodeProto
	// input: the graph input it depends on; why: another reason.
	input, why string
}

func (x *model) trace(name string) chain {
	var c chain
	seen := map[*onnxpb.NodeProto]bool{}
	var visit func(string)
	visit = func(t string) {
		if t == "" || c.input != "" || c.why != "" {
			return
		}
		if w := x.consts[t]; w != nil && (w.Node == nil) {
			return // an initializer (a Constant node is followed as a node)
		}
		if x.inputs[t] {
			c.input = t
			return
		}
		n := x.producer[t]
		if n == nil {
			c.why = fmt.Sprintf("%q has no producer", t)
			return
		}
		if seen[n] {
			return
		}
		seen[n] = true
		switch {
		case random[n.GetOpType()]:
			c.why = fmt.Sprintf("drawn at run time by %s %s (not deterministic)", n.GetOpType(), onnx.Label(n))
			return
		case hasSubgraph(n):
			c.why = fmt.Sprintf("computed by %s %s, which holds a subgraph", n.GetOpType(), onnx.Label(n))
			return
		}
		for _, in := range n.GetInput() {
			visit(in)
		}
		c.nodes = append(c.nodes, n)
	}
	visit(name)
	sort.SliceStable(c.nodes, func(i, j int) bool {
		a, b := c.nodes[i], c.nodes[j]
		if da, db := x.depth[x.graphOf[a]], x.depth[x.graphOf[b]]; da != db {
			return da < db
		}
		return x.order[a] < x.order[b]
	})
	return c
}

func hasSubgraph(n *onnxpb.NodeProto) bool {
	for _, a := range n.GetAttribute() {
		if a.GetG() != nil || len(a.GetGraphs()) > 0 {
			return true
		}
	}
	return false
}

// activationWeight reports whether the operator's weight input may be an
// activation (attention's MatMul of two activations, a Gather indexing a
// computed shape): such inputs are not weights when they come from graph
// inputs.
func activationWeight(l onnx.Layer) bool {
	return l.Kind == onnx.LayerMatMul || l.Kind == onnx.LayerGemm || l.Kind == onnx.LayerEmbedding
}

// slot is a weight input computed at run time.
type slot struct {
	name  string
	node  *onnxpb.NodeProto
	layer onnx.Layer
	c     chain
}

// Weights folds the weight inputs of m computed from constants alone, in
// place, except chains skip leaves alone, and reports them with the
// inputs it cannot fold. It runs ONNX Runtime only when there is
// something to fold.
func Weights(m *onnx.Model, skip Skip) (*Report, error) {
	return weights(m, skip, false)
}

// WeightsKeepingTied is Weights except that a chain reading an
// initializer other nodes read too (a language-model head reading the
// token embedding through a Transpose: tied weights) is refused, not
// folded: folding stores a second copy of the weight, which pruning
// would then keep dense beside the pruned one.
func WeightsKeepingTied(m *onnx.Model, skip Skip) (*Report, error) {
	return weights(m, skip, true)
}

func weights(m *onnx.Model, skip Skip, keepTied bool) (*Report, error) {
	x := index(m)
	r := &Report{}
	var todo []slot
	seen := map[string]bool{}
	for _, ref := range m.Graphs() {
		for _, n := range ref.Graph.GetNode() {
			l, ok := onnx.LayerOf(n)
			if !ok || l.Quantized {
				continue
			}
			for _, i := range append(l.Weights(), l.Bias, l.Peephole) {
				if i < 0 || i >= len(n.GetInput()) {
					continue
				}
				name := n.GetInput()[i]
				if name == "" || seen[name] {
					continue
				}
				if w := x.consts[name]; w != nil && w.Node == nil {
					continue
				}
				if w := x.consts[name]; w != nil && w.Node != nil {
					continue // a Constant node is a weight already
				}
				seen[name] = true
				c := x.trace(name)
				switch {
				case c.why != "":
					r.Refused = append(r.Refused, Refused{Name: name, Node: onnx.Label(n), OpType: n.GetOpType(), Reason: c.why})
				case c.input != "" && i != l.Bias && !activationWeight(l):
					r.Refused = append(r.Refused, Refused{Name: name, Node: onnx.Label(n), OpType: n.GetOpType(),
						Reason: fmt.Sprintf("computed at run time from the graph input %q", c.input)})
				case c.input != "" || len(c.nodes) == 0:
				case skip != nil && skip(opsOf(c.nodes)):
				case keepTied && x.tied(c) != "":
					r.Refused = append(r.Refused, Refused{Name: name, Node: onnx.Label(n), OpType: n.GetOpType(), Tied: x.tied(c),
						Reason: fmt.Sprintf("computed from %q, which other nodes read too (tied weights): folding would store it twice", x.tied(c))})
				default:
					todo = append(todo, slot{name: name, node: n, layer: l, c: c})
				}
			}
		}
	}
	if len(todo) == 0 {
		return r, nil
	}
	values, err := evaluate(x, todo)
	if err != nil {
		return r, err
	}
	placed := map[string]*placedValue{} // a value -> the initializer holding it
	for _, s := range todo {
		t := values[s.name]
		if t == nil {
			continue
		}
		same, err := replace(x, s, t, placed)
		if err != nil {
			return r, err
		}
		r.Folded = append(r.Folded, Folded{Name: s.name, Node: onnx.Label(s.node), OpType: s.node.GetOpType(), Ops: opsOf(s.c.nodes), SameAs: same})
	}
	removeDead(m, todo)
	return r, nil
}

func opsOf(nodes []*onnxpb.NodeProto) []string {
	ops := make([]string, len(nodes))
	for i, n := range nodes {
		ops[i] = n.GetOpType()
	}
	return ops
}

// evaluate runs every chain in one model made of their nodes and the
// initializers they read.
func evaluate(x *model, todo []slot) (map[string]*onnx.Tensor, error) {
	g := &onnxpb.GraphProto{Name: proto.String("fold")}
	added := map[*onnxpb.NodeProto]bool{}
	inits := map[string]bool{}
	var nodes []*onnxpb.NodeProto
	for _, s := range todo {
		for _, n := range s.c.nodes {
			if !added[n] {
				added[n] = true
				nodes = append(nodes, n)
			}
		}
	}
	sort.SliceStable(nodes, func(i, j int) bool {
		a, b := nodes[i], nodes[j]
		if da, db := x.depth[x.graphOf[a]], x.depth[x.graphOf[b]]; da != db {
			return da < db
		}
		return x.order[a] < x.order[b]
	})
	for _, n := range nodes {
		g.Node = append(g.Node, proto.Clone(n).(*onnxpb.NodeProto))
		for _, in := range n.GetInput() {
			w := x.consts[in]
			if w == nil || w.Node != nil || inits[in] {
				continue
			}
			inits[in] = true
			t, err := w.Tensor()
			if err != nil {
				return nil, err
			}
			tp, err := onnx.TensorToProto(t, in)
			if err != nil {
				return nil, err
			}
			g.Initializer = append(g.Initializer, tp)
		}
	}
	var names []string
	for _, s := range todo {
		names = append(names, s.name)
		g.Output = append(g.Output, &onnxpb.ValueInfoProto{Name: proto.String(s.name)})
	}
	// ONNX Runtime's binding runs models with inputs: one nothing reads.
	const unused = "kompress_fold_unused"
	g.Input = append(g.Input, onnx.ValueInfo(unused, onnx.Float, []onnx.Dim{1}))
	m := &onnx.Model{Proto: &onnxpb.ModelProto{
		IrVersion: x.m.Proto.IrVersion, OpsetImport: x.m.Proto.GetOpsetImport(), Graph: g,
	}, Name: x.m.Name + " (weights computed from constants)"}
	sess, err := feed.Open(m, feed.Options{Threads: 1})
	if err != nil {
		return nil, fmt.Errorf("folding %s: %w", strings.Join(names, ", "), err)
	}
	defer sess.Close()
	out, err := sess.Run(map[string]*onnx.Tensor{unused: onnx.NewTensor([]int64{1}, []float32{0})})
	if err != nil {
		return nil, fmt.Errorf("folding %s: %w", strings.Join(names, ", "), err)
	}
	return out, nil
}

// placedValue is a folded weight's initializer and the graph holding it.
type placedValue struct {
	name  string
	graph *onnxpb.GraphProto
}

// replace makes the weight an initializer of the graph its producer was
// in (every reader sees it there), and drops the producer. A value an
// earlier chain folded to already is not stored again: the weight's
// readers read that initializer, moved up to the innermost graph both
// chains' graphs are nested in (two branches of an If each computing
// the same LSTM weight share it from the If's graph); replace returns
// its name.
func replace(x *model, s slot, t *onnx.Tensor, placed map[string]*placedValue) (string, error) {
	p := x.producer[s.name]
	if p == nil {
		return "", errors.New("fold: " + s.name + " has no producer")
	}
	g := x.graphOf[p]
	tp, err := onnx.TensorToProto(t, "")
	if err != nil {
		return "", fmt.Errorf("folding %s: %w", s.name, err)
	}
	value, err := proto.MarshalOptions{Deterministic: true}.Marshal(tp)
	if err != nil {
		return "", fmt.Errorf("folding %s: %w", s.name, err)
	}
	g.Node = slices.DeleteFunc(g.Node, func(n *onnxpb.NodeProto) bool { return n == p })
	if same := placed[string(value)]; same != nil && !graphOutput(x.m, s.name) {
		if outer := x.common(same.graph, g); outer != same.graph {
			var init *onnxpb.TensorProto
			same.graph.Initializer = slices.DeleteFunc(same.graph.Initializer, func(t *onnxpb.TensorProto) bool {
				if t.GetName() == same.name {
					init = t
					return true
				}
				return false
			})
			outer.Initializer = append(outer.Initializer, init)
			same.graph = outer
		}
		renameInput(x.m, s.name, same.name)
		return same.name, nil
	}
	placed[string(value)] = &placedValue{name: s.name, graph: g}
	tp.Name = proto.String(s.name)
	g.Initializer = append(g.Initializer, tp)
	return "", nil
}

// common is the innermost graph both a and b are (nested in).
func (x *model) common(a, b *onnxpb.GraphProto) *onnxpb.GraphProto {
	for x.depth[a] > x.depth[b] {
		a = x.parent[a]
	}
	for x.depth[b] > x.depth[a] {
		b = x.parent[b]
	}
	for a != b {
		a, b = x.parent[a], x.parent[b]
	}
	return a
}

// graphOutput reports whether a graph outputs the value.
func graphOutput(m *onnx.Model, name string) bool {
	for _, ref := range m.Graphs() {
		for _, vi := range ref.Graph.GetOutput() {
			if vi.GetName() == name {
				return true
			}
		}
	}
	return false
}

// renameInput makes every node that reads from read to instead (names
// are unique in a model: the readers are in the graph that produced
// from and its subgraphs).
func renameInput(m *onnx.Model, from, to string) {
	for _, ref := range m.Graphs() {
		for _, n := range ref.Graph.GetNode() {
			for i, in := range n.GetInput() {
				if in == from {
					n.Input[i] = to
				}
			}
		}
	}
}

// removeDead drops the chains' nodes nothing reads any more, and the
// initializers only they read.
func removeDead(m *onnx.Model, todo []slot) {
	candidates := map[*onnxpb.NodeProto]bool{}
	for _, s := range todo {
		for _, n := range s.c.nodes {
			candidates[n] = true
		}
	}
	for {
		used := referenced(m)
		removed := false
		for _, ref := range m.Graphs() {
			g := ref.Graph
			g.Node = slices.DeleteFunc(g.Node, func(n *onnxpb.NodeProto) bool {
				if !candidates[n] {
					return false
				}
				for _, out := range n.GetOutput() {
					if out != "" && used[out] {
						return false
					}
				}
				removed = true
				return true
			})
		}
		if !removed {
			break
		}
	}
	// Initializers the chains read that nothing reads now.
	used := referenced(m)
	read := map[string]bool{}
	for _, s := range todo {
		for _, n := range s.c.nodes {
			for _, in := range n.GetInput() {
				read[in] = true
			}
		}
	}
	for _, ref := range m.Graphs() {
		g := ref.Graph
		g.Initializer = slices.DeleteFunc(g.Initializer, func(t *onnxpb.TensorProto) bool {
			return read[t.GetName()] && !used[t.GetName()]
		})
		g.Input = slices.DeleteFunc(g.Input, func(vi *onnxpb.ValueInfoProto) bool {
			return read[vi.GetName()] && !used[vi.GetName()]
		})
	}
}

// referenced names every value a node of any graph reads or a graph
// outputs: what removing a node or an initializer must keep.
func referenced(m *onnx.Model) map[string]bool {
	used := map[string]bool{}
	for _, ref := range m.Graphs() {
		for _, n := range ref.Graph.GetNode() {
			for _, in := range n.GetInput() {
				used[in] = true
			}
		}
		for _, vi := range ref.Graph.GetOutput() {
			used[vi.GetName()] = true
		}
	}
	return used
}
