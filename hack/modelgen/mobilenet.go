package modelgen

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
)

// MobileNetConfig sizes a MobileNet-V2-style classifier.
type MobileNetConfig struct {
	// Width multiplies every layer's channels (MobileNetV2's alpha);
	// default 1.
	Width float64
	// Resolution of the square RGB input; default 224.
	Resolution int
	// Classes of the classifier; default 1000.
	Classes int
	// Seed draws every weight.
	Seed uint64
}

func (c MobileNetConfig) withDefaults() MobileNetConfig {
	if c.Width == 0 {
		c.Width = 1
	}
	if c.Resolution == 0 {
		c.Resolution = 224
	}
	if c.Classes == 0 {
		c.Classes = 1000
	}
	return c
}

// MobileNetV2's inverted residual settings: expansion t, channels c,
// repeats n, first stride s.
var mobileNetV2Blocks = [][4]int{
	{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
	{6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1},
}

// divisible rounds channels to a multiple of 8, as MobileNetV2 does.
func divisible(v float64) int {
	c := max(8, int(v+4)/8*8)
	if float64(c) < 0.9*v {
		c += 8
	}
	return c
}

// MobileNetV2 builds a MobileNet-V2-style classifier at opset 17: input
// "input" float [batch, 3, R, R] (normalized pixels), a 3×3 stride-2
// convolution, 17 inverted residual blocks (1×1 expansion with ReLU6,
// 3×3 depthwise with ReLU6, linear 1×1 projection, residual Add where the
// shape allows), a 1×1 convolution to 1280 channels, global average
// pooling and a Gemm classifier; output "logits" [batch, classes].
// Batch normalizations are folded into the convolutions, as exporters
// write them for inference.
func MobileNetV2(cfg MobileNetConfig) *onnx.Model {
	c := cfg.withDefaults()
	b := New(fmt.Sprintf("mobilenetv2-%g-%d", c.Width, c.Resolution), c.Seed)
	x := b.Input("input", onnx.Float, "batch", 3, c.Resolution, c.Resolution)
	f := b.Scope("features")
	cin := divisible(32 * c.Width)
	x = f.ConvBN(x, 3, cin, 3, 2, 1, ActReLU6, "0")
	layer := 1
	for _, blk := range mobileNetV2Blocks {
		t, cout, n, s := blk[0], divisible(float64(blk[1])*c.Width), blk[2], blk[3]
		for i := range n {
			stride := 1
			if i == 0 {
				stride = s
			}
			x = f.invertedResidual(x, cin, cout, t, stride, fmt.Sprint(layer))
			cin = cout
			layer++
		}
	}
	last := divisible(1280 * max(1, c.Width))
	x = f.ConvBN(x, cin, last, 1, 1, 1, ActReLU6, fmt.Sprint(layer))
	x = b.Op("Flatten", []string{b.Op("GlobalAveragePool", []string{x})})
	cl := b.Scope("classifier")
	w := cl.Param("weight", Laplace(1/math.Sqrt(float64(last))), int64(c.Classes), int64(last))
	bias := cl.Param("bias", Normal(0, 0.05), int64(c.Classes))
	logits := cl.Op("Gemm", []string{x, w, bias}, onnx.AttrInt("transB", 1))
	b.Output(logits, "logits", onnx.Float, "batch", c.Classes)
	return b.Model(17)
}

// invertedResidual is MobileNetV2's block.
func (b *Builder) invertedResidual(x string, cin, cout, expand, stride int, name string) string {
	s := b.Scope(name)
	h, hidden := x, cin*expand
	if expand != 1 {
		h = s.ConvBN(h, cin, hidden, 1, 1, 1, ActReLU6, "expand")
	}
	h = s.ConvBN(h, hidden, hidden, 3, stride, hidden, ActReLU6, "depthwise")
	h = s.ConvBN(h, hidden, cout, 1, 1, 1, ActNone, "project")
	if stride == 1 && cin == cout {
		return s.Op("Add", []string{x, h})
	}
	return h
}

// Images makes n normalized RGB images [n, 3, r, r] named "input": smooth
// random fields (a few low-frequency waves per channel plus noise), closer
// to photographs than white noise.
func Images(n, r int, seed uint64) dataset.Array {
	rnd := rand.New(rand.NewPCG(seed, 0x696d6773))
	v := make([]float32, n*3*r*r)
	for i := range n {
		for ch := range 3 {
			type wave struct{ fx, fy, phase, amp float64 }
			var waves [4]wave
			for k := range waves {
				waves[k] = wave{rnd.Float64() * 4, rnd.Float64() * 4, rnd.Float64() * 6.28, rnd.NormFloat64()}
			}
			plane := v[(i*3+ch)*r*r:]
			for y := range r {
				for x := range r {
					sum := 0.3 * rnd.NormFloat64()
					for _, w := range waves {
						sum += w.amp * math.Sin(6.28*(w.fx*float64(x)+w.fy*float64(y))/float64(r)+w.phase)
					}
					plane[y*r+x] = float32(sum)
				}
			}
		}
	}
	return dataset.Array{Name: "input", Shape: []int{n, 3, r, r}, Data: v}
}
