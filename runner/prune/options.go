package prune

import (
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"github.com/kompress/kompress/api/v1alpha1"
)

// Defaults for fields a spec may leave empty (the CRD applies the same).
const (
	defaultPattern   = "2:4"
	defaultDampening = 0.01
	defaultSamples   = 512
	// blockSize is the number of columns SparseGPT prunes and updates
	// together (the paper's B = 128).
	blockSize = 128
)

var decimal = regexp.MustCompile(`^[0-9]+([.][0-9]+)?$`)

// options is a PruneSpec checked and parsed.
type options struct {
	method v1alpha1.PruneMethod
	// sparsity is the fraction of weights removed (unstructured); 0 with
	// a pattern.
	sparsity float64
	// n of every m weights are kept; both 0 when unstructured.
	n, m         int
	scope        v1alpha1.PruneScope
	storage      v1alpha1.WeightStorage
	excludeNodes map[string]bool
	excludeOps   map[string]bool
	minParams    int64
	samples      int
	dampening    float64
	seed         int64
}

// structured reports whether the options ask for N:M sparsity.
func (o *options) structured() bool { return o.m > 0 }

// parseSpec checks spec for one of the unstructured methods.
func parseSpec(spec v1alpha1.PruneSpec) (*options, error) {
	o := &options{
		method: spec.Method, scope: spec.Scope, storage: spec.Storage,
		minParams: spec.MinParams, samples: int(spec.CalibrationSamples), seed: spec.Seed,
		excludeNodes: map[string]bool{}, excludeOps: map[string]bool{},
	}
	spec, err := normalizeKeep(spec)
	if err != nil {
		return nil, err
	}
	switch spec.Method {
	case v1alpha1.PruneMagnitude:
		if spec.Pattern != "" {
			return nil, specErr("prune.pattern is only used by methods nm and hessian (method magnitude takes sparsity)")
		}
		if spec.Sparsity == "" {
			return nil, specErr("prune.sparsity (or keep) is required for method magnitude")
		}
	case v1alpha1.PruneNM:
		if spec.Sparsity != "" {
			return nil, specErr("prune.sparsity is not used by method nm: set prune.pattern (default %q)", defaultPattern)
		}
		if spec.Pattern == "" {
			spec.Pattern = defaultPattern
		}
	case v1alpha1.PruneHessian:
		if (spec.Sparsity == "") == (spec.Pattern == "") {
			return nil, specErr("method hessian takes prune.sparsity (unstructured) or prune.pattern (N:M), exactly one of them")
		}
	default:
		return nil, specErr("prune.method %q is not one of magnitude, nm, hessian (structured and entropy are in runner/prune/structured)", spec.Method)
	}
	if spec.Sparsity != "" {
		if o.sparsity, err = fraction("prune.sparsity", spec.Sparsity, false); err != nil {
			return nil, err
		}
	}
	if spec.Pattern != "" {
		if o.n, o.m, err = parsePattern(spec.Pattern); err != nil {
			return nil, err
		}
	}
	switch o.scope {
	case "":
		o.scope = v1alpha1.ScopeLayer
		if o.method == v1alpha1.PruneMagnitude {
			o.scope = v1alpha1.ScopeGlobal // it loses less accuracy at the same sparsity
		}
	case v1alpha1.ScopeLayer:
	case v1alpha1.ScopeGlobal:
		if o.method != v1alpha1.PruneMagnitude {
			return nil, specErr("prune.scope global is only used by method magnitude (%s works layer by layer)", o.method)
		}
	default:
		return nil, specErr("prune.scope %q is not layer or global", o.scope)
	}
	switch o.storage {
	case "":
		o.storage = v1alpha1.StorageDense
	case v1alpha1.StorageDense, v1alpha1.StorageSparse:
	default:
		return nil, specErr("prune.storage %q is not dense or sparse", o.storage)
	}
	if o.minParams < 0 {
		return nil, specErr("prune.minParams is %d, expected 0 or more", o.minParams)
	}
	switch {
	case o.samples == 0:
		o.samples = defaultSamples
	case o.samples < 0:
		return nil, specErr("prune.calibrationSamples is %d, expected at least 1", o.samples)
	}
	o.dampening = defaultDampening
	if spec.Dampening != "" {
		if o.dampening, err = fraction("prune.dampening", spec.Dampening, true); err != nil {
			return nil, err
		}
	}
	if spec.Exclude != nil {
		for _, n := range spec.Exclude.Nodes {
			o.excludeNodes[n] = true
		}
		for _, op := range spec.Exclude.OpTypes {
			o.excludeOps[op] = true
		}
	}
	return o, nil
}

// normalizeKeep turns prune.keep into the equivalent prune.sparsity, in
// exact decimal arithmetic so that keep "0.7" is sparsity "0.3".
func normalizeKeep(spec v1alpha1.PruneSpec) (v1alpha1.PruneSpec, error) {
	if spec.Keep == "" {
		return spec, nil
	}
	if spec.Sparsity != "" || spec.Pattern != "" {
		return spec, specErr("prune.keep is the fraction kept: set it instead of prune.sparsity or prune.pattern, not with them")
	}
	if _, err := fraction("prune.keep", spec.Keep, false); err != nil {
		return spec, err
	}
	keep, _ := new(big.Rat).SetString(spec.Keep)
	removed := new(big.Rat).Sub(big.NewRat(1, 1), keep)
	digits := len(spec.Keep)
	spec.Sparsity = trimZeros(removed.FloatString(digits))
	spec.Keep = ""
	return spec, nil
}

// trimZeros drops trailing zeros after a decimal point ("0.300" -> "0.3").
func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// fraction parses a decimal string in (0, 1), or (0, 1] with closed.
func fraction(field, s string, closed bool) (float64, error) {
	want := "(0, 1)"
	if closed {
		want = "(0, 1]"
	}
	if !decimal.MatchString(s) {
		return 0, specErr("%s is %q, expected a decimal string in %s, such as \"0.5\"", field, s, want)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 || v > 1 || (v == 1 && !closed) {
		return 0, specErr("%s is %q, expected a decimal string in %s, such as \"0.5\"", field, s, want)
	}
	return v, nil
}

var patternRE = regexp.MustCompile(`^([0-9]+):([0-9]+)$`)

// parsePattern reads "N:M" with 0 < N < M.
func parsePattern(s string) (n, m int, err error) {
	p := patternRE.FindStringSubmatch(s)
	if p != nil {
		n, _ = strconv.Atoi(p[1])
		m, _ = strconv.Atoi(p[2])
	}
	if p == nil || n <= 0 || n >= m || m > 64 {
		return 0, 0, specErr("prune.pattern is %q, expected N:M with 0 < N < M <= 64, such as \"2:4\"", s)
	}
	return n, m, nil
}

func specErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSpec, fmt.Sprintf(format, args...))
}
