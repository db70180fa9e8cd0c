// Command modelgen writes the models of package hack/modelgen, with known
// weights deterministic from a seed, and a dataset that feeds them:
//
//	go run ./hack/modelgen/cmd/modelgen -model bert -size 1 -out bert.onnx -data tokens.npz -samples 256
//	go run ./hack/modelgen/cmd/modelgen -model mobilenetv2 -width 1 -resolution 224 -out mnv2.onnx -data images.npz
//	go run ./hack/modelgen/cmd/modelgen -model gru -out controller.onnx -data sequences.npz
//
// bert is a BERT-style encoder (inputs input_ids, attention_mask,
// token_type_ids; output last_hidden_state): -size 1 is 2 layers of
// hidden 64, -size n scales width and depth (12 is BERT-base's). Its
// dataset holds token ids of -seq tokens. mobilenetv2 is a MobileNet-V2-
// style classifier; gru and lstm recurrent controllers with a state input.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/kompress/kompress/hack/modelgen"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
)

func main() {
	model := flag.String("model", "bert", "bert, mobilenetv2, gru or lstm")
	out := flag.String("out", "", "the .onnx file to write")
	data := flag.String("data", "", "also write a dataset (.npz) that feeds the model")
	samples := flag.Int("samples", 256, "samples in the dataset")
	seed := flag.Uint64("seed", 1, "seed of the weights (the dataset's is seed+1)")
	size := flag.Int("size", 1, "bert: 1 is 2 layers of hidden 64, n scales width and depth")
	seq := flag.Int("seq", 32, "bert: tokens per sample; gru, lstm: steps per sample")
	width := flag.Float64("width", 1, "mobilenetv2: channel multiplier")
	resolution := flag.Int("resolution", 224, "mobilenetv2: input height and width")
	classes := flag.Int("classes", 1000, "mobilenetv2: classes")
	flag.Parse()
	if err := run(*model, *out, *data, *samples, *seed, *size, *seq, *width, *resolution, *classes); err != nil {
		fmt.Fprintln(os.Stderr, "modelgen:", err)
		os.Exit(1)
	}
}

func run(model, out, data string, samples int, seed uint64, size, seq int, width float64, resolution, classes int) error {
	if out == "" {
		return fmt.Errorf("-out is required")
	}
	var m *onnx.Model
	var arrays []dataset.Array
	switch model {
	case "bert":
		cfg := modelgen.BERTSize(size)
		cfg.Seed = seed
		if size == 1 {
			cfg.MaxPositions = modelgen.SmallBERT.MaxPositions
		}
		if seq > cfg.MaxPositions {
			cfg.MaxPositions = seq
		}
		m, arrays = modelgen.BERT(cfg), modelgen.BERTTokens(cfg, samples, seq, seed+1)
	case "mobilenetv2":
		cfg := modelgen.MobileNetConfig{Width: width, Resolution: resolution, Classes: classes, Seed: seed}
		m, arrays = modelgen.MobileNetV2(cfg), []dataset.Array{modelgen.Images(samples, resolution, seed+1)}
	case "gru", "lstm":
		cfg := modelgen.ControllerConfig{Cell: map[string]string{"gru": "GRU", "lstm": "LSTM"}[model], Seed: seed}
		m, arrays = modelgen.Controller(cfg), modelgen.Sequences(cfg, samples, seq, seed+1)
	default:
		return fmt.Errorf("-model %q: want bert, mobilenetv2, gru or lstm", model)
	}
	if err := m.SaveFile(out, onnx.SaveOptions{}); err != nil {
		return err
	}
	if data == "" {
		return nil
	}
	return dataset.WriteNPZFile(data, arrays...)
}
