// Package ort runs ONNX models with ONNX Runtime (through
// github.com/yalue/onnxruntime_go, which loads libonnxruntime.so at run time).
//
// The shared library is found through $ONNXRUNTIME_LIB, then the kompress
// cache ($KOMPRESS_CACHE, else $XDG_CACHE_HOME/kompress, else
// ~/.cache/kompress) at onnxruntime-1.30.0/libonnxruntime.so, where
// `make ort` installs it. The environment is created once per process.
package ort

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ortgo "github.com/yalue/onnxruntime_go"
)

// Version is the ONNX Runtime release this package is built and tested for.
const Version = "1.30.0"

// installHint says how to get the library; every "not found" error ends
// with it.
const installHint = "install it with `make ort` (hack/tools.sh ort), or run " +
	"`ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node@" + Version + " --ignore-scripts` " +
	"and set ONNXRUNTIME_LIB to node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1"

var (
	initOnce sync.Once
	initErr  error
)

// LibraryPath returns where the ONNX Runtime shared library is expected:
// $ONNXRUNTIME_LIB if set, else the kompress cache path.
func LibraryPath() string {
	if p := os.Getenv("ONNXRUNTIME_LIB"); p != "" {
		return p
	}
	return filepath.Join(cacheDir(), "onnxruntime-"+Version, "libonnxruntime.so")
}

func cacheDir() string {
	if d := os.Getenv("KOMPRESS_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "kompress")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "."
	}
	return filepath.Join(home, ".cache", "kompress")
}

// Init loads the library and creates the ONNX Runtime environment. It runs
// once per process; later calls return the first call's result. Every other
// function in this package calls it, so calling it directly is only needed
// to check for the library early.
func Init() error {
	initOnce.Do(func() { initErr = initialize() })
	return initErr
}

func initialize() error {
	path := LibraryPath()
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("ONNX Runtime library not found at %s: %s", path, installHint)
		}
		return fmt.Errorf("ONNX Runtime library %s: %w", path, err)
	}
	ortgo.SetSharedLibraryPath(path)
	// ONNX Runtime logs warnings and errors to stderr; every error also
	// comes back as a Go error, so only fatal messages are worth printing.
	if err := ortgo.InitializeEnvironment(ortgo.WithLogLevelFatal()); err != nil {
		return fmt.Errorf("loading ONNX Runtime from %s: %w (%s)", path, err, installHint)
	}
	return nil
}
