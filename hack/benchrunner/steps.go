package main

import (
	"context"
	"sort"
	"strings"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/prune"
	"github.com/kompress/kompress/runner/quantize"
)

// steps are the transforms measured, each as the runner runs it: load the
// model, transform, serialize.
var steps = map[string]func([]byte) ([]byte, error){
	"copy":                     func(b []byte) ([]byte, error) { return b, nil },
	"quantize-weightonly-int8": weightOnlyInt8,
	"prune-magnitude-50":       magnitude50,
}

func weightOnlyInt8(data []byte) ([]byte, error) {
	m, err := onnx.Load(data)
	if err != nil {
		return nil, err
	}
	out, _, err := quantize.QuantizeInPlace(context.Background(), m, quantize.Options{
		Method: quantize.WeightOnly, Bits: 8, BlockSize: 32, Format: quantize.QDQ,
	}, nil)
	if err != nil {
		return nil, err
	}
	return out.Bytes()
}

func magnitude50(data []byte) ([]byte, error) {
	m, err := onnx.Load(data)
	if err != nil {
		return nil, err
	}
	out, _, err := prune.Prune(context.Background(), m, prune.Options{Method: prune.Magnitude, Sparsity: 0.5}, nil, nil)
	if err != nil {
		return nil, err
	}
	return out.Bytes()
}

func modeNames() string {
	var names []string
	for k := range steps {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
