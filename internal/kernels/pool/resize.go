package pool

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/internal/parallel"
)

// Upsample2DParams describes resizing x[N, C, H, W] to y[N, C, OutH, OutW]
// as torch.nn.functional.interpolate does in modes "nearest" and
// "bilinear" (upsampling or downsampling). ScaleH and ScaleW, when
// positive, are the scale factors passed to interpolate (PyTorch then maps
// output to input coordinates with the float32 1/scale); zero means the
// size ratio float32(H)/float32(OutH). AlignCorners applies to bilinear
// resizing only.
type Upsample2DParams struct {
	N, C, H, W     int
	OutH, OutW     int
	ScaleH, ScaleW float64
	AlignCorners   bool
}

// InputLen is N*C*H*W.
func (p Upsample2DParams) InputLen() int { return p.N * p.C * p.H * p.W }

// OutputLen is N*C*OutH*OutW.
func (p Upsample2DParams) OutputLen() int { return p.N * p.C * p.OutH * p.OutW }

// Validate reports whether p has N >= 0, positive other sizes and finite,
// non-negative scales.
func (p Upsample2DParams) Validate() error {
	bad := func(s float64) bool { return math.IsNaN(s) || math.IsInf(s, 0) || s < 0 }
	switch {
	case p.N < 0:
		return fmt.Errorf("pool: negative batch size %d", p.N)
	case p.C < 1 || p.H < 1 || p.W < 1:
		return fmt.Errorf("pool: upsample input channels, height and width must be positive, got C=%d H=%d W=%d", p.C, p.H, p.W)
	case p.OutH < 1 || p.OutW < 1:
		return fmt.Errorf("pool: upsample output size must be positive, got %dx%d", p.OutH, p.OutW)
	case bad(p.ScaleH) || bad(p.ScaleW):
		return fmt.Errorf("pool: upsample scales must be finite and non-negative, got %g, %g", p.ScaleH, p.ScaleW)
	}
	return nil
}

func (p Upsample2DParams) check(op string, xLen, yLen int) {
	if err := p.Validate(); err != nil {
		panic("pool: " + op + ": " + err.Error())
	}
	if xLen < p.InputLen() {
		panic(fmt.Sprintf("pool: %s: input has %d elements, need %d", op, xLen, p.InputLen()))
	}
	if yLen < p.OutputLen() {
		panic(fmt.Sprintf("pool: %s: output has %d elements, need %d", op, yLen, p.OutputLen()))
	}
}

// The index and weight helpers below are PyTorch 1.13's
// (aten/src/ATen/native/UpSample.h and cpu/UpSampleKernel.cpp).
// qelem/resize.go has the formulas of PyTorch's quantized kernels, which
// differ (float32 source indices, no equal-size shortcut in bilinear, the
// nearest shortcuts always); they are kept apart so each kernel family
// states its own PyTorch counterpart.

// channelsLast reports whether PyTorch 1.13 sees an NCHW-contiguous input
// of p's shape as channels-last contiguous as well, which is the case when
// C = 1 or H = W = 1: interpolate then runs its channels-last kernels,
// whose nearest indices take nearest_idx's shortcuts and whose bilinear
// sums are ordered differently (see bilinearPacked).
func (p Upsample2DParams) channelsLast() bool { return p.C == 1 || (p.H == 1 && p.W == 1) }

// gradChannelsLast is channelsLast for the output gradient, whose layout
// selects PyTorch's bilinear backward kernel: C = 1, or OutH = OutW = 1.
func (p Upsample2DParams) gradChannelsLast() bool { return p.C == 1 || (p.OutH == 1 && p.OutW == 1) }

// scaleValue is compute_scales_value<float>: float32(1/scale) for a given
// scale factor, else float32(in)/float32(out).
func scaleValue(scale float64, in, out int) float32 {
	if scale > 0 {
		return float32(1 / scale)
	}
	return float32(in) / float32(out)
}

// nearestIndex is the input index output index o reads,
// min(floor(float32(o) * s), in-1). With shortcuts it is nearest_idx
// (PyTorch's channels-last and backward kernels), which returns o for
// equal sizes and o>>1 for doubling without looking at s; without, it is
// the generic kernel's HelperInterpNearest (the product is exact in
// float64, so its double-then-floorf arithmetic is this float32 product).
// The two differ only when a scale factor other than 1 or 2 gives an
// output of the input size or twice it.
func nearestIndex(o, in, out int, scale float64, shortcuts bool) int {
	switch {
	case shortcuts && out == in:
		return o
	case shortcuts && out == 2*in:
		return o >> 1
	}
	s := scaleValue(scale, in, out)
	return min(int(math.Floor(float64(float32(float32(o)*s)))), in-1)
}

// linearScale is area_pixel_compute_scale<float>.
func linearScale(in, out int, align bool, scale float64) float32 {
	if align {
		if out > 1 {
			return float32(in-1) / float32(out-1)
		}
		return 0
	}
	return scaleValue(scale, in, out)
}

// linearTap is one axis of a bilinear sample: the two input indices and
// their weights.
type linearTap struct {
	i0, i1 int
	l0, l1 float32
}

// linearAt is compute_source_index_and_lambda<float> for output index o:
// equal sizes copy (weights 1 and 0 on the same index); otherwise the
// source coordinate r is area_pixel_compute_source_index in float64
// (PyTorch's acc_type of float on the CPU) from the float32 scale s
// (align_corners: s*o; else max(s*(o+0.5)-0.5, 0)), i0 = trunc(r),
// i1 = i0+1 clipped to the input, l1 = float32(r-i0) and
// l0 = float32(1-l1).
func linearAt(scale float32, o, in, out int, align bool) linearTap {
	if in == out {
		return linearTap{i0: o, i1: o, l0: 1, l1: 0}
	}
	var r float64
	if align {
		r = float64(scale) * float64(o)
	} else {
		r = float64(float64(scale)*(float64(o)+0.5)) - 0.5
		if r < 0 {
			r = 0
		}
	}
	i0 := int(r)
	i1 := i0
	if i0 < in-1 {
		i1++
	}
	l1 := float32(r - float64(i0))
	return linearTap{i0: i0, i1: i1, l0: float32(1 - l1), l1: l1}
}

func linearTaps(in, out int, align bool, scale float64) []linearTap {
	s := linearScale(in, out, align, scale)
	t := make([]linearTap, out)
	for o := range t {
		t[o] = linearAt(s, o, in, out, align)
	}
	return t
}

func nearestIndices(in, out int, scale float64, shortcuts bool) []int {
	ix := make([]int, out)
	for o := range ix {
		ix[o] = nearestIndex(o, in, out, scale, shortcuts)
	}
	return ix
}

// UpsampleNearest2DReference is the specification of UpsampleNearest2D
// (interpolate mode "nearest" on an NCHW-contiguous input, as PyTorch 1.13
// computes it): y[n][c][i][j] = x[n][c][nearestIndex(i)][nearestIndex(j)],
// with nearest_idx's shortcuts for equal and doubled sizes when PyTorch
// runs its channels-last kernel (C = 1 or H = W = 1) and without them
// otherwise.
func UpsampleNearest2DReference(p Upsample2DParams, x, y []float32) {
	p.check("UpsampleNearest2DReference", len(x), len(y))
	cl := p.channelsLast()
	for pl := 0; pl < p.N*p.C; pl++ {
		for i := 0; i < p.OutH; i++ {
			ih := nearestIndex(i, p.H, p.OutH, p.ScaleH, cl)
			for j := 0; j < p.OutW; j++ {
				iw := nearestIndex(j, p.W, p.OutW, p.ScaleW, cl)
				y[(pl*p.OutH+i)*p.OutW+j] = x[(pl*p.H+ih)*p.W+iw]
			}
		}
	}
}

// UpsampleNearest2D computes UpsampleNearest2DReference with the indices
// computed once, copying an output row that repeats the previous one;
// split over planes.
func UpsampleNearest2D(p Upsample2DParams, x, y []float32) {
	p.check("UpsampleNearest2D", len(x), len(y))
	rows := nearestIndices(p.H, p.OutH, p.ScaleH, p.channelsLast())
	cols := nearestIndices(p.W, p.OutW, p.ScaleW, p.channelsLast())
	hw, ohw := p.H*p.W, p.OutH*p.OutW
	parallel.For(p.N*p.C, grainFor(ohw), func(p0, p1 int) {
		for pl := p0; pl < p1; pl++ {
			xp, yp := x[pl*hw:(pl+1)*hw], y[pl*ohw:(pl+1)*ohw]
			for i, ih := range rows {
				out := yp[i*p.OutW : (i+1)*p.OutW]
				if i > 0 && rows[i-1] == ih {
					copy(out, yp[(i-1)*p.OutW:i*p.OutW])
					continue
				}
				row := xp[ih*p.W : (ih+1)*p.W]
				for j, iw := range cols {
					out[j] = row[iw]
				}
			}
		}
	})
}

// UpsampleNearest2DBackwardReference is the adjoint of
// UpsampleNearest2DReference, summed as PyTorch's CPU kernel sums it: gx
// is zeroed, then for each output in row-major order its gradient is added
// (in float32) to the input element it copied. PyTorch's backward kernel
// always takes nearest_idx's shortcuts, so where its generic forward
// kernel does not (a scale factor other than 1 or 2 giving an output of
// the input size or twice it, with C > 1) PyTorch's gradient is not the
// adjoint of its output; this one is.
func UpsampleNearest2DBackwardReference(p Upsample2DParams, gy, gx []float32) {
	p.check("UpsampleNearest2DBackwardReference", len(gx), len(gy))
	cl := p.channelsLast()
	clear(gx[:p.InputLen()])
	for pl := 0; pl < p.N*p.C; pl++ {
		for i := 0; i < p.OutH; i++ {
			ih := nearestIndex(i, p.H, p.OutH, p.ScaleH, cl)
			for j := 0; j < p.OutW; j++ {
				iw := nearestIndex(j, p.W, p.OutW, p.ScaleW, cl)
				gx[(pl*p.H+ih)*p.W+iw] += gy[(pl*p.OutH+i)*p.OutW+j]
			}
		}
	}
}

// UpsampleNearest2DBackward computes the input gradient of
// UpsampleNearest2D, with the same results (same additions in the same
// order) as UpsampleNearest2DBackwardReference; split over planes. gx is
// overwritten.
func UpsampleNearest2DBackward(p Upsample2DParams, gy, gx []float32) {
	p.check("UpsampleNearest2DBackward", len(gx), len(gy))
	rows := nearestIndices(p.H, p.OutH, p.ScaleH, p.channelsLast())
	cols := nearestIndices(p.W, p.OutW, p.ScaleW, p.channelsLast())
	hw, ohw := p.H*p.W, p.OutH*p.OutW
	parallel.For(p.N*p.C, grainFor(hw+ohw), func(p0, p1 int) {
		for pl := p0; pl < p1; pl++ {
			gp, gyp := gx[pl*hw:(pl+1)*hw], gy[pl*ohw:(pl+1)*ohw]
			clear(gp)
			for i, ih := range rows {
				row := gp[ih*p.W : (ih+1)*p.W]
				for j, g := range gyp[i*p.OutW : (i+1)*p.OutW] {
					row[cols[j]] += g
				}
			}
		}
	})
}

// bilinearPlanar is PyTorch's generic (channels-first) bilinear
// interpolation of one output: the two rows are interpolated along the
// width, then the results along the height, each product and sum rounded
// to float32:
//
//	t0 = x[h.i0][w.i0]*w.l0 + x[h.i0][w.i1]*w.l1
//	t1 = x[h.i1][w.i0]*w.l0 + x[h.i1][w.i1]*w.l1
//	y  = t0*h.l0 + t1*h.l1
func bilinearPlanar(r0, r1 []float32, h, w linearTap) float32 {
	t0 := float32(float32(r0[w.i0]*w.l0) + float32(r0[w.i1]*w.l1))
	t1 := float32(float32(r1[w.i0]*w.l0) + float32(r1[w.i1]*w.l1))
	return float32(float32(t0*h.l0) + float32(t1*h.l1))
}

// bilinearPacked is PyTorch 1.13's channels-last bilinear interpolation
// of one output (its scalar loop, which runs for NCHW inputs that are
// channels-last contiguous too: C = 1, or H = W = 1), in the arithmetic
// that reproduces its results bit for bit: the weights are the float32
// products h.l*w.l, the four terms are multiplied and summed left to
// right in float64 (each product is exact there) and the sum is rounded to
// float32 once.
func bilinearPacked(r0, r1 []float32, h, w linearTap) float32 {
	w00, w01 := float32(h.l0*w.l0), float32(h.l0*w.l1)
	w10, w11 := float32(h.l1*w.l0), float32(h.l1*w.l1)
	s := float64(float64(r0[w.i0])*float64(w00)) + float64(float64(r0[w.i1])*float64(w01))
	s = float64(s + float64(float64(r1[w.i0])*float64(w10)))
	return float32(s + float64(float64(r1[w.i1])*float64(w11)))
}

// accumulatePacked is one gradient update of PyTorch 1.13's channels-last
// bilinear backward: g*w added to *dst in float64 (the product is exact)
// and rounded to float32 once.
func accumulatePacked(dst *float32, w, g float32) {
	*dst = float32(float64(*dst) + float64(float64(w)*float64(g)))
}

// accumulatePlanar is one gradient update of PyTorch's generic bilinear
// backward: float32(w*g) added to *dst in float32.
func accumulatePlanar(dst *float32, w, g float32) {
	*dst += float32(w * g)
}

// bilinearCombine returns the interpolation PyTorch 1.13 applies to an
// NCHW-contiguous input of p's shape: its channels-last kernel when the
// tensor is channels-last contiguous as well (C = 1, or H = W = 1), the
// generic one otherwise.
func (p Upsample2DParams) bilinearCombine() func(r0, r1 []float32, h, w linearTap) float32 {
	if p.channelsLast() {
		return bilinearPacked
	}
	return bilinearPlanar
}

// UpsampleBilinear2DReference is the specification of UpsampleBilinear2D
// (interpolate mode "bilinear", align_corners either way): the taps of
// linearAt on both axes, combined as PyTorch 1.13's CPU kernels do
// (bilinearPlanar, or bilinearPacked for the shapes PyTorch sends to its
// channels-last kernel), without fused multiply-adds. This equals PyTorch
// running its scalar kernels (ATEN_CPU_CAPABILITY=default) bit for bit;
// its AVX2 build contracts some operations, index arithmetic included,
// into fused multiply-adds and differs in the last bits.
func UpsampleBilinear2DReference(p Upsample2DParams, x, y []float32) {
	p.check("UpsampleBilinear2DReference", len(x), len(y))
	combine := p.bilinearCombine()
	sh := linearScale(p.H, p.OutH, p.AlignCorners, p.ScaleH)
	sw := linearScale(p.W, p.OutW, p.AlignCorners, p.ScaleW)
	for pl := 0; pl < p.N*p.C; pl++ {
		for i := 0; i < p.OutH; i++ {
			h := linearAt(sh, i, p.H, p.OutH, p.AlignCorners)
			r0 := x[(pl*p.H+h.i0)*p.W : (pl*p.H+h.i0+1)*p.W]
			r1 := x[(pl*p.H+h.i1)*p.W : (pl*p.H+h.i1+1)*p.W]
			for j := 0; j < p.OutW; j++ {
				w := linearAt(sw, j, p.W, p.OutW, p.AlignCorners)
				y[(pl*p.OutH+i)*p.OutW+j] = combine(r0, r1, h, w)
			}
		}
	}
}

// UpsampleBilinear2D computes UpsampleBilinear2DReference with the taps
// computed once; split over planes.
func UpsampleBilinear2D(p Upsample2DParams, x, y []float32) {
	p.check("UpsampleBilinear2D", len(x), len(y))
	rows := linearTaps(p.H, p.OutH, p.AlignCorners, p.ScaleH)
	cols := linearTaps(p.W, p.OutW, p.AlignCorners, p.ScaleW)
	packed := p.channelsLast()
	hw, ohw := p.H*p.W, p.OutH*p.OutW
	parallel.For(p.N*p.C, grainFor(4*ohw), func(p0, p1 int) {
		for pl := p0; pl < p1; pl++ {
			xp, yp := x[pl*hw:(pl+1)*hw], y[pl*ohw:(pl+1)*ohw]
			for i, h := range rows {
				r0, r1 := xp[h.i0*p.W:(h.i0+1)*p.W], xp[h.i1*p.W:(h.i1+1)*p.W]
				out := yp[i*p.OutW : (i+1)*p.OutW]
				if packed {
					for j, w := range cols {
						out[j] = bilinearPacked(r0, r1, h, w)
					}
					continue
				}
				for j, w := range cols {
					out[j] = bilinearPlanar(r0, r1, h, w)
				}
			}
		}
	})
}

// UpsampleBilinear2DBackwardReference is the adjoint of
// UpsampleBilinear2DReference as PyTorch 1.13's CPU kernels compute it: gx
// is zeroed, then for each output in row-major order, with g its gradient,
// w = float32(h.l0*w.l0)*g is added to x[h.i0][w.i0], then the same for
// (i0, i1), (i1, i0) and (i1, i1): in float32 (accumulatePlanar), or, when
// the gradient is channels-last contiguous too (C = 1, or a 1x1 output)
// and PyTorch runs its channels-last backward kernel, with one rounding of
// the float64 sum (accumulatePacked).
func UpsampleBilinear2DBackwardReference(p Upsample2DParams, gy, gx []float32) {
	p.check("UpsampleBilinear2DBackwardReference", len(gx), len(gy))
	clear(gx[:p.InputLen()])
	acc := accumulatePlanar
	if p.gradChannelsLast() {
		acc = accumulatePacked
	}
	sh := linearScale(p.H, p.OutH, p.AlignCorners, p.ScaleH)
	sw := linearScale(p.W, p.OutW, p.AlignCorners, p.ScaleW)
	for pl := 0; pl < p.N*p.C; pl++ {
		gp := gx[pl*p.H*p.W : (pl+1)*p.H*p.W]
		for i := 0; i < p.OutH; i++ {
			h := linearAt(sh, i, p.H, p.OutH, p.AlignCorners)
			for j := 0; j < p.OutW; j++ {
				w := linearAt(sw, j, p.W, p.OutW, p.AlignCorners)
				g := gy[(pl*p.OutH+i)*p.OutW+j]
				acc(&gp[h.i0*p.W+w.i0], float32(h.l0*w.l0), g)
				acc(&gp[h.i0*p.W+w.i1], float32(h.l0*w.l1), g)
				acc(&gp[h.i1*p.W+w.i0], float32(h.l1*w.l0), g)
				acc(&gp[h.i1*p.W+w.i1], float32(h.l1*w.l1), g)
			}
		}
	}
}

// UpsampleBilinear2DBackward computes the input gradient of
// UpsampleBilinear2D, with the same results (same additions in the same
// order) as UpsampleBilinear2DBackwardReference; split over planes. gx is
// overwritten.
func UpsampleBilinear2DBackward(p Upsample2DParams, gy, gx []float32) {
	p.check("UpsampleBilinear2DBackward", len(gx), len(gy))
	rows := linearTaps(p.H, p.OutH, p.AlignCorners, p.ScaleH)
	cols := linearTaps(p.W, p.OutW, p.AlignCorners, p.ScaleW)
	hw, ohw := p.H*p.W, p.OutH*p.OutW
	packed := p.gradChannelsLast()
	parallel.For(p.N*p.C, grainFor(hw+4*ohw), func(p0, p1 int) {
		for pl := p0; pl < p1; pl++ {
			gp, gyp := gx[pl*hw:(pl+1)*hw], gy[pl*ohw:(pl+1)*ohw]
			clear(gp)
			for i, h := range rows {
				g0, g1 := gp[h.i0*p.W:(h.i0+1)*p.W], gp[h.i1*p.W:(h.i1+1)*p.W]
				gr := gyp[i*p.OutW : (i+1)*p.OutW]
				if packed {
					for j, g := range gr {
						w := cols[j]
						accumulatePacked(&g0[w.i0], float32(h.l0*w.l0), g)
						accumulatePacked(&g0[w.i1], float32(h.l0*w.l1), g)
						accumulatePacked(&g1[w.i0], float32(h.l1*w.l0), g)
						accumulatePacked(&g1[w.i1], float32(h.l1*w.l1), g)
					}
					continue
				}
				for j, g := range gr {
					w := cols[j]
					g0[w.i0] += float32(float32(h.l0*w.l0) * g)
					g0[w.i1] += float32(float32(h.l0*w.l1) * g)
					g1[w.i0] += float32(float32(h.l1*w.l0) * g)
					g1[w.i1] += float32(float32(h.l1*w.l1) * g)
				}
			}
		}
	})
}
