package quantize

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort"
)

// TestCorpus quantizes every model of the ONNX operator test corpus with
// every method (static calibrated on the model's reference inputs): each
// is either refused as having no quantizable weight or an unsupported
// opset, or gives a model that ONNX Runtime loads and runs on those inputs
// (when it runs the original), never another error or a panic.
func TestCorpus(t *testing.T) {
	cases := onnxtest.Corpus(t)
	specs := append([]Options{{Method: WeightOnly, Bits: 4, Format: MatMulNBits, BlockSize: 16}}, allMethods...)
	written := map[string]int{}
	for _, c := range cases {
		src, err := onnx.LoadFile(c.ModelPath())
		if err != nil {
			continue // not ours to judge: TestCorpusRoundTrip in runner/onnx
		}
		inputs, reason := c.Inputs(src)
		runs := reason == ""
		if runs {
			b, err := src.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			_, err = runCorpus(c.Name, b, inputs)
			runs = err == nil
		}
		for _, spec := range specs {
			if spec.Method == Static && !runs {
				continue // calibration runs the model
			}
			name := c.Name + " " + specName(spec)
			q, err := quantizeCorpus(src, spec, inputs)
			if errors.Is(err, ErrNoWeights) || errors.Is(err, ErrUnsupported) {
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			qb, err := q.Bytes()
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if !runs {
				continue
			}
			if _, err := runCorpus(name, qb, inputs); err != nil {
				t.Errorf("%s: the quantized model does not run: %v", name, err)
				continue
			}
			written[specName(spec)]++
		}
	}
	t.Logf("quantized corpus models that ran, by method: %v", written)
	if written["dynamic"] < 25 || written["static"] < 25 || written["fp16"] < 60 {
		t.Errorf("only %v corpus models quantized and ran; expected the corpus's Conv, Gemm and MatMul models", written)
	}
}

func quantizeCorpus(src *onnx.Model, spec Options, inputs map[string]*onnx.Tensor) (q *onnx.Model, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	var calib Calibration
	if spec.Method == Static {
		calib = NewBatches(inputs)
	}
	q, _, err = Quantize(context.Background(), src, spec, calib)
	return q, err
}

func runCorpus(name string, b []byte, inputs map[string]*onnx.Tensor) (map[string]*onnx.Tensor, error) {
	s, err := ort.NewSession(name, b, ort.Options{IntraOpThreads: 1})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Run(inputs)
}
