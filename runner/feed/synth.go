package feed

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/kompress/kompress/runner/fault"
	"github.com/kompress/kompress/runner/onnx"
)

// DefaultDynamicDim replaces dynamic dimensions other than the batch of
// synthesized inputs (3x320x320 for an image model taking [N,3,H,W]: 320
// keeps the strides of detection networks whole).
const DefaultDynamicDim = 320

// Spec says how one input's synthetic values are made.
type Spec struct {
	// Shape is one sample's dims (batch excluded) for an input that takes
	// samples. For an input fed whole with every batch it is the whole
	// shape: [] for a scalar, or the declared rank when the input fixes
	// dimension 0 (a state [2,1,128]). Nil: the declared shape, dynamic
	// dimensions DefaultDynamicDim.
	Shape []int64
	// Value, when set, fills every element.
	Value *float64
	// Range, when set, draws values uniformly from [Range[0], Range[1])
	// (whole numbers for integer inputs). With neither, floats are drawn
	// from [0, 1) and integers and booleans are zero (random token ids
	// could be out of range).
	Range *[2]float64
}

// Synth describes synthetic data.
type Synth struct {
	// Specs gives, by input name, how to make an input's values; inputs
	// it does not name get the defaults.
	Specs map[string]Spec
	// Samples is how many samples are made (at least 1).
	Samples int
	// Input i (in graph order) draws from PCG(Seed, Stream+i): the same
	// model always sees the same values, so figures are comparable
	// between runs and between stages.
	Seed, Stream uint64
	// Field names Specs in errors ("Shapes", "inputShapes").
	Field string
}

// Synthesize makes deterministic data for every input: Samples samples
// for the inputs that take them, one tensor fed with every batch for
// scalars and for inputs whose Spec gives the whole shape.
func Synthesize(ins []Input, s Synth) (*Data, error) {
	d, err := synthesize(ins, s)
	return d, fault.BadInput(err)
}

func synthesize(ins []Input, s Synth) (*Data, error) {
	field := s.Field
	if field == "" {
		field = "Specs"
	}
	for name := range s.Specs {
		if _, ok := find(ins, name); !ok {
			return nil, fmt.Errorf("%s names input %q; the model's inputs are %q", field, name, Names(ins))
		}
	}
	n := max(s.Samples, 1)
	d := &Data{Name: "synthesized inputs", Synthesized: true, inputs: ins, feeds: make([]source, len(ins)), n: n}
	for i, in := range ins {
		spec := s.Specs[in.Name]
		dims, batched, err := synthDims(in, spec.Shape, spec.Shape != nil, field)
		if err != nil {
			return nil, err
		}
		if batched {
			dims = append([]int64{int64(n)}, dims...)
		}
		t, err := synthValues(in, spec, dims, rand.New(rand.NewPCG(s.Seed, s.Stream+uint64(i))), field)
		if err != nil {
			return nil, err
		}
		d.feeds[i] = source{array: "synthesized " + in.Name, t: t, batched: batched}
	}
	if !slices.ContainsFunc(d.feeds, func(s source) bool { return s.batched }) {
		d.n = 1
	}
	return d, nil
}

// synthDims is the shape of one synthesized sample of in (batched), or
// of the whole tensor fed with every batch.
func synthDims(in Input, given []int64, set bool, field string) ([]int64, bool, error) {
	if !set {
		given = nil
	}
	switch {
	case in.scalar():
		if len(given) != 0 {
			return nil, false, fmt.Errorf("%s[%q] is %v: input %q is a scalar", field, in.Name, given, in.Name)
		}
		return []int64{}, false, nil
	case in.Dims == nil && !set:
		return nil, false, fmt.Errorf("input %q declares no shape: give its sample dims (batch excluded) in %s", in.Name, field)
	case in.Dims == nil:
		return given, true, positive(in, given, field)
	case !set:
		dims := make([]int64, len(in.Dims)-1)
		for i, d := range in.Dims[1:] {
			dims[i] = d
			if d <= 0 {
				dims[i] = DefaultDynamicDim
			}
		}
		if isPast(in) {
			dims[pastAxis(in)-1] = 0 // the first step: no past (derive.go)
		}
		return dims, true, nil
	}
	whole := len(given) == len(in.Dims) && in.Dims[0] > 0
	want := in.Dims
	if !whole {
		if len(given) != len(in.Dims)-1 {
			return nil, false, fmt.Errorf("%s[%q] is %v: input %q has shape %v, expected %d sample dims (batch excluded)", field, in.Name, given, in.Name, in.Dims, len(in.Dims)-1)
		}
		want = in.Dims[1:]
	}
	if err := positive(in, given, field); err != nil {
		return nil, false, err
	}
	for i, d := range given {
		if want[i] >= 0 && want[i] != d {
			return nil, false, fmt.Errorf("%s[%q] is %v: input %q has the fixed shape %v", field, in.Name, given, in.Name, in.Dims)
		}
	}
	return given, !whole, nil
}

func positive(in Input, given []int64, field string) error {
	for _, d := range given {
		if d <= 0 {
			return fmt.Errorf("%s[%q] is %v: dims must be positive", field, in.Name, given)
		}
	}
	return nil
}

// synthValues fills a tensor of dims as spec says: floats (float32,
// converted to the input's type when fed) for float inputs and inputs of
// no declared type, int64 for integer and boolean inputs.
func synthValues(in Input, spec Spec, dims []int64, r *rand.Rand, field string) (*onnx.Tensor, error) {
	if spec.Value != nil && spec.Range != nil {
		return nil, fmt.Errorf("%s[%q] sets both a value and a range", field, in.Name)
	}
	if rg := spec.Range; rg != nil && !(rg[0] < rg[1]) {
		return nil, fmt.Errorf("%s[%q] has the range [%g, %g): it needs low < high", field, in.Name, rg[0], rg[1])
	}
	// The model's declared dims size these tensors, with nothing behind
	// them: a hostile shape must fail here, not overflow or exhaust memory.
	size, err := onnx.CountElements(dims)
	if err == nil && size > onnx.MaxDenseBytes/8 {
		err = fmt.Errorf("%d elements, more than the %d bytes a tensor without data may take", size, onnx.MaxDenseBytes)
	}
	if err != nil {
		return nil, fmt.Errorf("input %q would be synthesized at shape %v: %w; give a smaller shape in %s", in.Name, dims, err, field)
	}
	if in.DType == onnx.Undefined || onnx.IsFloat(in.DType) {
		vals := make([]float32, size)
		switch {
		case spec.Value != nil:
			for j := range vals {
				vals[j] = float32(*spec.Value)
			}
		case spec.Range != nil:
			lo, hi := spec.Range[0], spec.Range[1]
			for j := range vals {
				vals[j] = float32(lo + (hi-lo)*float64(r.Float32()))
			}
		default:
			for j := range vals {
				vals[j] = r.Float32()
			}
		}
		return onnx.NewTensor(dims, vals), nil
	}
	if !onnx.IsInteger(in.DType) && in.DType != onnx.Bool {
		return nil, fmt.Errorf("input %q takes %v: synthesizing it is not supported", in.Name, in.DType)
	}
	vals := make([]int64, size)
	switch {
	case spec.Value != nil:
		if v := *spec.Value; v != math.Trunc(v) {
			return nil, fmt.Errorf("%s[%q] has the value %g: input %q takes whole numbers (%v)", field, in.Name, v, in.Name, in.DType)
		}
		for j := range vals {
			vals[j] = int64(*spec.Value)
		}
	case spec.Range != nil:
		lo, hi := int64(math.Ceil(spec.Range[0])), int64(math.Ceil(spec.Range[1]))
		if lo >= hi {
			return nil, fmt.Errorf("%s[%q] has the range [%g, %g), which holds no whole number", field, in.Name, spec.Range[0], spec.Range[1])
		}
		for j := range vals {
			vals[j] = lo + r.Int64N(hi-lo)
		}
	}
	return onnx.NewTensor(dims, vals), nil
}
