package modelgen

import (
	"bufio"
	"os"
	"path/filepath"

	"github.com/kompress/kompress/runner/onnx"
)

// WriteDecoderExternal writes the decoder to path and its weights to
// path+".data" beside it (the layout exporters write past 2 GiB), each
// weight streamed to the file as it is drawn, in constant memory.
func WriteDecoderExternal(cfg DecoderConfig, path string) (err error) {
	location := filepath.Base(path) + ".data"
	f, err := os.Create(filepath.Join(filepath.Dir(path), location))
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	w := bufio.NewWriterSize(f, 4<<20)
	ext, err := onnx.NewExternalWriter(w, location)
	if err != nil {
		return err
	}
	m, err := DecoderExternal(cfg, ext)
	if err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return m.SaveFile(path, onnx.SaveOptions{})
}
