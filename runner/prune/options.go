package prune

import (
	"fmt"
	"math"

	"github.com/kompress/kompress/pipeline/shard"
	"github.com/kompress/kompress/runner/exchange"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/prune/structured"
)

// Method selects a pruning algorithm.
type Method string

// The methods.
const (
	// Magnitude zeroes the weights of smallest |w|.
	Magnitude Method = "magnitude"
	// NM keeps the N largest of every M consecutive weights.
	NM Method = "nm"
	// Hessian prunes by w²/[H⁻¹]ᵢᵢ and updates the weights kept
	// (SparseGPT), unstructured or N:M.
	Hessian Method = "hessian"
	// Structured removes whole channels, scored by Criterion (package
	// runner/prune/structured).
	Structured Method = "structured"
	// Entropy removes the channels whose activations carry the least
	// information (Luo & Wu).
	Entropy Method = "entropy"
)

// Scope says where the sparsity budget is spent.
type Scope string

// The scopes.
const (
	// ScopeLayer prunes every layer (or group of coupled layers) alike.
	ScopeLayer Scope = "layer"
	// ScopeGlobal ranks all weights (Magnitude) or channels (Structured,
	// Entropy) together, so small, sensitive layers keep more.
	ScopeGlobal Scope = "global"
	// ScopeSensitivity (Structured, Entropy) measures each group's loss
	// at several fractions before spending the channel budget.
	ScopeSensitivity Scope = "sensitivity"
)

// Storage says how pruned weights are written.
type Storage string

// The storages.
const (
	// Dense keeps the zeros in place.
	Dense Storage = "dense"
	// Sparse writes ONNX sparse initializers where that is smaller.
	Sparse Storage = "sparse"
)

// Pattern is N:M sparsity: N of every M consecutive weights kept. The
// zero Pattern is none (unstructured).
type Pattern struct{ N, M int }

// IsZero reports whether p is no pattern.
func (p Pattern) IsZero() bool { return p == Pattern{} }

func (p Pattern) String() string { return fmt.Sprintf("%d:%d", p.N, p.M) }

// Defaults for options left at zero.
const (
	DefaultCalibrationSamples = 512
	DefaultDampening          = 0.01
)

// DefaultPattern is NM's pattern when Options leave it at zero.
var DefaultPattern = Pattern{N: 2, M: 4}

// blockSize is the number of columns SparseGPT prunes and updates
// together (the paper's B = 128).
const blockSize = 128

// Options configure Prune. Every field but Method and the amount pruned
// (Sparsity or Pattern) has a default, its zero value. Fields are named
// as the stage spec's (prune.sparsity is Sparsity), and so are they in
// errors, which wrap ErrSpec.
type Options struct {
	// Method is required.
	Method Method
	// Sparsity is the fraction removed, in (0, 1): of the weights
	// (Magnitude, unstructured Hessian) or of the channels (Structured,
	// Entropy), which require it.
	Sparsity float64
	// Pattern is NM's (default DefaultPattern), or Hessian's instead of
	// Sparsity: 0 < N < M <= 64.
	Pattern Pattern
	// Scope: ScopeLayer, ScopeGlobal (Magnitude, Structured, Entropy) or
	// ScopeSensitivity (Structured, Entropy). Default ScopeGlobal for
	// Magnitude (it loses less accuracy at the same sparsity),
	// ScopeLayer for the others.
	Scope Scope
	// Criterion scores Structured's channels: structured.L1 (default),
	// structured.L2 or structured.Reconstruction. The other methods
	// ignore it.
	Criterion structured.Criterion
	// Storage: Dense (default) or Sparse (not for Structured and Entropy,
	// which leave no zeros).
	Storage Storage
	// ExcludeNodes and ExcludeOpTypes name nodes left dense.
	ExcludeNodes   []string
	ExcludeOpTypes []string
	// MinParams leaves weights with fewer elements than this untouched.
	MinParams int64
	// CalibrationSamples is how many samples of the data Hessian,
	// Entropy and Reconstruction calibrate on; default
	// DefaultCalibrationSamples.
	CalibrationSamples int
	// Dampening is added to the Hessian's diagonal as a fraction of its
	// mean, in (0, 1]; default DefaultDampening (Hessian only).
	Dampening float64
	// Seed breaks ties deterministically.
	Seed int64
	// Shards runs Hessian accumulation as this many parallel workers,
	// each on its own units of the calibration batches, merged in a fixed
	// tree (package shard): the result is the same for every count. A
	// power of two up to shard.Units; 0 means 1.
	Shards int
	// Exchange is where the shards' partial Hessians meet; nil runs all
	// Shards in this process (exchange.Local). A stage pod that is one
	// index of an Indexed Job passes exchange.Storage: its Shards()
	// is the count then.
	Exchange exchange.Exchange
	// OriginalLayerInputs calibrates each block of a hessian prune on the
	// inputs the original model gives it, not the pruned blocks before
	// it (spec.parallelism.layerInputs: Original): blocks are then
	// independent, and Layers workers prune them at once, with the same
	// result for every count (spec.parallelism.layers).
	OriginalLayerInputs bool
	Layers              int
	// LayerPod, when set, makes this process one index of an Indexed Job
	// of Layers pods (its Of): it prunes only its own range of blocks and
	// hands its partial to index 0 (layerpod.go), which assembles the
	// model from every index's; the other indices return
	// layerwise.ErrHandedOver once their partial is committed.
	LayerPod *exchange.Storage
	// Inputs say, by input name, how the inputs of the run that reveals
	// tensor shapes are made up without calibration data (Structured):
	// one sample's shape, or an input's whole shape, a value or a range
	// (feed.Spec; the job's spec.evaluation.inputs). A name that is not
	// an input of the model is an error.
	Inputs map[string]feed.Spec
}

// Validate reports the first option that cannot be applied, wrapping
// ErrSpec.
func (o Options) Validate() error {
	if o.channels() {
		_, err := channelOptions(o)
		return err
	}
	_, err := o.parse()
	return err
}

// channels reports whether the method removes channels (package
// structured) rather than weights.
func (o Options) channels() bool { return o.Method == Structured || o.Method == Entropy }

// options are the Options of an unstructured method with their defaults
// applied and checked.
type options struct {
	method Method
	// sparsity is the fraction of weights removed (unstructured); 0 with
	// a pattern.
	sparsity float64
	// n of every m weights are kept; both 0 when unstructured.
	n, m         int
	scope        Scope
	storage      Storage
	excludeNodes map[string]bool
	excludeOps   map[string]bool
	minParams    int64
	samples      int
	dampening    float64
	seed         int64
	shards       int
	exchange     exchange.Exchange
	// originalInputs and layers: OriginalLayerInputs and Layers.
	originalInputs bool
	layers         int
	pod            *exchange.Storage
}

// structured reports whether the options ask for N:M sparsity.
func (o *options) structured() bool { return o.m > 0 }

// parse checks the options of one of the unstructured methods.
func (opts Options) parse() (*options, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	o := &options{
		method: opts.Method, sparsity: opts.Sparsity, n: opts.Pattern.N, m: opts.Pattern.M, scope: opts.Scope, storage: opts.Storage,
		minParams: opts.MinParams, samples: opts.CalibrationSamples, dampening: opts.Dampening, seed: opts.Seed,
		shards: max(opts.Shards, 1), exchange: opts.Exchange, originalInputs: opts.OriginalLayerInputs, layers: opts.Layers, pod: opts.LayerPod,
		excludeNodes: map[string]bool{}, excludeOps: map[string]bool{},
	}
	switch o.method {
	case Magnitude:
		if !opts.Pattern.IsZero() {
			return nil, specErr("prune.pattern is only used by methods nm and hessian (method magnitude takes sparsity)")
		}
		if o.sparsity == 0 {
			return nil, specErr("prune.sparsity is required for method magnitude")
		}
	case NM:
		if o.sparsity != 0 {
			return nil, specErr("prune.sparsity is not used by method nm: set prune.pattern (default %q)", DefaultPattern)
		}
		if opts.Pattern.IsZero() {
			o.n, o.m = DefaultPattern.N, DefaultPattern.M
		}
	case Hessian:
		if (o.sparsity == 0) == opts.Pattern.IsZero() {
			return nil, specErr("method hessian takes prune.sparsity (unstructured) or prune.pattern (N:M), exactly one of them")
		}
	}
	switch o.scope {
	case "":
		o.scope = ScopeLayer
		if o.method == Magnitude {
			o.scope = ScopeGlobal // it loses less accuracy at the same sparsity
		}
	case ScopeLayer:
	case ScopeGlobal:
		if o.method != Magnitude {
			return nil, specErr("prune.scope global is only used by method magnitude (%s works layer by layer)", o.method)
		}
	default:
		return nil, specErr("prune.scope %s is only used by methods structured and entropy", o.scope)
	}
	if o.storage == "" {
		o.storage = Dense
	}
	if o.layers > 1 && !o.originalInputs {
		return nil, specErr("parallelism.layers %d: blocks are independent only with parallelism.layerInputs: Original", opts.Layers)
	}
	if o.pod != nil && (o.pod.Of != o.layers || o.pod.Index < 0 || o.pod.Index >= o.layers) {
		return nil, specErr("parallelism.layers %d: this runner is index %d of an Indexed Job of %d layer pods", opts.Layers, o.pod.Index, o.pod.Of)
	}
	if !shard.Valid(o.shards) {
		return nil, specErr("parallelism.shards %d: want a power of two from 1 to %d", opts.Shards, shard.Units)
	}
	if o.samples == 0 {
		o.samples = DefaultCalibrationSamples
	}
	if o.dampening == 0 {
		o.dampening = DefaultDampening
	}
	for _, n := range opts.ExcludeNodes {
		o.excludeNodes[n] = true
	}
	for _, op := range opts.ExcludeOpTypes {
		o.excludeOps[op] = true
	}
	return o, nil
}

// check rejects values no method takes.
func (o Options) check() error {
	switch o.Method {
	case Magnitude, NM, Hessian, Structured, Entropy:
	default:
		return specErr("prune.method %q is not one of magnitude, nm, hessian, structured, entropy", o.Method)
	}
	if s := o.Sparsity; math.IsNaN(s) || s < 0 || s >= 1 {
		return specErr("prune.sparsity %v: want a fraction in (0, 1)", s)
	}
	if p := o.Pattern; !p.IsZero() && (p.N <= 0 || p.N >= p.M || p.M > 64) {
		return specErr("prune.pattern %s: want N:M with 0 < N < M <= 64", p)
	}
	switch o.Scope {
	case "", ScopeLayer, ScopeGlobal, ScopeSensitivity:
	default:
		return specErr("prune.scope %q is not layer, global or sensitivity", o.Scope)
	}
	switch o.Criterion {
	case "", structured.L1, structured.L2, structured.Reconstruction:
	default:
		return specErr("prune.criterion %q is not l1, l2 or reconstruction", o.Criterion)
	}
	switch o.Storage {
	case "", Dense, Sparse:
	default:
		return specErr("prune.storage %q is not dense or sparse", o.Storage)
	}
	if o.MinParams < 0 {
		return specErr("prune.minParams is %d, expected 0 or more", o.MinParams)
	}
	if o.CalibrationSamples < 0 {
		return specErr("prune.calibrationSamples is %d, expected at least 1", o.CalibrationSamples)
	}
	if d := o.Dampening; math.IsNaN(d) || d < 0 || d > 1 {
		return specErr("prune.dampening %v: want a fraction in (0, 1]", d)
	}
	return nil
}

func specErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSpec, fmt.Sprintf(format, args...))
}
