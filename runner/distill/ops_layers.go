package distill

// Converters of the layers that carry weights or windows: Conv, Gemm,
// MatMul, the pools and BatchNormalization.

import (
	"fmt"
	"math"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// window2D reads the spatial attributes shared by Conv and the pools for
// a 2-D window k over input spatial dims in, as [top, left, bottom,
// right] pads, strides and dilations.
func window2D(n *onnxpb.NodeProto, in, k [2]int) (pads [4]int, strides, dils [2]int, err error) {
	strides, dils = [2]int{1, 1}, [2]int{1, 1}
	if s, ok := onnx.IntsAttr(n, "strides"); ok {
		if len(s) != 2 {
			return pads, strides, dils, fmt.Errorf("strides %v: want 2 values", s)
		}
		strides = [2]int{int(s[0]), int(s[1])}
	}
	if d, ok := onnx.IntsAttr(n, "dilations"); ok {
		if len(d) != 2 {
			return pads, strides, dils, fmt.Errorf("dilations %v: want 2 values", d)
		}
		dils = [2]int{int(d[0]), int(d[1])}
	}
	switch ap := onnx.StringAttr(n, "auto_pad", "NOTSET"); ap {
	case "NOTSET", "":
		if p, ok := onnx.IntsAttr(n, "pads"); ok {
			if len(p) != 4 {
				return pads, strides, dils, fmt.Errorf("pads %v: want 4 values", p)
			}
			pads = [4]int{int(p[0]), int(p[1]), int(p[2]), int(p[3])}
		}
	case "VALID":
	case "SAME_UPPER", "SAME_LOWER":
		for a := 0; a < 2; a++ {
			out := (in[a] + strides[a] - 1) / strides[a]
			total := max(0, (out-1)*strides[a]+(k[a]-1)*dils[a]+1-in[a])
			lo := total / 2
			if ap == "SAME_LOWER" {
				lo = total - total/2
			}
			pads[a], pads[a+2] = lo, total-lo
		}
	default:
		return pads, strides, dils, fmt.Errorf("auto_pad %q is not supported", ap)
	}
	return pads, strides, dils, nil
}

// to2D views a 1-D (N, C, L) tensor as 2-D (N, C, 1, L).
func to2D(x *G.Node) (*G.Node, error) {
	s := x.Shape()
	return G.Reshape(x, tensor.Shape{s[0], s[1], 1, s[2]})
}

// widen1D turns 1-D window attributes into 2-D ones on a copy of n.
func widen1D(n *onnxpb.NodeProto) *onnxpb.NodeProto {
	c := &onnxpb.NodeProto{Name: n.Name, OpType: n.OpType, Input: n.Input, Output: n.Output}
	for _, a := range n.GetAttribute() {
		switch a.GetName() {
		case "kernel_shape", "strides", "dilations":
			v := a.GetInts()
			if len(v) == 1 {
				c.Attribute = append(c.Attribute, &onnxpb.AttributeProto{Name: a.Name, Type: a.Type, Ints: []int64{1, v[0]}})
				continue
			}
		case "pads":
			v := a.GetInts()
			if len(v) == 2 {
				c.Attribute = append(c.Attribute, &onnxpb.AttributeProto{Name: a.Name, Type: a.Type, Ints: []int64{0, v[0], 0, v[1]}})
				continue
			}
		}
		c.Attribute = append(c.Attribute, a)
	}
	return c
}

func convertConv(b *builder, n *onnxpb.NodeProto) error {
	x, needX, err := b.input(n, 0)
	if err != nil {
		return err
	}
	w, needW, err := b.input(n, 1)
	if err != nil {
		return err
	}
	var bias *G.Node
	needB := false
	if hasInput(n, 2) {
		if bias, needB, err = b.input(n, 2); err != nil {
			return err
		}
	}
	oneD := x.Shape().Dims() == 3
	if oneD {
		if x, err = to2D(x); err != nil {
			return err
		}
		if w, err = to2D(w); err != nil {
			return err
		}
		n = widen1D(n)
	}
	xs, ws := x.Shape(), w.Shape()
	if xs.Dims() != 4 || ws.Dims() != 4 {
		return fmt.Errorf("input %v and weight %v: only 1-D and 2-D convolutions are supported", xs, ws)
	}
	pads, strides, dils, err := window2D(n, [2]int{xs[2], xs[3]}, [2]int{ws[2], ws[3]})
	if err != nil {
		return err
	}
	c := convGeom{n: xs[0], cin: xs[1], h: xs[2], w: xs[3], cout: ws[0], kh: ws[2], kw: ws[3],
		group: int(onnx.IntAttr(n, "group", 1)), padT: pads[0], padL: pads[1], padB: pads[2], padR: pads[3],
		strideH: strides[0], stride: strides[1], dilH: dils[0], dilW: dils[1]}
	if ws[1]*c.group != c.cin {
		return fmt.Errorf("weight %v with group %d does not match %d input channels", ws, c.group, c.cin)
	}
	if err := c.finish(); err != nil {
		return err
	}
	need := []bool{needX, needW}
	if bias != nil {
		need = append(need, needB)
	}
	// The gradient of pruned filter entries is never used: skip them.
	var skip []bool
	if pr, ok := b.p.byName[n.GetInput()[1]]; ok && pr.mask != nil {
		skip = pr.mask
	}
	y, err := conv(c, skip, x, w, bias, need)
	if err != nil {
		return err
	}
	if oneD {
		if y, err = G.Reshape(y, tensor.Shape{c.n, c.cout, c.ow}); err != nil {
			return err
		}
	}
	b.set(n, 0, &value{n: y, need: needX || needW || needB})
	return nil
}

func convertGemm(b *builder, n *onnxpb.NodeProto) error {
	a, needA, err := b.input(n, 0)
	if err != nil {
		return err
	}
	w, needW, err := b.input(n, 1)
	if err != nil {
		return err
	}
	as, ws := a.Shape(), w.Shape()
	if as.Dims() != 2 || ws.Dims() != 2 {
		return fmt.Errorf("inputs %v and %v: Gemm needs matrices", as, ws)
	}
	g := mmGeom{transA: onnx.IntAttr(n, "transA", 0) != 0, transB: onnx.IntAttr(n, "transB", 0) != 0, alpha: float64(onnx.FloatAttr(n, "alpha", float32(1)))}
	g.m, g.k = as[0], as[1]
	if g.transA {
		g.m, g.k = as[1], as[0]
	}
	k2 := ws[0]
	g.n = ws[1]
	if g.transB {
		k2, g.n = ws[1], ws[0]
	}
	if k2 != g.k {
		return fmt.Errorf("inputs %v and %v do not multiply (transA=%v, transB=%v)", as, ws, g.transA, g.transB)
	}
	y, err := matmul(g, a, w, []bool{needA, needW})
	if err != nil {
		return err
	}
	need := needA || needW
	if hasInput(n, 2) {
		c, needC, err := b.input(n, 2)
		if err != nil {
			return err
		}
		if beta := float64(onnx.FloatAttr(n, "beta", float32(1))); beta != 1 {
			s := b.constNode(n.GetName()+":beta", nil, []float32{float32(beta)})
			if c, err = binary(binMul, c, s, []bool{needC, false}); err != nil {
				return err
			}
		}
		if y, err = binary(binAdd, y, c, []bool{need, needC}); err != nil {
			return err
		}
		need = need || needC
	}
	b.set(n, 0, &value{n: y, need: need})
	return nil
}

func convertMatMul(b *builder, n *onnxpb.NodeProto) error {
	a, needA, err := b.input(n, 0)
	if err != nil {
		return err
	}
	w, needW, err := b.input(n, 1)
	if err != nil {
		return err
	}
	as, ws := a.Shape(), w.Shape()
	if as.Dims() < 2 || ws.Dims() != 2 {
		return fmt.Errorf("inputs %v and %v: only an N-D (N >= 2) by 2-D product is supported", as, ws)
	}
	k := as[as.Dims()-1]
	if ws[0] != k {
		return fmt.Errorf("inputs %v and %v do not multiply", as, ws)
	}
	rows := as.TotalSize() / k
	a2 := a
	if as.Dims() > 2 {
		if a2, err = G.Reshape(a, tensor.Shape{rows, k}); err != nil {
			return err
		}
	}
	y, err := matmul(mmGeom{m: rows, k: k, n: ws[1], alpha: 1}, a2, w, []bool{needA, needW})
	if err != nil {
		return err
	}
	if as.Dims() > 2 {
		out := append(as[:as.Dims()-1:as.Dims()-1], ws[1])
		if y, err = G.Reshape(y, out); err != nil {
			return err
		}
	}
	b.set(n, 0, &value{n: y, need: needA || needW})
	return nil
}

func poolConverter(average, global bool) converter {
	return func(b *builder, n *onnxpb.NodeProto) error {
		if err := onlyFirstOutput(n); err != nil {
			return err
		}
		x, need, err := b.input(n, 0)
		if err != nil {
			return err
		}
		oneD := x.Shape().Dims() == 3
		if oneD {
			if x, err = to2D(x); err != nil {
				return err
			}
			n = widen1D(n)
		}
		xs := x.Shape()
		if xs.Dims() != 4 {
			return fmt.Errorf("input %v: only 1-D and 2-D pooling is supported", xs)
		}
		g := poolGeom{n: xs[0], c: xs[1], h: xs[2], w: xs[3], kh: xs[2], kw: xs[3], strideH: 1, strideW: 1, dilH: 1, dilW: 1}
		if !global {
			ks, ok := onnx.IntsAttr(n, "kernel_shape")
			if !ok || len(ks) != 2 {
				return fmt.Errorf("kernel_shape %v: want 2 values", ks)
			}
			g.kh, g.kw = int(ks[0]), int(ks[1])
			pads, strides, dils, err := window2D(n, [2]int{xs[2], xs[3]}, [2]int{g.kh, g.kw})
			if err != nil {
				return err
			}
			g.padT, g.padL, g.padB, g.padR = pads[0], pads[1], pads[2], pads[3]
			g.strideH, g.strideW, g.dilH, g.dilW = strides[0], strides[1], dils[0], dils[1]
			g.ceil = onnx.IntAttr(n, "ceil_mode", 0) != 0
			g.includePad = onnx.IntAttr(n, "count_include_pad", 0) != 0
		}
		if err := g.finish(); err != nil {
			return err
		}
		var y *G.Node
		if average {
			y, err = avgPool(g, x, need)
		} else {
			y, err = maxPool(g, x, need)
		}
		if err != nil {
			return err
		}
		if oneD {
			if y, err = G.Reshape(y, tensor.Shape{g.n, g.c, g.ow}); err != nil {
				return err
			}
		}
		b.set(n, 0, &value{n: y, need: need})
		return nil
	}
}

// convertBatchNorm trains BatchNormalization in inference mode: the
// running mean and variance stay as they are (they describe the data the
// teacher saw, and a distillation batch is too small to re-estimate them
// well), scale and bias train. y = x·s + (bias − mean·s) with
// s = scale/√(var+ε), so the gradient reaches scale and bias directly.
func convertBatchNorm(b *builder, n *onnxpb.NodeProto) error {
	if err := onlyFirstOutput(n); err != nil {
		return err
	}
	if onnx.IntAttr(n, "training_mode", 0) != 0 {
		return fmt.Errorf("training_mode=1 is not supported: batch statistics are frozen")
	}
	x, needX, err := b.input(n, 0)
	if err != nil {
		return err
	}
	xs := x.Shape()
	if xs.Dims() < 2 {
		return fmt.Errorf("input %v: want at least [N, C]", xs)
	}
	ch := xs[1]
	stats := make([][]float32, 2)
	for i := range stats {
		v, err := b.get(n.GetInput()[3+i])
		if err != nil {
			return err
		}
		if v.c == nil {
			return fmt.Errorf("input %q (running statistics) must be a weight", n.GetInput()[3+i])
		}
		if stats[i], err = v.c.Float32s(); err != nil {
			return err
		}
		if len(stats[i]) != ch {
			return fmt.Errorf("input %q has %d values for %d channels", n.GetInput()[3+i], len(stats[i]), ch)
		}
	}
	eps := float64(onnx.FloatAttr(n, "epsilon", float32(1e-5)))
	inv := make([]float32, ch)
	for c := range inv {
		inv[c] = float32(1 / math.Sqrt(float64(stats[1][c])+eps))
	}
	scale, needS, err := b.input(n, 1)
	if err != nil {
		return err
	}
	bias, needB, err := b.input(n, 2)
	if err != nil {
		return err
	}
	s, err := binary(binMul, scale, b.constNode(n.GetName()+":invstd", []int{ch}, inv), []bool{needS, false})
	if err != nil {
		return err
	}
	ms, err := binary(binMul, b.constNode(n.GetName()+":mean", []int{ch}, stats[0]), s, []bool{false, needS})
	if err != nil {
		return err
	}
	shift, err := binary(binSub, bias, ms, []bool{needB, needS})
	if err != nil {
		return err
	}
	bshape := make(tensor.Shape, xs.Dims()-1)
	for i := range bshape {
		bshape[i] = 1
	}
	bshape[0] = ch
	if s, err = G.Reshape(s, bshape); err != nil {
		return err
	}
	if shift, err = G.Reshape(shift, bshape); err != nil {
		return err
	}
	y, err := binary(binMul, x, s, []bool{needX, needS})
	if err != nil {
		return err
	}
	if y, err = binary(binAdd, y, shift, []bool{needX || needS, needS || needB}); err != nil {
		return err
	}
	b.set(n, 0, &value{n: y, need: needX || needS || needB})
	return nil
}
