package dataset

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// ramp is a dataset of n samples whose values count up from 0, labelled i%10.
func ramp(n int, sample ...int) *Dataset {
	d := &Dataset{Name: "ramp.npz", Shape: append([]int{n}, sample...)}
	d.X = seq(n*d.SampleSize(), 0)
	d.Labels = make([]int64, n)
	for i := range d.Labels {
		d.Labels[i] = int64(i % 10)
	}
	return d
}

func TestBatches(t *testing.T) {
	d := ramp(10, 2)
	type got struct {
		Start  int
		Shape  []int
		X      []float32
		Labels []int64
	}
	var batches []got
	for b := range d.Batches(4) {
		batches = append(batches, got{b.Start, b.Shape, b.X, b.Labels})
	}
	want := []got{
		{0, []int{4, 2}, seq(8, 0), []int64{0, 1, 2, 3}},
		{4, []int{4, 2}, seq(8, 8), []int64{4, 5, 6, 7}},
		{8, []int{2, 2}, seq(4, 16), []int64{8, 9}},
	}
	if diff := cmp.Diff(want, batches); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// Stopping early stops the iteration.
	n := 0
	for range d.Batches(3) {
		n++
		if n == 2 {
			break
		}
	}
	if n != 2 {
		t.Errorf("break after 2 batches ran %d", n)
	}

	// A batch cannot write past its end into the next one.
	for b := range d.Batches(4) {
		if cap(b.X) != len(b.X) || cap(b.Labels) != len(b.Labels) {
			t.Errorf("batch at %d has spare capacity: appending would overwrite the next batch", b.Start)
		}
	}

	noLabels := &Dataset{Shape: []int{3, 1}, X: []float32{1, 2, 3}}
	for b := range noLabels.Batches(2) {
		if b.Labels != nil {
			t.Errorf("batch of an unlabelled dataset has labels %v", b.Labels)
		}
	}
}

func TestTake(t *testing.T) {
	d := ramp(10, 3)
	tests := []struct {
		n    int
		want *Dataset
	}{
		{3, &Dataset{Name: "ramp.npz", Shape: []int{3, 3}, X: seq(9, 0), Labels: []int64{0, 1, 2}}},
		{0, &Dataset{Name: "ramp.npz", Shape: []int{0, 3}, X: []float32{}, Labels: []int64{}}},
		{100, d},
	}
	for _, tt := range tests {
		got := d.Take(tt.n)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Take(%d) (-want +got):\n%s", tt.n, diff)
		}
	}
	if s := d.Sample(2); cmp.Diff(seq(3, 6), s) != "" {
		t.Errorf("Sample(2) = %v", s)
	}
}

func TestFit(t *testing.T) {
	flat := ramp(2, 784)
	image := ramp(2, 1, 28, 28)
	tests := []struct {
		name      string
		d         *Dataset
		in        Input
		wantShape []int
		wantLog   string
		wantErr   string
	}{
		{name: "same shape", d: image, in: Input{Name: "Input3", ElemType: "float32", Shape: []int64{1, 1, 28, 28}}, wantShape: []int{2, 1, 28, 28}},
		{name: "dynamic batch", d: image, in: Input{Name: "in", Shape: []int64{-1, 1, 28, 28}}, wantShape: []int{2, 1, 28, 28}},
		{name: "dynamic dims", d: ramp(2, 3, 4, 5), in: Input{Name: "in", Shape: []int64{0, 3, -1, 0}}, wantShape: []int{2, 3, 4, 5}},
		{
			name: "flat to image", d: flat, in: Input{Name: "Input3", Shape: []int64{1, 1, 28, 28}},
			wantShape: []int{2, 1, 28, 28}, wantLog: "reshaping x to fit the model input",
		},
		{name: "image to flat", d: image, in: Input{Name: "in", Shape: []int64{-1, 784}}, wantShape: []int{2, 784}, wantLog: "reshaping"},
		{
			name: "wrong size", d: ramp(1000, 785), in: Input{Name: "Input3", Shape: []int64{1, 1, 28, 28}},
			wantErr: `ramp.npz: x has shape [1000 785], model input "Input3" expects [N 1 28 28] (785 values per sample, the input takes 784)`,
		},
		{
			name: "dynamic cannot reshape", d: ramp(4, 3072), in: Input{Name: "img", Shape: []int64{-1, 3, -1, -1}},
			wantErr: `ramp.npz: x has shape [4 3072], model input "img" expects [N 3 ? ?]`,
		},
		{name: "wrong type", d: image, in: Input{Name: "ids", ElemType: "int64", Shape: []int64{-1, 784}}, wantErr: `ramp.npz: model input "ids" takes int64; datasets are fed as float32`},
		{name: "scalar input", d: image, in: Input{Name: "s"}, wantErr: `ramp.npz: model input "s" is a scalar; it needs a batch dimension to take samples`},
		{
			name: "no x", d: &Dataset{Name: "bad.npz", Arrays: []Array{{Name: "inputs", Shape: []int{1}, Data: []uint8{1}}}}, in: Input{Name: "in", Shape: []int64{-1}},
			wantErr: `bad.npz: no array "x" (the inputs); the file has [inputs]`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			prev := slog.Default()
			slog.SetDefault(slog.New(slog.NewTextHandler(&log, nil)))
			defer slog.SetDefault(prev)

			got, err := tt.d.Fit(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantShape, got.Shape); diff != "" {
				t.Errorf("shape (-want +got):\n%s", diff)
			}
			if &got.X[0] != &tt.d.X[0] || len(got.X) != len(tt.d.X) {
				t.Error("Fit copied the data; it should only reshape")
			}
			if tt.wantLog == "" && log.Len() != 0 || !strings.Contains(log.String(), tt.wantLog) {
				t.Errorf("log %q, want %q", log.String(), tt.wantLog)
			}
			if tt.wantLog != "" && cmp.Diff(tt.d.Shape, got.Shape) == "" {
				t.Error("a reshape was logged but the shape did not change")
			}
		})
	}
	if flat.Shape[1] != 784 {
		t.Errorf("Fit modified the input dataset: shape %v", flat.Shape)
	}
}
