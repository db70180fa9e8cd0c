package runner

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/hack/modelgen"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/eval"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/ort/orttest"
	"github.com/kompress/kompress/runner/storage"
	"github.com/kompress/kompress/runner/storage/storagetest"
)

// decoderFiles writes the small generated decoder with its weights in
// model.onnx.data beside model.onnx, and token ids for it, into a folder.
func decoderFiles(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	err := modelgen.WriteDecoderExternal(modelgen.SmallDecoder, filepath.Join(dir, "model.onnx"))
	if err == nil {
		err = dataset.WriteNPZFile(filepath.Join(dir, "tokens.npz"), modelgen.DecoderTokens(modelgen.SmallDecoder, 8, 16, 2)...)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// upload copies the named files of dir to azurite under prefix/.
func upload(t *testing.T, az *storagetest.Azurite, prefix, dir string, names ...string) {
	t.Helper()
	for _, name := range names {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		_, err = storage.Write(context.Background(), az.URI("models", prefix+"/"+name), f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func int4Stage() v1alpha1.Stage {
	yes := true
	return v1alpha1.Stage{Name: "int4", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize, Quantize: &v1alpha1.QuantizeSpec{
		Method: v1alpha1.QuantizeWeightOnly, Bits: 4, Symmetric: &yes, BlockSize: 32, Format: v1alpha1.FormatMatMulNBits,
		SensitiveLayers: v1alpha1.SensitiveInt4, IOType: v1alpha1.IOFloat32,
		Calibration: v1alpha1.Calibration{Method: v1alpha1.CalibrationMinMax, Samples: 8, Percentile: "99.99"},
	}}}
}

func magnitudeStage() v1alpha1.Stage {
	return v1alpha1.Stage{Name: "prune", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypePrune,
		Prune: &v1alpha1.PruneSpec{Method: v1alpha1.PruneMagnitude, Sparsity: "0.5"}}}
}

func decoderJob(az *storagetest.Azurite, prefix, out string, stages ...v1alpha1.Stage) *v1alpha1.CompressionJobSpec {
	return &v1alpha1.CompressionJobSpec{
		Source:     v1alpha1.ModelSource{URI: az.URI("models", prefix+"/model.onnx")},
		Output:     v1alpha1.OutputSpec{URI: az.URI("models", out)},
		Dataset:    &v1alpha1.DatasetSpec{URI: az.URI("models", prefix+"/tokens.npz"), Format: v1alpha1.DatasetFormatNPZ},
		Evaluation: v1alpha1.EvaluationSpec{Samples: 8, LatencyBatchSize: 1, LatencyRuns: 2},
		Stages:     stages,
	}
}

// runChain runs every stage of spec in order, each reading the one
// before's output, and returns the results.
func runChain(t *testing.T, spec *v1alpha1.CompressionJobSpec) []pipeline.Result {
	t.Helper()
	input := pipeline.SourceRef(spec)
	var out []pipeline.Result
	for i := range spec.Stages {
		task, err := pipeline.NewTask("test/job", spec, i, input, pipeline.Version)
		if err != nil {
			t.Fatal(err)
		}
		var log bytes.Buffer
		res, err := Execute(context.Background(), task, Options{Log: slog.New(slog.NewTextHandler(&log, nil))})
		if err != nil {
			t.Fatalf("stage %d: %v (%s)", i, err, res.Message)
		}
		// The first stage's input is the source, copied for ONNX
		// Runtime and read from that copy; the second's is read by
		// range, its tensors over 64 KiB when the stage reads them.
		ranged := regexp.MustCompile(`external data read by range requests.* bytes=(\d+)`).FindStringSubmatch(log.String())
		if ranged == nil || (i == 0) != (ranged[1] == "0") {
			t.Errorf("stage %d: range reads logged: %q", i, ranged)
		}
		out = append(out, res)
		input = pipeline.Ref{URI: res.Output.URI, Digest: res.Output.Digest}
	}
	return out
}

// A model with external data in object storage goes through a chain: the
// first stage reads it (its data copied once, for ONNX Runtime), the
// second reads the first's output by range requests; each writes its
// output with external data, which is read back from storage, loaded and
// run in ONNX Runtime. The files are listed with their digests, the
// digest is their manifest's and the same when the chain runs again from
// scratch; a data file changed afterwards fails the cache hit.
func TestExternalDataThroughObjectStorage(t *testing.T) {
	orttest.Require(t)
	az := storagetest.StartAzurite(t, "models")
	dir := decoderFiles(t)
	upload(t, az, "src", dir, "model.onnx", "model.onnx.data", "tokens.npz")

	first := runChain(t, decoderJob(az, "src", "run1", magnitudeStage(), int4Stage()))
	again := runChain(t, decoderJob(az, "src", "run2", magnitudeStage(), int4Stage()))
	for i, res := range first {
		art := res.Output
		if got := names(art.Files); !cmp.Equal(got, []string{"model.onnx", "model.onnx.data"}) {
			t.Fatalf("stage %d: files %v, want model.onnx and model.onnx.data", i, got)
		}
		if art.Digest != pipeline.ManifestDigest(art.Files) || art.SizeBytes != art.Files[0].SizeBytes+art.Files[1].SizeBytes {
			t.Errorf("stage %d: digest %s, size %d: not the manifest's of %v", i, art.Digest, art.SizeBytes, art.Files)
		}
		if diff := cmp.Diff(art.Files, again[i].Output.Files); diff != "" || art.Digest != again[i].Output.Digest {
			t.Errorf("stage %d: a second run wrote other files (-first +second):\n%s", i, diff)
		}
		runStored(t, art, filepath.Join(dir, "tokens.npz"))
	}
	if first[1].Input.Digest != first[0].Output.Digest {
		t.Errorf("stage 2 read %s, want the first stage's %s", first[1].Input.Digest, first[0].Output.Digest)
	}

	// A data file replaced after the result was written fails the
	// cache hit (the model file alone is unchanged).
	last := first[1].Output
	data, err := storage.SiblingOf(last.URI, "model.onnx.data")
	if err != nil {
		t.Fatal(err)
	}
	if err := storage.Delete(context.Background(), data); err != nil {
		t.Fatal(err)
	}
	if _, err := storage.WriteBytes(context.Background(), data, bytes.Repeat([]byte{1}, int(last.Files[1].SizeBytes))); err != nil {
		t.Fatal(err)
	}
	spec := decoderJob(az, "src", "run1", magnitudeStage(), int4Stage())
	task, err := pipeline.NewTask("test/job", spec, 1, pipeline.Ref{URI: first[0].Output.URI, Digest: first[0].Output.Digest}, pipeline.Version)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Execute(context.Background(), task, Options{})
	if res.Reason != "ArtifactChanged" || !strings.Contains(res.Message, "model.onnx.data") {
		t.Errorf("cache hit on a changed data file: reason %q, message %q, err %v; want ArtifactChanged naming model.onnx.data", res.Reason, res.Message, err)
	}
}

func names(files []v1alpha1.ArtifactFile) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Name)
	}
	return out
}

// runStored downloads an artifact's files into a folder, checks them
// against the artifact, and loads and runs the model in ONNX Runtime on
// the token ids.
func runStored(t *testing.T, art *v1alpha1.Artifact, tokens string) {
	t.Helper()
	dir := t.TempDir()
	for _, f := range art.Files {
		uri, err := storage.SiblingOf(art.URI, f.Name)
		if err != nil {
			t.Fatal(err)
		}
		b, obj, err := storage.ReadAll(context.Background(), uri, f.Digest)
		if err != nil || obj.Size != f.SizeBytes {
			t.Fatalf("%s: %v, %d bytes, want %d", uri, err, obj.Size, f.SizeBytes)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := onnx.OpenFile(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := dataset.LoadFile(tokens)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := eval.Evaluate(context.Background(), eval.Request{Files: m, FilesBytes: art.SizeBytes, Name: art.URI, Data: ds,
		Spec: eval.Settings{Samples: 4, LatencyBatchSize: 1, LatencyRuns: 1}})
	if err != nil || rep.Samples != 4 {
		t.Fatalf("ONNX Runtime on %s read back: %v, %d samples run", art.URI, err, rep.Samples)
	}
}

// A tensor whose location leaves the model's folder, or names a data
// file that is not there, is refused (exit 65) naming the tensor and the
// location, and nothing is written.
func TestExternalDataRefused(t *testing.T) {
	orttest.Require(t)
	az := storagetest.StartAzurite(t, "models")
	dir := decoderFiles(t)
	raw, err := os.ReadFile(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, location, say string }{
		{"escaping", "../model.onnx.data", `location "../model.onnx.data" must be a relative path inside the model's directory`},
		{"absolute", "/etc/passwd", `location "/etc/passwd" must be a relative path inside the model's directory`},
		{"missing", "other.data", `external data "other.data"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mp onnxpb.ModelProto
			if err := proto.Unmarshal(raw, &mp); err != nil {
				t.Fatal(err)
			}
			var tensor string
			for _, tp := range mp.GetGraph().GetInitializer() {
				if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
					tensor = tp.GetName()
					tp.ExternalData[0].Value = proto.String(tc.location)
					break
				}
			}
			b, err := proto.Marshal(&mp)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, tc.name+".onnx"), b, 0o644); err != nil {
				t.Fatal(err)
			}
			upload(t, az, tc.name, dir, "model.onnx.data", "tokens.npz")
			upload(t, az, tc.name, dir, tc.name+".onnx")
			spec := decoderJob(az, tc.name, tc.name+"-out", int4Stage())
			spec.Source.URI = az.URI("models", tc.name+"/"+tc.name+".onnx")
			task, err := pipeline.NewTask("test/job", spec, 0, pipeline.SourceRef(spec), pipeline.Version)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Execute(context.Background(), task, Options{})
			if ExitCode(err) != pipeline.ExitBadInput || !strings.Contains(res.Message, tc.say) || !strings.Contains(res.Message, `tensor "`+tensor+`"`) {
				t.Errorf("exit %d, message %q; want exit 65 naming tensor %q and saying %q", ExitCode(err), res.Message, tensor, tc.say)
			}
			keys, err := az.Keys("models")
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				if strings.HasPrefix(k, tc.name+"-out/") {
					t.Errorf("%s was written", k)
				}
			}
		})
	}
}

// A model exported with one file per tensor, in a folder beside it, is
// read the same way and comes back as model.onnx + model.onnx.data.
func TestExternalDataOneFilePerTensor(t *testing.T) {
	orttest.Require(t)
	az := storagetest.StartAzurite(t, "models")
	dir := decoderFiles(t)
	files := splitPerTensor(t, dir)
	upload(t, az, "split", dir, append(files, "model.onnx", "tokens.npz")...)

	res := runChain(t, decoderJob(az, "split", "split-out", int4Stage()))[0]
	if got := names(res.Output.Files); !cmp.Equal(got, []string{"model.onnx", "model.onnx.data"}) {
		t.Fatalf("files %v, want model.onnx and model.onnx.data", got)
	}
	runStored(t, res.Output, filepath.Join(dir, "tokens.npz"))
}

// splitPerTensor rewrites dir/model.onnx so that each tensor in
// model.onnx.data has a file of its own, weights/<n>.bin, and returns
// their names.
func splitPerTensor(t *testing.T, dir string) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "model.onnx.data"))
	if err != nil {
		t.Fatal(err)
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(raw, &mp); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "weights"), 0o755); err != nil {
		t.Fatal(err)
	}
	var files []string
	for i, tp := range mp.GetGraph().GetInitializer() {
		if tp.GetDataLocation() != onnxpb.TensorProto_EXTERNAL {
			continue
		}
		kv := map[string]string{}
		for _, e := range tp.ExternalData {
			kv[e.GetKey()] = e.GetValue()
		}
		var off, n int
		fmt.Sscan(kv["offset"], &off)
		fmt.Sscan(kv["length"], &n)
		name := fmt.Sprintf("weights/%d.bin", i)
		if err := os.WriteFile(filepath.Join(dir, name), data[off:off+n], 0o644); err != nil {
			t.Fatal(err)
		}
		tp.ExternalData = []*onnxpb.StringStringEntryProto{{Key: proto.String("location"), Value: proto.String(name)}}
		files = append(files, name)
	}
	b, err := proto.Marshal(&mp)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("%d tensors in external data: the test shows nothing", len(files))
	}
	return files
}
