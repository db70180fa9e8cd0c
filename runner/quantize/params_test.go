package quantize

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestComputeParams(t *testing.T) {
	tests := []struct {
		name       string
		rmin, rmax float32
		qt         QType
		symmetric  bool
		want       Params
	}{
		// Symmetric int8 uses [-127, 127]: scale = 2*absmax/254.
		{"int8 symmetric", -127.0 / 64, 0.5, Int8, true, Params{Scale: 1.0 / 64, ZeroPoint: 0}},
		// Symmetric uint8 keeps [0, 255] (ONNX Runtime's table has no
		// symmetric uint8 entry): scale = 2*absmax/255, zero point
		// round(127.5) = 128.
		{"uint8 symmetric puts zero at 128", -2, 127.0 / 64, UInt8, true, Params{Scale: float32(4.0 / 255), ZeroPoint: 128}},
		// 4-bit symmetric keeps the full range: scale = 2*absmax/15.
		{"int4 symmetric", -7.5, 3, Int4, true, Params{Scale: 1, ZeroPoint: 0}},
		{"uint4 symmetric zero point rounds 7.5 to 8", -7.5, 3, UInt4, true, Params{Scale: 1, ZeroPoint: 8}},
		// Asymmetric: scale = (rmax-rmin)/(qmax-qmin), zp = round(qmin - rmin/scale).
		{"uint8 asymmetric", -1, 255.0/64 - 1, UInt8, false, Params{Scale: 1.0 / 64, ZeroPoint: 64}},
		{"int8 asymmetric", -1, 255.0/64 - 1, Int8, false, Params{Scale: 1.0 / 64, ZeroPoint: -64}},
		{"uint4 asymmetric", -1, 2, UInt4, false, Params{Scale: 0.2, ZeroPoint: 5}},
		// The range always includes 0.
		{"positive range widened to 0", 0.5, 255.0 / 64, UInt8, false, Params{Scale: 1.0 / 64, ZeroPoint: 0}},
		{"negative range widened to 0", -255.0 / 64, -1, UInt8, false, Params{Scale: 1.0 / 64, ZeroPoint: 255}},
		// Zero points round half to even: 10.5 -> 10, 11.5 -> 12.
		{"zero point 10.5 rounds to 10", -10.5 / 64, (255 - 10.5) / 64, UInt8, false, Params{Scale: 1.0 / 64, ZeroPoint: 10}},
		{"zero point 11.5 rounds to 12", -11.5 / 64, (255 - 11.5) / 64, UInt8, false, Params{Scale: 1.0 / 64, ZeroPoint: 12}},
		{"all zero gives scale 1", 0, 0, Int8, true, Params{Scale: 1, ZeroPoint: 0}},
		{"all zero asymmetric", 0, 0, UInt8, false, Params{Scale: 1, ZeroPoint: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ComputeParams(tt.rmin, tt.rmax, tt.qt, tt.symmetric)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ComputeParams(%v, %v, %v, %v) (-want +got):\n%s", tt.rmin, tt.rmax, tt.qt, tt.symmetric, diff)
			}
		})
	}
}

func TestQuantizeRoundsHalfToEvenAndSaturates(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		qt   QType
		x    float32
		want int32
	}{
		{"0.5 rounds down to 0", Params{0.5, 0}, Int8, 0.25, 0},
		{"1.5 rounds up to 2", Params{0.5, 0}, Int8, 0.75, 2},
		{"2.5 rounds down to 2", Params{0.5, 0}, Int8, 1.25, 2},
		{"-0.5 rounds to 0", Params{0.5, 0}, Int8, -0.25, 0},
		{"-1.5 rounds to -2", Params{0.5, 0}, Int8, -0.75, -2},
		{"saturates at 127", Params{0.5, 0}, Int8, 100, 127},
		{"saturates at -128", Params{0.5, 0}, Int8, -100, -128},
		{"zero point added after rounding", Params{1, 128}, UInt8, 2.5, 130},
		{"uint8 saturates at 0", Params{1, 128}, UInt8, -200, 0},
		{"int4 saturates at 7", Params{1, 0}, Int4, 7.5, 7},
		{"int4 keeps -8", Params{1, 0}, Int4, -7.5, -8},
		{"uint4 saturates at 15", Params{1, 8}, UInt4, 9, 15},
		{"zero is exact", Params{0.37, 51}, UInt8, 0, 51},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Quantize(tt.x, tt.qt); got != tt.want {
				t.Errorf("%+v.Quantize(%v, %v) = %d, want %d", tt.p, tt.x, tt.qt, got, tt.want)
			}
		})
	}
}

func TestDequantize(t *testing.T) {
	p := Params{Scale: 0.25, ZeroPoint: 10}
	if got, want := p.Dequantize(14), float32(1); got != want {
		t.Errorf("Dequantize(14) = %v, want %v", got, want)
	}
	if got := p.Dequantize(10); got != 0 {
		t.Errorf("Dequantize(zero point) = %v, want 0", got)
	}
}
