package dataset

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// Float32 is the only element type datasets are fed as.
const Float32 = "float32"

// Input describes the model input a dataset feeds. The caller fills it in
// from the model graph; this package does not read models.
type Input struct {
	Name string
	// ElemType is the input's element type as NumPy names it ("float32"
	// for ONNX FLOAT); empty means float32.
	ElemType string
	// Shape holds the input's dimensions; -1 or 0 marks a dynamic one.
	// Dimension 0 is the batch: it is not compared with the number of
	// samples (a fixed batch dimension limits the batch size, not the data).
	Shape []int64
}

// String renders the shape as "[N 1 28 28]": N for the batch dimension, ?
// for other dynamic ones.
func (in Input) String() string {
	parts := []string{"N"}
	for _, d := range in.Shape[1:] {
		if d <= 0 {
			parts = append(parts, "?")
		} else {
			parts = append(parts, fmt.Sprint(d))
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// Fit checks that the dataset can feed the model input and returns it in
// the input's shape.
//
// When the sample shape differs but the input's sample dimensions are all
// fixed and hold the same number of values (784 -> 1x28x28), the samples
// are reshaped (C order, no copy) and an Info line is logged: the data is
// the same, only its shape is read differently, and reshaping flat MNIST
// files is common enough to be worth doing; the log keeps it visible.
// Anything else is an error naming the file, the array and both shapes.
func (d *Dataset) Fit(in Input) (*Dataset, error) {
	if in.ElemType != "" && in.ElemType != Float32 {
		return nil, fmt.Errorf("%s: model input %q takes %s; datasets are fed as float32", d.Name, in.Name, in.ElemType)
	}
	if len(in.Shape) == 0 {
		return nil, fmt.Errorf("%s: model input %q is a scalar; it needs a batch dimension to take samples", d.Name, in.Name)
	}
	if d.Shape == nil {
		return nil, fmt.Errorf("%s: no array \"x\" (the inputs); the file has %v", d.Name, d.Names())
	}
	shape, err := FitShape(d.Name, d.xName(), d.Shape, in)
	if err != nil {
		return nil, err
	}
	if slices.Equal(shape, d.Shape) {
		return d, nil
	}
	out := *d
	out.Shape = shape
	out.Arrays = slices.Clone(d.Arrays)
	for i, a := range out.Arrays {
		if a.Name == d.xName() {
			out.Arrays[i].Shape = shape
		}
	}
	return &out, nil
}

// FitShape checks that an array of the file (samples along its first
// dimension) can feed the model input and returns the shape it feeds it
// in: its own when its sample shape fits the input's (dynamic dimensions
// match anything), else, when the input's sample dimensions are all
// fixed and hold the same number of values (784 -> 1x28x28), those (C
// order: the data is the same, only its shape is read differently), with
// an Info line logged. Anything else is an error naming the file, the
// array and both shapes. in.Shape must have a batch dimension.
func FitShape(file, array string, shape []int, in Input) ([]int, error) {
	want := in.Shape[1:]
	if len(shape) > 0 && sameShape(want, shape[1:]) {
		return shape, nil
	}
	size, static := staticSize(want)
	per := 1
	for _, s := range shape[min(1, len(shape)):] {
		per *= s
	}
	if len(shape) > 0 && static && size == per {
		out := []int{shape[0]}
		for _, s := range want {
			out = append(out, int(s))
		}
		slog.Info("dataset: reshaping "+array+" to fit the model input",
			"file", file, "from", shape, "to", out, "input", in.Name)
		return out, nil
	}
	msg := fmt.Sprintf("%s: %s has shape %v, model input %q expects %s", file, array, shape, in.Name, in)
	if static && len(shape) > 0 {
		msg += fmt.Sprintf(" (%d values per sample, the input takes %d)", per, size)
	}
	return nil, fmt.Errorf("%s", msg)
}

func sameShape(model []int64, data []int) bool {
	if len(model) != len(data) {
		return false
	}
	for i, m := range model {
		if m > 0 && int(m) != data[i] {
			return false
		}
	}
	return true
}

func staticSize(dims []int64) (int, bool) {
	n := 1
	for _, d := range dims {
		if d <= 0 {
			return 0, false
		}
		n *= int(d)
	}
	return n, true
}
