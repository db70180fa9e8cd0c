package modelgen

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// scaleDir is where hack/scale.sh writes the scale models; the tests
// that read them run only when KOMPRESS_SCALE is set (they load GBs).
func scaleDir(t *testing.T) string {
	t.Helper()
	if os.Getenv("KOMPRESS_SCALE") == "" {
		t.Skip("set KOMPRESS_SCALE=1 (after hack/scale.sh) to check the scale models")
	}
	cache := os.Getenv("KOMPRESS_CACHE")
	if cache == "" {
		home, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(home, "kompress")
	}
	return filepath.Join(cache, "scale", "v1")
}

// The models hack/scale.sh generates load in ONNX Runtime and run on
// their held-out tokens: GPT-2 small's shape with its weights inline,
// the 1.1 B decoder from its external data file (the model file alone is
// small; ONNX Runtime reads the weights from the model's directory) on a
// short sequence. Their parameters are the configs'.
func TestScaleModelsRun(t *testing.T) {
	dir := scaleDir(t)
	orttest.Require(t)
	cases := []struct {
		name   string
		cfg    DecoderConfig
		tokens int
	}{
		{"gpt2", GPT2Small, 128},
		{"decoder1b", Decoder1B, 16},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name, "model.onnx")
			header, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run hack/scale.sh)", err)
			}
			m, err := onnx.LoadHeader(header)
			if err != nil {
				t.Fatal(err)
			}
			var params int64
			for _, init := range m.Proto.GetGraph().GetInitializer() {
				if len(init.GetDims()) > 0 && onnx.DataType(init.GetDataType()) == onnx.Float {
					params += int64(onnx.NumElements(init.GetDims()))
				}
			}
			if params != tc.cfg.Params() {
				t.Errorf("%d parameters, want %d", params, tc.cfg.Params())
			}
			ds, err := dataset.LoadFile(filepath.Join(dir, tc.name, "heldout.npz"))
			if err != nil {
				t.Fatal(err)
			}
			data, err := feed.FromDataset(feed.Inputs(m), ds)
			if err != nil {
				t.Fatal(err)
			}
			in, err := data.Tensors([]int{0})
			if err != nil {
				t.Fatal(err)
			}
			for name, v := range in {
				in[name] = onnx.NewTensor([]int64{1, int64(tc.tokens)}, v.Data.([]int64)[:tc.tokens])
			}
			s, err := ort.NewSession(tc.name, header, ort.Options{ExternalDataDir: filepath.Dir(path)})
			if err != nil {
				t.Fatalf("ONNX Runtime does not load %s: %v", tc.name, err)
			}
			defer s.Close()
			out, err := s.Run(in)
			if err != nil {
				t.Fatal(err)
			}
			y := out[LastHiddenState]
			if diff := cmp.Diff([]int64{1, int64(tc.tokens), int64(tc.cfg.Hidden)}, y.Dims); diff != "" {
				t.Errorf("output shape (-want +got):\n%s", diff)
			}
			mean, sd := stats(floats(t, y))
			if math.IsNaN(sd) || sd < 0.05 || sd > 100 || math.Abs(mean) > 100 {
				t.Errorf("last_hidden_state: mean %.3g, standard deviation %.3g: want values of order one that vary", mean, sd)
			}
		})
	}
}
