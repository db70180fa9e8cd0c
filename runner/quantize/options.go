package quantize

import (
	"fmt"

	"github.com/kompress/kompress/api/v1alpha1"
)

// options is a QuantizeSpec with its defaults applied and checked.
type options struct {
	method     v1alpha1.QuantizeMethod
	bits       int
	perChannel bool
	symmetric  bool
	activation QType
	blockSize  int
	format     v1alpha1.QuantizeFormat
	calib      v1alpha1.Calibration
	ioFloat16  bool
	exclNodes  map[string]bool
	exclOps    map[string]bool
}

// resolve applies the API defaults (the CRD applies them in a cluster; a
// spec built in Go may leave them empty) and rejects combinations the CEL
// rules forbid, naming the field.
func resolve(spec v1alpha1.QuantizeSpec) (*options, error) {
	o := &options{
		method: spec.Method, bits: int(spec.Bits), perChannel: true, symmetric: true,
		activation: UInt8, blockSize: int(spec.BlockSize), format: spec.Format,
		calib: spec.Calibration, exclNodes: map[string]bool{}, exclOps: map[string]bool{},
	}
	switch o.method {
	case v1alpha1.QuantizeDynamic, v1alpha1.QuantizeStatic, v1alpha1.QuantizeWeightOnly, v1alpha1.QuantizeFP16:
	default:
		return nil, fmt.Errorf("quantize.method %q: want dynamic, static, weightOnly or fp16", spec.Method)
	}
	if o.bits == 0 {
		o.bits = 8
	}
	if o.bits != 8 && o.bits != 4 {
		return nil, fmt.Errorf("quantize.bits %d: want 4 or 8", o.bits)
	}
	if o.bits == 4 && o.method != v1alpha1.QuantizeWeightOnly {
		return nil, fmt.Errorf("quantize.bits 4 is only supported with method weightOnly, not %s", o.method)
	}
	if spec.PerChannel != nil {
		o.perChannel = *spec.PerChannel
	}
	if spec.Symmetric != nil {
		o.symmetric = *spec.Symmetric
	}
	switch spec.ActivationType {
	case v1alpha1.ActivationUInt8, "":
	case v1alpha1.ActivationInt8:
		o.activation = Int8
	default:
		return nil, fmt.Errorf("quantize.activationType %q: want uint8 or int8", spec.ActivationType)
	}
	if o.blockSize == 0 {
		o.blockSize = 32
	}
	if o.blockSize < 16 || o.blockSize > 256 || o.blockSize&(o.blockSize-1) != 0 {
		return nil, fmt.Errorf("quantize.blockSize %d: want a power of two from 16 to 256", o.blockSize)
	}
	switch o.format {
	case "":
		o.format = v1alpha1.FormatQDQ
	case v1alpha1.FormatQDQ:
	case v1alpha1.FormatMatMulNBits:
		if o.method != v1alpha1.QuantizeWeightOnly {
			return nil, fmt.Errorf("quantize.format matmulnbits is only supported with method weightOnly, not %s", o.method)
		}
	default:
		return nil, fmt.Errorf("quantize.format %q: want qdq or matmulnbits", spec.Format)
	}
	switch spec.IOType {
	case v1alpha1.IOFloat32, "":
	case v1alpha1.IOFloat16:
		o.ioFloat16 = true
	default:
		return nil, fmt.Errorf("quantize.ioType %q: want float32 or float16", spec.IOType)
	}
	if _, err := NewCollector(o.calib); err != nil {
		return nil, err
	}
	if o.calib.Samples == 0 {
		o.calib.Samples = 256
	}
	if o.calib.Samples < 0 {
		return nil, fmt.Errorf("quantize.calibration.samples %d: want a positive number", o.calib.Samples)
	}
	if spec.Exclude != nil {
		for _, n := range spec.Exclude.Nodes {
			o.exclNodes[n] = true
		}
		for _, t := range spec.Exclude.OpTypes {
			o.exclOps[t] = true
		}
	}
	return o, nil
}

// excluded says why the spec keeps a node in float, or "".
func (o *options) excluded(opType, name string) Reason {
	switch {
	case name != "" && o.exclNodes[name]:
		return ReasonExcludedNode
	case o.exclOps[opType]:
		return ReasonExcludedOpType
	}
	return ""
}
