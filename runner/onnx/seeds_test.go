package onnx_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/x448/float16"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/internal/fuzzseeds"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the fuzz seed corpora (testdata/fuzz/*/seed-*) and testdata/crafted/*.onnx")

// maxCorpusBytes bounds the committed fuzz corpora.
const maxCorpusBytes = 1 << 20

// TestFuzzSeeds keeps the committed seed corpora of the fuzz targets, and
// the crafted models as files (testdata/crafted, for reproducing
// docs/reliability.md with kompress), in step with the code that builds
// them: every crafted model of issue 11, mnist-8 and its tensors, mnist-8
// with sparse weights in each index layout, a tensor of every data type in
// raw and typed form. Run with -update-seeds to rewrite them. Files the
// fuzzer added (crashers, named by their hash) are left alone.
func TestFuzzSeeds(t *testing.T) {
	want := map[string][]byte{}
	for target, seeds := range fuzzSeeds(t) {
		for name, data := range seeds {
			want[filepath.Join("testdata", "fuzz", target, "seed-"+name)] = fuzzseeds.CorpusFile(data)
		}
	}
	for _, c := range onnxtest.CraftedModels() {
		want[filepath.Join("testdata", "crafted", c.Name+".onnx")] = c.Bytes()
	}
	have, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "*", "seed-*"))
	crafted, _ := filepath.Glob(filepath.Join("testdata", "crafted", "*.onnx"))
	have = append(have, crafted...)
	fuzzseeds.Sync(t, want, have, *updateSeeds, "go test ./runner/onnx -run TestFuzzSeeds -update-seeds", maxCorpusBytes)
}

// fuzzSeeds returns the seeds of every fuzz target, by name.
func fuzzSeeds(t *testing.T) map[string]map[string][]byte {
	models := map[string][]byte{}
	tensors := map[string][]byte{}
	sparse := map[string][]byte{}
	for _, c := range onnxtest.CraftedModels() {
		models["crafted-"+c.Name] = c.Bytes()
		m := &onnx.Model{Proto: c.Model}
		for _, g := range m.Graphs() {
			for _, tp := range g.Graph.GetInitializer() {
				tensors["crafted-"+c.Name] = marshal(t, tp)
			}
			for _, n := range g.Graph.GetNode() {
				for _, a := range n.GetAttribute() {
					if a.T != nil {
						tensors["crafted-"+c.Name] = marshal(t, a.T)
					}
				}
			}
			for _, st := range g.Graph.GetSparseInitializer() {
				sparse["crafted-"+c.Name] = marshal(t, st)
			}
		}
	}

	mnist, err := os.ReadFile(onnxtest.ModelPath(onnxtest.MNIST8))
	if err != nil {
		t.Fatal(err)
	}
	models["mnist-8"] = mnist
	m := mustLoad(t, mnist)
	for _, tp := range m.Proto.GetGraph().GetInitializer() {
		tensors["mnist-8-"+tp.GetName()] = marshal(t, tp)
	}
	// The two big weights pruned to 10% and stored sparse, in each layout.
	for layout, name := range map[onnx.SparseIndices]string{onnx.LinearIndices: "linear", onnx.CoordinateIndices: "coordinates", onnx.CompactIndices: "compact"} {
		s := mustLoad(t, mnist)
		prune(t, s.Weight("Parameter193"), 0.1)
		prune(t, s.Weight("Parameter87"), 0.1)
		if _, err := s.Sparsify([]string{"Parameter193", "Parameter87"}, layout); err != nil {
			t.Fatal(err)
		}
		if layout == onnx.CompactIndices {
			models["mnist-8-sparse-"+name] = mustBytes(t, s)
		}
		for _, st := range s.Proto.GetGraph().GetSparseInitializer() {
			sparse["mnist-8-"+st.GetValues().GetName()+"-"+name] = marshal(t, st)
		}
	}
	models["subgraphs"] = mustBytes(t, subgraphModel())                            // If and Loop bodies, Constant nodes
	models["low-precision-floats"] = mustMarshal(t, onnxtest.LowPrecisionFloats()) // FLOAT8, FLOAT4 weights

	for name, tp := range everyDataType(t) {
		tensors["dtype-"+name] = marshal(t, tp)
	}
	// Sparse tensors with int32 typed indices, coordinates and no values.
	sparse["int32-typed-indices"] = marshal(t, &onnxpb.SparseTensorProto{
		Values:  &onnxpb.TensorProto{DataType: proto.Int32(int32(onnx.Float)), Dims: []int64{2}, FloatData: []float32{1, -2}},
		Indices: &onnxpb.TensorProto{DataType: proto.Int32(int32(onnx.Int32)), Dims: []int64{2}, Int32Data: []int32{0, 5}},
		Dims:    []int64{2, 3},
	})
	sparse["int8-coordinates"] = marshal(t, &onnxpb.SparseTensorProto{
		Values:  &onnxpb.TensorProto{DataType: proto.Int32(int32(onnx.Int64)), Dims: []int64{2}, RawData: make([]byte, 16)},
		Indices: &onnxpb.TensorProto{DataType: proto.Int32(int32(onnx.Int8)), Dims: []int64{2, 2}, RawData: []byte{0, 1, 1, 2}},
		Dims:    []int64{2, 3},
	})
	sparse["empty"] = marshal(t, &onnxpb.SparseTensorProto{
		Values: &onnxpb.TensorProto{DataType: proto.Int32(int32(onnx.Float16)), Dims: []int64{0}, RawData: []byte{}},
		Dims:   []int64{3, 3},
	})
	return map[string]map[string][]byte{
		"FuzzLoad":            models,
		"FuzzStats":           models,
		"FuzzTensorFromProto": tensors,
		"FuzzSparseToDense":   sparse,
	}
}

func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// everyDataType is a small tensor of each data type, raw and typed.
func everyDataType(t *testing.T) map[string]*onnxpb.TensorProto {
	dims := []int64{2, 3}
	out := map[string]*onnxpb.TensorProto{}
	raw := []*onnx.Tensor{
		onnx.NewTensor(dims, []float32{0, 1, -2, 3.5, float32(1e-40), -0}),
		onnx.NewTensor(dims, []float64{0, 1, -2, 3.5, 1e300, -0}),
		onnx.NewTensor(dims, onnx.Float16s([]float32{0, 1, -2, 3.5, 65504, 1e-7})),
		onnx.NewTensor(dims, []onnx.BF16{0, 0x3f80, 0xc000, 0x4060, 0x7f80, 0x7fc0}),
		onnx.NewTensor(dims, []int8{0, 1, -2, 127, -128, 5}),
		onnx.NewTensor(dims, []uint8{0, 1, 2, 255, 128, 5}),
		onnx.NewTensor(dims, []int16{0, 1, -2, 32767, -32768, 5}),
		onnx.NewTensor(dims, []uint16{0, 1, 2, 65535, 128, 5}),
		onnx.NewTensor(dims, []int32{0, 1, -2, 1 << 30, -1 << 31, 5}),
		onnx.NewTensor(dims, []uint32{0, 1, 2, 1 << 31, 128, 5}),
		onnx.NewTensor(dims, []int64{0, 1, -2, 1 << 62, -1 << 63, 5}),
		onnx.NewTensor(dims, []uint64{0, 1, 2, 1 << 63, 128, 5}),
		onnx.NewTensor(dims, []bool{true, false, true, true, false, false}),
		onnx.NewTensor(dims, []string{"a", "", "ccc", "d", "e", "f"}),
		onnx.NewTensor(dims, []complex64{0, 1i, -2, 3.5 + 1i, 1, 5}),
		onnx.NewTensor(dims, []complex128{0, 1i, -2, 3.5 + 1i, 1, 5}),
		{DType: onnx.Int4, Dims: []int64{5}, Data: []int8{-8, 7, 0, 1, -1}},
		{DType: onnx.Uint4, Dims: []int64{5}, Data: []uint8{0, 15, 1, 2, 3}},
		{DType: onnx.Float4E2M1, Dims: []int64{3}, Data: []uint8{0, 15, 7}},
		{DType: onnx.Float8E4M3FN, Dims: []int64{3}, Data: []uint8{0, 0x38, 0xff}},
		{DType: onnx.Float8E8M0, Dims: []int64{}, Data: []uint8{0x7f}},
	}
	for _, tensor := range raw {
		tp, err := onnx.TensorToProto(tensor, "t")
		if err != nil {
			t.Fatal(err)
		}
		out[strings.ToLower(tensor.DType.String())+"-raw"] = tp
	}
	typed := func(dt onnx.DataType, f func(*onnxpb.TensorProto)) {
		tp := &onnxpb.TensorProto{Name: proto.String("t"), DataType: proto.Int32(int32(dt)), Dims: dims}
		f(tp)
		out[strings.ToLower(dt.String())+"-typed"] = tp
	}
	typed(onnx.Float, func(tp *onnxpb.TensorProto) { tp.FloatData = []float32{0, 1, -2, 3.5, 4, 5} })
	typed(onnx.Double, func(tp *onnxpb.TensorProto) { tp.DoubleData = []float64{0, 1, -2, 3.5, 4, 5} })
	typed(onnx.Int64, func(tp *onnxpb.TensorProto) { tp.Int64Data = []int64{0, 1, -2, 3, 4, 5} })
	typed(onnx.Int32, func(tp *onnxpb.TensorProto) { tp.Int32Data = []int32{0, 1, -2, 3, 4, 5} })
	typed(onnx.Int8, func(tp *onnxpb.TensorProto) { tp.Int32Data = []int32{0, 1, -2, 3, 4, 300} })
	typed(onnx.Float16, func(tp *onnxpb.TensorProto) {
		for _, v := range []float32{0, 1, -2, 3.5, 4, 5} {
			tp.Int32Data = append(tp.Int32Data, int32(float16.Fromfloat32(v)))
		}
	})
	typed(onnx.Bool, func(tp *onnxpb.TensorProto) { tp.Int32Data = []int32{0, 1, 2, 0, 1, 0} })
	typed(onnx.Uint32, func(tp *onnxpb.TensorProto) { tp.Uint64Data = []uint64{0, 1, 2, 3, 4, 1 << 33} })
	typed(onnx.Uint64, func(tp *onnxpb.TensorProto) { tp.Uint64Data = []uint64{0, 1, 2, 3, 4, 1 << 63} })
	typed(onnx.String, func(tp *onnxpb.TensorProto) { tp.StringData = [][]byte{{'a'}, nil, {'c'}, {'d'}, {'e'}, {0xff}} })
	typed(onnx.Complex64, func(tp *onnxpb.TensorProto) { tp.FloatData = make([]float32, 12) })
	typed(onnx.Complex128, func(tp *onnxpb.TensorProto) { tp.DoubleData = make([]float64, 12) })
	typed(onnx.Int4, func(tp *onnxpb.TensorProto) { tp.Int32Data = []int32{0x7f, 0x81, 0x10} })
	return out
}
