package structured

import (
	"fmt"
	"math"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/feed"
)

// Criterion scores channels.
type Criterion string

const (
	// L1 scores a channel by the sum of the absolute values of its filter.
	L1 Criterion = "l1"
	// L2 scores a channel by the Euclidean norm of its filter.
	L2 Criterion = "l2"
	// Entropy scores a channel by the entropy of its activations over the
	// calibration data (Luo & Wu): a channel whose response hardly varies
	// from one input to the next carries little information.
	Entropy Criterion = "entropy"
	// Reconstruction scores a channel by the share of the output variance
	// of the layers that read it which it carries, measured on the
	// calibration data (‖W_c‖²·Var(x_c) over the layer's total): what
	// removing it, with bias correction, costs those layers. Shares are
	// comparable between layers, so ScopeGlobal ranks them as they are.
	Reconstruction Criterion = "reconstruction"
)

// Scope says how many channels each group of coupled layers loses.
type Scope string

const (
	// ScopeLayer removes Fraction of the channels of every group.
	ScopeLayer Scope = "layer"
	// ScopeGlobal removes as many channels as ScopeLayer, but ranks the
	// channels of all groups together, each score divided by its group's
	// mean (Reconstruction scores are shares of a layer's output already
	// and are ranked as they are): groups whose channels matter more lose
	// fewer. No group loses more than MaxGroupFraction of its channels.
	ScopeGlobal Scope = "global"
	// ScopeSensitivity removes as many channels as ScopeLayer, where they
	// cost the least: it measures how much the model's outputs change
	// (1 - cosine, on the first calibration samples or the probe inputs)
	// when each group alone loses 10%, 20% ... 90% of its channels (the
	// sensitivity analysis of Li et al.), then takes channels from the
	// groups whose next step costs the least per channel, as if the
	// groups' losses added up. It runs the model up to nine times per
	// group.
	ScopeSensitivity Scope = "sensitivity"
)

// Defaults for options left at zero.
const (
	DefaultBins             = 32
	DefaultBatchSize        = 16
	DefaultMaxGroupFraction = 0.9
	// DefaultDynamicDim replaces dynamic dimensions other than the batch
	// when the model is run to learn its tensor shapes without calibration
	// data (320 keeps the strides of detection networks whole).
	DefaultDynamicDim = feed.DefaultDynamicDim
)

// Options configure Prune.
type Options struct {
	// Fraction of the channels removed, in (0, 1). Each group of coupled
	// layers keeps at least one channel; counts are rounded to nearest.
	Fraction float64
	// Criterion: L1 (default), L2 or Entropy.
	Criterion Criterion
	// Scope: ScopeLayer (default) or ScopeGlobal.
	Scope Scope
	// MaxGroupFraction caps what ScopeGlobal removes from one group;
	// default DefaultMaxGroupFraction.
	MaxGroupFraction float64

	// Calibration feeds the model's single input for Entropy and
	// Reconstruction (required then) and gives the shapes the model is
	// run at. Samples holds how many of them are used (0: all).
	Calibration *dataset.Dataset
	Samples     int
	// BatchSize of calibration runs when the model's batch dimension is
	// dynamic; default DefaultBatchSize.
	BatchSize int
	// Bins of the activation histograms (Entropy); default DefaultBins.
	Bins int

	// InputShapes gives, by input name, the full shape (batch included) to
	// run the model at when learning tensor shapes without calibration
	// data; dynamic dimensions not given become 1 (batch) or
	// DefaultDynamicDim.
	InputShapes map[string][]int64
	// Inputs say, by input name, how probe inputs are made up without
	// calibration data: one sample's shape (batch excluded) or an input's
	// whole shape, a constant value or a range (feed.Spec). InputShapes,
	// when it names the same input, sets its shape. A name that is not an
	// input of the model is an error naming InputsField.
	Inputs map[string]feed.Spec
	// InputsField names Inputs in errors; default "inputs".
	InputsField string

	// ExcludeNodes and ExcludeOpTypes name nodes left exactly as they are:
	// their output channels are not removed and the tensors they read keep
	// every channel.
	ExcludeNodes   []string
	ExcludeOpTypes []string
	// MinParams leaves layers whose weight has fewer elements than this
	// with all their output channels.
	MinParams int64

	// NoBiasCorrection leaves the biases of the layers that read removed
	// channels as they are. By default each such layer's bias absorbs
	// the removed channels' mean contribution (measured on the
	// calibration data, else on the probe run), so a removed channel
	// that carried a constant offset costs nothing.
	NoBiasCorrection bool

	// Seed orders channels whose scores tie.
	Seed int64
	// Threads bounds ONNX Runtime's intra-op threads; 0 lets it choose.
	Threads int
	// Progress, when set, is called after each entropy calibration batch
	// (samples done of total) and after each sensitivity trial (groups
	// measured of total).
	Progress func(done, total int)
}

func (o Options) withDefaults() (Options, error) {
	if math.IsNaN(o.Fraction) || o.Fraction <= 0 || o.Fraction >= 1 {
		return o, fmt.Errorf("structured pruning: fraction %v must be in (0, 1): it is the share of channels removed", o.Fraction)
	}
	switch o.Criterion {
	case "":
		o.Criterion = L1
	case L1, L2, Entropy, Reconstruction:
	default:
		return o, fmt.Errorf("structured pruning: criterion %q must be one of l1, l2, entropy, reconstruction", o.Criterion)
	}
	switch o.Scope {
	case "":
		o.Scope = ScopeLayer
	case ScopeLayer, ScopeGlobal, ScopeSensitivity:
	default:
		return o, fmt.Errorf("structured pruning: scope %q must be layer, global or sensitivity", o.Scope)
	}
	if o.MaxGroupFraction == 0 {
		o.MaxGroupFraction = DefaultMaxGroupFraction
	}
	if o.MaxGroupFraction < 0 || o.MaxGroupFraction >= 1 {
		return o, fmt.Errorf("structured pruning: maxGroupFraction %v must be in (0, 1)", o.MaxGroupFraction)
	}
	if o.Bins == 0 {
		o.Bins = DefaultBins
	}
	if o.Bins < 2 {
		return o, fmt.Errorf("structured pruning: bins %d must be at least 2", o.Bins)
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.BatchSize < 0 || o.Samples < 0 || o.MinParams < 0 {
		return o, fmt.Errorf("structured pruning: batchSize %d, samples %d and minParams %d must not be negative", o.BatchSize, o.Samples, o.MinParams)
	}
	if (o.Criterion == Entropy || o.Criterion == Reconstruction) && (o.Calibration == nil || o.Calibration.Len() == 0) {
		return o, fmt.Errorf("structured pruning: criterion %s needs calibration data (the job's dataset): channels are scored by their activations", o.Criterion)
	}
	return o, nil
}
