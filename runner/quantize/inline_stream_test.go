package quantize

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/kompress/kompress/hack/modelgen"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// A model in one file opened by onnx.OpenFile (its weights left in the
// file, read tensor by tensor) is quantized to the very bytes the model
// read whole gives, by round to nearest (each weight quantized a block of
// rows at a time as it is read), by GPTQ block by block, and by dynamic
// and static int8.
func TestQuantizeStreamsAModelInOneFile(t *testing.T) {
	orttest.Require(t)
	cfg := modelgen.SmallDecoder
	cfg.Hidden = 128 // every linear weight 64 KiB or more: left in the file
	whole := modelgen.Decoder(cfg)
	raw, err := whole.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.onnx")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	calib := decoderData{whole, modelgen.DecoderTokens(cfg, 16, 32, 2)}
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"rtn", Options{Method: WeightOnly, Bits: 4, BlockSize: 32, Format: MatMulNBits, SensitiveLayers: SensitiveInt4}},
		{"gptq", Options{Method: WeightOnly, Bits: 4, BlockSize: 32, Format: MatMulNBits, SensitiveLayers: SensitiveInt4, Algorithm: GPTQ}},
		// Not streamed by stages (runner.streamsInline), but what
		// OpenFile gives hack/benchscale.
		{"dynamic", Options{Method: Dynamic}},
		{"static", Options{Method: Static, Calibration: CalibrationOptions{Samples: 16}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			quantized := func(m *onnx.Model) []byte {
				t.Helper()
				q, _, err := QuantizeInPlace(context.Background(), m, tc.opts, calib.batches(t))
				if err != nil {
					t.Fatal(err)
				}
				out := filepath.Join(t.TempDir(), "out.onnx")
				if _, err := q.Save(out, onnx.SaveOptions{ExternalData: q.WantsExternalData()}); err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			loaded, err := onnx.Load(raw)
			if err != nil {
				t.Fatal(err)
			}
			want := quantized(loaded)
			streamed, err := onnx.OpenFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !streamed.Streamed() {
				t.Fatal("OpenFile read the model whole")
			}
			if got := quantized(streamed); !bytes.Equal(got, want) {
				t.Errorf("the streamed model quantizes to %d bytes, not the %d bytes of the model read whole", len(got), len(want))
			}
		})
	}
}
