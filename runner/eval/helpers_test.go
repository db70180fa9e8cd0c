package eval_test

import (
	"os"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
)

// readModel reads testdata/models/<name>.
func readModel(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(onnxtest.ModelPath(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mnist1k is the committed 1,000-image MNIST test sample.
func mnist1k(t testing.TB) *dataset.Dataset {
	t.Helper()
	return onnxtest.MNIST(t, dataset.MNISTTest1k)
}

// graph builds small models by hand.
type graph struct {
	t *testing.T
	g *onnxpb.GraphProto
}

func newGraph(t *testing.T) *graph {
	return &graph{t: t, g: &onnxpb.GraphProto{Name: proto.String(t.Name())}}
}

func (b *graph) input(name string, dt onnx.DataType, dims ...onnx.Dim) *graph {
	b.g.Input = append(b.g.Input, onnx.ValueInfo(name, dt, dims))
	return b
}

func (b *graph) output(name string, dt onnx.DataType) *graph {
	b.g.Output = append(b.g.Output, onnx.ValueInfo(name, dt, nil))
	return b
}

func (b *graph) init(name string, t *onnx.Tensor) *graph {
	b.t.Helper()
	tp, err := onnx.TensorToProto(t, name)
	if err != nil {
		b.t.Fatal(err)
	}
	b.g.Initializer = append(b.g.Initializer, tp)
	return b
}

// constant adds a Constant node holding t.
func (b *graph) constant(name string, t *onnx.Tensor) *graph {
	b.t.Helper()
	tp, err := onnx.TensorToProto(t, name)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.node("Constant", nil, []string{name}, onnx.AttrTensor("value", tp))
}

func (b *graph) node(op string, ins, outs []string, attrs ...*onnxpb.AttributeProto) *graph {
	b.g.Node = append(b.g.Node, onnx.NewNode(op, outs[0]+"_"+op, ins, outs, attrs...))
	return b
}

// msNode adds a com.microsoft node.
func (b *graph) msNode(op string, ins, outs []string, attrs ...*onnxpb.AttributeProto) *graph {
	b.node(op, ins, outs, attrs...)
	b.g.Node[len(b.g.Node)-1].Domain = proto.String("com.microsoft")
	return b
}

func (b *graph) model(opset int64) *onnx.Model {
	m := onnx.NewModel(b.g, opset)
	for _, n := range b.g.GetNode() {
		if n.GetDomain() == "com.microsoft" {
			m.SetOpset("com.microsoft", 1)
		}
	}
	return m
}

func (b *graph) bytes(opset int64) []byte {
	b.t.Helper()
	return modelBytes(b.t, b.model(opset))
}

func modelBytes(t testing.TB, m *onnx.Model) []byte {
	t.Helper()
	out, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// floats returns n values i*step+offset, with every zeroEvery-th (from 0)
// set to zero when zeroEvery > 0.
func floats(n int, step, offset float32, zeroEvery int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i)*step + offset
		if zeroEvery > 0 && i%zeroEvery == 0 {
			v[i] = 0
		}
	}
	return v
}

func scalarF(v float32) *onnx.Tensor { return onnx.NewTensor([]int64{}, []float32{v}) }
