package ort

import (
	"fmt"

	ortgo "github.com/yalue/onnxruntime_go"
)

// Optimization is ONNX Runtime's graph optimization level. The zero value
// is ONNX Runtime's own default, OptimizeAll.
type Optimization int

const (
	OptimizeAll      Optimization = iota // every fusion, layout changes included
	OptimizeDisabled                     // run the graph as written
	OptimizeBasic                        // constant folding, redundant node removal
	OptimizeExtended                     // plus complex fusions (e.g. QDQ to integer kernels)
)

// Options tunes a session. The zero value is fine.
type Options struct {
	// IntraOpThreads bounds the threads one operator may use; 0 lets ONNX
	// Runtime choose (one per core).
	IntraOpThreads int
	// Optimization is the graph optimization level.
	Optimization Optimization
	// ExternalDataDir is the directory external-data files are read from
	// when the model refers to any (a model created from bytes has no
	// directory of its own).
	ExternalDataDir string
}

func (o Options) level() (ortgo.GraphOptimizationLevel, error) {
	switch o.Optimization {
	case OptimizeAll:
		return ortgo.GraphOptimizationLevelEnableAll, nil
	case OptimizeDisabled:
		return ortgo.GraphOptimizationLevelDisableAll, nil
	case OptimizeBasic:
		return ortgo.GraphOptimizationLevelEnableBasic, nil
	case OptimizeExtended:
		return ortgo.GraphOptimizationLevelEnableExtended, nil
	}
	return 0, fmt.Errorf("options: Optimization %d is not one of OptimizeAll, OptimizeDisabled, OptimizeBasic, OptimizeExtended", o.Optimization)
}

// sessionOptions builds ONNX Runtime session options; the caller destroys
// them.
func (o Options) sessionOptions() (*ortgo.SessionOptions, error) {
	if o.IntraOpThreads < 0 {
		return nil, fmt.Errorf("options: IntraOpThreads is %d, expected >= 0", o.IntraOpThreads)
	}
	level, err := o.level()
	if err != nil {
		return nil, err
	}
	so, err := ortgo.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	apply := []func() error{
		func() error { return so.SetGraphOptimizationLevel(level) },
	}
	if o.IntraOpThreads > 0 {
		apply = append(apply, func() error { return so.SetIntraOpNumThreads(o.IntraOpThreads) })
	}
	if o.ExternalDataDir != "" {
		apply = append(apply, func() error {
			return so.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", o.ExternalDataDir)
		})
	}
	for _, f := range apply {
		if err := f(); err != nil {
			so.Destroy()
			return nil, err
		}
	}
	return so, nil
}
