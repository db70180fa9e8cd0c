package layerwise

import (
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/exchange"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// WriteTensors writes a partial's tensors canonically, as the last field
// of a layer pod's partial (a retry must write the same bytes): by name,
// each as its ONNX TensorProto marshalled deterministically, so every
// element type (4-bit codes packed two to a byte) keeps ONNX's own
// encoding.
func WriteTensors(w *exchange.Writer, part Partial) error {
	names := slices.Sorted(maps.Keys(part))
	w.Int(int64(len(names)))
	for _, name := range names {
		tp, err := onnx.TensorToProto(part[name], name)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", name, err)
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(tp)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", name, err)
		}
		w.String(name)
		w.String(string(b))
	}
	return nil
}

// ReadTensors reads what WriteTensors wrote. It is the last field of a
// partial: it checks that r ended there, before it decodes a tensor.
func ReadTensors(r *exchange.Reader) (Partial, error) {
	raw := map[string]string{}
	for n := r.Len(8); n > 0; n-- {
		name := r.String()
		raw[name] = r.String()
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	part := Partial{}
	for name, b := range raw {
		var tp onnxpb.TensorProto
		if err := proto.Unmarshal([]byte(b), &tp); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		t, err := onnx.TensorFromProto(&tp)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		part[name] = t
	}
	return part, nil
}
