package structured

import "github.com/kompress/kompress/runner/onnx/onnxpb"

// rule analyzes one node: it gives its outputs layouts, registers edits,
// and joins or pins channels. Operators without a rule are opaque.
type rule func(*analysis, *onnxpb.NodeProto)

var rules = map[string]rule{}

func register(r rule, ops ...string) {
	for _, op := range ops {
		rules[op] = r
	}
}

func init() {
	register(ruleConv, "Conv")
	register(ruleConvTranspose, "ConvTranspose")
	register(ruleGemm, "Gemm")
	register(ruleMatMul, "MatMul")
	register(ruleNorm, "BatchNormalization", "InstanceNormalization")

	// Element-wise operators, unary or broadcasting several inputs.
	register(ruleElementwise,
		"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Mod", "Where", "PRelu", "Clip",
		"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor",
		"Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu", "Celu",
		"ThresholdedRelu", "Softplus", "Softsign", "Gelu", "Mish", "Swish", "Shrink",
		"Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil", "Round", "Erf", "Sign", "Not",
		"Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh",
		"IsNaN", "IsInf", "Identity", "Cast", "Dropout")
	register(ruleCastLike, "CastLike")
	register(rulePool, "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
	register(ruleResize, "Resize", "Upsample")
	register(rulePad, "Pad")

	register(ruleReshape, "Reshape", "Flatten", "Squeeze", "Unsqueeze")
	register(ruleTranspose, "Transpose")
	register(ruleConcat, "Concat")
	register(ruleSplit, "Split")
	register(ruleSlice, "Slice")
	register(ruleReduce, "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
		"ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin")
	register(ruleSoftmax, "Softmax", "LogSoftmax", "Hardmax")
	register(ruleShape, "Shape")
}
