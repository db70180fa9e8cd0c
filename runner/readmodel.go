package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/storage"
)

// storedModel is a model read from storage: whole, or, for a model whose
// tensors live in external data files beside it, its structure, with
// the data left in storage and read by range (data).
type storedModel struct {
	model *onnx.Model
	raw   []byte // the model file
	// path is the local copy of a model in one file the stage streams
	// (raw is then nil).
	path string
	data *storedData
	// digest is the model's: its file's, or its manifest's (files).
	digest string
	size   int64
	files  []v1alpha1.ArtifactFile
}

// openStoredModel reads the model ref names. Its external data files, if
// any, are resolved beside it (a location out of its folder is refused
// naming the tensor, exit 65), checked against the tensors, and hashed,
// so its digest (a manifest's, see pipeline.ManifestDigest) covers every
// byte; local says ONNX Runtime will run it: the files are then copied to
// scratch as they are hashed, one read serving both.
func openStoredModel(ctx context.Context, st *storage.Client, ref pipeline.Ref, scratch string, stage v1alpha1.StageBody, local bool) (storedModel, error) {
	attrs, err := st.Stat(ctx, ref.URI)
	if err != nil {
		return storedModel{}, err
	}
	if err := checkMemory(ref.URI, attrs.Size, keptFraction(stage)); err != nil {
		return storedModel{}, err
	}
	if streamInline(stage) {
		sm, ok, err := openInlineFile(ctx, st, ref, scratch)
		if err != nil || ok {
			return sm, err
		}
		// Else its tensors are in external data files: streamed below.
	}
	raw, obj, err := st.ReadAll(ctx, ref.URI, "")
	if err != nil {
		return storedModel{}, err
	}
	sm := storedModel{raw: raw, digest: obj.Digest, size: obj.Size}
	header, err := onnx.LoadHeader(raw)
	if err != nil {
		return storedModel{}, BadInputf("%s is not a usable ONNX model: %w", ref.URI, err)
	}
	if !header.HasExternalData() {
		if err := checkPin(ref, sm.digest); err != nil {
			return sm, err
		}
		sm.model, err = loadModel(raw, ref.URI)
		return sm, err
	}
	// Checked from the structure alone, before any data is read.
	total, largest := header.StreamedBytes()
	if err := checkStreamedMemory(ref.URI, obj.Size, largest, total, keptFraction(stage)); err != nil {
		return sm, err
	}
	sm.data = newStoredData(ctx, st, ref.URI, scratch, local)
	if sm.model, err = onnx.OpenSource(raw, ref.URI, sm.data); err != nil {
		return sm, externalDataError(ref.URI, err)
	}
	if sm.files, err = sm.data.files(obj); err != nil {
		return sm, err
	}
	sm.digest = pipeline.ManifestDigest(sm.files)
	for _, f := range sm.files[1:] {
		sm.size += f.SizeBytes
	}
	return sm, checkPin(ref, sm.digest)
}

// openInlineFile copies a model the stage streams to scratch, hashing
// it as it goes, and opens it there (onnx.OpenFile): the stage holds the
// model's structure and the tensors it changes, not the file's bytes. ok
// is false, and the copy removed, when the file does not open that way:
// a model whose tensors live in external data files beside it in
// storage, or no model at all (the caller reads it as such and says
// which).
func openInlineFile(ctx context.Context, st *storage.Client, ref pipeline.Ref, scratch string) (storedModel, bool, error) {
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		return storedModel{}, false, fmt.Errorf("making the stage's local folder: %w", err)
	}
	path := filepath.Join(scratch, inlineFileName(ref.URI))
	obj, err := st.Download(ctx, ref.URI, "", path)
	if err != nil {
		return storedModel{}, false, err
	}
	m, err := onnx.OpenFile(path)
	if err != nil {
		os.Remove(path)
		return storedModel{}, false, nil
	}
	sm := storedModel{model: m, path: path, digest: obj.Digest, size: obj.Size}
	return sm, true, checkPin(ref, sm.digest)
}

// inlineFileName is the local name of a model file: its name in storage
// (the location its streamed tensors are read from), or model.onnx.
func inlineFileName(uri string) string {
	if b := baseName(uri); b != "" && b != "." && b != "/" {
		return b
	}
	return "model.onnx"
}

// externalDataError classifies a failure to open a model's external
// data: a reference that is wrong, or names a file that is not there, is
// the model's fault (exit 65: the model as given cannot be used); other
// failures keep their storage class (denied, transient).
func externalDataError(uri string, err error) error {
	if errors.Is(err, onnx.ErrInvalid) || errors.Is(err, storage.ErrNotFound) {
		return BadInputf("%s is not a usable ONNX model: %w", uri, err)
	}
	return fmt.Errorf("reading the external data of %s: %w", uri, err)
}

// checkPin compares what was read with the digest ref pins, if any.
func checkPin(ref pipeline.Ref, digest string) error {
	want, err := storage.NormalizeDigest(ref.Digest)
	if err != nil {
		return BadInput(err)
	}
	if want == "" || want == digest {
		return nil
	}
	return &storage.Error{Op: "read", URI: ref.URI, Kind: storage.KindDigestMismatch,
		Err: fmt.Errorf("content is %s, but %s was pinned", digest, want)}
}

// streamsInline says the stage reads the weights of a model in one file
// tensor by tensor (onnx.OpenBytes), as it reads external data, so it
// holds the file's bytes and the model's structure, not a parsed copy of
// every weight: hessian pruning and weight-only quantization without
// SmoothQuant, whose code reads every weight through onnx.Weight (tested
// against the model read whole, byte for byte). Other stages read the
// model whole.
func streamsInline(s v1alpha1.StageBody) bool {
	if s.Type == v1alpha1.StageTypePrune && s.Prune != nil {
		return s.Prune.Method == v1alpha1.PruneHessian
	}
	return s.Type == v1alpha1.StageTypeQuantize && s.Quantize != nil &&
		s.Quantize.Method == v1alpha1.QuantizeWeightOnly && s.Quantize.SmoothQuant == nil
}

// streamInline is streamsInline; a test compares it with reading whole.
var streamInline = streamsInline
