package onnx_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
)

// Tensors land one after the other; those of 1 MiB or more start on a
// 64 KiB boundary (the onnx package's layout, which lets ONNX Runtime map
// them), the gap zeros; every tensor names its location, offset, length.
func TestExternalWriterLayout(t *testing.T) {
	const mib = 1 << 20
	sizes := []int64{100, 2 * mib, 10, mib + 3, mib - 1, 7}
	want := []string{"0/100", "65536/2097152", "2162688/10", "2228224/1048579", "3276803/1048575", "4325378/7"}
	var buf bytes.Buffer
	w, err := onnx.NewExternalWriter(&buf, "weights.bin")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, n := range sizes {
		tp := &onnxpb.TensorProto{Name: proto.String("t" + strconv.Itoa(i)), RawData: []byte{1}}
		if err := w.Write(tp, n, func(w io.Writer) error {
			_, err := w.Write(bytes.Repeat([]byte{byte(i + 1)}, int(n)))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		kv := map[string]string{}
		for _, e := range tp.GetExternalData() {
			kv[e.GetKey()] = e.GetValue()
		}
		if tp.GetDataLocation() != onnxpb.TensorProto_EXTERNAL || kv["location"] != "weights.bin" || tp.RawData != nil {
			t.Errorf("tensor %d: location %v %q, raw data %v", i, tp.GetDataLocation(), kv["location"], tp.RawData)
		}
		got = append(got, kv["offset"]+"/"+kv["length"])
		off, _ := strconv.Atoi(kv["offset"])
		if !bytes.Equal(buf.Bytes()[off:off+int(n)], bytes.Repeat([]byte{byte(i + 1)}, int(n))) {
			t.Errorf("tensor %d: the bytes at its offset are not its own", i)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("offset/length (-want +got):\n%s", diff)
	}
	if w.Size() != int64(buf.Len()) {
		t.Errorf("Size() = %d, wrote %d", w.Size(), buf.Len())
	}
	if gap := buf.Bytes()[100:65536]; !bytes.Equal(gap, make([]byte, len(gap))) {
		t.Error("the alignment gap is not zeros")
	}
}

func TestExternalWriterErrors(t *testing.T) {
	for _, loc := range []string{"", "/abs/w.bin", "../w.bin", "sub/../../w.bin"} {
		if _, err := onnx.NewExternalWriter(io.Discard, loc); err == nil || !strings.Contains(err.Error(), "relative to the model's directory") {
			t.Errorf("location %q: error = %v", loc, err)
		}
	}
	w, err := onnx.NewExternalWriter(io.Discard, "w.bin")
	if err != nil {
		t.Fatal(err)
	}
	tp := &onnxpb.TensorProto{Name: proto.String("short")}
	err = w.Write(tp, 8, func(w io.Writer) error { _, err := w.Write(make([]byte, 4)); return err })
	if err == nil || !strings.Contains(err.Error(), `tensor "short": wrote 4 bytes of external data, expected 8`) {
		t.Errorf("short tensor: error = %v", err)
	}
}

// Save reports each file it wrote with the sha256 of its bytes, computed
// while writing: inline, and with the weights in a data file.
func TestSaveDigests(t *testing.T) {
	tests := []struct {
		name  string
		opts  onnx.SaveOptions
		files []string
	}{
		{"inline", onnx.SaveOptions{}, []string{"m.onnx"}},
		{"external", onnx.SaveOptions{ExternalData: true}, []string{"m.onnx", "m.onnx.data"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := onnxtest.Model(t, "mnist-8.onnx")
			dir := t.TempDir()
			saved, err := m.Save(filepath.Join(dir, "m.onnx"), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range saved {
				names = append(names, filepath.Base(f.Path))
				b, err := os.ReadFile(f.Path)
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(b)
				if f.SHA256 != hex.EncodeToString(sum[:]) || f.Size != int64(len(b)) {
					t.Errorf("%s: reported %d bytes sha256 %s, the file has %d bytes sha256 %x", f.Path, f.Size, f.SHA256, len(b), sum)
				}
			}
			if diff := cmp.Diff(tc.files, names); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}
