package onnxpb_test

import (
	"bytes"
	"os"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// TestRealModelsRoundTripByteForByte decodes models written by other tools
// and re-encodes them: the bytes must be identical and no field may be
// unknown, which shows the schema's field numbers and types match theirs.
func TestRealModelsRoundTripByteForByte(t *testing.T) {
	for _, path := range []string{"../../../testdata/models/mnist-8.onnx", "../../../testdata/models/ppocr-det.onnx"} {
		t.Run(path, func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var m onnxpb.ModelProto
			if err := proto.Unmarshal(src, &m); err != nil {
				t.Fatal(err)
			}
			if n := countUnknown(m.ProtoReflect()); n != 0 {
				t.Errorf("%d messages carry unknown fields", n)
			}
			out, err := proto.Marshal(&m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(src, out) {
				t.Errorf("re-encoded model differs: %d bytes in, %d out", len(src), len(out))
			}
		})
	}
}

func countUnknown(m protoreflect.Message) int {
	n := 0
	if len(m.GetUnknown()) > 0 {
		n++
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil {
			return true
		}
		if fd.IsList() {
			for i := 0; i < v.List().Len(); i++ {
				n += countUnknown(v.List().Get(i).Message())
			}
		} else if !fd.IsMap() {
			n += countUnknown(v.Message())
		}
		return true
	})
	return n
}

// TestUnknownFieldsSurvive adds a field from a future ONNX version to a
// node and checks it is still there after a decode/encode round trip.
func TestUnknownFieldsSurvive(t *testing.T) {
	node := &onnxpb.NodeProto{OpType: proto.String("Relu")}
	future := protowire.AppendTag(nil, 99, protowire.BytesType)
	future = protowire.AppendString(future, "from the future")
	node.ProtoReflect().SetUnknown(future)
	m := &onnxpb.ModelProto{IrVersion: proto.Int64(10), Graph: &onnxpb.GraphProto{Node: []*onnxpb.NodeProto{node}}}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back onnxpb.ModelProto
	if err := proto.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if got := back.GetGraph().GetNode()[0].ProtoReflect().GetUnknown(); !bytes.Equal(got, future) {
		t.Errorf("unknown field bytes = %q, want %q", got, future)
	}
}

// TestPackageName guards against the registration clash with libraries that
// register the ONNX schema as package onnx.
func TestPackageName(t *testing.T) {
	fd := onnxpb.File_runner_onnx_onnxpb_onnx_proto
	if got := string(fd.Package()); got != "kompress.onnx" {
		t.Errorf("proto package = %q, want kompress.onnx", got)
	}
	if got := fd.Path(); got != "runner/onnx/onnxpb/onnx.proto" {
		t.Errorf("registered path = %q, want runner/onnx/onnxpb/onnx.proto", got)
	}
}
