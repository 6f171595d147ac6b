// Package pool computes fp32 2-D pooling in NCHW layout with PyTorch's
// semantics, forward and backward: max_pool2d (with argmax indices),
// avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d and global average
// pooling. 1-D pooling is 2-D pooling with H=1 and a 1-high kernel.
//
// Slices go in and out; shapes come from params structs that the caller
// validates once (Validate); kernels panic with a "pool: ..." message on
// invalid params or short slices. Each op has a plain reference loop
// written after PyTorch's CPU kernel (the *Reference functions); the fast
// paths perform the same float32 operations in the same order, so they
// agree with the references bit for bit. Work is split over planes (one
// image channel each), so results do not depend on the thread count.
package pool

import (
	"fmt"
	"math"
)

// Pool2DParams describes max_pool2d or avg_pool2d over x[N, C, H, W] into
// y[N, C, OutH(), OutW()]. Zero strides mean the kernel size (PyTorch's
// default) and zero dilations mean 1. CountIncludePad and Divisor apply to
// average pooling only: CountIncludePad counts padding positions in the
// divisor (torch's default is true; the zero value here is false), and a
// non-zero Divisor replaces the divisor (torch's divisor_override).
type Pool2DParams struct {
	N, C, H, W       int
	KH, KW           int
	StrideH, StrideW int
	PadH, PadW       int
	DilH, DilW       int
	CeilMode         bool
	CountIncludePad  bool
	Divisor          int
}

// Norm returns p with zero strides replaced by the kernel size and zero
// dilations by 1.
func (p Pool2DParams) Norm() Pool2DParams {
	if p.StrideH == 0 {
		p.StrideH = p.KH
	}
	if p.StrideW == 0 {
		p.StrideW = p.KW
	}
	if p.DilH == 0 {
		p.DilH = 1
	}
	if p.DilW == 0 {
		p.DilW = 1
	}
	return p
}

// outSize is PyTorch's pooling_output_shape.
func outSize(in, k, pad, s, d int, ceil bool) int {
	num := in + 2*pad - d*(k-1) - 1
	if ceil {
		num += s - 1
	}
	o := floorDiv(num, s) + 1
	if ceil && (o-1)*s >= in+pad {
		o--
	}
	return o
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// OutH is the output height, as torch computes it (floor or ceil mode; in
// ceil mode the last window must start inside the input or the top
// padding).
func (p Pool2DParams) OutH() int {
	q := p.Norm()
	return outSize(q.H, q.KH, q.PadH, q.StrideH, q.DilH, q.CeilMode)
}

// OutW is the output width (see OutH).
func (p Pool2DParams) OutW() int {
	q := p.Norm()
	return outSize(q.W, q.KW, q.PadW, q.StrideW, q.DilW, q.CeilMode)
}

// InputLen is N*C*H*W.
func (p Pool2DParams) InputLen() int { return p.N * p.C * p.H * p.W }

// OutputLen is N*C*OutH()*OutW().
func (p Pool2DParams) OutputLen() int { return p.N * p.C * p.OutH() * p.OutW() }

// Validate reports whether p is a pooling torch accepts: positive kernel,
// stride and dilation, 0 <= padding <= kernel/2 per dimension, N >= 0,
// positive C, H, W, non-negative Divisor, and an output of at least 1x1.
func (p Pool2DParams) Validate() error {
	q := p.Norm()
	switch {
	case q.N < 0:
		return fmt.Errorf("pool: negative batch size %d", q.N)
	case q.C < 1 || q.H < 1 || q.W < 1:
		return fmt.Errorf("pool: channels, height and width must be positive, got C=%d H=%d W=%d", q.C, q.H, q.W)
	case q.KH < 1 || q.KW < 1:
		return fmt.Errorf("pool: kernel size must be positive, got %dx%d", q.KH, q.KW)
	case q.StrideH < 1 || q.StrideW < 1:
		return fmt.Errorf("pool: stride must be positive, got %dx%d", q.StrideH, q.StrideW)
	case q.DilH < 1 || q.DilW < 1:
		return fmt.Errorf("pool: dilation must be positive, got %dx%d", q.DilH, q.DilW)
	case q.PadH < 0 || q.PadW < 0:
		return fmt.Errorf("pool: padding must be non-negative, got %dx%d", q.PadH, q.PadW)
	case q.PadH > q.KH/2 || q.PadW > q.KW/2:
		return fmt.Errorf("pool: padding %dx%d must be at most half the kernel %dx%d", q.PadH, q.PadW, q.KH, q.KW)
	case q.Divisor < 0:
		return fmt.Errorf("pool: divisor must be non-negative, got %d", q.Divisor)
	case q.H*q.W > math.MaxInt32:
		return fmt.Errorf("pool: plane %dx%d too large for int32 indices", q.H, q.W)
	case q.OutH() < 1 || q.OutW() < 1:
		return fmt.Errorf("pool: output size %dx%d is too small (input %dx%d)", q.OutH(), q.OutW(), q.H, q.W)
	}
	return nil
}

// ValidateAvg is Validate plus the average-pooling rule that dilation is 1.
func (p Pool2DParams) ValidateAvg() error {
	if err := p.Validate(); err != nil {
		return err
	}
	if q := p.Norm(); q.DilH != 1 || q.DilW != 1 {
		return fmt.Errorf("pool: average pooling has no dilation, got %dx%d", q.DilH, q.DilW)
	}
	return nil
}

// geom is the normalized, validated form of Pool2DParams.
type geom struct {
	planes, H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW int
	ceil, countPad                                       bool
	divisor                                              int
}

func (p Pool2DParams) geom() geom {
	if err := p.Validate(); err != nil {
		panic(err.Error())
	}
	q := p.Norm()
	return geom{planes: q.N * q.C, H: q.H, W: q.W, OH: q.OutH(), OW: q.OutW(),
		KH: q.KH, KW: q.KW, SH: q.StrideH, SW: q.StrideW, PH: q.PadH, PW: q.PadW, DH: q.DilH, DW: q.DilW,
		ceil: q.CeilMode, countPad: q.CountIncludePad, divisor: q.Divisor}
}

// AdaptivePool2DParams describes adaptive pooling of x[N, C, H, W] to
// y[N, C, OutH, OutW]: output row i covers input rows
// [floor(i*H/OutH), ceil((i+1)*H/OutH)), and likewise for columns.
type AdaptivePool2DParams struct {
	N, C, H, W int
	OutH, OutW int
}

// InputLen is N*C*H*W.
func (p AdaptivePool2DParams) InputLen() int { return p.N * p.C * p.H * p.W }

// OutputLen is N*C*OutH*OutW.
func (p AdaptivePool2DParams) OutputLen() int { return p.N * p.C * p.OutH * p.OutW }

// Validate reports whether p has N >= 0, positive other sizes, and planes
// small enough for int32 indices.
func (p AdaptivePool2DParams) Validate() error {
	switch {
	case p.N < 0:
		return fmt.Errorf("pool: negative batch size %d", p.N)
	case p.C < 1 || p.H < 1 || p.W < 1:
		return fmt.Errorf("pool: channels, height and width must be positive, got C=%d H=%d W=%d", p.C, p.H, p.W)
	case p.OutH < 1 || p.OutW < 1:
		return fmt.Errorf("pool: adaptive output size must be positive, got %dx%d", p.OutH, p.OutW)
	case p.H*p.W > math.MaxInt32:
		return fmt.Errorf("pool: plane %dx%d too large for int32 indices", p.H, p.W)
	}
	return nil
}

func (p AdaptivePool2DParams) mustValidate() {
	if err := p.Validate(); err != nil {
		panic(err.Error())
	}
}

// startIndex is floor(a*c/b), endIndex is ceil((a+1)*c/b): the window of
// output index a of b over an input of c.
func startIndex(a, b, c int) int { return (a/b)*c + ((a%b)*c)/b }
func endIndex(a, b, c int) int   { return 1 + ((a+1)*c-1)/b }

func check(name string, s []float32, n int) {
	if len(s) < n {
		panic(fmt.Sprintf("pool: %s has %d elements, need %d", name, len(s), n))
	}
}

func checkIdx(idx []int32, n int) {
	if len(idx) < n {
		panic(fmt.Sprintf("pool: indices have %d elements, need %d", len(idx), n))
	}
}
