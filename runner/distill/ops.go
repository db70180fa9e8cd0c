package distill

import (
	"fmt"
	"math"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// converter adds one ONNX node to the graph being built.
type converter func(b *builder, n *onnxpb.NodeProto) error

// converters are the operators distillation trains through. Everything
// else is refused, by name, before training starts.
var converters map[string]converter

func init() {
	converters = map[string]converter{
		"Conv":               convertConv,
		"Gemm":               convertGemm,
		"MatMul":             convertMatMul,
		"Add":                binaryConverter(binAdd),
		"Sub":                binaryConverter(binSub),
		"Mul":                binaryConverter(binMul),
		"Div":                binaryConverter(binDiv),
		"Relu":               unaryConverter(unRelu),
		"LeakyRelu":          unaryConverter(unLeakyRelu),
		"Sigmoid":            unaryConverter(unSigmoid),
		"Tanh":               unaryConverter(unTanh),
		"HardSigmoid":        unaryConverter(unHardSigmoid),
		"Clip":               convertClip,
		"MaxPool":            poolConverter(false, false),
		"AveragePool":        poolConverter(true, false),
		"GlobalMaxPool":      poolConverter(false, true),
		"GlobalAveragePool":  poolConverter(true, true),
		"BatchNormalization": convertBatchNorm,
		"Flatten":            convertFlatten,
		"Reshape":            convertReshape,
		"Squeeze":            squeezeConverter(false),
		"Unsqueeze":          squeezeConverter(true),
		"Transpose":          convertTranspose,
		"Concat":             convertConcat,
		"Softmax":            softmaxConverter(false),
		"LogSoftmax":         softmaxConverter(true),
		"Identity":           convertIdentity,
		"Dropout":            convertIdentity,
		"Shape":              convertShape,
		"Gather":             convertGather,
		"Cast":               convertCast,
	}
}

// onlyFirstOutput refuses nodes whose optional extra outputs are used.
func onlyFirstOutput(n *onnxpb.NodeProto) error {
	for i, o := range n.GetOutput() {
		if i > 0 && o != "" {
			return fmt.Errorf("output %d (%q) is not supported: only the first output can be trained through", i, o)
		}
	}
	return nil
}

func binaryConverter(kind binKind) converter {
	return func(b *builder, n *onnxpb.NodeProto) error {
		x, needX, err := b.input(n, 0)
		if err != nil {
			return err
		}
		y, needY, err := b.input(n, 1)
		if err != nil {
			return err
		}
		if !needX && !needY {
			return fmt.Errorf("computes on constants only, which is not supported")
		}
		z, err := binary(kind, x, y, []bool{needX, needY})
		if err != nil {
			return err
		}
		b.set(n, 0, &value{n: z, need: true})
		return nil
	}
}

func unaryConverter(kind unaryKind) converter {
	return func(b *builder, n *onnxpb.NodeProto) error {
		x, need, err := b.input(n, 0)
		if err != nil {
			return err
		}
		a := activation{kind: kind}
		switch kind {
		case unLeakyRelu:
			a.alpha = float64(onnx.FloatAttr(n, "alpha", float32(0.01)))
		case unHardSigmoid:
			a.alpha, a.beta = float64(onnx.FloatAttr(n, "alpha", float32(0.2))), float64(onnx.FloatAttr(n, "beta", float32(0.5)))
		}
		y, err := unary(a, x, need)
		if err != nil {
			return err
		}
		b.set(n, 0, &value{n: y, need: need})
		return nil
	}
}

func softmaxConverter(log bool) converter {
	return func(b *builder, n *onnxpb.NodeProto) error {
		x, need, err := b.input(n, 0)
		if err != nil {
			return err
		}
		s := x.Shape()
		def := int64(-1)
		if b.p.opset < 13 {
			def = 1
		}
		axis := int(onnx.IntAttr(n, "axis", def))
		if axis < 0 {
			axis += s.Dims()
		}
		if axis < 0 || axis >= s.Dims() {
			return fmt.Errorf("axis %d out of range for shape %v", axis, s)
		}
		g := smGeom{outer: 1, n: s[axis], inner: 1, log: log}
		for _, d := range s[:axis] {
			g.outer *= d
		}
		for _, d := range s[axis+1:] {
			g.inner *= d
		}
		if b.p.opset < 13 {
			// Before opset 13 the input is coerced to 2-D at axis.
			g.n, g.inner = g.n*g.inner, 1
		}
		y, err := softmax(g, x, need)
		if err != nil {
			return err
		}
		b.set(n, 0, &value{n: y, need: need})
		return nil
	}
}

// convertClip reads Clip's bounds: attributes before opset 11, optional
// constant inputs since; a missing bound is unbounded.
func convertClip(b *builder, n *onnxpb.NodeProto) error {
	x, need, err := b.input(n, 0)
	if err != nil {
		return err
	}
	a := activation{kind: unClip, alpha: float64(onnx.FloatAttr(n, "min", float32(-math.MaxFloat32))), beta: float64(onnx.FloatAttr(n, "max", float32(math.MaxFloat32)))}
	for i, bound := range []*float64{&a.alpha, &a.beta} {
		if !hasInput(n, i+1) {
			continue
		}
		v, err := b.get(n.GetInput()[i+1])
		if err != nil {
			return err
		}
		if v.c == nil {
			return fmt.Errorf("bound %q must be a constant", n.GetInput()[i+1])
		}
		vals, err := v.c.Float32s()
		if err != nil || len(vals) != 1 {
			return fmt.Errorf("bound %q must be a scalar", n.GetInput()[i+1])
		}
		*bound = float64(vals[0])
	}
	y, err := unary(a, x, need)
	if err != nil {
		return err
	}
	b.set(n, 0, &value{n: y, need: need})
	return nil
}
