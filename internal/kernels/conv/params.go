// Package conv computes fp32 2-D convolutions (and 1-D ones as H=1) in NCHW
// layout with PyTorch's semantics: grouped, strided, padded and dilated
// convolution, its transposed form, depthwise convolution, and the gradients
// of each with respect to input, weight and bias.
//
// Slices go in and out; shapes come from a params struct that the caller
// validates once (Validate). The kernels panic with a "conv: ..." message
// when given invalid params or short slices, which is a programmer error.
// Every fast path has a plain-Go reference (the *Reference functions) that
// tests compare against. Work is split over outputs only, so results do not
// depend on the thread count.
//
// # Paths
//
// Each operation picks one path from the shapes alone:
//
//   - depthwise (one input channel per group, at most 7 outputs each):
//     direct kernels over zero-padded, phase-split input planes, with
//     AVX-512 and AVX2 row kernels (depthwise.go);
//   - stride 1 with at least 16 input channels per group: the "wide" path,
//     a sum of one GEMM per kernel tap over a padded copy of the input read
//     in place, for one large image or a chunk of small ones, when few grid
//     positions are computed and dropped (conv_wide.go;
//     the input gradient is a flipped stride-1 convolution on the same path,
//     the weight gradient one GEMM per grid tile, conv_wide_bwd.go);
//   - batches of small images otherwise: im2col of a chunk of images side by
//     side and one GEMM per chunk (conv_batch.go);
//   - the rest: per image, im2col a tile of output positions at a time and
//     GEMM (1x1 stride-1 unpadded convolutions skip im2col), conv.go.
//
// The fp32 GEMMs are internal/kernels/sgemm's; the forward passes use
// sgemm.SgemmInPlace, which reads the input (or the im2col tile) without
// packing it and adds the bias in the GEMM's epilogue. Results of different paths
// and CPU tiers agree to float32 rounding; for one path and tier they are
// bit-identical whatever the thread count.
package conv

import (
	"errors"
	"fmt"
)

// Conv2DParams describes a 2-D convolution of x[N, C, H, W] with
// w[OutC, C/Groups, KH, KW] into y[N, OutC, OutH(), OutW()], as
// torch.nn.functional.conv2d. Zero stride or dilation fields mean 1, and
// zero Groups means 1 (see Norm).
type Conv2DParams struct {
	N, C, H, W       int // input batch, channels, height, width
	OutC             int // output channels
	KH, KW           int // kernel height and width
	StrideH, StrideW int
	PadH, PadW       int // zero padding on each side
	DilH, DilW       int
	Groups           int
}

// Norm returns p with zero strides, dilations and groups replaced by 1.
func (p Conv2DParams) Norm() Conv2DParams {
	p.StrideH, p.StrideW = one(p.StrideH), one(p.StrideW)
	p.DilH, p.DilW = one(p.DilH), one(p.DilW)
	p.Groups = one(p.Groups)
	return p
}

func one(v int) int {
	if v == 0 {
		return 1
	}
	return v
}

// OutH is the output height: (H + 2*PadH - DilH*(KH-1) - 1)/StrideH + 1.
func (p Conv2DParams) OutH() int {
	p = p.Norm()
	return outSize(p.H, p.KH, p.StrideH, p.PadH, p.DilH)
}

// OutW is the output width: (W + 2*PadW - DilW*(KW-1) - 1)/StrideW + 1.
func (p Conv2DParams) OutW() int {
	p = p.Norm()
	return outSize(p.W, p.KW, p.StrideW, p.PadW, p.DilW)
}

func outSize(in, k, s, pad, d int) int {
	span := in + 2*pad - d*(k-1) - 1
	if span < 0 {
		return 0
	}
	return span/s + 1
}

// InputLen is N*C*H*W, the length of x (and of the input gradient).
func (p Conv2DParams) InputLen() int { return p.N * p.C * p.H * p.W }

// WeightLen is OutC*(C/Groups)*KH*KW, the length of w.
func (p Conv2DParams) WeightLen() int {
	p = p.Norm()
	return p.OutC * (p.C / p.Groups) * p.KH * p.KW
}

// OutputLen is N*OutC*OutH()*OutW(), the length of y.
func (p Conv2DParams) OutputLen() int { return p.N * p.OutC * p.OutH() * p.OutW() }

// Validate reports whether p describes a convolution these kernels compute:
// positive sizes (N may be 0), non-negative padding, positive strides and
// dilations, channels divisible by Groups, and an output of at least 1x1.
func (p Conv2DParams) Validate() error {
	q := p.Norm()
	switch {
	case q.N < 0:
		return fmt.Errorf("conv: negative batch size %d", q.N)
	case q.C < 1 || q.H < 1 || q.W < 1:
		return fmt.Errorf("conv: input channels, height and width must be positive, got C=%d H=%d W=%d", q.C, q.H, q.W)
	case q.OutC < 1:
		return fmt.Errorf("conv: output channels must be positive, got %d", q.OutC)
	case q.KH < 1 || q.KW < 1:
		return fmt.Errorf("conv: kernel size must be positive, got %dx%d", q.KH, q.KW)
	case q.StrideH < 1 || q.StrideW < 1:
		return fmt.Errorf("conv: stride must be positive, got %dx%d", q.StrideH, q.StrideW)
	case q.DilH < 1 || q.DilW < 1:
		return fmt.Errorf("conv: dilation must be positive, got %dx%d", q.DilH, q.DilW)
	case q.PadH < 0 || q.PadW < 0:
		return fmt.Errorf("conv: padding must be non-negative, got %dx%d", q.PadH, q.PadW)
	case q.Groups < 1:
		return fmt.Errorf("conv: groups must be positive, got %d", q.Groups)
	case q.C%q.Groups != 0:
		return fmt.Errorf("conv: input channels %d not divisible by groups %d", q.C, q.Groups)
	case q.OutC%q.Groups != 0:
		return fmt.Errorf("conv: output channels %d not divisible by groups %d", q.OutC, q.Groups)
	case q.OutH() < 1 || q.OutW() < 1:
		return fmt.Errorf("conv: input %dx%d (padding %dx%d) is smaller than the dilated kernel %dx%d",
			q.H, q.W, q.PadH, q.PadW, q.DilH*(q.KH-1)+1, q.DilW*(q.KW-1)+1)
	}
	return nil
}

// Conv1DParams describes a 1-D convolution of x[N, C, L] with
// w[OutC, C/Groups, K] into y[N, OutC, OutL()], as
// torch.nn.functional.conv1d. It is computed as a Conv2DParams with H=1,
// KH=1 (see Conv2D); the slices have the same memory layout in both views.
type Conv1DParams struct {
	N, C, L int
	OutC    int
	K       int
	Stride  int
	Pad     int
	Dil     int
	Groups  int
}

// Conv2D returns the 2-D view of p: H=1, KH=1, no vertical padding.
func (p Conv1DParams) Conv2D() Conv2DParams {
	return Conv2DParams{N: p.N, C: p.C, H: 1, W: p.L, OutC: p.OutC, KH: 1, KW: p.K,
		StrideH: 1, StrideW: p.Stride, PadW: p.Pad, DilH: 1, DilW: p.Dil, Groups: p.Groups}
}

// OutL is the output length.
func (p Conv1DParams) OutL() int { return p.Conv2D().OutW() }

// Validate reports whether p is valid (see Conv2DParams.Validate).
func (p Conv1DParams) Validate() error { return p.Conv2D().Validate() }

// ConvTranspose2DParams describes a transposed 2-D convolution of
// x[N, C, H, W] with w[C, OutC/Groups, KH, KW] into
// y[N, OutC, OutH(), OutW()], as torch.nn.functional.conv_transpose2d. It is
// the adjoint (input gradient) of the Conv2D that maps y's shape to x's.
// Zero stride, dilation or groups mean 1.
type ConvTranspose2DParams struct {
	N, C, H, W       int // input batch, channels, height, width
	OutC             int // output channels
	KH, KW           int
	StrideH, StrideW int
	PadH, PadW       int
	OutPadH, OutPadW int // extra rows/columns added on the bottom/right of the output
	DilH, DilW       int
	Groups           int
}

// Norm returns p with zero strides, dilations and groups replaced by 1.
func (p ConvTranspose2DParams) Norm() ConvTranspose2DParams {
	p.StrideH, p.StrideW = one(p.StrideH), one(p.StrideW)
	p.DilH, p.DilW = one(p.DilH), one(p.DilW)
	p.Groups = one(p.Groups)
	return p
}

// OutH is (H-1)*StrideH - 2*PadH + DilH*(KH-1) + OutPadH + 1.
func (p ConvTranspose2DParams) OutH() int {
	p = p.Norm()
	return (p.H-1)*p.StrideH - 2*p.PadH + p.DilH*(p.KH-1) + p.OutPadH + 1
}

// OutW is (W-1)*StrideW - 2*PadW + DilW*(KW-1) + OutPadW + 1.
func (p ConvTranspose2DParams) OutW() int {
	p = p.Norm()
	return (p.W-1)*p.StrideW - 2*p.PadW + p.DilW*(p.KW-1) + p.OutPadW + 1
}

// InputLen is N*C*H*W.
func (p ConvTranspose2DParams) InputLen() int { return p.N * p.C * p.H * p.W }

// WeightLen is C*(OutC/Groups)*KH*KW.
func (p ConvTranspose2DParams) WeightLen() int {
	p = p.Norm()
	return p.C * (p.OutC / p.Groups) * p.KH * p.KW
}

// OutputLen is N*OutC*OutH()*OutW().
func (p ConvTranspose2DParams) OutputLen() int { return p.N * p.OutC * p.OutH() * p.OutW() }

// Validate reports whether p is valid: the Conv2DParams rules, plus
// 0 <= OutPad < max(Stride, Dil) per dimension as PyTorch requires, and a
// positive output size.
func (p ConvTranspose2DParams) Validate() error {
	q := p.Norm()
	switch {
	case q.N < 0:
		return fmt.Errorf("conv: negative batch size %d", q.N)
	case q.C < 1 || q.H < 1 || q.W < 1:
		return fmt.Errorf("conv: input channels, height and width must be positive, got C=%d H=%d W=%d", q.C, q.H, q.W)
	case q.OutC < 1:
		return fmt.Errorf("conv: output channels must be positive, got %d", q.OutC)
	case q.KH < 1 || q.KW < 1:
		return fmt.Errorf("conv: kernel size must be positive, got %dx%d", q.KH, q.KW)
	case q.StrideH < 1 || q.StrideW < 1:
		return fmt.Errorf("conv: stride must be positive, got %dx%d", q.StrideH, q.StrideW)
	case q.DilH < 1 || q.DilW < 1:
		return fmt.Errorf("conv: dilation must be positive, got %dx%d", q.DilH, q.DilW)
	case q.PadH < 0 || q.PadW < 0:
		return fmt.Errorf("conv: padding must be non-negative, got %dx%d", q.PadH, q.PadW)
	case q.OutPadH < 0 || q.OutPadW < 0:
		return fmt.Errorf("conv: output padding must be non-negative, got %dx%d", q.OutPadH, q.OutPadW)
	case q.OutPadH >= max(q.StrideH, q.DilH) || q.OutPadW >= max(q.StrideW, q.DilW):
		return errors.New("conv: output padding must be smaller than either stride or dilation")
	case q.Groups < 1:
		return fmt.Errorf("conv: groups must be positive, got %d", q.Groups)
	case q.C%q.Groups != 0:
		return fmt.Errorf("conv: input channels %d not divisible by groups %d", q.C, q.Groups)
	case q.OutC%q.Groups != 0:
		return fmt.Errorf("conv: output channels %d not divisible by groups %d", q.OutC, q.Groups)
	case q.OutH() < 1 || q.OutW() < 1:
		return fmt.Errorf("conv: transposed convolution output %dx%d is empty", q.OutH(), q.OutW())
	}
	return nil
}

// geom is the internal description shared by every kernel: a convolution
// from an "image" side [N, C, H, W] to a "column" side [N, OutC, OH, OW].
// For Conv2D the image side is x; for ConvTranspose2D it is y. OH and OW
// are explicit because a transposed convolution fixes them from its input.
type geom struct {
	N, C, H, W, OutC, KH, KW, SH, SW, PH, PW, DH, DW, G int
	OH, OW                                              int
}

func (p Conv2DParams) geom() geom {
	if err := p.Validate(); err != nil {
		panic(err.Error())
	}
	q := p.Norm()
	return geom{N: q.N, C: q.C, H: q.H, W: q.W, OutC: q.OutC, KH: q.KH, KW: q.KW,
		SH: q.StrideH, SW: q.StrideW, PH: q.PadH, PW: q.PadW, DH: q.DilH, DW: q.DilW, G: q.Groups,
		OH: q.OutH(), OW: q.OutW()}
}

// geom maps the transposed convolution to the convolution it is the adjoint
// of: that convolution's input is this one's output, and vice versa.
func (p ConvTranspose2DParams) geom() geom {
	if err := p.Validate(); err != nil {
		panic(err.Error())
	}
	q := p.Norm()
	return geom{N: q.N, C: q.OutC, H: q.OutH(), W: q.OutW(), OutC: q.C, KH: q.KH, KW: q.KW,
		SH: q.StrideH, SW: q.StrideW, PH: q.PadH, PW: q.PadW, DH: q.DilH, DW: q.DilW, G: q.Groups,
		OH: q.H, OW: q.W}
}

func (g geom) cg() int   { return g.C / g.G }            // input channels per group
func (g geom) ocg() int  { return g.OutC / g.G }         // output channels per group
func (g geom) kdim() int { return g.cg() * g.KH * g.KW } // GEMM reduction length
func (g geom) hw() int   { return g.H * g.W }
func (g geom) ohw() int  { return g.OH * g.OW }

func (g geom) check(name string, s []float32, n int) {
	if len(s) < n {
		panic(fmt.Sprintf("conv: %s has %d elements, need %d", name, len(s), n))
	}
}
