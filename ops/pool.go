package ops

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// PoolAttrs are the attributes of MaxPool2d and AvgPool2d, as the
// arguments of torch.nn.functional.max_pool2d and avg_pool2d; pairs are
// [height, width]. Kernel is required. A zero Stride means the kernel size
// (torch's default) and a zero Dilation component means 1; AvgPool2d
// accepts only dilation 1. Padding (implicit -inf for max, zeros for
// average) is at most half the kernel. CeilMode rounds the output size up
// instead of down, as long as the last window starts inside the input or
// the left padding. CountIncludePad (AvgPool2d only) counts padding
// elements in the divisor; note that torch's avg_pool2d defaults it to
// true while the zero value here is false.
type PoolAttrs struct {
	Kernel, Stride, Padding, Dilation [2]int
	CeilMode, CountIncludePad         bool
}

// AdaptivePoolAttrs are the attributes AdaptiveAvgPool2d records when
// traced.
type AdaptivePoolAttrs struct {
	// Output is the output [height, width].
	Output [2]int
}

// nnopPool is a validated pooling geometry over planes of ih×iw.
type nnopPool struct {
	planes, ih, iw, oh, ow int
	kh, kw, sh, sw         int
	ph, pw, dh, dw         int
}

func nnopPoolSetup(op string, x *tensor.Tensor, a PoolAttrs) (nnopPool, []int) {
	nnopF32(op, "x", x)
	xs := x.Shape()
	if len(xs) != 3 && len(xs) != 4 {
		panic(fmt.Sprintf("ops: %s: want input [N, C, H, W] or [C, H, W], got %v", op, xs))
	}
	var g nnopPool
	g.ih, g.iw = xs[len(xs)-2], xs[len(xs)-1]
	g.planes = nnopProd(xs[:len(xs)-2])
	g.kh, g.kw = a.Kernel[0], a.Kernel[1]
	g.sh, g.sw = a.Stride[0], a.Stride[1]
	if g.sh == 0 {
		g.sh = g.kh
	}
	if g.sw == 0 {
		g.sw = g.kw
	}
	g.ph, g.pw = a.Padding[0], a.Padding[1]
	g.dh, g.dw = max(a.Dilation[0], 1), max(a.Dilation[1], 1)
	switch {
	case g.kh < 1 || g.kw < 1:
		panic(fmt.Sprintf("ops: %s: kernel %v must be positive", op, a.Kernel))
	case g.sh < 1 || g.sw < 1 || a.Dilation[0] < 0 || a.Dilation[1] < 0:
		panic(fmt.Sprintf("ops: %s: stride %v and dilation %v must be positive", op, a.Stride, a.Dilation))
	case g.ph < 0 || g.pw < 0 || 2*g.ph > g.kh || 2*g.pw > g.kw:
		panic(fmt.Sprintf("ops: %s: padding %v must be between 0 and half the kernel %v", op, a.Padding, a.Kernel))
	}
	g.oh = nnopPoolOut(g.ih, g.kh, g.sh, g.ph, g.dh, a.CeilMode)
	g.ow = nnopPoolOut(g.iw, g.kw, g.sw, g.pw, g.dw, a.CeilMode)
	if g.oh < 1 || g.ow < 1 {
		panic(fmt.Sprintf("ops: %s: input %v is too small for attributes %+v", op, xs, a))
	}
	yShape := append(append([]int(nil), xs[:len(xs)-2]...), g.oh, g.ow)
	return g, yShape
}

// nnopPoolOut is torch's pooling_output_shape.
func nnopPoolOut(in, k, s, p, d int, ceil bool) int {
	num := in + 2*p - d*(k-1) - 1
	if ceil {
		num += s - 1
	}
	out := nnopFloorDiv(num, s) + 1
	if ceil && (out-1)*s >= in+p {
		out--
	}
	return out
}

func nnopFloorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// MaxPool2d is torch.nn.functional.max_pool2d on x [N, C, H, W] or
// [C, H, W]: each output is the maximum of its (dilated) window, padding
// excluded. A NaN in a window is the result. The gradient goes to the first
// maximum of each window (in row-major window order), accumulating where
// windows overlap. The traced op is "MaxPool2d" with input x and PoolAttrs.
func MaxPool2d(x *tensor.Tensor, attrs PoolAttrs) *tensor.Tensor {
	g, yShape := nnopPoolSetup("MaxPool2d", x, attrs)
	xv := x.F32()
	ip, op := g.ih*g.iw, g.oh*g.ow
	yv := make([]float32, g.planes*op)
	arg := make([]int32, g.planes*op)
	parallel.For(g.planes, 1, func(p0, p1 int) {
		for pl := p0; pl < p1; pl++ {
			in := xv[pl*ip : (pl+1)*ip]
			for oy := 0; oy < g.oh; oy++ {
				for ox := 0; ox < g.ow; ox++ {
					best, bi := float32(math.Inf(-1)), int32(-1)
					for i := 0; i < g.kh; i++ {
						iy := oy*g.sh - g.ph + i*g.dh
						if iy < 0 || iy >= g.ih {
							continue
						}
						for j := 0; j < g.kw; j++ {
							ix := ox*g.sw - g.pw + j*g.dw
							if ix < 0 || ix >= g.iw {
								continue
							}
							v := in[iy*g.iw+ix]
							if bi < 0 || v > best || v != v {
								best, bi = v, int32(iy*g.iw+ix)
							}
						}
					}
					k := pl*op + oy*g.ow + ox
					yv[k], arg[k] = best, bi
				}
			}
		}
	})
	y := nnopTensor(yv, yShape)
	return Apply("MaxPool2d", attrs, Ts(x), Ts(y), func(gr []*tensor.Tensor) []*tensor.Tensor {
		gv := gr[0].F32()
		gx := make([]float32, len(xv))
		parallel.For(g.planes, 1, func(p0, p1 int) {
			for pl := p0; pl < p1; pl++ {
				for k := pl * op; k < (pl+1)*op; k++ {
					if arg[k] >= 0 {
						gx[pl*ip+int(arg[k])] += gv[k]
					}
				}
			}
		})
		return Ts(nnopTensor(gx, x.Shape()))
	})
}

// AvgPool2d is torch.nn.functional.avg_pool2d on x [N, C, H, W] or
// [C, H, W]: each output is the sum of its window's input elements divided
// by the window size clipped to the padded input (CountIncludePad) or to
// the input (otherwise). The traced op is "AvgPool2d" with input x and
// PoolAttrs.
func AvgPool2d(x *tensor.Tensor, attrs PoolAttrs) *tensor.Tensor {
	if (attrs.Dilation[0] != 0 && attrs.Dilation[0] != 1) || (attrs.Dilation[1] != 0 && attrs.Dilation[1] != 1) {
		panic(fmt.Sprintf("ops: AvgPool2d: dilation %v is not supported (want 1)", attrs.Dilation))
	}
	g, yShape := nnopPoolSetup("AvgPool2d", x, attrs)
	xv := x.F32()
	ip, op := g.ih*g.iw, g.oh*g.ow
	// Window bounds per output row and column, and divisors.
	type span struct{ lo, hi, full int }
	win := func(o, s, p, k, in int) span {
		lo := o*s - p
		hi := min(lo+k, in+p)
		full := hi - lo
		return span{max(lo, 0), min(hi, in), full}
	}
	rows := make([]span, g.oh)
	for o := range rows {
		rows[o] = win(o, g.sh, g.ph, g.kh, g.ih)
	}
	cols := make([]span, g.ow)
	for o := range cols {
		cols[o] = win(o, g.sw, g.pw, g.kw, g.iw)
	}
	div := func(r, c span) float32 {
		if attrs.CountIncludePad {
			return float32(r.full * c.full)
		}
		return float32((r.hi - r.lo) * (c.hi - c.lo))
	}
	yv := make([]float32, g.planes*op)
	parallel.For(g.planes, 1, func(p0, p1 int) {
		for pl := p0; pl < p1; pl++ {
			in := xv[pl*ip : (pl+1)*ip]
			for oy, r := range rows {
				for ox, c := range cols {
					var s float32
					for iy := r.lo; iy < r.hi; iy++ {
						for _, v := range in[iy*g.iw+c.lo : iy*g.iw+c.hi] {
							s += v
						}
					}
					yv[pl*op+oy*g.ow+ox] = s / div(r, c)
				}
			}
		}
	})
	y := nnopTensor(yv, yShape)
	return Apply("AvgPool2d", attrs, Ts(x), Ts(y), func(gr []*tensor.Tensor) []*tensor.Tensor {
		gv := gr[0].F32()
		gx := make([]float32, len(xv))
		parallel.For(g.planes, 1, func(p0, p1 int) {
			for pl := p0; pl < p1; pl++ {
				out := gx[pl*ip : (pl+1)*ip]
				for oy, r := range rows {
					for ox, c := range cols {
						d := gv[pl*op+oy*g.ow+ox] / div(r, c)
						for iy := r.lo; iy < r.hi; iy++ {
							for ix := c.lo; ix < c.hi; ix++ {
								out[iy*g.iw+ix] += d
							}
						}
					}
				}
			}
		})
		return Ts(nnopTensor(gx, x.Shape()))
	})
}

// AdaptiveAvgPool2d is torch.nn.functional.adaptive_avg_pool2d on x
// [N, C, H, W] or [C, H, W]: output (i, j) of [outH, outW] averages input
// rows floor(i*H/outH) to ceil((i+1)*H/outH) (exclusive), likewise
// columns. The traced op is "AdaptiveAvgPool2d" with input x and
// AdaptivePoolAttrs.
func AdaptiveAvgPool2d(x *tensor.Tensor, outH, outW int) *tensor.Tensor {
	const op = "AdaptiveAvgPool2d"
	xv := nnopF32(op, "x", x)
	xs := x.Shape()
	if (len(xs) != 3 && len(xs) != 4) || outH < 1 || outW < 1 {
		panic(fmt.Sprintf("ops: AdaptiveAvgPool2d: want input [N, C, H, W] or [C, H, W] and a positive output size, got %v and %dx%d", xs, outH, outW))
	}
	ih, iw := xs[len(xs)-2], xs[len(xs)-1]
	planes := nnopProd(xs[:len(xs)-2])
	if ih < 1 || iw < 1 {
		panic(fmt.Sprintf("ops: AdaptiveAvgPool2d: input %v has an empty plane", xs))
	}
	bounds := func(out, in int) [][2]int {
		b := make([][2]int, out)
		for i := range b {
			b[i] = [2]int{i * in / out, ((i+1)*in + out - 1) / out}
		}
		return b
	}
	rows, cols := bounds(outH, ih), bounds(outW, iw)
	ip, opl := ih*iw, outH*outW
	yv := make([]float32, planes*opl)
	parallel.For(planes, 1, func(p0, p1 int) {
		for pl := p0; pl < p1; pl++ {
			in := xv[pl*ip : (pl+1)*ip]
			for oy, r := range rows {
				for ox, c := range cols {
					var s float32
					for iy := r[0]; iy < r[1]; iy++ {
						for _, v := range in[iy*iw+c[0] : iy*iw+c[1]] {
							s += v
						}
					}
					yv[pl*opl+oy*outW+ox] = s / float32((r[1]-r[0])*(c[1]-c[0]))
				}
			}
		}
	})
	yShape := append(append([]int(nil), xs[:len(xs)-2]...), outH, outW)
	y := nnopTensor(yv, yShape)
	return Apply(op, AdaptivePoolAttrs{Output: [2]int{outH, outW}}, Ts(x), Ts(y), func(gr []*tensor.Tensor) []*tensor.Tensor {
		gv := gr[0].F32()
		gx := make([]float32, len(xv))
		parallel.For(planes, 1, func(p0, p1 int) {
			for pl := p0; pl < p1; pl++ {
				out := gx[pl*ip : (pl+1)*ip]
				for oy, r := range rows {
					for ox, c := range cols {
						d := gv[pl*opl+oy*outW+ox] / float32((r[1]-r[0])*(c[1]-c[0]))
						for iy := r[0]; iy < r[1]; iy++ {
							for ix := c[0]; ix < c[1]; ix++ {
								out[iy*iw+ix] += d
							}
						}
					}
				}
			}
		})
		return Ts(nnopTensor(gx, x.Shape()))
	})
}
