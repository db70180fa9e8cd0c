package feed

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/fault"
	"github.com/kompress/kompress/runner/onnx"
)

// Data is what a model is fed, matched to its inputs: for each input
// either samples (Len of them, along dimension 0) or one tensor fed whole
// with every batch (a scalar such as a sample rate, a state tensor such
// as [2,1,128]), and optionally one class label per sample. Values keep
// the element type they were stored in and are converted to each input's
// type when fed (Tensors). A Data is not modified once made: Take and For
// return new ones sharing memory.
type Data struct {
	// Name says where the data came from (a file or URI), for messages.
	Name string
	// Synthesized is set for data made up by Synthesize.
	Synthesized bool

	inputs []Input
	feeds  []source // one per input, in the same order
	n      int
	labels []int64
}

// source is what feeds one input.
type source struct {
	// array names where the values came from, for messages.
	array string
	// t holds the samples along dimension 0 when batched, else the tensor
	// fed whole.
	t       *onnx.Tensor
	batched bool
}

// Len is the number of samples.
func (d *Data) Len() int { return d.n }

// Inputs are the model inputs the data feeds, in graph order.
func (d *Data) Inputs() []Input { return d.inputs }

// Labels are the samples' class labels, or nil.
func (d *Data) Labels() []int64 { return d.labels }

// Batched reports whether input name takes samples (rather than one
// tensor with every batch).
func (d *Data) Batched(name string) bool {
	for i, in := range d.inputs {
		if in.Name == name {
			return d.feeds[i].batched
		}
	}
	return false
}

// SampleShapes lists, by input name, the dims of one sample (batch
// excluded), or of the whole tensor for an input fed whole.
func (d *Data) SampleShapes() map[string][]int64 {
	out := make(map[string][]int64, len(d.inputs))
	for i, in := range d.inputs {
		dims := d.feeds[i].t.Dims
		if d.feeds[i].batched {
			dims = dims[1:]
		}
		out[in.Name] = append([]int64{}, dims...)
	}
	return out
}

// FromDataset matches a dataset to a model's inputs (Inputs, or a
// Session's). A model with one input is fed x, or the array named by its
// input when the file has one; a model with several takes one array per
// input, named by the input. Each array is checked against its input's
// shape: one whose sample shape differs but holds as many values as the
// input's fixed sample dims is reshaped (784 -> 1x28x28, logged at Info);
// anything else is an error naming the file, the array and both shapes.
//
// A decoder exported with its KV cache may be given the tokenizer's
// arrays only: its past_key_values inputs are fed empty and position_ids
// derived from the attention mask (derive.go).
//
// Arrays that fit their input's whole declared shape when the input fixes
// dimension 0 (a state [2,1,128]) and scalar inputs are fed whole with
// every batch, unless the array's first dimension counts the samples (the
// labels, or the arrays that can only hold samples, say how many there
// are); every other array holds samples along dimension 0, and all of
// them must hold the same number. Labels (y) must have one per sample.
// Element types are converted when fed (Tensors).
func FromDataset(ins []Input, d *dataset.Dataset) (*Data, error) {
	data, _, err := fromDataset(ins, d)
	return data, fault.BadInput(err)
}

func fromDataset(ins []Input, d *dataset.Dataset) (*Data, []fitted, error) {
	if len(ins) == 0 {
		return nil, nil, fmt.Errorf("%s: the model has no inputs to feed", d.Name)
	}
	fitted, err := fitArrays(ins, d)
	if err != nil {
		return nil, nil, err
	}
	if err := noExtraArrays(ins, d, fitted); err != nil {
		return nil, nil, err
	}
	data := &Data{Name: d.Name, inputs: ins, feeds: make([]source, len(ins)), labels: d.Labels}
	// Arrays that can only hold samples, and those that may be fed whole.
	n, counted := -1, ""
	if d.Labels != nil {
		n, counted = len(d.Labels), "y"
	}
	whole := make([]bool, len(ins))
	for i, in := range ins {
		s := source{array: fitted[i].array, t: fitted[i].t}
		switch {
		case in.scalar() || len(s.t.Dims) == 0:
		case in.Dims != nil && in.Dims[0] > 0 && s.t.Dims[0] == in.Dims[0]:
			whole[i] = true
		default:
			s.batched = true
		}
		data.feeds[i] = s
	}
	check := func(s source) error {
		switch {
		case n < 0:
			n, counted = int(s.t.Dims[0]), s.array
		case int(s.t.Dims[0]) != n && counted == "y":
			return fmt.Errorf("%s: y has %d labels, but %s has %d samples", d.Name, n, s.array, s.t.Dims[0])
		case int(s.t.Dims[0]) != n:
			return fmt.Errorf("%s: %s has %d samples, %s has %d", d.Name, s.array, s.t.Dims[0], counted, n)
		}
		return nil
	}
	for _, s := range data.feeds {
		if s.batched {
			if err := check(s); err != nil {
				return nil, nil, err
			}
		}
	}
	// An array fitting the whole input holds samples when its first
	// dimension is the number of samples (or nothing else says it).
	for i := range data.feeds {
		s := &data.feeds[i]
		if whole[i] && (n < 0 || int(s.t.Dims[0]) == n) {
			s.batched = true
			if err := check(*s); err != nil {
				return nil, nil, err
			}
		}
	}
	if n < 0 {
		n = 1 // every input fed whole: one sample
	} else if !slices.ContainsFunc(data.feeds, func(s source) bool { return s.batched }) && n != 1 {
		return nil, nil, fmt.Errorf("%s: y has %d labels, but every model input is fed one whole array: no array holds samples", d.Name, n)
	}
	data.n = n
	return data, fitted, nil
}

// fitted is the array that feeds one input, in the input's shape.
type fitted struct {
	array string
	t     *onnx.Tensor
}

// fitArrays finds the array feeding each input and fits it to the
// input's shape.
func fitArrays(ins []Input, d *dataset.Dataset) ([]fitted, error) {
	out := make([]fitted, len(ins))
	missing := make([]bool, len(ins))
	for i, in := range ins {
		name := in.Name
		a, ok := d.Array(name)
		if !ok && len(ins) == 1 {
			name = "x"
			if a, ok = xArray(d, in); ok {
				name = a.Name
			}
		}
		if !ok && len(ins) > 1 && derivable(in) {
			missing[i] = true // an empty past, position_ids: deriveMissing
			continue
		}
		if !ok {
			if len(ins) == 1 {
				return nil, fmt.Errorf("%s: no array \"x\" (the inputs); the file has %v (a single-input model takes x, or an array named by its input %q)", d.Name, d.Names(), in.Name)
			}
			return nil, fmt.Errorf("%s: no array %q for model input %q, which takes %s; the file has %v (a model with several inputs takes one array per input, named by the input)", d.Name, in.Name, in.Name, expects(in), d.Names())
		}
		t, err := tensorOf(a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.Name, err)
		}
		if !convertible(t.DType, in.DType) {
			return nil, fmt.Errorf("%s: %s is %v; model input %q takes %s, which it is not converted to (store whole numbers as an integer array)", d.Name, name, t.DType, in.Name, expects(in))
		}
		if t, err = fitArray(d.Name, name, t, in); err != nil {
			return nil, err
		}
		out[i] = fitted{array: name, t: t}
	}
	if slices.Contains(missing, true) {
		if err := deriveMissing(ins, out, missing); err != nil {
			return nil, fmt.Errorf("%s: %w", d.Name, err)
		}
	}
	return out, nil
}

// noExtraArrays refuses arrays that feed no input: a dataset holds one
// array per model input (x for a single-input model) and optional labels
// y, and an array for an input the model does not have is a mistake
// (another model's data, a misspelt name).
func noExtraArrays(ins []Input, d *dataset.Dataset, fits []fitted) error {
	used := map[string]bool{"y": true}
	for _, f := range fits {
		used[f.array] = true
	}
	if len(ins) == 1 {
		used["x"] = true // the array named by the input is preferred to x
	}
	for _, name := range d.Names() {
		if !used[name] {
			return fmt.Errorf("%s: array %q feeds no input of the model, whose inputs are %s; the file has %v (one array per model input, named by the input, and optional labels y)", d.Name, name, describeInputs(ins), d.Names())
		}
	}
	return nil
}

// expects says what an input takes: its element type and declared shape
// ("FLOAT [? 512]", "INT64 scalar", "FLOAT of any shape").
func expects(in Input) string {
	switch {
	case in.Dims == nil:
		return fmt.Sprintf("%v of any shape", in.DType)
	case len(in.Dims) == 0:
		return fmt.Sprintf("an %v scalar", in.DType)
	}
	parts := make([]string, len(in.Dims))
	for i, d := range in.Dims {
		parts[i] = "?"
		if d >= 0 {
			parts[i] = fmt.Sprint(d)
		}
	}
	return fmt.Sprintf("%v [%s]", in.DType, strings.Join(parts, " "))
}

// describeInputs lists inputs with what they take.
func describeInputs(ins []Input) string {
	parts := make([]string, len(ins))
	for i, in := range ins {
		parts[i] = fmt.Sprintf("%q (%s)", in.Name, expects(in))
	}
	return strings.Join(parts, ", ")
}

// xArray is x in the element type it was stored in: converted to the
// input's type a batch at a time when fed (Tensors), so uint8 pixels are
// never held as float32 whole, and token ids never pass through float32.
// A dataset built in memory from float32 values (X) whose XType says
// they were small integers is read back in that type for an input
// taking integers or booleans.
func xArray(d *dataset.Dataset, in Input) (dataset.Array, bool) {
	x, ok := d.XArray()
	if !ok {
		return x, false
	}
	floats := onnx.IsFloat(in.DType) || in.DType == onnx.Undefined
	if v, isF32 := x.Data.([]float32); isF32 && !floats {
		switch d.XType {
		case "bool", "uint8", "int8", "uint16", "int16":
			x.Data = mapSlice(v, func(v float32) int64 { return int64(v) })
		}
	}
	return x, true
}

// fitArray checks an array against its input's declared shape and
// reshapes it where dataset.FitShape allows.
func fitArray(file, array string, t *onnx.Tensor, in Input) (*onnx.Tensor, error) {
	switch {
	case in.Dims == nil: // undeclared: fed as it is
		return t, nil
	case len(in.Dims) == 0:
		if t.Len() != 1 {
			return nil, fmt.Errorf("%s: %s has shape %v; model input %q is a scalar (one value fed with every batch)", file, array, t.Dims, in.Name)
		}
		return &onnx.Tensor{DType: t.DType, Dims: []int64{}, Data: t.Data}, nil
	case len(t.Dims) == 0:
		return nil, fmt.Errorf("%s: %s is a scalar; model input %q takes %s", file, array, in.Name, in)
	}
	shape := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		shape[i] = int(d)
	}
	fit, err := dataset.FitShape(file, array, shape, dataset.Input{Name: in.Name, Shape: in.Dims})
	if err != nil && in.Dims[0] > 1 {
		// An input that fixes its first dimension at more than one (a
		// state [2, N, 128]) is fed whole: say so rather than print its
		// first dimension as the batch.
		return nil, fmt.Errorf("%s: %s has shape %v; model input %q takes %s, fed whole with every batch (or samples of it along a first dimension)", file, array, t.Dims, in.Name, expects(in))
	}
	if err != nil {
		return nil, err
	}
	if slices.Equal(fit, shape) {
		return t, nil
	}
	dims := make([]int64, len(fit))
	for i, d := range fit {
		dims[i] = int64(d)
	}
	return &onnx.Tensor{DType: t.DType, Dims: dims, Data: t.Data}, nil
}

// Fit returns d with its arrays in the shapes of the model's inputs
// (FromDataset's checks and reshaping, logged once here), sharing memory:
// FromDataset on the result for the same inputs reshapes nothing. For a
// single-input model, Shape, XName and XType (and X for float32 values)
// describe the samples that feed it (x, or the array named by the
// input), so code that reads samples as float32 (distillation's
// training, through dataset.SampleInto) trains on them. Nothing is
// copied.
func Fit(ins []Input, d *dataset.Dataset) (*dataset.Dataset, error) {
	data, fits, err := fromDataset(ins, d)
	if err != nil {
		return nil, fault.BadInput(err)
	}
	out := *d
	out.Arrays = slices.Clone(d.Arrays)
	for i, f := range fits {
		shape := make([]int, len(f.t.Dims))
		for j, v := range f.t.Dims {
			shape[j] = int(v)
		}
		for j, a := range out.Arrays {
			if a.Name == f.array {
				out.Arrays[j].Shape = shape
			}
		}
		if len(ins) != 1 || !data.feeds[i].batched {
			continue
		}
		// The samples of a single-input model: x, or the array named by
		// its input, which X then describes (shared when float32, else
		// read as float32 a sample at a time: dataset.SampleInto).
		out.Shape = shape
		if f.array != xName(d) || d.Shape == nil {
			out.XName, out.X = f.array, nil
			if a, ok := d.Array(f.array); ok {
				out.XType = a.DType()
			}
			if v, ok := f.t.Data.([]float32); ok {
				out.X = v
			}
		}
	}
	return &out, nil
}

// xName is the array holding d's x.
func xName(d *dataset.Dataset) string {
	if d.XName != "" {
		return d.XName
	}
	return "x"
}

// Take returns the first n samples (all of them if there are fewer),
// sharing memory with d. The selection is deterministic: the same file
// always gives the same calibration subset.
func (d *Data) Take(n int) *Data {
	n = max(0, min(n, d.n))
	out := *d
	out.n = n
	out.feeds = slices.Clone(d.feeds)
	for i, s := range out.feeds {
		if s.batched {
			out.feeds[i].t = slice(s.t, 0, n)
		}
	}
	if d.labels != nil {
		out.labels = d.labels[:n:n]
	}
	return &out
}

// For returns the same data matched to another model's inputs: a model
// from the same source (the job's source model, a quantized or float16
// copy) takes the same samples, converted to its own element types when
// fed. Inputs are matched by name, or by position when the names differ
// (a model with one input takes the data whatever its input's name).
func (d *Data) For(ins []Input) (*Data, error) {
	if len(ins) != len(d.inputs) {
		return nil, fault.Badf("the model takes %d inputs %q, the data feeds %d %q", len(ins), Names(ins), len(d.inputs), Names(d.inputs))
	}
	byName := true
	for _, in := range ins {
		if _, ok := find(d.inputs, in.Name); !ok {
			byName = false
		}
	}
	out := *d
	out.inputs = ins
	out.feeds = make([]source, len(ins))
	for i, in := range ins {
		j := i
		if byName {
			j = slices.IndexFunc(d.inputs, func(o Input) bool { return o.Name == in.Name })
		}
		s := d.feeds[j]
		if err := fits(s, in); err != nil {
			return nil, fault.BadInput(err)
		}
		out.feeds[i] = s
	}
	return &out, nil
}

// fits checks a source against another model's input.
func fits(s source, in Input) error {
	if in.Dims == nil {
		return nil
	}
	dims, want := s.t.Dims, in.Dims
	if s.batched {
		if len(want) == 0 {
			return fmt.Errorf("input %q is a scalar; the data has samples shaped %v", in.Name, dims[1:])
		}
		dims, want = dims[1:], want[1:]
	}
	ok := len(dims) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = want[i] < 0 || want[i] == dims[i]
	}
	if ok {
		return nil
	}
	if s.batched {
		return fmt.Errorf("input %q takes samples shaped %v, the data's are %v", in.Name, want, dims)
	}
	return fmt.Errorf("input %q is %v, the data feeds it %v whole with every batch", in.Name, in.Dims, dims)
}

// Tensors builds the inputs of one run: the listed samples, in order (a
// sample may repeat, to pad a fixed batch), of every input that takes
// samples, and the whole tensor of the others, each converted to its
// input's element type.
func (d *Data) Tensors(samples []int) (map[string]*onnx.Tensor, error) {
	out := make(map[string]*onnx.Tensor, len(d.inputs))
	for i, in := range d.inputs {
		s := d.feeds[i]
		t := s.t
		if s.batched {
			t = gather(t, samples)
		}
		c, err := convert(t, in.DType)
		if err != nil {
			return nil, fault.Badf("input %q takes %v, which %s cannot be converted to: %w", in.Name, in.DType, s.array, err)
		}
		out[in.Name] = c
	}
	return out, nil
}

// gather returns the samples of t (along dimension 0) at idx, sharing
// memory when they are consecutive.
func gather(t *onnx.Tensor, idx []int) *onnx.Tensor {
	if len(idx) > 0 && idx[len(idx)-1]-idx[0] == len(idx)-1 && sorted(idx) {
		return slice(t, idx[0], idx[0]+len(idx))
	}
	inner := sampleLen(t)
	src := reflect.ValueOf(t.Data)
	data := reflect.MakeSlice(src.Type(), 0, len(idx)*inner)
	for _, i := range idx {
		data = reflect.AppendSlice(data, src.Slice(i*inner, (i+1)*inner))
	}
	dims := append([]int64{int64(len(idx))}, t.Dims[1:]...)
	return &onnx.Tensor{DType: t.DType, Dims: dims, Data: data.Interface()}
}

func sorted(idx []int) bool {
	for i := 1; i < len(idx); i++ {
		if idx[i] != idx[i-1]+1 {
			return false
		}
	}
	return true
}

// slice returns samples [from, to) of t, sharing memory.
func slice(t *onnx.Tensor, from, to int) *onnx.Tensor {
	if from == 0 && int64(to) == t.Dims[0] {
		return t
	}
	inner := sampleLen(t)
	dims := append([]int64{int64(to - from)}, t.Dims[1:]...)
	data := reflect.ValueOf(t.Data).Slice3(from*inner, to*inner, to*inner).Interface()
	return &onnx.Tensor{DType: t.DType, Dims: dims, Data: data}
}

// sampleLen is the number of values of one sample of t.
func sampleLen(t *onnx.Tensor) int { return onnx.NumElements(t.Dims[1:]) }

// FixedBatch is the batch size the inputs that take samples fix on
// dimension 0, or 0 when it is dynamic everywhere; every data (a model's
// and its source's) must agree. An input fed whole whose declared shape
// has a dynamic dimension (a recurrent state [2, N, 128] whose batch is
// its second dimension) may follow the batch elsewhere than on dimension
// 0: the tensor given holds one sample's, and samples go one at a time.
func FixedBatch(ds ...*Data) (int, error) {
	batch, first := 0, ""
	for _, d := range ds {
		if d == nil {
			continue
		}
		for i, in := range d.inputs {
			b, why := in.fixedBatch(), fmt.Sprintf("input %q fixes the batch at %d", in.Name, in.fixedBatch())
			switch {
			case !d.feeds[i].batched && in.wholeMayHoldBatch():
				b, why = 1, fmt.Sprintf("input %q, fed whole, may hold the batch in a dynamic dimension (one sample at a time)", in.Name)
			case !d.feeds[i].batched:
				b = 0
			}
			if b == 0 {
				continue
			}
			if batch != 0 && b != batch {
				return 0, fault.Badf("%s, %s: they must take the same batch", why, first)
			}
			batch, first = b, fmt.Sprintf("input %q at %d", in.Name, b)
		}
	}
	return batch, nil
}

// sampleBytes is the size of one sample of every input that takes
// samples, in the inputs' element types.
func (d *Data) sampleBytes() int {
	n := 0
	for i, in := range d.inputs {
		s := d.feeds[i]
		if !s.batched {
			continue
		}
		dt := in.DType
		if dt == onnx.Undefined {
			dt = s.t.DType
		}
		n += onnx.ByteSize(dt, sampleLen(s.t))
	}
	return n
}
