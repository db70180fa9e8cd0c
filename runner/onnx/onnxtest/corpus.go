// Package onnxtest holds test helpers for ONNX models: the operator test
// corpus and its reference data.
package onnxtest

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// CorpusDir is where Debian's libonnx-testdata puts the ONNX backend test
// cases; $KOMPRESS_ONNX_CORPUS overrides it.
func CorpusDir() string {
	if d := os.Getenv("KOMPRESS_ONNX_CORPUS"); d != "" {
		return d
	}
	return "/usr/share/libonnx-testdata/data"
}

// Case is one test case of the corpus: a model and its first reference
// input/output set.
type Case struct {
	Name string // e.g. node/test_conv_with_strides_padding
	Dir  string
}

// ModelPath is the case's model file.
func (c Case) ModelPath() string { return filepath.Join(c.Dir, "model.onnx") }

// Corpus lists every case of the corpus. The corpus is required: without it
// the test fails saying how to install it (under -short it skips).
func Corpus(t testing.TB) []Case {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the ONNX test corpus; skipped with -short")
	}
	root := CorpusDir()
	models, _ := filepath.Glob(filepath.Join(root, "*", "*", "model.onnx"))
	if len(models) == 0 {
		t.Fatalf("ONNX test corpus not found in %s: install it with `hack/corpus.sh` (apt-get install -y libonnx-testdata)", root)
	}
	sort.Strings(models)
	cases := make([]Case, len(models))
	for i, p := range models {
		dir := filepath.Dir(p)
		rel, _ := filepath.Rel(root, dir)
		cases[i] = Case{Name: filepath.ToSlash(rel), Dir: dir}
	}
	return cases
}

// Inputs reads the reference inputs of test_data_set_0 keyed by the
// model's input names (graph inputs that are not initializers, in order).
// ok is false, with a reason, when an input is not a plain tensor
// (sequences, optionals) or the files are missing.
func (c Case) Inputs(m *onnx.Model) (inputs map[string]*onnx.Tensor, reason string) {
	names := FeedNames(m.Proto.GetGraph())
	inputs = map[string]*onnx.Tensor{}
	for i, name := range names {
		path := filepath.Join(c.Dir, "test_data_set_0", "input_"+strconv.Itoa(i)+".pb")
		if !isTensorInput(m.Proto.GetGraph(), name) {
			return nil, "input " + name + " is not a tensor"
		}
		t, err := onnx.ReadTensorFile(path)
		if err != nil {
			return nil, err.Error()
		}
		inputs[name] = t
	}
	return inputs, ""
}

// FeedNames are the graph inputs a caller feeds: declared inputs that are
// not initializers.
func FeedNames(g *onnxpb.GraphProto) []string {
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	for _, t := range g.GetSparseInitializer() {
		inits[t.GetValues().GetName()] = true
	}
	var out []string
	for _, v := range g.GetInput() {
		if !inits[v.GetName()] {
			out = append(out, v.GetName())
		}
	}
	return out
}

func isTensorInput(g *onnxpb.GraphProto, name string) bool {
	for _, v := range g.GetInput() {
		if v.GetName() == name {
			return v.GetType().GetTensorType() != nil
		}
	}
	return false
}
