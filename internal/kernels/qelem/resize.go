package qelem

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/internal/parallel"
)

// ResizeParams describes upsampling (or downsampling) x[N, C, H, W] to
// y[N, C, OutH, OutW] as torch.nn.functional.interpolate does. ScaleH and
// ScaleW, when positive, are the scale factors passed to interpolate
// (PyTorch then maps output to input coordinates with 1/scale); zero means
// the size ratio H/OutH. AlignCorners applies to bilinear resizing only.
type ResizeParams struct {
	N, C, H, W     int
	OutH, OutW     int
	ScaleH, ScaleW float64
	AlignCorners   bool
}

// Validate reports whether p has N >= 0 and positive other sizes.
func (p ResizeParams) Validate() error {
	switch {
	case p.N < 0:
		return fmt.Errorf("qelem: negative batch size %d", p.N)
	case p.C < 1 || p.H < 1 || p.W < 1:
		return fmt.Errorf("qelem: resize input channels, height and width must be positive, got C=%d H=%d W=%d", p.C, p.H, p.W)
	case p.OutH < 1 || p.OutW < 1:
		return fmt.Errorf("qelem: resize output size must be positive, got %dx%d", p.OutH, p.OutW)
	case math.IsNaN(p.ScaleH) || math.IsNaN(p.ScaleW) || p.ScaleH < 0 || p.ScaleW < 0:
		return fmt.Errorf("qelem: resize scales must be non-negative, got %g, %g", p.ScaleH, p.ScaleW)
	}
	return nil
}

func (p ResizeParams) check(op string, xLen, yLen int) {
	if err := p.Validate(); err != nil {
		panic("qelem: " + op + ": " + err.Error())
	}
	need(op, "x", xLen, p.N*p.C*p.H*p.W)
	need(op, "y", yLen, p.N*p.C*p.OutH*p.OutW)
}

// scaleValue is PyTorch's compute_scales_value<float>: float32(1/scale)
// for a given scale factor, else float32(in)/float32(out).
func scaleValue(scale float64, in, out int) float32 {
	if scale > 0 {
		return float32(1 / scale)
	}
	return float32(in) / float32(out)
}

// nearestIndex is PyTorch's nearest_idx: the input index output index o
// reads, min(floor(float32(o) * s), in-1), with the exact shortcuts for
// equal sizes and for doubling.
func nearestIndex(o, in, out int, scale float64) int {
	switch {
	case out == in:
		return o
	case out == 2*in:
		return o >> 1
	}
	s := scaleValue(scale, in, out)
	return min(int(math.Floor(float64(float32(float32(o)*s)))), in-1)
}

// UpsampleNearest2DReference is the specification of UpsampleNearest2D
// (interpolate mode "nearest" on a quantized tensor, qparams passing
// through): y[n][c][i][j] = x[n][c][nearestIndex(i)][nearestIndex(j)].
func UpsampleNearest2DReference[T Byte](p ResizeParams, x, y []T) {
	p.check("UpsampleNearest2DReference", len(x), len(y))
	for pl := 0; pl < p.N*p.C; pl++ {
		for i := 0; i < p.OutH; i++ {
			ih := nearestIndex(i, p.H, p.OutH, p.ScaleH)
			for j := 0; j < p.OutW; j++ {
				iw := nearestIndex(j, p.W, p.OutW, p.ScaleW)
				y[(pl*p.OutH+i)*p.OutW+j] = x[(pl*p.H+ih)*p.W+iw]
			}
		}
	}
}

// UpsampleNearest2D computes UpsampleNearest2DReference with precomputed
// column indices, copying whole rows where an output row repeats the
// previous one; split over output rows.
func UpsampleNearest2D[T Byte](p ResizeParams, x, y []T) {
	p.check("UpsampleNearest2D", len(x), len(y))
	cols := make([]int32, p.OutW)
	for j := range cols {
		cols[j] = int32(nearestIndex(j, p.W, p.OutW, p.ScaleW))
	}
	parallel.For(p.N*p.C*p.OutH, rowGrain(p.OutW), func(s, e int) {
		for t := s; t < e; t++ {
			pl, i := t/p.OutH, t%p.OutH
			ih := nearestIndex(i, p.H, p.OutH, p.ScaleH)
			out := y[t*p.OutW : (t+1)*p.OutW]
			if t > s && i > 0 && nearestIndex(i-1, p.H, p.OutH, p.ScaleH) == ih {
				copy(out, y[(t-1)*p.OutW:t*p.OutW])
				continue
			}
			row := x[(pl*p.H+ih)*p.W : (pl*p.H+ih+1)*p.W]
			for j, c := range cols {
				out[j] = row[c]
			}
		}
	})
}

// bilinearScale is PyTorch's area_pixel_compute_scale<float>.
func bilinearScale(in, out int, align bool, scale float64) float32 {
	if align {
		if out > 1 {
			return float32(in-1) / float32(out-1)
		}
		return 0
	}
	return scaleValue(scale, in, out)
}

// bilinearTap is one axis of a bilinear sample: the first input index i0,
// the offset (0 or 1) of the second, and their weights.
type bilinearTap struct {
	i0, step int
	l0, l1   float32
}

// bilinearAt is PyTorch's area_pixel_compute_source_index<float> and the
// weights of its quantized upsample_bilinear2d kernel for output index o.
func bilinearAt(scale float32, o, in int, align bool) bilinearTap {
	var r float32
	if align {
		r = float32(scale * float32(o))
	} else {
		r = float32(float32(scale*float32(float32(o)+0.5)) - 0.5)
		if r < 0 {
			r = 0
		}
	}
	i0 := int(r)
	step := 0
	if i0 < in-1 {
		step = 1
	}
	l1 := float32(r - float32(i0))
	return bilinearTap{i0: i0, step: step, l0: float32(1 - l1), l1: l1}
}

// bilinearValue interpolates four raw codes exactly as PyTorch's quantized
// kernel does (float32, this order, every step rounded), removes the input
// zero point and requantizes: ClampRound(float32(v * float32(InScale/OutScale))),
// which is zp + roundHalfEven(v) when the qparams are equal.
func bilinearValue(h, w bilinearTap, q00, q01, q10, q11 int32, r *Requant, m float32) int32 {
	top := float32(float32(w.l0*float32(q00)) + float32(w.l1*float32(q01)))
	bot := float32(float32(w.l0*float32(q10)) + float32(w.l1*float32(q11)))
	v := float32(float32(float32(h.l0*top)+float32(h.l1*bot)) - float32(r.InZero))
	return qmath.ClampRound(float32(v*m), r.OutZero, r.Min, r.Max)
}

// UpsampleBilinear2DReference is the specification of UpsampleBilinear2D
// (interpolate mode "bilinear", align_corners either way): PyTorch's
// quantized kernel, which interpolates the raw codes in float32 with
// weights from area_pixel_compute_source_index, subtracts the input zero
// point and rounds half to even (see bilinearValue).
func UpsampleBilinear2DReference[T Byte](p ResizeParams, r *Requant, x, y []T) {
	p.check("UpsampleBilinear2DReference", len(x), len(y))
	rh := bilinearScale(p.H, p.OutH, p.AlignCorners, p.ScaleH)
	rw := bilinearScale(p.W, p.OutW, p.AlignCorners, p.ScaleW)
	m := float32(r.InScale / r.OutScale)
	for pl := 0; pl < p.N*p.C; pl++ {
		plane := x[pl*p.H*p.W:]
		for i := 0; i < p.OutH; i++ {
			h := bilinearAt(rh, i, p.H, p.AlignCorners)
			for j := 0; j < p.OutW; j++ {
				w := bilinearAt(rw, j, p.W, p.AlignCorners)
				at := func(dh, dw int) int32 { return int32(plane[(h.i0+dh)*p.W+w.i0+dw]) }
				v := bilinearValue(h, w, at(0, 0), at(0, w.step), at(h.step, 0), at(h.step, w.step), r, m)
				y[(pl*p.OutH+i)*p.OutW+j] = T(v)
			}
		}
	}
}

// UpsampleBilinear2D computes UpsampleBilinear2DReference with the column
// taps computed once, split over output rows.
func UpsampleBilinear2D[T Byte](p ResizeParams, r *Requant, x, y []T) {
	p.check("UpsampleBilinear2D", len(x), len(y))
	checkRange[T]("UpsampleBilinear2D", r.Min, r.Max)
	rh := bilinearScale(p.H, p.OutH, p.AlignCorners, p.ScaleH)
	rw := bilinearScale(p.W, p.OutW, p.AlignCorners, p.ScaleW)
	m := float32(r.InScale / r.OutScale)
	cols := make([]bilinearTap, p.OutW)
	for j := range cols {
		cols[j] = bilinearAt(rw, j, p.W, p.AlignCorners)
	}
	parallel.For(p.N*p.C*p.OutH, rowGrain(4*p.OutW), func(s, e int) {
		for t := s; t < e; t++ {
			pl, i := t/p.OutH, t%p.OutH
			h := bilinearAt(rh, i, p.H, p.AlignCorners)
			r0 := x[(pl*p.H+h.i0)*p.W : (pl*p.H+h.i0+1)*p.W]
			r1 := x[(pl*p.H+h.i0+h.step)*p.W : (pl*p.H+h.i0+h.step+1)*p.W]
			out := y[t*p.OutW : (t+1)*p.OutW]
			for j, w := range cols {
				out[j] = T(bilinearValue(h, w, int32(r0[w.i0]), int32(r0[w.i0+w.step]), int32(r1[w.i0]), int32(r1[w.i0+w.step]), r, m))
			}
		}
	})
}
