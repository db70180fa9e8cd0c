// Command modelgen writes the models of package hack/modelgen, with known
// weights deterministic from a seed, and a dataset that feeds them:
//
//	go run ./hack/modelgen/cmd/modelgen -model bert -size 1 -out bert.onnx -data tokens.npz -samples 256
//	go run ./hack/modelgen/cmd/modelgen -model mobilenetv2 -width 1 -resolution 224 -out mnv2.onnx -data images.npz
//	go run ./hack/modelgen/cmd/modelgen -model gru -out controller.onnx -data sequences.npz
//	go run ./hack/modelgen/cmd/modelgen -model gpt2 -out gpt2.onnx -data tokens.npz -samples 64 -seq 128
//	go run ./hack/modelgen/cmd/modelgen -model decoder1b -out decoder1b.onnx -data tokens.npz
//	go run ./hack/modelgen/cmd/modelgen -model llama135m [-untied] -out llama.onnx -data tokens.npz -samples 64 -seq 128
//
// bert is a BERT-style encoder (inputs input_ids, attention_mask,
// token_type_ids; output last_hidden_state): -size 1 is 2 layers of
// hidden 64, -size n scales width and depth (12 is BERT-base's). Its
// dataset holds token ids of -seq tokens. mobilenetv2 is a MobileNet-V2-
// style classifier; gru and lstm recurrent controllers with a state input.
// gpt2 is a decoder of GPT-2 small's shape (124 M parameters; inputs
// input_ids, attention_mask; output last_hidden_state), decoder1b the
// same architecture at 1.11 B parameters, always written with its weights
// in an external data file beside the model (-out plus ".data"), streamed
// as they are drawn; -external does the same for gpt2. decoder is the
// small decoder of the unit tests. Their datasets hold Zipf-distributed
// token ids of -seq tokens; without -out only the dataset is written.
// -size n makes the small decoder n times as wide and as deep.
// llama135m is a LLaMA-style decoder of SmolLM-135M's shape exported with
// its KV cache (inputs input_ids, attention_mask, position_ids and
// past_key_values.N.key/.value; outputs logits and present.N.key/.value),
// llama the small one of the unit tests; their datasets hold input_ids
// and attention_mask only, as a tokenizer gives them (the runner derives
// position_ids and feeds an empty past).
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
	model := flag.String("model", "bert", "bert, mobilenetv2, gru, lstm, decoder, gpt2, decoder1b, llama or llama135m")
	out := flag.String("out", "", "the .onnx file to write")
	data := flag.String("data", "", "also write a dataset (.npz) that feeds the model")
	samples := flag.Int("samples", 256, "samples in the dataset")
	seed := flag.Uint64("seed", 1, "seed of the weights")
	dataSeed := flag.Uint64("data-seed", 0, "seed of the dataset (default seed+1; another one makes held-out data)")
	size := flag.Int("size", 1, "bert, decoder: 1 is 2 layers of hidden 64, n scales width and depth")
	seq := flag.Int("seq", 32, "bert: tokens per sample; gru, lstm: steps per sample")
	width := flag.Float64("width", 1, "mobilenetv2: channel multiplier")
	resolution := flag.Int("resolution", 224, "mobilenetv2: input height and width")
	classes := flag.Int("classes", 1000, "mobilenetv2: classes")
	external := flag.Bool("external", false, "decoder, gpt2: stream the weights to an external data file (always for decoder1b)")
	untied := flag.Bool("untied", false, "llama, llama135m: give the head its own weight (default: tied to the embedding)")
	flag.Parse()
	if *dataSeed == 0 {
		*dataSeed = *seed + 1
	}
	var err error
	if l, ok := llamas[*model]; ok {
		l.Untied = *untied
		err = runLlama(l, *out, *data, *samples, *seed, *dataSeed, *seq)
	} else if d, ok := decoders[*model]; ok {
		if *model == "decoder" {
			d.Hidden, d.Layers = *size*d.Hidden, *size*d.Layers
		}
		err = runDecoder(d, *out, *data, *samples, *seed, *dataSeed, *seq, *external || *model == "decoder1b")
	} else {
		err = run(*model, *out, *data, *samples, *seed, *dataSeed, *size, *seq, *width, *resolution, *classes)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "modelgen:", err)
		os.Exit(1)
	}
}

func run(model, out, data string, samples int, seed, dataSeed uint64, size, seq int, width float64, resolution, classes int) error {
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
		m, arrays = modelgen.BERT(cfg), modelgen.BERTTokens(cfg, samples, seq, dataSeed)
	case "mobilenetv2":
		cfg := modelgen.MobileNetConfig{Width: width, Resolution: resolution, Classes: classes, Seed: seed}
		m, arrays = modelgen.MobileNetV2(cfg), []dataset.Array{modelgen.Images(samples, resolution, dataSeed)}
	case "gru", "lstm":
		cfg := modelgen.ControllerConfig{Cell: map[string]string{"gru": "GRU", "lstm": "LSTM"}[model], Seed: seed}
		m, arrays = modelgen.Controller(cfg), modelgen.Sequences(cfg, samples, seq, dataSeed)
	default:
		return fmt.Errorf("-model %q: want bert, mobilenetv2, gru, lstm, decoder, gpt2, decoder1b, llama or llama135m", model)
	}
	if err := m.SaveFile(out, onnx.SaveOptions{}); err != nil {
		return err
	}
	if data == "" {
		return nil
	}
	return dataset.WriteNPZFile(data, arrays...)
}

var decoders = map[string]modelgen.DecoderConfig{
	"decoder":   modelgen.SmallDecoder,
	"gpt2":      modelgen.GPT2Small,
	"decoder1b": modelgen.Decoder1B,
}

// runDecoder writes a decoder (unless out is empty), with its weights streamed to out+".data"
// when external, and its token dataset.
func runDecoder(cfg modelgen.DecoderConfig, out, data string, samples int, seed, dataSeed uint64, seq int, external bool) (err error) {
	if err := checkDecoderFlags(out, data, seq, cfg.MaxPositions); err != nil {
		return err
	}
	cfg.Seed = seed
	if out != "" {
		if external {
			err = modelgen.WriteDecoderExternal(cfg, out)
		} else {
			err = modelgen.Decoder(cfg).SaveFile(out, onnx.SaveOptions{})
		}
		if err != nil {
			return err
		}
	}
	if data == "" {
		return nil
	}
	return dataset.WriteNPZFile(data, modelgen.DecoderTokens(cfg, samples, seq, dataSeed)...)
}

var llamas = map[string]modelgen.LlamaConfig{
	"llama":     modelgen.SmallLlama,
	"llama135m": modelgen.Llama135M,
}

// runLlama writes a LLaMA-style decoder (unless out is empty) and its
// token dataset.
func runLlama(cfg modelgen.LlamaConfig, out, data string, samples int, seed, dataSeed uint64, seq int) error {
	if err := checkDecoderFlags(out, data, seq, cfg.MaxPositions); err != nil {
		return err
	}
	cfg.Seed = seed
	if out != "" {
		if err := modelgen.Llama(cfg).SaveFile(out, onnx.SaveOptions{}); err != nil {
			return err
		}
	}
	if data == "" {
		return nil
	}
	return dataset.WriteNPZFile(data, modelgen.LlamaTokens(cfg, samples, seq, dataSeed)...)
}

// checkDecoderFlags refuses a decoder run with nothing to write or a
// sequence longer than the decoder's positions.
func checkDecoderFlags(out, data string, seq, positions int) error {
	if out == "" && data == "" {
		return fmt.Errorf("-out or -data is required")
	}
	if seq > positions {
		return fmt.Errorf("-seq %d: the decoder takes at most %d positions", seq, positions)
	}
	return nil
}
