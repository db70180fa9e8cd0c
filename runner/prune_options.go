package runner

import (
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/runner/prune"
	"github.com/kompress/kompress/runner/prune/structured"
)

// pruneOptions translates a stage's prune spec into prune.Options: enums
// into Go values, prune.keep into the sparsity it leaves (in exact
// decimal arithmetic, so keep "0.7" is sparsity 0.3 as "0.3" is), the
// decimal strings and the pattern into numbers, and the CRD's defaults
// into fields the spec leaves empty (a task that did not come through the
// API server). Errors name the spec's field and wrap prune.ErrSpec, which
// is bad input.
func pruneOptions(spec v1alpha1.PruneSpec) (prune.Options, error) {
	o := prune.Options{
		MinParams: spec.MinParams, CalibrationSamples: int(spec.CalibrationSamples), Seed: spec.Seed,
		Dampening: prune.DefaultDampening,
	}
	var ok bool
	if o.Method, ok = pruneMethods[spec.Method]; !ok {
		return prune.Options{}, pruneSpecErr("prune.method %q is not one of magnitude, nm, structured, entropy, hessian", spec.Method)
	}
	spec, err := normalizeKeep(spec)
	if err != nil {
		return prune.Options{}, err
	}
	if spec.Sparsity == "" {
		switch o.Method {
		case prune.Magnitude:
			return prune.Options{}, pruneSpecErr("prune.sparsity (or keep) is required for method magnitude")
		case prune.Structured, prune.Entropy:
			return prune.Options{}, pruneSpecErr("prune.sparsity (or keep), the fraction of channels removed, is required for method %s", o.Method)
		}
	} else if o.Sparsity, err = fraction("prune.sparsity", spec.Sparsity, false); err != nil {
		return prune.Options{}, err
	}
	if spec.Pattern != "" {
		if o.Pattern, err = parsePattern(spec.Pattern); err != nil {
			return prune.Options{}, err
		}
	}
	if spec.Dampening != "" {
		if o.Dampening, err = fraction("prune.dampening", spec.Dampening, true); err != nil {
			return prune.Options{}, err
		}
	}
	if o.Scope, ok = pruneScopes[spec.Scope]; !ok {
		return prune.Options{}, pruneSpecErr("prune.scope %q is not layer, global or sensitivity", spec.Scope)
	}
	if o.Criterion, ok = pruneCriteria[spec.Criterion]; !ok {
		return prune.Options{}, pruneSpecErr("prune.criterion %q is not l1, l2 or reconstruction", spec.Criterion)
	}
	if o.Storage, ok = pruneStorages[spec.Storage]; !ok {
		return prune.Options{}, pruneSpecErr("prune.storage %q is not dense or sparse", spec.Storage)
	}
	if o.CalibrationSamples == 0 {
		o.CalibrationSamples = prune.DefaultCalibrationSamples
	}
	if spec.Exclude != nil {
		o.ExcludeNodes, o.ExcludeOpTypes = spec.Exclude.Nodes, spec.Exclude.OpTypes
	}
	// The rules across fields (which method takes a pattern, a scope,
	// sparse storage) are the package's; its messages name the fields as
	// the spec does.
	if err := o.Validate(); err != nil {
		return prune.Options{}, err
	}
	return o, nil
}

var pruneMethods = map[v1alpha1.PruneMethod]prune.Method{
	v1alpha1.PruneMagnitude:  prune.Magnitude,
	v1alpha1.PruneNM:         prune.NM,
	v1alpha1.PruneHessian:    prune.Hessian,
	v1alpha1.PruneStructured: prune.Structured,
	v1alpha1.PruneEntropy:    prune.Entropy,
}

// pruneScopes leaves an empty scope empty: the CRD has no default, the
// method chooses.
var pruneScopes = map[v1alpha1.PruneScope]prune.Scope{
	"":                        "",
	v1alpha1.ScopeLayer:       prune.ScopeLayer,
	v1alpha1.ScopeGlobal:      prune.ScopeGlobal,
	v1alpha1.ScopeSensitivity: prune.ScopeSensitivity,
}

var pruneCriteria = map[v1alpha1.Criterion]structured.Criterion{
	"":                               structured.L1,
	v1alpha1.CriterionL1:             structured.L1,
	v1alpha1.CriterionL2:             structured.L2,
	v1alpha1.CriterionReconstruction: structured.Reconstruction,
}

var pruneStorages = map[v1alpha1.WeightStorage]prune.Storage{
	"":                     prune.Dense,
	v1alpha1.StorageDense:  prune.Dense,
	v1alpha1.StorageSparse: prune.Sparse,
}

// normalizeKeep turns prune.keep into the equivalent prune.sparsity, in
// exact decimal arithmetic so that keep "0.7" is sparsity "0.3".
func normalizeKeep(spec v1alpha1.PruneSpec) (v1alpha1.PruneSpec, error) {
	if spec.Keep == "" {
		return spec, nil
	}
	if spec.Sparsity != "" || spec.Pattern != "" {
		return spec, pruneSpecErr("prune.keep is the fraction kept: set it instead of prune.sparsity or prune.pattern, not with them")
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

var decimalRE = regexp.MustCompile(`^[0-9]+([.][0-9]+)?$`)

// fraction parses a decimal string in (0, 1), or (0, 1] with closed.
func fraction(field, s string, closed bool) (float64, error) {
	want := "(0, 1)"
	if closed {
		want = "(0, 1]"
	}
	if !decimalRE.MatchString(s) {
		return 0, pruneSpecErr("%s is %q, expected a decimal string in %s, such as \"0.5\"", field, s, want)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 || v > 1 || (v == 1 && !closed) {
		return 0, pruneSpecErr("%s is %q, expected a decimal string in %s, such as \"0.5\"", field, s, want)
	}
	return v, nil
}

var patternRE = regexp.MustCompile(`^([0-9]+):([0-9]+)$`)

// parsePattern reads "N:M" with 0 < N < M <= 64.
func parsePattern(s string) (prune.Pattern, error) {
	var n, m int
	p := patternRE.FindStringSubmatch(s)
	if p != nil {
		n, _ = strconv.Atoi(p[1])
		m, _ = strconv.Atoi(p[2])
	}
	if p == nil || n <= 0 || n >= m || m > 64 {
		return prune.Pattern{}, pruneSpecErr("prune.pattern is %q, expected N:M with 0 < N < M <= 64, such as \"2:4\"", s)
	}
	return prune.Pattern{N: n, M: m}, nil
}

func pruneSpecErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", prune.ErrSpec, fmt.Sprintf(format, args...))
}
