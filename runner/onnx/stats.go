package onnx

import (
	"fmt"
	"sort"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// Stats summarizes a model.
type Stats struct {
	IRVersion int64
	// Opset is the default-domain (ai.onnx) opset; Opsets has every domain.
	Opset           int64
	Opsets          map[string]int64
	Producer        string
	ProducerVersion string
	Inputs          []ValueStats // graph inputs that are not initializers
	Outputs         []ValueStats
	// Ops counts nodes by operator in every graph, subgraphs included;
	// operators of other domains are keyed "domain:OpType".
	Ops   map[string]int
	Nodes int
	// Params counts the elements of every floating-point weight (8- and
	// 4-bit floats included, their zeros told by bit pattern); NonZero
	// those that are not zero. Sparsity is 1 - NonZero/Params.
	Params   int64
	NonZero  int64
	Sparsity float64
	// QuantizedParams counts the elements of integer (and 8- or 4-bit
	// float) weights that DequantizeLinear turns back into floats
	// (QDQ-quantized weights).
	QuantizedParams int64
	// WeightBytes is the storage of all weight data (sparse weights as
	// stored); ModelBytes the serialized model with its data inline.
	WeightBytes int64
	ModelBytes  int64
}

// ValueStats is a graph input or output: element type and shape, with
// dynamic dimensions by name ("?" when unnamed).
type ValueStats struct {
	Name  string
	DType string
	Shape []string
}

// Stats measures the model. It checks every tensor first, as Load does,
// so a model built or edited in memory is measured only if it is valid.
func (m *Model) Stats() (*Stats, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	g := m.Proto.GetGraph()
	s := &Stats{
		IRVersion:       m.Proto.GetIrVersion(),
		Opset:           m.Opset(""),
		Opsets:          map[string]int64{},
		Producer:        m.Proto.GetProducerName(),
		ProducerVersion: m.Proto.GetProducerVersion(),
		Ops:             map[string]int{},
		ModelBytes:      int64(proto.Size(m.Proto)),
	}
	for _, o := range m.Proto.GetOpsetImport() {
		s.Opsets[o.GetDomain()] = o.GetVersion()
	}
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	for _, t := range g.GetSparseInitializer() {
		inits[t.GetValues().GetName()] = true
	}
	for _, v := range g.GetInput() {
		if !inits[v.GetName()] {
			s.Inputs = append(s.Inputs, valueStats(v))
		}
	}
	for _, v := range g.GetOutput() {
		s.Outputs = append(s.Outputs, valueStats(v))
	}
	for _, ref := range m.Graphs() {
		for _, n := range ref.Graph.GetNode() {
			key := n.GetOpType()
			if !IsDefaultDomain(n.GetDomain()) {
				key = n.GetDomain() + ":" + key
			}
			s.Ops[key]++
			s.Nodes++
		}
	}
	if err := m.countWeights(s); err != nil {
		return nil, err
	}
	if s.Params > 0 {
		s.Sparsity = 1 - float64(s.NonZero)/float64(s.Params)
	}
	return s, nil
}

func (m *Model) countWeights(s *Stats) error {
	for _, w := range m.Weights() {
		s.WeightBytes += int64(w.storedBytes())
		n := int64(w.NumElements())
		switch {
		case bitFloat(w.DType) && dequantized(w):
			s.QuantizedParams += n // FP8 QDQ: quantized, as INT8 is
		case IsFloat(w.DType):
			s.Params += n
			nz, err := w.nonZero()
			if err != nil {
				return err
			}
			s.NonZero += nz
		case IsInteger(w.DType) && dequantized(w):
			s.QuantizedParams += n
		}
	}
	return nil
}

func dequantized(w *Weight) bool {
	for _, u := range w.Uses {
		if u.OpType() == "DequantizeLinear" && u.Input == 0 {
			return true
		}
	}
	return false
}

// storedBytes is the size of the weight's data as stored.
func (w *Weight) storedBytes() int {
	if w.sparse != nil {
		return tensorBytes(w.sparse.GetValues()) + tensorBytes(w.sparse.GetIndices())
	}
	if w.tp != nil {
		return tensorBytes(w.tp)
	}
	return ByteSize(w.DType, w.NumElements())
}

func tensorBytes(tp *onnxpb.TensorProto) int {
	if DataType(tp.GetDataType()) == String {
		n := 0
		for _, s := range tp.GetStringData() {
			n += len(s)
		}
		return n
	}
	return ByteSize(DataType(tp.GetDataType()), NumElements(tp.GetDims()))
}

// nonZero counts the weight's elements that are not zero.
func (w *Weight) nonZero() (int64, error) {
	if w.sparse != nil {
		// Stored values may include explicit zeros.
		t, err := TensorFromProto(w.sparse.GetValues())
		if err != nil {
			return 0, fmt.Errorf("weight %q: %w", w.Name, err)
		}
		return countNonZero(t)
	}
	t, err := w.Tensor()
	if err != nil {
		return 0, err
	}
	return countNonZero(t)
}

func countNonZero(t *Tensor) (int64, error) {
	if bitFloat(t.DType) {
		return countNonZeroBits(t)
	}
	f, err := t.Float32s()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, v := range f {
		if v != 0 {
			n++
		}
	}
	return n, nil
}

// bitFloat reports the 8- and 4-bit float types, which tensors hold as
// bit patterns (one a byte) and Float32s does not read.
func bitFloat(t DataType) bool {
	switch t {
	case Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ, Float8E8M0, Float4E2M1:
		return true
	}
	return false
}

// countNonZeroBits counts the elements of an 8- or 4-bit float tensor
// that are not zero, by bit pattern: +0 is all zero bits, -0 the sign bit
// alone in the formats that have it (not the FNUZ ones, where it is
// NaN); FLOAT8E8M0 (a power of two) has no zero. NaNs count as non-zero,
// as they do for wider floats.
func countNonZeroBits(t *Tensor) (int64, error) {
	bits, ok := t.Data.([]uint8)
	if !ok {
		return 0, fmt.Errorf("%v tensor holds %T, expected []uint8 bit patterns", t.DType, t.Data)
	}
	negZero := -1
	switch t.DType {
	case Float8E4M3FN, Float8E5M2:
		negZero = 0x80
	case Float4E2M1:
		negZero = 0x8
	case Float8E8M0:
		return int64(len(bits)), nil
	}
	var n int64
	for _, b := range bits {
		if b != 0 && int(b) != negZero {
			n++
		}
	}
	return n, nil
}

func valueStats(v *onnxpb.ValueInfoProto) ValueStats {
	vs := ValueStats{Name: v.GetName()}
	dt, dims, params, ok := TensorType(v)
	if v.GetType().GetTensorType() == nil {
		vs.DType = "non-tensor"
		return vs
	}
	vs.DType = dt.String()
	if !ok {
		return vs
	}
	vs.Shape = make([]string, len(dims))
	for i, d := range dims {
		switch {
		case d >= 0:
			vs.Shape[i] = strconv.FormatInt(d, 10)
		case params[i] != "":
			vs.Shape[i] = params[i]
		default:
			vs.Shape[i] = "?"
		}
	}
	return vs
}

// ExposeOutputs returns a copy of the model whose main graph also outputs
// the named intermediate tensors, so a run shows their values and shapes
// (e.g. to count multiply-accumulates). Declared types are taken from the
// graph's value_info; tensors without one are declared by name only, which
// ONNX Runtime accepts.
func (m *Model) ExposeOutputs(names []string) (*Model, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: ExposeOutputs needs at least one tensor name", m.label())
	}
	c := m.Clone()
	g := c.Proto.GetGraph()
	ix := IndexGraph(g, "")
	var unknown []string
	for _, name := range names {
		if ix.Output[name] != nil {
			continue
		}
		if ix.Producer[name] == nil && ix.Input[name] == nil && ix.Initializer[name] == nil {
			unknown = append(unknown, name)
			continue
		}
		vi := &onnxpb.ValueInfoProto{Name: proto.String(name)}
		if known := ix.ValueInfo[name]; known != nil {
			vi = proto.Clone(known).(*onnxpb.ValueInfoProto)
		}
		g.Output = append(g.Output, vi)
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("%s: ExposeOutputs: the main graph has no tensors named %q", m.label(), unknown)
	}
	return c, nil
}
