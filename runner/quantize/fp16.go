package quantize

import (
	"fmt"
	"math"
	"slices"

	"github.com/x448/float16"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// fp16 conversion writes float32 weights as float16 and runs the main
// graph in float16, as onnxruntime's float16 converter does
// (onnxruntime.transformers.float16): operators on its block list, and
// quantize/dequantize, control flow, recurrent and non-default-domain
// operators, keep float32, with Casts at each boundary; subgraphs compute
// in float32 and read outer values through a Cast. Weights are stored as
// float16 wherever they are (subgraphs, operators kept in float32 included)
// and cast back to float32 where read in float32. Inputs and outputs stay
// float32 (Cast at the edges) unless ioType is float16.

// fp16BlockList is onnxruntime's float16 DEFAULT_OP_BLOCK_LIST, plus the
// operators whose float inputs are not of the computed type or that hold
// subgraphs.
var fp16BlockList = map[string]bool{
	"ArrayFeatureExtractor": true, "Binarizer": true, "CastMap": true, "CategoryMapper": true,
	"DictVectorizer": true, "FeatureVectorizer": true, "Imputer": true, "LabelEncoder": true,
	"LinearClassifier": true, "LinearRegressor": true, "Normalizer": true, "OneHotEncoder": true,
	"RandomUniformLike": true, "SVMClassifier": true, "SVMRegressor": true, "Scaler": true,
	"TreeEnsembleClassifier": true, "TreeEnsembleRegressor": true, "ZipMap": true,
	"NonMaxSuppression": true, "TopK": true, "RoiAlign": true, "Resize": true, "Range": true,
	"CumSum": true, "Min": true, "Max": true, "Upsample": true,
	// Not in onnxruntime's list:
	"QuantizeLinear": true, "DequantizeLinear": true, "DynamicQuantizeLinear": true,
	"If": true, "Loop": true, "Scan": true,
	// ONNX Runtime has no float16 CPU kernels for recurrent layers (and
	// 1.30 crashes creating a session for a float16 LSTM): they compute
	// in float32, their weights stored as float16 and cast.
	"LSTM": true, "GRU": true, "RNN": true,
	"RandomNormal": true, "RandomUniform": true, "RandomNormalLike": true, "EyeLike": true, "Multinomial": true,
}

type fp16 struct {
	ix    *index
	e     *editor
	o     *options
	r     *Report
	main  *onnxpb.GraphProto
	types map[string]onnx.DataType
	// native is the precision a float32 tensor has in the output model
	// (true: float16) under its own name.
	native map[string]bool
	// other names the tensor in the other precision, once made.
	other map[string]string
	// owner is the main-graph node whose subgraph holds a graph.
	owner map[*onnxpb.GraphProto]*onnxpb.NodeProto
	// halfConsts are the constants stored as float16, by the graph
	// holding them.
	halfConsts map[string]*onnxpb.GraphProto
	// blockedNodes memoizes blocked.
	blockedNodes map[*onnxpb.NodeProto]bool
}

func convertFP16(m *onnx.Model, o *options, r *Report) error {
	ix := newIndex(m)
	f := &fp16{
		ix: ix, e: newEditor(ix, r.own), o: o, r: r, main: m.Proto.GetGraph(),
		types: elemTypes(ix), native: map[string]bool{}, other: map[string]string{},
		owner: map[*onnxpb.GraphProto]*onnxpb.NodeProto{}, halfConsts: map[string]*onnxpb.GraphProto{},
		blockedNodes: map[*onnxpb.NodeProto]bool{},
	}
	for _, n := range f.main.GetNode() {
		f.blocked(n) // decided on the graph as it is
	}
	for _, ref := range ix.graphs[1:] {
		top := ref.Owner
		for ix.graphOf[top] != f.main {
			top = f.ownerOf(ix.graphOf[top])
		}
		f.owner[ref.Graph] = top
	}
	converted, err := f.convertConstants()
	if err != nil {
		return err
	}
	if converted == 0 {
		return noWeightsError(m, r)
	}
	f.setNative()
	f.convertOutputs()
	for _, n := range f.main.GetNode() {
		for i := range n.GetInput() {
			f.rewire(use{graph: f.main, node: n, input: i}, !f.blocked(n))
		}
	}
	for _, ref := range ix.graphs[1:] {
		for _, n := range ref.Graph.GetNode() {
			for i := range n.GetInput() {
				// Subgraphs compute in float32: main-graph tensors and
				// constants stored as float16 reach them through a Cast.
				f.rewire(use{graph: ref.Graph, node: n, input: i}, false)
			}
		}
		for _, vi := range ref.Graph.GetValueInfo() {
			if f.halfConsts[vi.GetName()] != nil {
				setElemType(vi, onnx.Float16)
			}
		}
	}
	f.e.apply()
	removeDeadConstants(m)
	return nil
}

func (f *fp16) ownerOf(g *onnxpb.GraphProto) *onnxpb.NodeProto {
	for _, ref := range f.ix.graphs {
		if ref.Graph == g {
			return ref.Owner
		}
	}
	return nil
}

// blocked reports whether a main-graph node keeps float32, as decided
// on the graph before any rewiring.
func (f *fp16) blocked(n *onnxpb.NodeProto) bool {
	b, ok := f.blockedNodes[n]
	if !ok {
		b = !onnx.IsDefaultDomain(n.GetDomain()) || fp16BlockList[n.GetOpType()] || f.o.excluded(n.GetOpType(), n.GetName()) != "" || f.batchTransposed(n)
		f.blockedNodes[n] = b
	}
	return b
}

// batchTransposed reports whether n is a Transpose that moves the batch
// axis next to the matrix axes (perm [1, ..., r-2, 0, r-1], or with the
// last two swapped) for a MatMul, or such a MatMul: ONNX Runtime 1.30
// fuses the pair into FusedMatMul with transBatch, looking through a Cast
// between them, and when the Transpose is in float16 the session crashes
// while it is created. Both compute in float32, cast before the
// Transpose, which it fuses without trouble.
func (f *fp16) batchTransposed(n *onnxpb.NodeProto) bool {
	switch n.GetOpType() {
	case "MatMul":
		for _, in := range n.GetInput() {
			if p := f.ix.producer[in]; p != nil && batchTranspose(p) {
				return true
			}
		}
	case "Transpose":
		if !batchTranspose(n) {
			return false
		}
		for _, u := range f.ix.uses[n.GetOutput()[0]] {
			if u.node.GetOpType() == "MatMul" {
				return true
			}
		}
	}
	return false
}

// batchTranspose reports whether n is a Transpose of perm [1, ..., r-2,
// 0, r-1] or [1, ..., r-2, r-1, 0] (r >= 3).
func batchTranspose(n *onnxpb.NodeProto) bool {
	if n.GetOpType() != "Transpose" {
		return false
	}
	perm, ok := onnx.IntsAttr(n, "perm")
	r := len(perm)
	if !ok || r < 3 {
		return false
	}
	for i := range r - 2 {
		if perm[i] != int64(i+1) {
			return false
		}
	}
	last2 := [2]int64{perm[r-2], perm[r-1]}
	return last2 == [2]int64{0, int64(r - 1)} || last2 == [2]int64{int64(r - 1), 0}
}

func (f *fp16) isFloat32(name string) bool { return name != "" && f.types[name] == onnx.Float }

func (f *fp16) isMainInput(name string) bool {
	for _, vi := range f.main.GetInput() {
		if vi.GetName() == name {
			return true
		}
	}
	return false
}

func (f *fp16) mainConst(name string) bool {
	c := f.ix.consts[name]
	return c != nil && c.graph == f.main
}

// convertConstants writes as float16 every float32 constant that no
// reader needs exactly in float32: main-graph readers computing in
// float16 read it as is; a weight input (the operator table's weight,
// recurrence, bias or peephole) of an operator kept in float32, and a
// reader inside a subgraph (subgraphs compute in float32) that would
// compute in float16 in the main graph, read it through a Cast to
// float32, so the file still holds it in half the bytes. A constant that
// some other reader needs in float32 stays, with a float16 copy for the
// float16 readers when there are any.
func (f *fp16) convertConstants() (int, error) {
	converted := 0
	for _, name := range sortedNames(f.ix.consts) {
		c := f.ix.consts[name]
		if c.dtype() != onnx.Float {
			continue
		}
		readers := f.ix.uses[name]
		half, cast, single := 0, 0, 0
		var singleReader *use
		for i, u := range readers {
			switch {
			case u.graph == f.main && !f.blocked(u.node):
				half++
			case f.castable(u):
				cast++
			default:
				single++
				if singleReader == nil {
					singleReader = &readers[i]
				}
			}
		}
		if half == 0 && cast == 0 && len(readers) > 0 {
			reason := f.o.excluded(singleReader.node.GetOpType(), singleReader.node.GetName())
			if reason == "" {
				reason = ReasonFP16Blocked
			}
			f.r.addFloat(name, singleReader, reason, "read by "+singleReader.node.GetOpType())
			continue
		}
		if c.overridable {
			if len(readers) > 0 {
				f.r.addFloat(name, &readers[0], ReasonOverridable, "")
			}
			continue
		}
		t, err := c.tensor()
		if err != nil {
			return 0, err
		}
		v, err := t.Float32s()
		if err != nil {
			return 0, err
		}
		h := onnx.NewTensor(append([]int64{}, t.Dims...), toFloat16(v))
		var first *use
		if len(readers) > 0 {
			first = &readers[0]
		}
		granularity := "elementwise"
		if single == 0 && !f.ix.outputs[name] {
			if err := c.w.Set(h); err != nil {
				return 0, err
			}
			f.native[name] = true
			f.halfConsts[name] = c.graph
			if cast > 0 {
				granularity = "elementwise, cast to float32 where read in float32"
			}
		} else {
			if c.graph != f.main {
				// A float16 copy would have to live in the subgraph.
				if singleReader == nil {
					f.r.addFloat(name, first, ReasonNotWeight, "an output of its subgraph")
					continue
				}
				f.r.addFloat(name, singleReader, ReasonFP16Blocked, "read in float32 by "+singleReader.node.GetOpType())
				continue
			}
			copyName, err := f.e.addInit(f.main, name+"_fp16", h)
			if err != nil {
				return 0, err
			}
			f.other[name] = copyName
			// A graph output nothing reads (a model that outputs a
			// constant) has no first reader.
			f.r.addFloat(name, first, ReasonFP16Blocked, "kept for its float32 readers; float16 copy for the others")
		}
		converted++
		q := QuantizedTensor{Name: name, Type: "float16", Granularity: granularity, Elements: len(v)}
		if first != nil {
			q.Node, q.OpType = onnx.Label(first.node), first.node.GetOpType()
		}
		f.r.Quantized = append(f.r.Quantized, q)
	}
	return converted, nil
}

// castable reports whether a reader that computes in float32 may read a
// weight stored as float16 through a Cast: a weight input of an operator
// kept in float32 (LSTM's W, a Conv's kernel), or any reader inside a
// subgraph that would compute in float16 in the main graph.
func (f *fp16) castable(u use) bool {
	if f.o.excluded(u.node.GetOpType(), u.node.GetName()) != "" {
		return false
	}
	if u.graph != f.main && !fp16BlockList[u.node.GetOpType()] && onnx.IsDefaultDomain(u.node.GetDomain()) {
		return true
	}
	l, ok := onnx.LayerOf(u.node)
	if !ok || l.Quantized {
		return false
	}
	return slices.Contains(l.Weights(), u.input) || u.input == l.Bias || u.input == l.Peephole
}

// toFloat16 rounds to the nearest float16, saturating at the largest
// finite value instead of overflowing to infinity (zeros stay zeros).
func toFloat16(v []float32) []float16.Float16 {
	out := make([]float16.Float16, len(v))
	for i, x := range v {
		h := float16.Fromfloat32(x)
		if h.IsInf(0) && !math.IsInf(float64(x), 0) {
			h = float16.Fromfloat32(float32(math.Copysign(65504, float64(x))))
		}
		out[i] = h
	}
	return out
}

// setNative decides the precision each float32 tensor is produced in, and
// retargets the main graph's float-producing nodes.
func (f *fp16) setNative() {
	for _, vi := range f.main.GetInput() {
		if f.isFloat32(vi.GetName()) && !f.mainConst(vi.GetName()) && f.o.ioFloat16 {
			f.native[vi.GetName()] = true
			setElemType(vi, onnx.Float16)
		}
	}
	for _, n := range f.main.GetNode() {
		// A Constant's precision is what convertConstants made it (it
		// keeps float32 when a blocked node reads it).
		if f.blocked(n) || n.GetOpType() == "Constant" && len(n.GetOutput()) == 1 && f.mainConst(n.GetOutput()[0]) {
			continue
		}
		for _, out := range n.GetOutput() {
			if f.isFloat32(out) {
				f.native[out] = true
			}
		}
		switch n.GetOpType() {
		case "Cast":
			if onnx.IntAttr(n, "to", 0) == int64(onnx.Float) {
				setAttrInt(n, "to", int64(onnx.Float16))
			}
		case "ConstantOfShape":
			if f.isFloat32(n.GetOutput()[0]) {
				setConstantOfShapeHalf(n)
			}
		}
	}
	for _, vi := range f.main.GetValueInfo() {
		if f.native[vi.GetName()] {
			setElemType(vi, onnx.Float16)
		}
	}
}

// convertOutputs makes each float32 graph output the precision ioType
// asks: the producer writes a new name and a Cast writes the output.
func (f *fp16) convertOutputs() {
	for _, vi := range f.main.GetOutput() {
		name := vi.GetName()
		if !f.isFloat32(name) {
			continue
		}
		want := f.o.ioFloat16
		if want {
			setElemType(vi, onnx.Float16)
		}
		if f.native[name] == want || f.mainConst(name) || f.isMainInput(name) {
			continue
		}
		p := f.ix.producer[name]
		if p == nil {
			continue
		}
		renamed := f.ix.fresh(name + map[bool]string{true: "_fp16", false: "_fp32"}[f.native[name]])
		renameOutput(p, name, renamed)
		to := onnx.Float
		if want {
			to = onnx.Float16
		}
		f.e.after[p] = append(f.e.after[p], newNode("Cast", "", f.ix.fresh(name+"_Cast"), []string{renamed}, []string{name}, onnx.AttrInt("to", int64(to))))
		// renamed is the tensor in its native precision, name the other.
		f.native[renamed] = f.native[name]
		f.native[name] = want
		f.other[renamed] = name
		f.other[name] = renamed
		f.types[renamed] = onnx.Float
		for _, u := range f.ix.uses[name] {
			u.node.Input[u.input] = renamed
		}
	}
}

// rewire makes a reader of a float32 tensor read it in the precision it
// needs, adding one Cast per tensor the first time the other precision is
// needed.
func (f *fp16) rewire(u use, half bool) {
	name := u.node.GetInput()[u.input]
	if !f.isFloat32(name) || f.native[name] == half {
		return
	}
	other, ok := f.other[name]
	if !ok {
		other = f.ix.fresh(name + map[bool]string{true: "_fp16", false: "_fp32"}[half])
		to := onnx.Float
		if half {
			to = onnx.Float16
		}
		cast := newNode("Cast", "", f.ix.fresh(name+"_Cast"), []string{name}, []string{other}, onnx.AttrInt("to", int64(to)))
		switch p := f.ix.producer[name]; {
		case p != nil:
			f.e.after[p] = append(f.e.after[p], cast) // a Constant in a subgraph casts there
		case f.halfConsts[name] != nil:
			f.e.front[f.halfConsts[name]] = append(f.e.front[f.halfConsts[name]], cast)
		default:
			f.e.front[f.main] = append(f.e.front[f.main], cast)
		}
		f.other[name] = other
	}
	u.node.Input[u.input] = other
}

func setElemType(vi *onnxpb.ValueInfoProto, t onnx.DataType) {
	if tt := vi.GetType().GetTensorType(); tt != nil {
		v := int32(t)
		tt.ElemType = &v
	}
}

func setAttrInt(n *onnxpb.NodeProto, name string, v int64) {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			a.I = &v
			return
		}
	}
	n.Attribute = append(n.Attribute, onnx.AttrInt(name, v))
}

// setConstantOfShapeHalf makes a ConstantOfShape fill with float16 (its
// default value is float32 zero).
func setConstantOfShapeHalf(n *onnxpb.NodeProto) {
	val := float32(0)
	for _, a := range n.GetAttribute() {
		if a.GetName() == "value" && a.GetT() != nil {
			if t, err := onnx.TensorFromProto(a.GetT()); err == nil {
				if v, err := t.Float32s(); err == nil && len(v) == 1 {
					val = v[0]
				}
			}
			tp, err := onnx.TensorToProto(onnx.NewTensor([]int64{1}, toFloat16([]float32{val})), "")
			if err == nil {
				tp.Name = nil
				a.T = tp
			}
			return
		}
	}
	tp, err := onnx.TensorToProto(onnx.NewTensor([]int64{1}, toFloat16([]float32{val})), "")
	if err != nil {
		panic(fmt.Sprintf("float16 tensor: %v", err))
	}
	tp.Name = nil
	n.Attribute = append(n.Attribute, onnx.AttrTensor("value", tp))
}
