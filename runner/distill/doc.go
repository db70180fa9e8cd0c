// Package distill trains a student ONNX model to match a teacher's
// softened outputs (knowledge distillation), in Go, and writes the trained
// weights back into the student in place.
//
// # Design
//
// The student's main graph is turned into a gorgonia expression graph
// (plan.go, build.go, ops.go): each ONNX node becomes one or a few graph
// nodes. gorgonia provides the graph, symbolic differentiation and the
// tape machine; the arithmetic of every operator is a kernel of this
// package (op.go) with its own forward and backward code, because
// gorgonia's softmax takes one maximum for the whole tensor, its average
// pooling divides by the width, and its broadcasting is not ONNX's. The
// matrix products run on small AVX2/FMA kernels (vec_amd64.s) with a Go
// fallback; products with a weight skip its zeros, so a pruned student
// also trains faster.
//
// Trained operators: Conv (1-D and 2-D; pads, auto_pad, strides,
// dilations, groups), Gemm (transA/B, alpha, beta), MatMul (N-D by 2-D),
// Add, Sub, Mul, Div (ONNX broadcasting), Relu, LeakyRelu, Sigmoid, Tanh,
// HardSigmoid, Clip, MaxPool and AveragePool (pads, strides, dilations,
// ceil_mode, count_include_pad), GlobalAveragePool, GlobalMaxPool,
// BatchNormalization, Flatten, Reshape (0, -1, allowzero), Squeeze,
// Unsqueeze, Transpose, Concat, Softmax, LogSoftmax, Identity, Dropout;
// Shape, Gather, Cast and Concat on integer constants are folded (the
// shape computations exporters emit). Any other operator, any other
// domain and subgraphs (If, Loop) are refused before training, naming
// every such node.
//
// BatchNormalization trains in inference mode: the running mean and
// variance stay frozen (they describe the data the teacher saw; a
// distillation batch is too small to re-estimate them), and scale and bias
// train through y = x·s + (bias − mean·s), s = scale/√(var+ε). Nothing is
// folded, so the student's graph keeps its nodes.
//
// Weights that train: Conv weights and biases, Gemm and MatMul matrices
// and biases (where runner/onnx's operator table puts them),
// BatchNormalization scale and bias, and Add/Sub/Mul/Div
// operands of more than one element. Scalars (preprocessing such as
// x/255) and non-float32 weights stay frozen. Reshape handles a batch
// size baked in at export (mnist-8 reshapes to the constant [1, 256]):
// the first dimension becomes the batch being trained when that is the
// only way the sizes agree.
//
// # Loss
//
// With teacher logits t, student logits s, temperature T and weight α:
//
//	L = α·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1−α)·CE(softmax(s), y)
//
// averaged over the batch. A student that ends in Softmax (or
// LogSoftmax) is trained on the logits before it, and a teacher whose
// outputs are probabilities (rows of non-negative values summing to 1)
// has their logarithms taken as its logits. The hard term needs labels: a dataset without
// them is refused unless α is 1. Temperature "auto" chooses T so that the
// teacher's softened outputs have a mean entropy of half the maximum
// (ln k) on the dataset (temperature.go); mnist-8, whose logits are in the
// thousands, gets T≈1,700 and targets whose top class averages 0.68.
//
// # Training
//
// The teacher runs once over the dataset in ONNX Runtime (its logits are
// cached; a teacher with a fixed batch dimension is fed that many samples
// per call, calls in parallel). The batch is split between replicas, one
// per core, each its own gorgonia graph and tape machine reading the same
// weight memory; their gradients are averaged and one optimizer step
// (Adam or SGD with momentum; L2 weight decay; constant, cosine or step
// schedule) updates the weights. Each epoch is shuffled with Options.Seed;
// its last partial batch is dropped. Weights that are exactly zero
// in prunable tensors (Conv, Gemm, MatMul matrices) at the start are
// masked: they get no gradient and are reset to zero after every step,
// so an earlier pruning stage's sparsity is kept exactly. The number of
// replicas shrinks when the memory limit (GOMEMLIMIT) cannot hold them.
//
// After training the weights are written back where they came from
// (initializers or Constant nodes; sparse initializers are stored sparse
// again), and the written student is run in
// ONNX Runtime on the first samples and compared with the training
// graph's outputs before it is returned.
package distill
