// Command benchscale measures one compression of a transformer-sized
// model in a fresh process, so its time and peak memory are its own,
// against a baseline that plainly reads, hashes and writes the same files
// (the model and its external data). hack/bench-scale.sh runs the cases
// side by side and writes out/bench-scale.json.
//
//	benchscale [-calib NPZ] [-cpuprofile F] [-memprofile F] [-peakprofile F] MODE IN OUT     one step, timed: IN's weights are streamed (onnx.OpenFile)
//	benchscale -heldout NPZ [-calib NPZ -smooth] layererror FLOAT QUANTIZED
//	benchscale -heldout NPZ [-float FLOAT] [-samples N -tokens N] run MODEL
//
// Modes: copy (read, sha256, write every file of the model: the
// baseline), rtn-int4 and gptq-int4 (weight-only, MatMulNBits, blocks of
// 32 with a zero point each, the default; no 4-bit guard), dynamic-int8,
// static-int8 (minmax), static-int8-sq (the same after SmoothQuant, alpha
// 0.5), static-int8-sqauto (alpha searched per activation), sparsegpt-50 (hessian
// pruning, half of every layer). A step prints one JSON line
// {"mode","seconds","cpuSeconds","peakRSSBytes","inBytes","outBytes","params","files"}
// (cpuSeconds: user and system time of the whole process, which says
// what the step costs on a machine others share);
// layererror prints {"layerError","layerErrorWithInput","layers"}: the
// means over the changed MatMul layers of ‖XŴ-XW‖/‖XW‖ and of
// ‖X̂Ŵ-XW‖/‖XW‖ (X̂ the input rounded as the model rounds it) on
// held-out inputs (quantize.LayerErrors); with -smooth, the float model
// is first migrated by SmoothQuant on -calib as the step migrated it, so
// each layer is compared with the float layer it was quantized from. run
// loads MODEL in ONNX Runtime (from its external data, if any), runs it
// on held-out tokens (all of them, or the first -samples samples cut to
// -tokens) and fails unless its last hidden state has the expected shape
// and finite values; with -float it prints {"cosine","minCosine"}: the
// cosine to the float model's last hidden state, mean and lowest over
// batches of 4 samples.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/prune"
	"github.com/kompress/kompress/runner/quantize"
)

// calibSamples bounds the calibration samples (of 128 tokens for the
// 124 M model) the quantizers read; sparseGPTSamples those hessian
// pruning reads, which runs the model once per wave of layers (48 for
// GPT-2 small's 12 blocks).
const (
	calibSamples     = 32
	sparseGPTSamples = 16
)

func main() {
	calib := flag.String("calib", "", "calibration dataset (.npz) for gptq-int4, static-int8, sparsegpt-50, layererror -smooth")
	heldout := flag.String("heldout", "", "held-out dataset (.npz) for layererror and run")
	smooth := flag.Bool("smooth", false, "layererror: migrate the float model by SmoothQuant on -calib first (static-int8-sq)")
	smoothAuto := flag.Bool("smooth-auto", false, "layererror -smooth: with alpha auto (static-int8-sqauto)")
	float := flag.String("float", "", "run: the float model to compare the last hidden state with")
	samples := flag.Int("samples", 0, "run: only the first samples (0: all)")
	tokens := flag.Int("tokens", 0, "run: only the first tokens of each sample (0: all)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the step")
	memprofile := flag.String("memprofile", "", "write a heap profile of the step (what it allocated, and what is live at its end)")
	peakprofile := flag.String("peakprofile", "", "write the heap profile at the step's highest live heap, and log each new high of the resident set to stderr")
	flag.IntVar(&layerWorkers, "layers", 0, "gptq-int4 and sparsegpt-50: calibrate every block on the source's block inputs and deal the blocks to this many workers (spec.parallelism.layers); 0 propagates")
	flag.Parse()
	if flag.NArg() == 2 && flag.Arg(0) == "run" {
		check(runModel(flag.Arg(1), *float, *heldout, *samples, *tokens))
		return
	}
	if flag.NArg() != 3 {
		usage()
	}
	mode, in, out := flag.Arg(0), flag.Arg(1), flag.Arg(2)
	if mode == "layererror" {
		smoothCalib := ""
		if *smooth {
			smoothCalib = *calib
		}
		if *smoothAuto {
			smoothQuant = smoothQuantAuto
		}
		check(layerError(in, out, *heldout, smoothCalib))
		return
	}
	step, ok := steps[mode]
	if !ok {
		usage()
	}
	inBytes, err := sizeWithData(in)
	check(err)
	params, err := paramsOf(in)
	check(err)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		check(err)
		check(pprof.StartCPUProfile(f))
	}
	var watch *peakWatch
	if *peakprofile != "" {
		watch = startPeakWatch(*peakprofile, 100*time.Millisecond)
	}
	start := time.Now()
	files, err := step(in, out, *calib)
	check(err)
	d := time.Since(start)
	if watch != nil {
		watch.finish()
	}
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	if *memprofile != "" {
		check(writeHeapProfile(*memprofile))
	}
	var outBytes int64
	for _, f := range files {
		outBytes += f.Size
	}
	var ru syscall.Rusage
	check(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	check(json.NewEncoder(os.Stdout).Encode(map[string]any{
		"mode": mode, "seconds": d.Seconds(), "peakRSSBytes": ru.Maxrss * 1024,
		"inBytes": inBytes, "outBytes": outBytes, "params": params, "files": files,
		"cpuSeconds": time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds(),
	}))
}

var steps = map[string]func(in, out, calib string) ([]onnx.SavedFile, error){
	"copy": func(in, out, _ string) ([]onnx.SavedFile, error) { return copyFiles(in, out) },
	"rtn-int4": quantizeStep(quantize.Options{Method: quantize.WeightOnly, Bits: 4, BlockSize: 32, Format: quantize.MatMulNBits,
		SensitiveLayers: quantize.SensitiveInt4}),
	"gptq-int4": quantizeStep(quantize.Options{Method: quantize.WeightOnly, Bits: 4, BlockSize: 32, Format: quantize.MatMulNBits,
		SensitiveLayers: quantize.SensitiveInt4, Algorithm: quantize.GPTQ, Calibration: quantize.CalibrationOptions{Samples: calibSamples}}),
	"dynamic-int8": quantizeStep(quantize.Options{Method: quantize.Dynamic}),
	"static-int8":  quantizeStep(quantize.Options{Method: quantize.Static, Calibration: quantize.CalibrationOptions{Samples: calibSamples}}),
	"static-int8-sq": quantizeStep(quantize.Options{Method: quantize.Static, Calibration: quantize.CalibrationOptions{Samples: calibSamples},
		SmoothQuant: &smoothQuant}),
	"static-int8-sqauto": quantizeStep(quantize.Options{Method: quantize.Static, Calibration: quantize.CalibrationOptions{Samples: calibSamples},
		SmoothQuant: &smoothQuantAuto}),
	"sparsegpt-50": sparseGPT50,
}

// smoothQuant is static-int8-sq's migration, which layererror -smooth
// repeats on the float model.
var smoothQuant = quantize.SmoothQuantOptions{Alpha: quantize.DefaultSmoothQuantAlpha}

// smoothQuantAuto is static-int8-sqauto's: alpha searched per activation.
var smoothQuantAuto = quantize.SmoothQuantOptions{Auto: true}

// modelFiles is the model and its external data file, if it has one
// beside it under the name the onnx package gives it.
func modelFiles(path string) []string {
	files := []string{path}
	if _, err := os.Stat(path + ".data"); err == nil {
		files = append(files, path+".data")
	}
	return files
}

func sizeWithData(path string) (int64, error) {
	var n int64
	for _, f := range modelFiles(path) {
		st, err := os.Stat(f)
		if err != nil {
			return 0, err
		}
		n += st.Size()
	}
	return n, nil
}

// paramsOf counts the float parameters of the model's tensors (not its
// scalars) from its structure alone: the weights stay in the file (a
// model read whole here would count in the step's peak memory).
func paramsOf(path string) (int64, error) {
	m, err := onnx.OpenFile(path)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, tp := range m.Proto.GetGraph().GetInitializer() {
		if onnx.DataType(tp.GetDataType()) == onnx.Float && len(tp.GetDims()) > 0 {
			n += int64(onnx.NumElements(tp.GetDims()))
		}
	}
	return n, nil
}

// copyFiles reads, hashes and writes each file in a stream: the I/O
// floor of any step.
func copyFiles(in, out string) ([]onnx.SavedFile, error) {
	var saved []onnx.SavedFile
	for _, src := range modelFiles(in) {
		dst := filepath.Join(filepath.Dir(out), filepath.Base(out)+src[len(in):])
		r, err := os.Open(src)
		if err != nil {
			return nil, err
		}
		w, err := os.Create(dst)
		if err != nil {
			r.Close()
			return nil, err
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(w, h), r)
		r.Close()
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		saved = append(saved, onnx.SavedFile{Path: dst, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
	}
	return saved, nil
}

// batches reads a dataset fitted to the model's inputs, in batches of 4.
func batches(m *onnx.Model, path string) (quantize.Calibration, error) {
	if path == "" {
		return nil, nil
	}
	data, err := loadData(m, path)
	if err != nil {
		return nil, err
	}
	return data.Batches(4)
}

// loadData reads a dataset fitted to the model's inputs.
func loadData(m *onnx.Model, path string) (*feed.Data, error) {
	ds, err := dataset.LoadFile(path)
	if err != nil {
		return nil, err
	}
	return feed.FromDataset(feed.Inputs(m), ds)
}

// layerWorkers is the -layers flag.
var layerWorkers int

func quantizeStep(o quantize.Options) func(in, out, calib string) ([]onnx.SavedFile, error) {
	return func(in, out, calib string) ([]onnx.SavedFile, error) {
		o.Calibration.OriginalLayerInputs, o.Calibration.Layers = layerWorkers > 0, layerWorkers
		m, err := onnx.OpenFile(in)
		if err != nil {
			return nil, err
		}
		c, err := batches(m, calib)
		if err != nil {
			return nil, err
		}
		q, r, err := quantize.QuantizeInPlace(context.Background(), m, o, c)
		if err != nil {
			return nil, err
		}
		logReport(r)
		return q.Save(out, onnx.SaveOptions{ExternalData: q.WantsExternalData()})
	}
}

// logReport writes the quantization's summary to stderr, and for
// SmoothQuant the largest outlier ratio of its inputs before and after.
func logReport(r *quantize.Report) {
	fmt.Fprintln(os.Stderr, "benchscale:", r.Summary())
	if sq := r.SmoothQuant; sq != nil {
		var before, after float64
		for _, in := range sq.Smoothed {
			before, after = max(before, in.OutlierRatio), max(after, in.SmoothedRatio)
		}
		fmt.Fprintf(os.Stderr, "benchscale: SmoothQuant on %d inputs (%d layers skipped): largest channel maximum over the median up to %.1fx before, %.1fx after\n",
			len(sq.Smoothed), len(sq.Skipped), before, after)
	}
}

func sparseGPT50(in, out, calib string) ([]onnx.SavedFile, error) {
	m, err := onnx.OpenFile(in)
	if err != nil {
		return nil, err
	}
	ds, err := dataset.LoadFile(calib)
	if err != nil {
		return nil, err
	}
	p, rep, err := prune.Prune(context.Background(), m, prune.Options{Method: prune.Hessian, Sparsity: 0.5, CalibrationSamples: sparseGPTSamples,
		OriginalLayerInputs: layerWorkers > 0, Layers: layerWorkers}, ds, nil)
	if err != nil {
		return nil, err
	}
	// How the time split (blocks, passes, calibration and solve seconds)
	// goes to stderr: stdout is the step's one JSON line.
	check(json.NewEncoder(os.Stderr).Encode(rep.Hessian))
	return p.Save(out, onnx.SaveOptions{ExternalData: p.WantsExternalData()})
}

func layerError(floatPath, quantPath, heldout, smoothCalib string) error {
	f, err := onnx.OpenFile(floatPath)
	if err != nil {
		return err
	}
	if smoothCalib != "" {
		c, err := batches(f, smoothCalib)
		if err != nil {
			return err
		}
		if _, err := quantize.Smooth(context.Background(), f, smoothQuant, calibSamples, c); err != nil {
			return err
		}
	}
	q, err := onnx.OpenFile(quantPath)
	if err != nil {
		return err
	}
	c, err := batches(f, heldout)
	if err != nil {
		return err
	}
	errs, err := quantize.LayerErrors(context.Background(), f, q, c, 16, 512)
	if err != nil {
		return err
	}
	var mean, withInput float64
	for _, e := range errs {
		mean += e.Relative / float64(len(errs))
		withInput += e.WithInput / float64(len(errs))
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"layerError": mean, "layerErrorWithInput": withInput, "layers": len(errs)})
}

// writeHeapProfile writes the heap profile (go tool pprof -sample_index
// alloc_space shows what the step allocated, by where).
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	runtime.GC() // the profile is as of the last collection
	return pprof.Lookup("heap").WriteTo(f, 0)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchscale:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchscale [-calib NPZ] copy|rtn-int4|gptq-int4|dynamic-int8|static-int8|static-int8-sq|sparsegpt-50 IN OUT\n"+
		"       benchscale -heldout NPZ [-calib NPZ -smooth] layererror FLOAT QUANTIZED\n"+
		"       benchscale -heldout NPZ [-float FLOAT] [-samples N -tokens N] run MODEL")
	os.Exit(2)
}
