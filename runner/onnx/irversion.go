package onnx

import "google.golang.org/protobuf/proto"

// RaiseIRVersion sets the model's IR version to at least v. Crossing IR 4
// also takes the initializers out of the graph inputs: before IR 4 every
// initializer had to be listed there, while from IR 4 on a listed
// initializer is a default a caller may override, which the old model never
// meant (and which stops quantization and pruning from touching it).
func (m *Model) RaiseIRVersion(v int64) {
	if m.Proto.GetIrVersion() >= v {
		return
	}
	if m.Proto.GetIrVersion() < 4 && v >= 4 {
		m.dropInitializerInputs()
	}
	m.Proto.IrVersion = proto.Int64(v)
}

func (m *Model) dropInitializerInputs() {
	for _, ref := range m.Graphs() {
		g := ref.Graph
		weights := map[string]bool{}
		for _, t := range g.GetInitializer() {
			weights[t.GetName()] = true
		}
		for _, t := range g.GetSparseInitializer() {
			weights[t.GetValues().GetName()] = true
		}
		inputs := g.Input[:0]
		for _, vi := range g.Input {
			if !weights[vi.GetName()] {
				inputs = append(inputs, vi)
			}
		}
		g.Input = inputs
	}
}
