package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/kompress/kompress/hack/modelgen"
	"github.com/kompress/kompress/runner/compare"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort"
)

// runBatch is how many held-out samples one Run call feeds.
const runBatch = 4

// runModel loads the model at path in ONNX Runtime (the model file, its
// weights read from its directory when they are external), feeds it the
// held-out tokens (the first samples, cut to tokens, when not 0) and
// checks its last hidden state: [samples, tokens, hidden] of finite
// values. With floatPath it prints the cosine to the float model's.
func runModel(path, floatPath, heldout string, samples, tokens int) error {
	q, err := openSession(path)
	if err != nil {
		return err
	}
	defer q.close()
	var f *session
	if floatPath != "" {
		if f, err = openSession(floatPath); err != nil {
			return err
		}
		defer f.close()
	}
	in, err := heldOutBatches(q.model, heldout, samples, tokens)
	if err != nil {
		return err
	}
	var sum float64
	lowest := math.Inf(1)
	for _, b := range in {
		got, err := q.lastHidden(b)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if f == nil {
			continue
		}
		want, err := f.lastHidden(b)
		if err != nil {
			return fmt.Errorf("%s: %w", floatPath, err)
		}
		c := compare.Cosine(want, got)
		sum += c
		lowest = min(lowest, c)
	}
	out := map[string]any{"ran": true, "batches": len(in)}
	if f != nil {
		out["cosine"], out["minCosine"] = sum/float64(len(in)), lowest
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// session is a model in ONNX Runtime, with its graph (weights not read)
// to know its inputs.
type session struct {
	model *onnx.Model
	s     *ort.Session
	name  string
}

func openSession(path string) (*session, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := onnx.LoadHeader(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, err := ort.NewSession(path, b, ort.Options{ExternalDataDir: filepath.Dir(path)})
	if err != nil {
		return nil, fmt.Errorf("ONNX Runtime does not load %s: %w", path, err)
	}
	return &session{model: m, s: s, name: path}, nil
}

func (s *session) close() { s.s.Close() }

// lastHidden runs one batch and returns the last hidden state (a LLaMA
// decoder's logits), checked.
func (s *session) lastHidden(in map[string]*onnx.Tensor) ([]float32, error) {
	out, err := s.s.Run(in)
	if err != nil {
		return nil, err
	}
	name := modelgen.LastHiddenState
	if out[name] == nil {
		name = modelgen.Logits
	}
	y := out[name]
	if y == nil {
		return nil, fmt.Errorf("no output %s or %s", modelgen.LastHiddenState, modelgen.Logits)
	}
	ids := in[modelgen.InputIDs].Dims
	if len(y.Dims) != 3 || y.Dims[0] != ids[0] || y.Dims[1] != ids[1] {
		return nil, fmt.Errorf("%s is %v for input ids %v", name, y.Dims, ids)
	}
	v, err := y.Float32s()
	if err != nil {
		return nil, err
	}
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, fmt.Errorf("%s holds NaN or Inf", name)
		}
	}
	return v, nil
}

// heldOutBatches reads the held-out dataset in batches of runBatch: the
// first samples samples (0: all), each cut to its first tokens (0: all).
func heldOutBatches(m *onnx.Model, path string, samples, tokens int) ([]map[string]*onnx.Tensor, error) {
	data, err := loadData(m, path)
	if err != nil {
		return nil, err
	}
	n := data.Len()
	if samples > 0 {
		n = min(n, samples)
	}
	var out []map[string]*onnx.Tensor
	for start := 0; start < n; start += runBatch {
		idx := make([]int, 0, runBatch)
		for i := start; i < min(start+runBatch, n); i++ {
			idx = append(idx, i)
		}
		b, err := data.Tensors(idx)
		if err != nil {
			return nil, err
		}
		if tokens > 0 {
			for name, t := range b {
				b[name] = cut(t, tokens)
			}
		}
		out = append(out, b)
	}
	return out, nil
}

// cut keeps the first tokens of each row of an int64 [samples, sequence]
// tensor (an empty past is left as it is).
func cut(t *onnx.Tensor, tokens int) *onnx.Tensor {
	if len(t.Dims) != 2 || tokens >= int(t.Dims[1]) {
		return t
	}
	rows, seq := int(t.Dims[0]), int(t.Dims[1])
	v := t.Data.([]int64)
	out := make([]int64, 0, rows*tokens)
	for r := range rows {
		out = append(out, v[r*seq:r*seq+tokens]...)
	}
	return onnx.NewTensor([]int64{int64(rows), int64(tokens)}, out)
}
