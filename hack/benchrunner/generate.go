package main

import (
	"math/rand/v2"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"google.golang.org/protobuf/proto"
)

// generate writes a chain of MatMul+Add+Relu layers of width 1024 holding
// about params float parameters, with random normal weights: a stand-in for
// a real model of that size, since no such model ships in the repository.
func generate(params int64, path string) error {
	const width = 1024
	layers := int(params / (width*width + width))
	if layers < 1 {
		layers = 1
	}
	rng := rand.New(rand.NewPCG(1, 2))
	g := &onnxpb.GraphProto{Name: proto.String("bench")}
	m := onnx.NewModel(g, 17)
	x := "x"
	g.Input = []*onnxpb.ValueInfoProto{onnx.ValueInfo(x, onnx.Float, []onnx.Dim{"N", int64(width)})}
	for i := 0; i < layers; i++ {
		w := make([]float32, width*width)
		for j := range w {
			w[j] = float32(rng.NormFloat64() * 0.03)
		}
		wName, err := m.AddInitializer(g, "w", onnx.NewTensor([]int64{width, width}, w))
		if err != nil {
			return err
		}
		bName, err := m.AddInitializer(g, "b", onnx.NewTensor([]int64{width}, make([]float32, width)))
		if err != nil {
			return err
		}
		mm, add, relu := m.UniqueName("mm"), m.UniqueName("add"), m.UniqueName("relu")
		g.Node = append(g.Node,
			onnx.NewNode("MatMul", mm, []string{x, wName}, []string{mm}),
			onnx.NewNode("Add", add, []string{mm, bName}, []string{add}),
			onnx.NewNode("Relu", relu, []string{add}, []string{relu}))
		x = relu
	}
	g.Output = []*onnxpb.ValueInfoProto{onnx.ValueInfo(x, onnx.Float, []onnx.Dim{"N", int64(width)})}
	return m.SaveFile(path, onnx.SaveOptions{})
}
