package eval

import (
	"fmt"
	"math/rand/v2"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort"
)

// synthSeed seeds synthesized inputs: the same model always sees the same
// values, so figures are comparable between runs and between stages.
const synthSeed = 0x6b6f6d7072657373

// feed is what every run is fed from: one float32 dataset per model input
// (in the model's input order, samples along dimension 0) and the labels
// when the data has them.
type feed struct {
	x           []*dataset.Dataset
	labels      []int64
	synthesized bool
}

func newFeed(req Request, sess, src *ort.Session) (*feed, error) {
	if src != nil && len(src.Inputs) != len(sess.Inputs) {
		return nil, fmt.Errorf("%s takes %d inputs %q but the source model %s takes %d %q: they cannot be fed the same data",
			req.name(), len(sess.Inputs), inputNames(sess), req.sourceName(), len(src.Inputs), inputNames(src))
	}
	if req.Data != nil {
		return dataFeed(req, sess, src)
	}
	return synthFeed(req, sess)
}

// dataFeed fits the dataset to the model's single input (and checks the
// source takes the same samples).
func dataFeed(req Request, sess, src *ort.Session) (*feed, error) {
	if len(sess.Inputs) != 1 {
		return nil, fmt.Errorf("%s takes %d inputs %q; a dataset feeds exactly one", req.name(), len(sess.Inputs), inputNames(sess))
	}
	d, err := req.Data.Fit(datasetInput(sess.Inputs[0]))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", req.name(), err)
	}
	if src != nil {
		s, err := d.Fit(datasetInput(src.Inputs[0]))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", req.sourceName(), err)
		}
		if fmt.Sprint(s.Shape) != fmt.Sprint(d.Shape) {
			return nil, fmt.Errorf("%s: input %q takes samples shaped %v, the model %s %v", req.sourceName(), src.Inputs[0].Name, s.SampleShape(), req.name(), d.SampleShape())
		}
	}
	if req.Spec.Samples > 0 {
		d = d.Take(int(req.Spec.Samples))
	}
	return &feed{x: []*dataset.Dataset{d}, labels: d.Labels}, nil
}

// datasetInput describes an input to dataset.Fit. The element type is left
// out: samples are converted to the input's type when fed.
func datasetInput(in ort.IOInfo) dataset.Input {
	return dataset.Input{Name: in.Name, Shape: in.Shape}
}

// synthFeed makes deterministic random samples for every model input.
func synthFeed(req Request, sess *ort.Session) (*feed, error) {
	for name := range req.Shapes {
		if !hasInput(sess, name) {
			return nil, fmt.Errorf("%s: Shapes names input %q; the model's inputs are %q", req.name(), name, inputNames(sess))
		}
	}
	n := DefaultSynthSamples
	if req.Spec.Samples > 0 {
		n = min(n, int(req.Spec.Samples))
	}
	f := &feed{synthesized: true}
	for i, in := range sess.Inputs {
		dims, err := sampleDims(in, req.Shapes[in.Name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", req.name(), err)
		}
		shape := []int{n}
		for _, d := range dims {
			shape = append(shape, int(d))
		}
		d := &dataset.Dataset{Name: "synthesized " + in.Name, Shape: shape}
		d.X = make([]float32, n*d.SampleSize())
		// Integer inputs (token ids, masks) stay zero: random ids could
		// be out of range.
		if in.DType == onnx.Undefined || onnx.IsFloat(in.DType) {
			r := rand.New(rand.NewPCG(synthSeed, uint64(i)))
			for j := range d.X {
				d.X[j] = r.Float32()
			}
		}
		f.x = append(f.x, d)
	}
	return f, nil
}

// sampleDims is the shape of one synthesized sample of in: the declared
// dims without the batch, dynamic ones from given (the caller's) or
// DefaultDynamicDim.
func sampleDims(in ort.IOInfo, given []int64) ([]int64, error) {
	if in.Shape == nil && given == nil {
		return nil, fmt.Errorf("input %q declares no shape: pass its sample dims (batch excluded) in Request.Shapes", in.Name)
	}
	if in.Shape != nil && len(in.Shape) == 0 {
		return nil, fmt.Errorf("input %q is a scalar; inputs need a batch dimension to be fed samples", in.Name)
	}
	if given != nil {
		if in.Shape != nil && len(given) != len(in.Shape)-1 {
			return nil, fmt.Errorf("Shapes[%q] is %v: input %q has shape %v, expected %d sample dims (batch excluded)", in.Name, given, in.Name, in.Shape, len(in.Shape)-1)
		}
		for i, d := range given {
			if d <= 0 {
				return nil, fmt.Errorf("Shapes[%q] is %v: dims must be positive", in.Name, given)
			}
			if in.Shape != nil && in.Shape[i+1] >= 0 && in.Shape[i+1] != d {
				return nil, fmt.Errorf("Shapes[%q] is %v: input %q has the fixed shape %v", in.Name, given, in.Name, in.Shape)
			}
		}
		return given, nil
	}
	dims := make([]int64, len(in.Shape)-1)
	for i, d := range in.Shape[1:] {
		dims[i] = d
		if d <= 0 {
			dims[i] = DefaultDynamicDim
		}
	}
	return dims, nil
}

func (f *feed) len() int { return f.x[0].Len() }

// sampleShapes lists one sample's dims by input name.
func (f *feed) sampleShapes(sess *ort.Session) map[string][]int64 {
	out := make(map[string][]int64, len(f.x))
	for i, in := range sess.Inputs {
		dims := []int64{}
		for _, d := range f.x[i].SampleShape() {
			dims = append(dims, int64(d))
		}
		out[in.Name] = dims
	}
	return out
}

// tensors builds one run's inputs: the listed samples, in order, converted
// to each input's element type.
func (f *feed) tensors(infos []ort.IOInfo, samples []int) (map[string]*onnx.Tensor, error) {
	out := make(map[string]*onnx.Tensor, len(infos))
	for i, info := range infos {
		d := f.x[i]
		x := make([]float32, 0, len(samples)*d.SampleSize())
		for _, s := range samples {
			x = append(x, d.Sample(s)...)
		}
		dims := []int64{int64(len(samples))}
		for _, s := range d.SampleShape() {
			dims = append(dims, int64(s))
		}
		t, err := asType(info, dims, x)
		if err != nil {
			return nil, err
		}
		out[info.Name] = t
	}
	return out, nil
}

// asType converts float32 samples to the input's element type (float16
// models take float16 inputs).
func asType(info ort.IOInfo, dims []int64, x []float32) (*onnx.Tensor, error) {
	if info.DType == onnx.Float || info.DType == onnx.Undefined {
		return onnx.NewTensor(dims, x), nil
	}
	t, err := onnx.FromFloat32s(info.DType, dims, x)
	if err != nil {
		return nil, fmt.Errorf("input %q takes %v, which samples cannot be converted to: %w", info.Name, info.DType, err)
	}
	return t, nil
}

// fixedBatch is the batch size the sessions' inputs fix (dimension 0), or
// 0 when it is dynamic everywhere.
func fixedBatch(sessions ...*ort.Session) (int, error) {
	batch := 0
	for _, s := range sessions {
		if s == nil {
			continue
		}
		for _, in := range s.Inputs {
			if len(in.Shape) == 0 || in.Shape[0] <= 0 {
				continue
			}
			if batch != 0 && int(in.Shape[0]) != batch {
				return 0, fmt.Errorf("input %q fixes the batch at %d, another input at %d: the model and the source must take the same batch", in.Name, in.Shape[0], batch)
			}
			batch = int(in.Shape[0])
		}
	}
	return batch, nil
}

// padded lists samples [start, end) and repeats the last one up to size:
// a model with a fixed batch dimension takes exactly that many.
func padded(start, end, size int) []int {
	idx := make([]int, 0, max(size, end-start))
	for i := start; i < end; i++ {
		idx = append(idx, i)
	}
	for len(idx) < size {
		idx = append(idx, end-1)
	}
	return idx
}

func hasInput(s *ort.Session, name string) bool {
	for _, in := range s.Inputs {
		if in.Name == name {
			return true
		}
	}
	return false
}

func inputNames(s *ort.Session) []string {
	out := make([]string, len(s.Inputs))
	for i, in := range s.Inputs {
		out[i] = in.Name
	}
	return out
}
