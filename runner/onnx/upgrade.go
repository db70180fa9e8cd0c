package onnx

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// Opsets UpgradeOpset converts between, for the default (ai.onnx) domain.
const (
	MinUpgradeOpset = 6
	MaxUpgradeOpset = 21
)

// RefusalError lists the nodes UpgradeOpset cannot convert. The model is
// left unchanged.
type RefusalError struct {
	From, To int64
	Nodes    []Refusal
}

// Refusal is one node that cannot be upgraded, and why.
type Refusal struct {
	Graph, Node, OpType string
	Reason              string
}

func (e *RefusalError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cannot upgrade from opset %d to %d:", e.From, e.To)
	for _, r := range e.Nodes {
		where := r.Node
		if r.Graph != "" {
			where = r.Graph + "/" + r.Node
		}
		fmt.Fprintf(&b, "\n  %s node %s: %s", r.OpType, where, r.Reason)
	}
	return b.String()
}

// UpgradeOpset rewrites the model for a newer default-domain opset:
// operators whose inputs or attributes changed between the versions are
// rewritten (attributes that became inputs, renamed or replaced operators,
// changed semantics made explicit), in every graph and subgraph, and the
// opset import and IR version are raised. Other domains are left alone.
// When some node cannot be converted, nothing changes and the error is a
// *RefusalError naming every such node.
func (m *Model) UpgradeOpset(target int64) error {
	from := m.Opset("")
	switch {
	case from == 0:
		return fmt.Errorf("%s: the model imports no default-domain (ai.onnx) opset", m.label())
	case from == target:
		return nil
	case from < MinUpgradeOpset:
		return fmt.Errorf("%s: opset %d is older than %d, the oldest UpgradeOpset converts from", m.label(), from, MinUpgradeOpset)
	case target < from:
		return fmt.Errorf("%s: target opset %d is older than the model's opset %d: downgrades are not supported", m.label(), target, from)
	case target > MaxUpgradeOpset:
		return fmt.Errorf("%s: target opset %d is past %d, the newest UpgradeOpset converts to", m.label(), target, MaxUpgradeOpset)
	}
	work := m.Clone()
	refusals := work.upgradeGraphs(from, target)
	if len(refusals) > 0 {
		return &RefusalError{From: from, To: target, Nodes: refusals}
	}
	work.SetOpset("", target)
	work.RaiseIRVersion(IRVersionForOpset(target))
	m.Proto, m.external, m.names = work.Proto, work.external, nil
	return nil
}

// upgrade is the state of one node's conversion.
type upgrade struct {
	m      *Model
	g      *GraphRef
	node   *onnxpb.NodeProto
	label  string
	from   int64
	target int64
	// upsample is set when the node started as an Upsample, whose scales
	// are >= 1 by definition.
	upsample bool
}

type adapter struct {
	op string
	at int64 // the opset whose version of op differs from the one before
	fn func(u *upgrade) error
}

// adapters lists the breaking operator changes from opset 7 to 21, in the
// order they happened; each rewrites a node from the old form to the new.
var adapters = []adapter{
	{"Add", 7, broadcastAttrs},
	{"Sub", 7, broadcastAttrs},
	{"Mul", 7, broadcastAttrs},
	{"Div", 7, broadcastAttrs},
	{"Pow", 7, broadcastAttrs},
	{"And", 7, broadcastAttrs},
	{"Or", 7, broadcastAttrs},
	{"Xor", 7, broadcastAttrs},
	{"Equal", 7, broadcastAttrs},
	{"Greater", 7, broadcastAttrs},
	{"Less", 7, broadcastAttrs},
	{"Gemm", 7, dropAttrs("broadcast")},
	{"BatchNormalization", 7, dropAttrs("is_test")},
	{"Dropout", 7, dropAttrs("is_test")},
	{"RNN", 7, dropAttrs("output_sequence")},
	{"GRU", 7, dropAttrs("output_sequence")},
	{"LSTM", 7, dropAttrs("output_sequence")},
	{"Upsample", 7, upsampleScaleAttrs},
	{"Scan", 9, refuse("Scan-8 has batch-major inputs and sequence_lens; its conversion to Scan-9 is not supported")},
	{"Upsample", 9, scalesAttrToInput},
	{"BatchNormalization", 9, batchNormSpatial},
	{"Slice", 10, sliceAttrsToInputs},
	{"TopK", 10, topKToInput},
	{"Dropout", 10, dropoutMask},
	{"Upsample", 10, upsampleToResize},
	{"ImageScaler", 10, imageScalerToMulAdd},
	{"Clip", 11, clipAttrsToInputs},
	{"Pad", 11, padAttrsToInputs},
	{"Resize", 11, resize10To11},
	{"Scatter", 11, scatterToScatterElements},
	{"Dropout", 12, dropoutRatioToInput},
	{"Squeeze", 13, axesToInput(false)},
	{"Unsqueeze", 13, axesToInput(false)},
	{"ReduceSum", 13, axesToInput(true)},
	{"Split", 13, splitToInput},
	{"Softmax", 13, softmaxAxis},
	{"LogSoftmax", 13, softmaxAxis},
	{"Hardmax", 13, softmaxAxis},
	{"Resize", 13, resize11To13},
	{"BatchNormalization", 14, batchNormOutputs},
	{"RoiAlign", 16, roiAlignMode},
	{"ReduceMax", 18, axesToInput(true)},
	{"ReduceMin", 18, axesToInput(true)},
	{"ReduceMean", 18, axesToInput(true)},
	{"ReduceProd", 18, axesToInput(true)},
	{"ReduceL1", 18, axesToInput(true)},
	{"ReduceL2", 18, axesToInput(true)},
	{"ReduceLogSum", 18, axesToInput(true)},
	{"ReduceLogSumExp", 18, axesToInput(true)},
	{"ReduceSumSquare", 18, axesToInput(true)},
	{"Split", 18, splitNumOutputs},
	{"GridSample", 20, gridSampleModes},
	{"DFT", 20, dftAxisToInput},
	{"GroupNormalization", 21, groupNormPerChannel},
}

// removed are experimental operators of old opsets that no later opset has.
var removed = map[string]bool{
	"Affine": true, "Crop": true, "ConstantFill": true, "DynamicSlice": true, "GivenTensorFill": true,
	"GRUUnit": true, "ParametricSoftplus": true, "Scale": true, "ScaledTanh": true,
}

// deprecated operators are replaced whenever they appear, whatever the
// model's opset: Upsample by Resize (from 10), Scatter by ScatterElements
// (from 11).
var deprecated = map[string]int64{"Upsample": 10, "Scatter": 11}

func (m *Model) upgradeGraphs(from, target int64) []Refusal {
	var refusals []Refusal
	for _, ref := range m.Graphs() {
		ref := ref
		nodes := append([]*onnxpb.NodeProto{}, ref.Graph.GetNode()...)
		changed := false
		for i, n := range nodes {
			if !IsDefaultDomain(n.GetDomain()) {
				continue
			}
			u := &upgrade{m: m, g: &ref, node: n, label: NodeLabel(n, i), from: from, target: target}
			if removed[n.GetOpType()] {
				refusals = append(refusals, u.refusal(fmt.Sprintf("%s is an experimental operator that no opset after 9 has", n.GetOpType())))
				continue
			}
			for _, a := range adapters {
				if n.GetOpType() != a.op || a.at > target {
					continue
				}
				if a.at <= from && !(deprecated[a.op] != 0 && a.at == deprecated[a.op]) {
					continue
				}
				if err := a.fn(u); err != nil {
					refusals = append(refusals, u.refusal(err.Error()))
					break
				}
				changed = true
			}
		}
		if changed {
			if err := TopoSort(ref.Graph); err != nil {
				refusals = append(refusals, Refusal{Graph: ref.Path, Node: "-", OpType: "-", Reason: err.Error()})
			}
		}
	}
	return refusals
}

func (u *upgrade) refusal(reason string) Refusal {
	return Refusal{Graph: u.g.Path, Node: u.label, OpType: u.node.GetOpType(),
		Reason: fmt.Sprintf("%s (from opset %d to %d)", reason, u.from, u.target)}
}

func refuse(reason string) func(*upgrade) error {
	return func(*upgrade) error { return errors.New(reason) }
}

// takeAttr removes and returns the attribute name (nil when absent).
func (u *upgrade) takeAttr(name string) *onnxpb.AttributeProto {
	n := u.node
	for i, a := range n.GetAttribute() {
		if a.GetName() == name {
			n.Attribute = append(n.Attribute[:i], n.Attribute[i+1:]...)
			return a
		}
	}
	return nil
}

func (u *upgrade) attr(name string) *onnxpb.AttributeProto {
	for _, a := range u.node.GetAttribute() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

func (u *upgrade) setAttr(a *onnxpb.AttributeProto) {
	u.takeAttr(a.GetName())
	u.node.Attribute = append(u.node.Attribute, a)
}

// setInput sets input i, padding skipped optional inputs with "".
func (u *upgrade) setInput(i int, name string) {
	for len(u.node.Input) <= i {
		u.node.Input = append(u.node.Input, "")
	}
	u.node.Input[i] = name
}

// constant adds t as an initializer of the node's graph.
func (u *upgrade) constant(suffix string, t *Tensor) (string, error) {
	return u.m.AddInitializer(u.g.Graph, u.nodeBase()+"_"+suffix, t)
}

func (u *upgrade) ints(suffix string, v []int64) (string, error) {
	return u.constant(suffix, NewTensor([]int64{int64(len(v))}, v))
}

func (u *upgrade) nodeBase() string {
	if u.node.GetName() != "" {
		return u.node.GetName()
	}
	if len(u.node.GetOutput()) > 0 {
		return u.node.GetOutput()[0]
	}
	return u.node.GetOpType()
}

// addNode appends a new node; TopoSort puts it in place afterwards.
func (u *upgrade) addNode(op string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	out := u.m.UniqueName(u.nodeBase() + "_" + strings.ToLower(op))
	u.g.Graph.Node = append(u.g.Graph.Node, NewNode(op, out, inputs, []string{out}, attrs...))
	return out
}

// scalarLike makes a scalar of value v with the element type of tensor x:
// a constant of x's declared type when the graph declares it, else a FLOAT
// constant cast to x's type at run time (CastLike, opset 15+).
func (u *upgrade) scalarLike(suffix string, v float32, x string) (string, error) {
	dt := u.elemType(x)
	if dt == Undefined && u.target < 15 {
		dt = Float
	}
	if dt != Undefined {
		t, err := FromFloat32s(dt, []int64{}, []float32{v})
		if err != nil {
			return "", err
		}
		return u.constant(suffix, t)
	}
	c, err := u.constant(suffix, NewTensor([]int64{}, []float32{v}))
	if err != nil {
		return "", err
	}
	return u.addNode("CastLike", []string{c, x}), nil
}

// elemType is the declared element type of name in the node's graph or an
// enclosing graph; Undefined when nothing declares it.
func (u *upgrade) elemType(name string) DataType {
	for _, ref := range u.m.Graphs() {
		g := ref.Graph
		if g != u.g.Graph && !u.encloses(g) {
			continue
		}
		if v := FindValueInfo(g, name); v != nil && v.GetType().GetTensorType() != nil {
			return DataType(v.GetType().GetTensorType().GetElemType())
		}
		for _, t := range g.GetInitializer() {
			if t.GetName() == name {
				return DataType(t.GetDataType())
			}
		}
	}
	return Undefined
}

// encloses reports whether g is an ancestor of the node's graph.
func (u *upgrade) encloses(g *onnxpb.GraphProto) bool {
	parents := map[*onnxpb.GraphProto]*onnxpb.GraphProto{}
	for _, ref := range u.m.Graphs() {
		parents[ref.Graph] = ref.Parent
	}
	for p := parents[u.g.Graph]; p != nil; p = parents[p] {
		if p == g {
			return true
		}
	}
	return false
}

// constValue returns the value of name when it is an initializer or a
// Constant node's output in the node's graph or an enclosing one.
func (u *upgrade) constValue(name string) *Tensor {
	for _, w := range u.m.Weights() {
		if w.Name == name && (w.Graph.Graph == u.g.Graph || u.encloses(w.Graph.Graph)) {
			if t, err := w.Tensor(); err == nil {
				return t
			}
		}
	}
	return nil
}

// --- adapters, in opset order ---

// broadcastAttrs: before opset 7 binary operators broadcast only with
// broadcast=1, aligning B with A at axis (default: trailing dims); from 7
// they broadcast numpy-style, aligning trailing dims. An explicit axis is
// kept by giving B trailing 1-dims, computed from the ranks at run time when
// they are not declared.
func broadcastAttrs(u *upgrade) error {
	b := u.takeAttr("broadcast")
	axis := u.takeAttr("axis")
	if b == nil || b.GetI() == 0 || axis == nil {
		return nil
	}
	n := u.node
	if len(n.GetInput()) != 2 {
		return errors.New("a broadcasting binary operator needs two inputs")
	}
	x, y := n.Input[0], n.Input[1]
	rankX, rankY := u.rank(x), u.rank(y)
	if c := u.constValue(y); c != nil {
		rankY = int64(len(c.Dims))
	}
	if rankX > 0 && rankY > 0 {
		k := rankX - axis.GetI() - rankY
		if k < 0 {
			return fmt.Errorf("axis %d with ranks %d and %d does not align B inside A", axis.GetI(), rankX, rankY)
		}
		if k == 0 {
			return nil
		}
		axes := make([]int64, k)
		for i := range axes {
			axes[i] = rankY + int64(i)
		}
		if u.target < 13 { // axes became an input at 13
			n.Input[1] = u.addNode("Unsqueeze", []string{y}, AttrInts("axes", axes...))
			return nil
		}
		name, err := u.ints("axes", axes)
		if err != nil {
			return err
		}
		n.Input[1] = u.addNode("Unsqueeze", []string{y, name})
		return nil
	}
	// k = rank(A) - axis - rank(B) ones appended to B's shape.
	rx := u.addNode("Shape", []string{u.addNode("Shape", []string{x})})
	ry := u.addNode("Shape", []string{u.addNode("Shape", []string{y})})
	ax, err := u.ints("axis", []int64{axis.GetI()})
	if err != nil {
		return err
	}
	k := u.addNode("Sub", []string{u.addNode("Sub", []string{rx, ax}), ry})
	// k ones: Tile of [1], which every target opset has (ConstantOfShape
	// arrived at 9).
	one, err := u.ints("one", []int64{1})
	if err != nil {
		return err
	}
	ones := u.addNode("Tile", []string{one, k})
	shape := u.addNode("Concat", []string{u.addNode("Shape", []string{y}), ones}, AttrInt("axis", 0))
	n.Input[1] = u.addNode("Reshape", []string{y, shape})
	return nil
}

// dropAttrs removes attributes a new version no longer has, where the
// remaining behaviour is the same (is_test, output_sequence, broadcast of
// Gemm's C).
func dropAttrs(names ...string) func(*upgrade) error {
	return func(u *upgrade) error {
		for _, name := range names {
			u.takeAttr(name)
		}
		return nil
	}
}

// upsampleScaleAttrs: experimental Upsample-1 took height_scale and
// width_scale of NCHW input; Upsample-7 takes scales for every dim.
func upsampleScaleAttrs(u *upgrade) error {
	h, w := u.takeAttr("height_scale"), u.takeAttr("width_scale")
	if h == nil && w == nil {
		return nil // already the opset-7 form
	}
	if h == nil || w == nil {
		return errors.New("Upsample-1 needs both height_scale and width_scale")
	}
	u.setAttr(AttrFloats("scales", 1, 1, h.GetF(), w.GetF()))
	if a := u.attr("mode"); a != nil && string(a.GetS()) == "bilinear" {
		a.S = []byte("linear")
	}
	return nil
}

// scalesAttrToInput: Upsample-9 takes scales as an input.
func scalesAttrToInput(u *upgrade) error {
	a := u.takeAttr("scales")
	if a == nil {
		return errors.New("Upsample-7 has no scales attribute")
	}
	name, err := u.constant("scales", NewTensor([]int64{int64(len(a.GetFloats()))}, append([]float32{}, a.GetFloats()...)))
	if err != nil {
		return err
	}
	u.setInput(1, name)
	return nil
}

// batchNormSpatial: BatchNormalization-9 drops spatial (always spatial).
func batchNormSpatial(u *upgrade) error {
	if a := u.takeAttr("spatial"); a != nil && a.GetI() == 0 {
		return errors.New("spatial=0 (per-activation statistics) has no equivalent after opset 8")
	}
	return nil
}

// sliceAttrsToInputs: Slice-10 takes starts, ends and axes as inputs.
func sliceAttrsToInputs(u *upgrade) error {
	for i, attr := range []string{"starts", "ends", "axes"} {
		a := u.takeAttr(attr)
		if a == nil {
			if attr == "axes" {
				continue
			}
			return fmt.Errorf("Slice-1 has no %s attribute", attr)
		}
		name, err := u.ints(attr, a.GetInts())
		if err != nil {
			return err
		}
		u.setInput(i+1, name)
	}
	return nil
}

// topKToInput: TopK-10 takes k as a 1-element input.
func topKToInput(u *upgrade) error {
	a := u.takeAttr("k")
	if a == nil {
		return errors.New("TopK-1 has no k attribute")
	}
	name, err := u.ints("k", []int64{a.GetI()})
	if err != nil {
		return err
	}
	u.setInput(1, name)
	return nil
}

// dropoutMask: the mask output became BOOL at opset 10; a model that reads
// the old float mask cannot be converted. An unread mask is dropped.
func dropoutMask(u *upgrade) error {
	n := u.node
	if len(n.GetOutput()) < 2 || n.Output[1] == "" {
		return nil
	}
	if len(IndexGraph(u.g.Graph, "").Consumers[n.Output[1]]) > 0 || FindValueInfo(u.g.Graph, n.Output[1]) != nil && isGraphOutput(u.g.Graph, n.Output[1]) {
		return errors.New("the mask output is read, and its type changed from the data type to BOOL at opset 10")
	}
	n.Output = n.Output[:1]
	return nil
}

func isGraphOutput(g *onnxpb.GraphProto, name string) bool {
	for _, o := range g.GetOutput() {
		if o.GetName() == name {
			return true
		}
	}
	return false
}

// upsampleToResize: Upsample is deprecated at opset 10; Resize-10 takes the
// same inputs (X, scales) and mode.
func upsampleToResize(u *upgrade) error {
	if len(u.node.GetInput()) < 2 {
		return errors.New("Upsample has no scales input")
	}
	u.node.OpType = proto.String("Resize")
	u.upsample = true
	if a := u.attr("mode"); a != nil && string(a.GetS()) == "bilinear" {
		a.S = []byte("linear")
	}
	if u.from >= 11 {
		// The node was an Upsample in an opset-11+ model: finish the job of
		// the Resize 10->11 adapter, which runs only when crossing 11.
		return resize10To11(u)
	}
	return nil
}

// imageScalerToMulAdd: ImageScaler (experimental until opset 9) becomes
// y = x * scale + bias[c].
func imageScalerToMulAdd(u *upgrade) error {
	n := u.node
	scale := float32(1)
	if a := u.attr("scale"); a != nil {
		scale = a.GetF()
	}
	var bias []float32
	if a := u.attr("bias"); a != nil {
		bias = a.GetFloats()
	}
	s, err := u.constant("scale", NewTensor([]int64{}, []float32{scale}))
	if err != nil {
		return err
	}
	b, err := u.constant("bias", NewTensor([]int64{int64(len(bias)), 1, 1}, append([]float32{}, bias...)))
	if err != nil {
		return err
	}
	scaled := u.addNode("Mul", []string{n.Input[0], s})
	*n = onnxpb.NodeProto{Name: n.Name, OpType: proto.String("Add"), Input: []string{scaled, b}, Output: n.Output}
	return nil
}

// clipAttrsToInputs: Clip-11 takes min and max as inputs.
func clipAttrsToInputs(u *upgrade) error {
	for i, attr := range []string{"min", "max"} {
		a := u.takeAttr(attr)
		if a == nil {
			continue
		}
		name, err := u.scalarLike(attr, a.GetF(), u.node.Input[0])
		if err != nil {
			return err
		}
		u.setInput(i+1, name)
	}
	return nil
}

// padAttrsToInputs: Pad-11 takes pads and constant_value as inputs.
func padAttrsToInputs(u *upgrade) error {
	a := u.takeAttr("pads")
	if a == nil {
		return errors.New("Pad-2 has no pads attribute")
	}
	pads, err := u.ints("pads", a.GetInts())
	if err != nil {
		return err
	}
	u.setInput(1, pads)
	if v := u.takeAttr("value"); v != nil && v.GetF() != 0 {
		name, err := u.scalarLike("value", v.GetF(), u.node.Input[0])
		if err != nil {
			return err
		}
		u.setInput(2, name)
	}
	return nil
}

// resize10To11: Resize-11 takes (X, roi, scales) and coordinate modes.
// Resize-10 (like Upsample) maps output to input coordinates as x/scale
// (asymmetric) and picks nearest pixels by truncation when upsampling and
// rounding up when downsampling.
func resize10To11(u *upgrade) error {
	n := u.node
	scales := n.Input[1]
	mode := "nearest"
	if a := u.attr("mode"); a != nil {
		mode = string(a.GetS())
	}
	if mode == "nearest" && u.upsample {
		u.setAttr(AttrString("nearest_mode", "floor"))
	} else if mode == "nearest" {
		s := u.constValue(scales)
		f, err := (&Tensor{}).Float32s()
		if s != nil {
			f, err = s.Float32s()
		}
		if s == nil || err != nil {
			return errors.New("nearest resize with scales that are not constant: the rounding of opset 10 depends on them")
		}
		up, down := true, true
		for _, v := range f {
			up = up && v >= 1
			down = down && v <= 1
		}
		switch {
		case up:
			u.setAttr(AttrString("nearest_mode", "floor"))
		case down:
			u.setAttr(AttrString("nearest_mode", "ceil"))
		default:
			return fmt.Errorf("nearest resize with scales %v both up- and down-sampling: opset 10 rounds them differently", f)
		}
	}
	roi := ""
	if u.target < 13 {
		var err error
		if roi, err = u.constant("roi", NewTensor([]int64{0}, []float32{})); err != nil {
			return err
		}
	}
	n.Input = []string{n.Input[0], roi, scales}
	u.setAttr(AttrString("coordinate_transformation_mode", "asymmetric"))
	return nil
}

// resize11To13: opset 13 dropped the tf_half_pixel_for_nn mode.
func resize11To13(u *upgrade) error {
	if a := u.attr("coordinate_transformation_mode"); a != nil && string(a.GetS()) == "tf_half_pixel_for_nn" {
		return errors.New("coordinate_transformation_mode tf_half_pixel_for_nn was removed at opset 13")
	}
	return nil
}

// scatterToScatterElements: Scatter is deprecated at 11 for the identical
// ScatterElements.
func scatterToScatterElements(u *upgrade) error {
	u.node.OpType = proto.String("ScatterElements")
	return nil
}

// dropoutRatioToInput: Dropout-12 takes ratio as an input.
func dropoutRatioToInput(u *upgrade) error {
	u.takeAttr("seed")
	a := u.takeAttr("ratio")
	if a == nil {
		return nil
	}
	name, err := u.constant("ratio", NewTensor([]int64{}, []float32{a.GetF()}))
	if err != nil {
		return err
	}
	u.setInput(1, name)
	return nil
}

// axesToInput: Squeeze, Unsqueeze and ReduceSum (13) and the other Reduce
// operators (18) take axes as an input.
func axesToInput(reduce bool) func(*upgrade) error {
	return func(u *upgrade) error {
		a := u.takeAttr("axes")
		if a == nil {
			if u.node.GetOpType() == "Unsqueeze" {
				return errors.New("Unsqueeze has no axes attribute")
			}
			return nil // all axes, the default either way
		}
		name, err := u.ints("axes", a.GetInts())
		if err != nil {
			return err
		}
		u.setInput(1, name)
		return nil
	}
}

// splitToInput: Split-13 takes split as an input.
func splitToInput(u *upgrade) error {
	a := u.takeAttr("split")
	if a == nil {
		return nil
	}
	name, err := u.ints("split", a.GetInts())
	if err != nil {
		return err
	}
	u.setInput(1, name)
	return nil
}

// splitNumOutputs: Split-18 wants num_outputs when split is not given.
func splitNumOutputs(u *upgrade) error {
	if len(u.node.GetInput()) > 1 && u.node.Input[1] != "" {
		return nil
	}
	if u.attr("num_outputs") == nil {
		u.setAttr(AttrInt("num_outputs", int64(len(u.node.GetOutput()))))
	}
	return nil
}

// softmaxAxis: before 13 Softmax, LogSoftmax and Hardmax flattened the
// input to 2-D at axis and normalized whole rows; from 13 they normalize
// along one axis. The same result comes from Flatten, the new operator on
// the last axis, and a Reshape back, unless axis is already the last one.
func softmaxAxis(u *upgrade) error {
	n := u.node
	axis := int64(1)
	if a := u.takeAttr("axis"); a != nil {
		axis = a.GetI()
	}
	if rank := u.rank(n.Input[0]); rank > 0 && (axis == rank-1 || axis == -1) {
		u.setAttr(AttrInt("axis", -1))
		return nil
	}
	x := n.Input[0]
	shape := u.addNode("Shape", []string{x})
	flat := u.addNode("Flatten", []string{x}, AttrInt("axis", axis))
	out := n.Output[0]
	inner := u.m.UniqueName(out + "_2d")
	n.Input[0], n.Output[0] = flat, inner
	u.setAttr(AttrInt("axis", -1))
	u.g.Graph.Node = append(u.g.Graph.Node, NewNode("Reshape", u.m.UniqueName(out+"_reshape"), []string{inner, shape}, []string{out}))
	return nil
}

// rank is the declared rank of name, or 0 when unknown.
func (u *upgrade) rank(name string) int64 {
	if v := FindValueInfo(u.g.Graph, name); v != nil {
		if _, dims, _, ok := TensorType(v); ok {
			return int64(len(dims))
		}
	}
	return 0
}

// batchNormOutputs: from 14 the optional outputs exist only in training
// mode; an inference model must not read them.
func batchNormOutputs(u *upgrade) error {
	n := u.node
	ix := IndexGraph(u.g.Graph, "")
	for _, o := range n.GetOutput()[1:] {
		if o != "" && (len(ix.Consumers[o]) > 0 || isGraphOutput(u.g.Graph, o)) {
			return fmt.Errorf("output %q (running statistics) is read; opset 14 produces it only in training mode", o)
		}
	}
	n.Output = n.Output[:1]
	return nil
}

// roiAlignMode: RoiAlign-16 added coordinate_transformation_mode with a new
// default; the old behaviour is output_half_pixel.
func roiAlignMode(u *upgrade) error {
	if u.attr("coordinate_transformation_mode") == nil {
		u.setAttr(AttrString("coordinate_transformation_mode", "output_half_pixel"))
	}
	return nil
}

// gridSampleModes: GridSample-20 renamed bilinear/bicubic to linear/cubic.
func gridSampleModes(u *upgrade) error {
	a := u.attr("mode")
	if a == nil {
		u.setAttr(AttrString("mode", "linear")) // the old default, bilinear
		return nil
	}
	switch string(a.GetS()) {
	case "bilinear":
		a.S = []byte("linear")
	case "bicubic":
		a.S = []byte("cubic")
	}
	return nil
}

// dftAxisToInput: DFT-20 takes axis as an input (and its default changed
// from 1 to -2, so the old value is always written).
func dftAxisToInput(u *upgrade) error {
	axis := int64(1)
	if a := u.takeAttr("axis"); a != nil {
		axis = a.GetI()
	}
	name, err := u.constant("axis", NewTensor([]int64{}, []int64{axis}))
	if err != nil {
		return err
	}
	u.setInput(2, name)
	return nil
}

// groupNormPerChannel: GroupNormalization-21 takes scale and bias per
// channel instead of per group: repeat each group's value C/groups times.
func groupNormPerChannel(u *upgrade) error {
	n := u.node
	g := u.attr("num_groups")
	if g == nil || len(n.GetInput()) < 3 {
		return errors.New("GroupNormalization-18 needs num_groups, scale and bias")
	}
	c := u.addNode("Shape", []string{n.Input[0]}, AttrInt("start", 1), AttrInt("end", 2))
	groups, err := u.ints("groups", []int64{g.GetI()})
	if err != nil {
		return err
	}
	perGroup := u.addNode("Div", []string{c, groups})
	one, err := u.ints("one", []int64{1})
	if err != nil {
		return err
	}
	expandShape := u.addNode("Concat", []string{one, perGroup}, AttrInt("axis", 0))
	col, err := u.ints("col", []int64{-1, 1})
	if err != nil {
		return err
	}
	flat, err := u.ints("flat", []int64{-1})
	if err != nil {
		return err
	}
	for i := 1; i <= 2; i++ {
		r := u.addNode("Reshape", []string{n.Input[i], col})
		e := u.addNode("Expand", []string{r, expandShape})
		n.Input[i] = u.addNode("Reshape", []string{e, flat})
	}
	return nil
}
