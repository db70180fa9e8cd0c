package onnx

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// Use is one place a tensor is read: input Input of Node, in the graph at
// GraphPath ("" for the main graph). A node inside a subgraph that reads a
// tensor of an enclosing graph by name is a Use too, with the subgraph's
// path.
type Use struct {
	Node      *onnxpb.NodeProto
	Input     int
	GraphPath string
}

// OpType is the consuming node's operator.
func (u Use) OpType() string { return u.Node.GetOpType() }

// GraphIndex maps the names of one graph to what defines and reads them.
// It is a snapshot: rebuild it after editing the graph.
type GraphIndex struct {
	Graph *onnxpb.GraphProto
	// Producer is the node that outputs each name.
	Producer map[string]*onnxpb.NodeProto
	// Consumers lists every read of each name, including reads from
	// subgraphs that capture it from this graph.
	Consumers map[string][]Use
	// Initializer, Input, Output and ValueInfo map names to their entries
	// in the graph's lists of the same names.
	Initializer map[string]*onnxpb.TensorProto
	Input       map[string]*onnxpb.ValueInfoProto
	Output      map[string]*onnxpb.ValueInfoProto
	ValueInfo   map[string]*onnxpb.ValueInfoProto
}

// IndexGraph builds the index of g; path is g's GraphRef.Path.
func IndexGraph(g *onnxpb.GraphProto, path string) *GraphIndex {
	ix := &GraphIndex{
		Graph:       g,
		Producer:    map[string]*onnxpb.NodeProto{},
		Consumers:   map[string][]Use{},
		Initializer: map[string]*onnxpb.TensorProto{},
		Input:       map[string]*onnxpb.ValueInfoProto{},
		Output:      map[string]*onnxpb.ValueInfoProto{},
		ValueInfo:   map[string]*onnxpb.ValueInfoProto{},
	}
	for _, t := range g.GetInitializer() {
		ix.Initializer[t.GetName()] = t
	}
	for _, v := range g.GetInput() {
		ix.Input[v.GetName()] = v
	}
	for _, v := range g.GetOutput() {
		ix.Output[v.GetName()] = v
	}
	for _, v := range g.GetValueInfo() {
		ix.ValueInfo[v.GetName()] = v
	}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			if o != "" {
				ix.Producer[o] = n
			}
		}
	}
	for i, n := range g.GetNode() {
		for j, in := range n.GetInput() {
			if in != "" {
				ix.Consumers[in] = append(ix.Consumers[in], Use{Node: n, Input: j, GraphPath: path})
			}
		}
		for _, a := range n.GetAttribute() {
			for _, sg := range attrGraphs(a) {
				sub := joinPath(path, NodeLabel(n, i)+"/"+a.GetName())
				for name, uses := range capturedUses(sg, sub) {
					ix.Consumers[name] = append(ix.Consumers[name], uses...)
				}
			}
		}
	}
	return ix
}

// capturedUses lists reads in g (and its subgraphs) of names g does not
// define itself: the names it captures from enclosing graphs.
func capturedUses(g *onnxpb.GraphProto, path string) map[string][]Use {
	inner := IndexGraph(g, path)
	out := map[string][]Use{}
	for name, uses := range inner.Consumers {
		if inner.Producer[name] != nil || inner.Initializer[name] != nil || inner.Input[name] != nil || sparseInit(g, name) != nil {
			continue
		}
		out[name] = uses
	}
	return out
}

func attrGraphs(a *onnxpb.AttributeProto) []*onnxpb.GraphProto {
	if a.G != nil {
		return append([]*onnxpb.GraphProto{a.G}, a.GetGraphs()...)
	}
	return a.GetGraphs()
}

func sparseInit(g *onnxpb.GraphProto, name string) *onnxpb.SparseTensorProto {
	for _, st := range g.GetSparseInitializer() {
		if st.GetValues().GetName() == name {
			return st
		}
	}
	return nil
}

// FindValueInfo returns the declared type of name in g: from the graph's
// inputs, outputs or value_info, in that order; nil when undeclared.
func FindValueInfo(g *onnxpb.GraphProto, name string) *onnxpb.ValueInfoProto {
	for _, list := range [][]*onnxpb.ValueInfoProto{g.GetInput(), g.GetOutput(), g.GetValueInfo()} {
		for _, v := range list {
			if v.GetName() == name {
				return v
			}
		}
	}
	return nil
}

// TensorType reads a value's element type and shape: dims are -1 where
// dynamic, params holds the dimension names ("" where fixed or unknown).
// ok is false when the value is not a tensor or has no shape.
func TensorType(v *onnxpb.ValueInfoProto) (dt DataType, dims []int64, params []string, ok bool) {
	tt := v.GetType().GetTensorType()
	if tt == nil {
		return Undefined, nil, nil, false
	}
	dt = DataType(tt.GetElemType())
	if tt.Shape == nil {
		return dt, nil, nil, false
	}
	for _, d := range tt.GetShape().GetDim() {
		dims = append(dims, -1)
		params = append(params, "")
		switch x := d.Value.(type) {
		case *onnxpb.TensorShapeProto_Dimension_DimValue:
			dims[len(dims)-1] = x.DimValue
		case *onnxpb.TensorShapeProto_Dimension_DimParam:
			params[len(params)-1] = x.DimParam
		}
	}
	return dt, dims, params, true
}

// Opset returns the version of domain the model imports ("" and "ai.onnx"
// are the default domain); 0 when not imported.
func (m *Model) Opset(domain string) int64 {
	for _, o := range m.Proto.GetOpsetImport() {
		if sameDomain(o.GetDomain(), domain) {
			return o.GetVersion()
		}
	}
	return 0
}

// SetOpset sets (or adds) the imported version of domain.
func (m *Model) SetOpset(domain string, version int64) {
	for _, o := range m.Proto.GetOpsetImport() {
		if sameDomain(o.GetDomain(), domain) {
			o.Version = proto.Int64(version)
			return
		}
	}
	m.Proto.OpsetImport = append(m.Proto.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String(domain), Version: proto.Int64(version)})
}

func sameDomain(a, b string) bool {
	return a == b || IsDefaultDomain(a) && IsDefaultDomain(b)
}

// UniqueName returns base if no tensor, node or graph in the model uses it
// yet, else base_1, base_2, ... The name is reserved: later calls never
// return it again.
func (m *Model) UniqueName(base string) string {
	if m.names == nil {
		m.names = map[string]bool{}
		for _, ref := range m.Graphs() {
			g := ref.Graph
			m.names[g.GetName()] = true
			for _, t := range g.GetInitializer() {
				m.names[t.GetName()] = true
			}
			for _, st := range g.GetSparseInitializer() {
				m.names[st.GetValues().GetName()] = true
			}
			for _, list := range [][]*onnxpb.ValueInfoProto{g.GetInput(), g.GetOutput(), g.GetValueInfo()} {
				for _, v := range list {
					m.names[v.GetName()] = true
				}
			}
			for _, n := range g.GetNode() {
				m.names[n.GetName()] = true
				for _, s := range append(append([]string{}, n.GetInput()...), n.GetOutput()...) {
					m.names[s] = true
				}
			}
		}
	}
	name := base
	for i := 1; m.names[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	m.names[name] = true
	return name
}

// AddInitializer stores t as an initializer of g under a name made unique
// from base, and returns that name.
func (m *Model) AddInitializer(g *onnxpb.GraphProto, base string, t *Tensor) (string, error) {
	name := m.UniqueName(base)
	tp, err := TensorToProto(t, name)
	if err != nil {
		return "", err
	}
	g.Initializer = append(g.Initializer, tp)
	return name, nil
}

// ReplaceUses makes every reader of old in g read new instead: node inputs
// (also inside subgraphs that capture old) and graph outputs.
func ReplaceUses(g *onnxpb.GraphProto, old, new string) {
	for _, uses := range IndexGraph(g, "").Consumers[old] {
		uses.Node.Input[uses.Input] = new
	}
	for _, o := range g.GetOutput() {
		if o.GetName() == old {
			o.Name = proto.String(new)
		}
	}
}

// InsertNodes inserts nodes into g before position at (len(g.Node) to
// append). TopoSort fixes the order when the position is not known.
func InsertNodes(g *onnxpb.GraphProto, at int, nodes ...*onnxpb.NodeProto) {
	g.Node = append(g.Node[:at], append(append([]*onnxpb.NodeProto{}, nodes...), g.Node[at:]...)...)
}

// TopoSort reorders g's nodes so every node comes after the producers of
// its inputs, keeping the existing order where it is already valid. It
// fails on a cycle, naming a node on it.
func TopoSort(g *onnxpb.GraphProto) error {
	producer := map[string]int{}
	for i, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			if o != "" {
				producer[o] = i
			}
		}
	}
	// deps of a node: producers of its inputs, including names read by its
	// subgraphs from this graph.
	deps := make([][]int, len(g.GetNode()))
	for i, n := range g.GetNode() {
		names := append([]string{}, n.GetInput()...)
		for _, a := range n.GetAttribute() {
			for _, sg := range attrGraphs(a) {
				for name := range capturedUses(sg, "") {
					names = append(names, name)
				}
			}
		}
		for _, in := range names {
			if p, ok := producer[in]; ok && p != i {
				deps[i] = append(deps[i], p)
			}
		}
	}
	const (
		unseen = iota
		active
		done
	)
	state := make([]int, len(deps))
	order := make([]*onnxpb.NodeProto, 0, len(deps))
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case done:
			return nil
		case active:
			return fmt.Errorf("graph %q has a cycle through node %s", g.GetName(), NodeLabel(g.Node[i], i))
		}
		state[i] = active
		for _, d := range deps[i] {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[i] = done
		order = append(order, g.Node[i])
		return nil
	}
	for i := range deps {
		if err := visit(i); err != nil {
			return err
		}
	}
	g.Node = order
	return nil
}

// RenameTensor renames a tensor of g everywhere g refers to it: the node
// output or initializer that defines it, graph inputs, outputs and
// value_info, every reader (subgraphs that capture it included) and
// quantization annotations.
func RenameTensor(g *onnxpb.GraphProto, old, new string) {
	ReplaceUses(g, old, new)
	for _, n := range g.GetNode() {
		for i, o := range n.GetOutput() {
			if o == old {
				n.Output[i] = new
			}
		}
	}
	for _, t := range g.GetInitializer() {
		if t.GetName() == old {
			t.Name = proto.String(new)
		}
	}
	for _, st := range g.GetSparseInitializer() {
		if st.GetValues().GetName() == old {
			st.Values.Name = proto.String(new)
		}
	}
	for _, list := range [][]*onnxpb.ValueInfoProto{g.GetInput(), g.GetValueInfo()} {
		for _, v := range list {
			if v.GetName() == old {
				v.Name = proto.String(new)
			}
		}
	}
	for _, a := range g.GetQuantizationAnnotation() {
		if a.GetTensorName() == old {
			a.TensorName = proto.String(new)
		}
		for _, p := range a.GetQuantParameterTensorNames() {
			if p.GetValue() == old {
				p.Value = proto.String(new)
			}
		}
	}
}
