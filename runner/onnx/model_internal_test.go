package onnx

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// TestSaveFilePastProtobufLimit lowers the 2 GiB limit to 10 KB: SaveFile
// must then move weights to a side file without being asked, and Bytes must
// refuse, pointing at SaveFile.
func TestSaveFilePastProtobufLimit(t *testing.T) {
	defer func(old int) { maxProtoSize = old }(maxProtoSize)
	maxProtoSize = 10_000
	m, err := LoadFile("../../testdata/models/mnist-8.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Bytes(); err == nil || !strings.Contains(err.Error(), "save it with SaveFile") {
		t.Errorf("Bytes past the limit: error = %v", err)
	}
	path := filepath.Join(t.TempDir(), "big.onnx")
	if err := m.SaveFile(path, SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path + ".data")
	if err != nil {
		t.Fatalf("no external data file: %v", err)
	}
	if st.Size() < 20_000 {
		t.Errorf("external data file has %d bytes, want the weights (about 23 KB)", st.Size())
	}
	back, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(m.Proto, back.Proto) {
		t.Errorf("model saved past the limit does not load back equal")
	}
}
