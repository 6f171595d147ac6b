package exec

import (
	"fmt"
	"slices"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/kernels/conv"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// Conv and ConvTranspose (ONNX opsets 1 to 21) over 1-D and 2-D inputs, on
// the fp32 convolution kernels of internal/kernels/conv. 1-D convolutions
// run as 2-D ones of height 1. The kernels pad symmetrically; asymmetric
// pads (explicit, or from auto_pad SAME_UPPER/SAME_LOWER) pad a copy of
// the input (Conv) or crop a full transposed output (ConvTranspose).

func init() {
	register("Conv", 1, compileConv)
	register("ConvTranspose", 1, compileConvTranspose)
}

// convBase holds what a compiled Conv or ConvTranspose node keeps of its
// attributes and constant inputs.
type convBase struct {
	sp         nnSpatial
	group      int
	transposed bool
	w, b       *tensor.Tensor // constant weight and bias, checked once, or nil
}

// compileConvBase checks the inputs and attributes Conv and ConvTranspose
// share and takes their weight and bias when constant.
func compileConvBase(c *CompileContext, n *graph.Node, transposed bool) (convBase, error) {
	if err := nIn(n, 2, 3); err != nil {
		return convBase{}, err
	}
	sp, err := nnParseSpatial(n)
	if err != nil {
		return convBase{}, err
	}
	g, err := n.Int("group", 1)
	if err != nil {
		return convBase{}, err
	}
	if g < 1 {
		return convBase{}, fmt.Errorf("group %d must be positive", g)
	}
	k := convBase{sp: sp, group: int(g), transposed: transposed}
	if w := c.Const(n.Input(1)); w != nil {
		if err := convCheckWeight(w, k.group, transposed); err != nil {
			return convBase{}, err
		}
		k.w = w
	}
	if b := c.Const(n.Input(2)); b != nil {
		if err := wantFloat("B", b); err != nil {
			return convBase{}, err
		}
		k.b = b
	}
	return k, nil
}

// inputs returns the input X, the weight W and the bias B (nil when
// absent) of a call, checked, with X of W's rank and W of the kernel_shape
// given; W and B come from in where they are not constant.
func (k *convBase) inputs(in []*tensor.Tensor) (x, w, b *tensor.Tensor, err error) {
	x, w, b = in[0], k.w, k.b
	if w == nil {
		w = in[1]
		if err := convCheckWeight(w, k.group, k.transposed); err != nil {
			return nil, nil, nil, err
		}
	}
	if b == nil && len(in) > 2 && in[2] != nil {
		b = in[2]
		if err := wantFloat("B", b); err != nil {
			return nil, nil, nil, err
		}
	}
	if err := wantFloat("X", x); err != nil {
		return nil, nil, nil, err
	}
	ws, xs := w.Shape(), x.Shape()
	if r := len(ws) - 2; len(xs) != r+2 {
		return nil, nil, nil, fmt.Errorf("X has shape %v, W %v: want X of rank %d", xs, ws, r+2)
	}
	if k.sp.kernel != nil && !slices.Equal(k.sp.kernel, ws[2:]) {
		return nil, nil, nil, fmt.Errorf("kernel_shape %v does not match W %v", k.sp.kernel, ws)
	}
	return x, w, b, nil
}

// convKernel is a compiled Conv node.
type convKernel struct {
	convBase
	pw *conv.Weights // w packed for the forward GEMMs, or nil
}

// packed returns k with its constant weight w packed.
func (k *convKernel) packed() *convKernel {
	if k.w != nil {
		k.pw = conv.PackWeights(k.w.F32(), k.w.Dim(0), k.group)
	}
	return k
}

func compileConv(c *CompileContext, n *graph.Node) (Kernel, error) {
	base, err := compileConvBase(c, n, false)
	if err != nil {
		return nil, err
	}
	k := &convKernel{convBase: base}
	return k.packed(), nil
}

// convCheckWeight checks a Conv weight [O, C/group, k...] (transposed:
// [C, O/group, k...]) of 1 or 2 spatial dimensions.
func convCheckWeight(w *tensor.Tensor, group int, transposed bool) error {
	if err := wantFloat("W", w); err != nil {
		return err
	}
	if r := w.NDim() - 2; r != 1 && r != 2 {
		return fmt.Errorf("W has shape %v: only 1-D and 2-D convolutions are supported", w.Shape())
	}
	if !transposed && w.Dim(0)%group != 0 {
		return fmt.Errorf("W has %d output channels, not divisible by group %d", w.Dim(0), group)
	}
	return nil
}

// Run computes Y = Conv(X, W, B).
func (k *convKernel) Run(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, w, b, err := k.inputs(in)
	if err != nil {
		return nil, err
	}
	ws, xs := w.Shape(), x.Shape()
	r, kernel := len(ws)-2, ws[2:]
	if ws[1]*k.group != xs[1] {
		return nil, fmt.Errorf("W %v does not fit X %v with group %d", ws, xs, k.group)
	}
	outC := ws[0]
	if b != nil && b.Numel() != outC {
		return nil, fmt.Errorf("B has shape %v, want [%d]", b.Shape(), outC)
	}
	geo, err := k.sp.resolve(xs[2:], kernel, false)
	if err != nil {
		return nil, err
	}
	// View 1-D as 2-D of height 1.
	var h, wd, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr int
	if r == 1 {
		h, wd, kh, kw, sh, sw, dh, dw = 1, xs[2], 1, kernel[0], 1, geo.strides[0], 1, geo.dilations[0]
		pl, pr = geo.padBegin[0], geo.padEnd[0]
	} else {
		h, wd, kh, kw = xs[2], xs[3], kernel[0], kernel[1]
		sh, sw, dh, dw = geo.strides[0], geo.strides[1], geo.dilations[0], geo.dilations[1]
		pt, pl, pb, pr = geo.padBegin[0], geo.padBegin[1], geo.padEnd[0], geo.padEnd[1]
	}
	xv := x.F32()
	p := conv.Conv2DParams{N: xs[0], C: xs[1], H: h, W: wd, OutC: outC, KH: kh, KW: kw,
		StrideH: sh, StrideW: sw, DilH: dh, DilW: dw, Groups: k.group}
	if pt == pb && pl == pr {
		p.PadH, p.PadW = pt, pl
	} else {
		xv = nnPadPlanes(xv, xs[0]*xs[1], h, wd, pt, pb, pl, pr)
		p.H, p.W = h+pt+pb, wd+pl+pr
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("X %v, W %v: %v", xs, ws, err)
	}
	var bv []float32
	if b != nil {
		bv = b.F32()
	}
	y := f.allocF32(p.OutputLen())
	if k.pw != nil && w == k.w {
		conv.Conv2DPacked(p, xv, k.pw, bv, y)
	} else {
		conv.Conv2D(p, xv, w.F32(), bv, y)
	}
	return []*tensor.Tensor{nnTensor(y, append([]int{xs[0], outC}, geo.out...))}, nil
}

// convTKernel is a compiled ConvTranspose node.
type convTKernel struct {
	convBase
	outPad   []int
	outShape []int
}

func compileConvTranspose(c *CompileContext, n *graph.Node) (Kernel, error) {
	base, err := compileConvBase(c, n, true)
	if err != nil {
		return nil, err
	}
	k := &convTKernel{convBase: base}
	if k.outPad, err = nnIntsAttr(n, "output_padding"); err != nil {
		return nil, err
	}
	if k.outShape, err = nnIntsAttr(n, "output_shape"); err != nil {
		return nil, err
	}
	return k, nil
}

// floorDiv2 is Python's v // 2.
func floorDiv2(v int) int {
	if v < 0 {
		return -((-v + 1) / 2)
	}
	return v / 2
}

// Run computes Y = ConvTranspose(X, W, B). Output sizes and pads follow
// the ONNX definition: with output_shape (or auto_pad SAME_*, which asks for
// input*stride) the total padding full+output_padding-output_shape is split
// with the larger half at the end for SAME_UPPER and at the start otherwise
// (rounding toward minus infinity, so a negative total extends the end).
func (k *convTKernel) Run(fr *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, w, b, err := k.inputs(in)
	if err != nil {
		return nil, err
	}
	ws, xs := w.Shape(), x.Shape()
	r, kernel := len(ws)-2, ws[2:]
	if ws[0] != xs[1] || xs[1]%k.group != 0 {
		return nil, fmt.Errorf("W %v does not fit X %v with group %d", ws, xs, k.group)
	}
	outC := ws[1] * k.group
	if b != nil && b.Numel() != outC {
		return nil, fmt.Errorf("B has shape %v, want [%d]", b.Shape(), outC)
	}
	geo, err := convTGeom(k.sp, xs[2:], kernel)
	if err != nil {
		return nil, err
	}
	outPad := make([]int, r)
	if k.outPad != nil {
		if len(k.outPad) != r {
			return nil, fmt.Errorf("output_padding %v has %d values for %d spatial dimensions", k.outPad, len(k.outPad), r)
		}
		copy(outPad, k.outPad)
	}
	outShape := k.outShape
	if len(outShape) == r+2 {
		outShape = outShape[2:]
	}
	if outShape != nil && len(outShape) != r {
		return nil, fmt.Errorf("output_shape %v does not fit %d spatial dimensions", k.outShape, r)
	}
	full := make([]int, r)
	out := make([]int, r)
	pb, pe := make([]int, r), make([]int, r)
	for i := range r {
		full[i] = geo.strides[i]*(xs[2+i]-1) + (kernel[i]-1)*geo.dilations[i] + 1
		want := -1
		switch {
		case outShape != nil:
			want = outShape[i]
		case k.sp.autoPad == "SAME_UPPER" || k.sp.autoPad == "SAME_LOWER":
			want = xs[2+i] * geo.strides[i]
		}
		if want >= 0 {
			total := full[i] + outPad[i] - want
			if k.sp.autoPad == "SAME_UPPER" {
				pb[i], pe[i] = floorDiv2(total), total-floorDiv2(total)
			} else {
				pb[i], pe[i] = total-floorDiv2(total), floorDiv2(total)
			}
			out[i] = want
		} else {
			pb[i], pe[i] = geo.padBegin[i], geo.padEnd[i]
			out[i] = full[i] + outPad[i] - pb[i] - pe[i]
		}
		if out[i] <= 0 {
			return nil, fmt.Errorf("X %v, W %v: output size %d in spatial dimension %d is not positive", xs, ws, out[i], i)
		}
	}
	// 2-D view.
	h, wd, kh, kw, sh, sw, dh, dw := 1, xs[2], 1, kernel[0], 1, geo.strides[0], 1, geo.dilations[0]
	fh, fw, oh, ow, pbh, pbw, peh, pew := 1, full[0], 1, out[0], 0, pb[0], 0, pe[0]
	if r == 2 {
		h, wd, kh, kw = xs[2], xs[3], kernel[0], kernel[1]
		sh, sw, dh, dw = geo.strides[0], geo.strides[1], geo.dilations[0], geo.dilations[1]
		fh, fw, oh, ow = full[0], full[1], out[0], out[1]
		pbh, pbw, peh, pew = pb[0], pb[1], pe[0], pe[1]
	}
	p := conv.ConvTranspose2DParams{N: xs[0], C: xs[1], H: h, W: wd, OutC: outC, KH: kh, KW: kw,
		StrideH: sh, StrideW: sw, DilH: dh, DilW: dw, Groups: k.group}
	var bv []float32
	if b != nil {
		bv = b.F32()
	}
	yShape := append([]int{xs[0], outC}, out...)
	// Direct path: symmetric non-negative pads and an output padding the
	// kernel accepts.
	if pbh == peh && pbw == pew && pbh >= 0 && pbw >= 0 {
		d := p
		d.PadH, d.PadW = pbh, pbw
		d.OutPadH, d.OutPadW = oh-(fh-2*pbh), ow-(fw-2*pbw)
		if d.Validate() == nil && d.OutH() == oh && d.OutW() == ow {
			y := fr.allocF32(d.OutputLen())
			conv.ConvTranspose2D(d, x.F32(), w.F32(), bv, y)
			return []*tensor.Tensor{nnTensor(y, yShape)}, nil
		}
	}
	// General path: the full output, then the window starting at the begin
	// pads (zeros plus bias where it leaves the full output).
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("X %v, W %v: %v", xs, ws, err)
	}
	f := make([]float32, p.OutputLen())
	conv.ConvTranspose2D(p, x.F32(), w.F32(), nil, f)
	planes := xs[0] * outC
	y := make([]float32, planes*oh*ow)
	parallel.For(planes, 1, func(s, e int) {
		for pl := s; pl < e; pl++ {
			var bias float32
			if bv != nil {
				bias = bv[pl%outC]
			}
			for i := range oh {
				si := i + pbh
				row := y[(pl*oh+i)*ow : (pl*oh+i+1)*ow]
				for j := range row {
					sj := j + pbw
					v := bias
					if si >= 0 && si < fh && sj >= 0 && sj < fw {
						v += f[(pl*fh+si)*fw+sj]
					}
					row[j] = v
				}
			}
		}
	})
	return []*tensor.Tensor{nnTensor(y, yShape)}, nil
}

// convTGeom resolves strides, dilations and explicit pads of a
// ConvTranspose (auto_pad is handled by the caller).
func convTGeom(sp nnSpatial, in, kernel []int) (nnGeom, error) {
	r := len(in)
	g := nnGeom{strides: make([]int, r), dilations: make([]int, r), padBegin: make([]int, r), padEnd: make([]int, r)}
	for i := range r {
		g.strides[i], g.dilations[i] = 1, 1
	}
	for _, f := range []struct {
		name string
		v    []int
		dst  []int
		n    int
	}{{"strides", sp.strides, g.strides, r}, {"dilations", sp.dilations, g.dilations, r}} {
		if f.v == nil {
			continue
		}
		if len(f.v) != f.n {
			return g, fmt.Errorf("%s %v has %d values for %d spatial dimensions", f.name, f.v, len(f.v), r)
		}
		copy(f.dst, f.v)
	}
	if sp.pads != nil && sp.autoPad != "SAME_UPPER" && sp.autoPad != "SAME_LOWER" && sp.autoPad != "VALID" {
		if len(sp.pads) != 2*r {
			return g, fmt.Errorf("pads %v has %d values for %d spatial dimensions (want %d)", sp.pads, len(sp.pads), r, 2*r)
		}
		copy(g.padBegin, sp.pads[:r])
		copy(g.padEnd, sp.pads[r:])
	}
	for i := range r {
		if kernel[i] <= 0 || g.strides[i] <= 0 || g.dilations[i] <= 0 {
			return g, fmt.Errorf("kernel %v, strides %v and dilations %v must be positive", kernel, g.strides, g.dilations)
		}
	}
	return g, nil
}
