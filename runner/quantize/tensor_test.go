package quantize

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPerTensor(t *testing.T) {
	data := []float32{-1, 0, 255.0/64 - 1, 0.5}
	got, err := PerTensor(data, []int64{2, 2}, UInt8, false)
	if err != nil {
		t.Fatal(err)
	}
	want := &Quantized{
		Type: UInt8, Shape: []int64{2, 2},
		// scale 1/64, zero point 64: q = 64*x + 64.
		Data:   []byte{0, 64, 255, 96},
		Scales: []float32{1.0 / 64}, ZeroPoints: []int32{64},
		Axis: -1, ScaleShape: []int64{},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PerTensor (-want +got):\n%s", diff)
	}
}

func TestPerAxis(t *testing.T) {
	tests := []struct {
		name  string
		data  []float32
		shape []int64
		axis  int
		qt    QType
		sym   bool
		want  *Quantized
	}{
		{
			name: "int8 symmetric per output channel",
			// Row 0 absmax 127/64 (scale 1/64), row 1 absmax 127/32 (scale 1/32).
			data:  []float32{-127.0 / 64, 0.5, 15.5 / 64, 0, 127.0 / 32, -2.5 / 32},
			shape: []int64{2, 3}, axis: 0, qt: Int8, sym: true,
			want: &Quantized{
				Type: Int8, Shape: []int64{2, 3},
				// -127, 32, 15.5->16 | 0, 127, -2.5->-2
				Data:   []byte{0x81, 32, 16, 0, 127, 0xfe},
				Scales: []float32{1.0 / 64, 1.0 / 32}, ZeroPoints: []int32{0, 0},
				Axis: 0, ScaleShape: []int64{2},
			},
		},
		{
			name: "uint8 asymmetric along the inner axis",
			// Column 0 is [3.984375, 1] (scale 1/64, zp 0); column 1 is
			// [-2, 1.984375] (scale 1/64, zp 128).
			data:  []float32{255.0 / 64, -2, 1, 127.0 / 64},
			shape: []int64{2, 2}, axis: 1, qt: UInt8, sym: false,
			want: &Quantized{
				Type: UInt8, Shape: []int64{2, 2},
				Data:   []byte{255, 0, 64, 255},
				Scales: []float32{1.0 / 64, 1.0 / 64}, ZeroPoints: []int32{0, 128},
				Axis: 1, ScaleShape: []int64{2},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PerAxis(tt.data, tt.shape, tt.axis, tt.qt, tt.sym)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("PerAxis (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBlocked(t *testing.T) {
	// Two rows of 5 in blocks of 2 along axis 1: blocks [0,2) [2,4) [4,5).
	// int4 symmetric: scale = 2*absmax/15, so absmax 7.5*2^-k gives 2^-k.
	// Every block's largest value is positive: a shrunk range would
	// saturate it further, so the clip search keeps the whole range.
	data := []float32{
		7.5, -1, 0.9375, -0.5, 3.75,
		7.5, -2.5, 0, 0, 0.46875,
	}
	got, err := Blocked(data, []int64{2, 5}, 1, 2, Int4, true)
	if err != nil {
		t.Fatal(err)
	}
	want := &Quantized{
		Type: Int4, Shape: []int64{2, 5},
		// 7.5 -> 8 saturates to 7; -2.5 -> -2 (half to even).
		Data: []byte{
			7, 0xff, 7, 0xfc, 7,
			7, 0xfe, 0, 0, 7,
		},
		Scales:     []float32{1, 0.125, 0.5, 1, 1, 0.0625},
		ZeroPoints: []int32{0, 0, 0, 0, 0, 0},
		Axis:       1, BlockSize: 2, ScaleShape: []int64{2, 3},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Blocked (-want +got):\n%s", diff)
	}
	wantValues := []float32{7, -1, 0.875, -0.5, 3.5, 7, -2, 0, 0, 0.4375}
	if diff := cmp.Diff(wantValues, got.Dequantize()); diff != "" {
		t.Errorf("Dequantize (-want +got):\n%s", diff)
	}
}

func TestBlockedAlongOuterAxisUsesStridedBlocks(t *testing.T) {
	// [4, 2] in blocks of 2 along axis 0: scale shape [2, 2], and element
	// [k, n] uses scale [k/2, n].
	data := []float32{
		1, -8,
		3, 2,
		0.5, 100,
		-4, 7,
	}
	got, err := Blocked(data, []int64{4, 2}, 0, 2, Int8, true)
	if err != nil {
		t.Fatal(err)
	}
	wantScales := []float32{3.0 / 127, 8.0 / 127, 4.0 / 127, 100.0 / 127}
	if diff := cmp.Diff([]int64{2, 2}, got.ScaleShape); diff != "" {
		t.Errorf("scale shape (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantScales, got.Scales); diff != "" {
		t.Errorf("scales (-want +got):\n%s", diff)
	}
	// Each block's extreme maps to ±127.
	for _, i := range []int{2, 1, 6, 5} {
		if v := got.Value(i); v != 127 && v != -127 {
			t.Errorf("element %d = %d, want ±127 (its block's absmax)", i, v)
		}
	}
}

func TestQuantizedRoundTripError(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	shape := []int64{8, 3, 3, 3}
	data := make([]float32, 8*27)
	for i := range data {
		data[i] = float32(r.NormFloat64())
	}
	for _, tt := range []struct {
		name string
		q    func() (*Quantized, error)
	}{
		{"per-tensor uint8", func() (*Quantized, error) { return PerTensor(data, shape, UInt8, false) }},
		{"per-axis int8", func() (*Quantized, error) { return PerAxis(data, shape, 0, Int8, true) }},
		{"blocked int4", func() (*Quantized, error) { return Blocked(data, shape, 1, 2, Int4, true) }},
		{"blocked uint4", func() (*Quantized, error) { return Blocked(data, shape, 3, 2, UInt4, false) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q, err := tt.q()
			if err != nil {
				t.Fatal(err)
			}
			back := q.Dequantize()
			maxScale := float32(0)
			for _, s := range q.Scales {
				maxScale = max(maxScale, s)
			}
			for i := range data {
				// Half a step of rounding, plus the one code symmetric
				// 4-bit loses at +absmax.
				limit := maxScale/2 + 1e-6
				if q.Type.Bits() == 4 {
					limit = maxScale
				}
				if d := float32(math.Abs(float64(back[i] - data[i]))); d > limit {
					t.Fatalf("element %d: %v -> %v, error %v > %v", i, data[i], back[i], d, limit)
				}
			}
		})
	}
}

func TestZerosStayExactlyZero(t *testing.T) {
	// Pruned weights are exact zeros: every layout, symmetric or not, must
	// give them back as 0.
	r := rand.New(rand.NewPCG(3, 4))
	shape := []int64{6, 40}
	data := make([]float32, 240)
	for i := range data {
		if i%3 != 0 {
			data[i] = float32(r.NormFloat64()) + 0.3
		}
	}
	cases := map[string]func() (*Quantized, error){
		"per-tensor uint8 asymmetric": func() (*Quantized, error) { return PerTensor(data, shape, UInt8, false) },
		"per-axis int8 asymmetric":    func() (*Quantized, error) { return PerAxis(data, shape, 0, Int8, false) },
		"per-axis int8 symmetric":     func() (*Quantized, error) { return PerAxis(data, shape, 0, Int8, true) },
		"blocked uint4 asymmetric":    func() (*Quantized, error) { return Blocked(data, shape, 1, 16, UInt4, false) },
		"blocked int4 symmetric":      func() (*Quantized, error) { return Blocked(data, shape, 1, 16, Int4, true) },
	}
	for name, f := range cases {
		q, err := f()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		back := q.Dequantize()
		for i := 0; i < len(data); i += 3 {
			if back[i] != 0 {
				t.Errorf("%s: zero at %d came back as %v", name, i, back[i])
			}
		}
	}
}

func TestPackNibbles(t *testing.T) {
	// -1 (0xff) keeps only its low nibble; an odd count pads with 0.
	got := PackNibbles([]byte{1, 2, 0xff, 0x08, 5})
	want := []byte{0x21, 0x8f, 0x05}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PackNibbles (-want +got):\n%s", diff)
	}
}

func TestQuantizeRejectsBadInput(t *testing.T) {
	if _, err := PerTensor([]float32{1, 2, 3}, []int64{2, 2}, Int8, true); err == nil {
		t.Error("PerTensor accepted 3 values for shape [2 2]")
	}
	if _, err := PerAxis([]float32{1, 2}, []int64{2}, 1, Int8, true); err == nil {
		t.Error("PerAxis accepted axis 1 of a rank-1 shape")
	}
	if _, err := Blocked([]float32{1, 2}, []int64{2}, 0, 0, Int8, true); err == nil {
		t.Error("Blocked accepted block size 0")
	}
}
