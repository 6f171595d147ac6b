package exec

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/kernels/conv"
	"github.com/quanta-go/quanta/internal/kernels/pool"
	"github.com/quanta-go/quanta/internal/kernels/qelem"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// MaxPool (opsets 1 to 21, with the optional Indices output), AveragePool
// (opsets 7 to 21), GlobalAveragePool and GlobalMaxPool (opset 1 on), over
// 1, 2 or 3 spatial dimensions. The window loops are plain Go over one
// plane (an image channel) at a time, planes in parallel.
//
// Output sizes follow ONNX: floor((in + pads - effective kernel) / stride)
// + 1, or ceil with ceil_mode, in which case a last window that would start
// in the end padding is dropped (as PyTorch and the current ONNX reference
// do); auto_pad SAME_* gives ceil(in / stride) with the padding split as
// Conv's, VALID no padding.

func init() {
	register("MaxPool", 1, func(c *CompileContext, n *graph.Node) (Kernel, error) { return compilePool(c, n, true) })
	register("AveragePool", 7, func(c *CompileContext, n *graph.Node) (Kernel, error) { return compilePool(c, n, false) })
	register("GlobalAveragePool", 1, func(c *CompileContext, n *graph.Node) (Kernel, error) {
		return compileGlobalPool(n, false)
	})
	register("GlobalMaxPool", 1, func(c *CompileContext, n *graph.Node) (Kernel, error) {
		return compileGlobalPool(n, true)
	})
}

// poolKernel is a compiled MaxPool or AveragePool node.
type poolKernel struct {
	max          bool
	sp           nnSpatial
	ceil         bool
	includePad   bool
	storageOrder int64
	wantIndices  bool
}

func compilePool(c *CompileContext, n *graph.Node, isMax bool) (Kernel, error) {
	if err := nIn(n, 1, 1); err != nil {
		return nil, err
	}
	sp, err := nnParseSpatial(n)
	if err != nil {
		return nil, err
	}
	if sp.kernel == nil {
		return nil, fmt.Errorf("attribute kernel_shape is required")
	}
	k := &poolKernel{max: isMax, sp: sp}
	ceil, err := n.Int("ceil_mode", 0)
	if err != nil {
		return nil, err
	}
	k.ceil = ceil != 0
	if isMax {
		if k.storageOrder, err = n.Int("storage_order", 0); err != nil {
			return nil, err
		}
		if k.storageOrder != 0 && k.storageOrder != 1 {
			return nil, fmt.Errorf("storage_order %d, want 0 or 1", k.storageOrder)
		}
		k.wantIndices = n.Output(1) != nil
	} else {
		inc, err := n.Int("count_include_pad", 0)
		if err != nil {
			return nil, err
		}
		k.includePad = inc != 0
	}
	return k, nil
}

// Run pools the input.
func (k *poolKernel) Run(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	switch x.DType() {
	case tensor.Float32:
	case tensor.Int8, tensor.Uint8:
		if !k.max {
			return nil, fmt.Errorf("AveragePool of %s is not supported", x.DType())
		}
	default:
		return nil, fmt.Errorf("input of type %s is not supported", x.DType())
	}
	xs := x.Shape()
	r := len(xs) - 2
	if r < 1 || r > 3 {
		return nil, fmt.Errorf("input has shape %v: want [N, C, D1, ...] with 1 to 3 spatial dimensions", xs)
	}
	geo, err := k.sp.resolve(xs[2:], k.sp.kernel, k.ceil)
	if err != nil {
		return nil, err
	}
	for i, o := range geo.out {
		if o <= 0 {
			return nil, fmt.Errorf("input %v gives an empty output in spatial dimension %d", xs, i)
		}
	}
	p := newPool3(geo)
	planes := xs[0] * xs[1]
	if k.max && !k.wantIndices && x.DType() != tensor.Float32 && p.in[0] == 1 && p.d[1] == 1 && p.d[2] == 1 {
		// 8-bit 2-D max pooling compares the codes themselves: the same
		// maxima as the float path, without the float copies.
		rows, cols := p.ranges(1), p.ranges(2)
		if nonEmpty(rows) && nonEmpty(cols) {
			signed := x.DType() == tensor.Int8
			xb := bytesOf(x)
			yb := f.allocBytes(planes * p.outLen)
			if pp, ok := p.params2D(xs[0], xs[1]); ok {
				// The vectorized kernel, when its symmetric padding
				// places the same windows.
				if signed {
					qelem.MaxPool2D(pp, asInt8(xb), asInt8(yb))
				} else {
					qelem.MaxPool2D(pp, xb, yb)
				}
			} else {
				parallel.For(planes, max(1, byteGrain/max(1, p.inLen)), func(s, e int) {
					for pl := s; pl < e; pl++ {
						xp, yp := xb[pl*p.inLen:(pl+1)*p.inLen], yb[pl*p.outLen:(pl+1)*p.outLen]
						if signed {
							maxPlaneCodes(asInt8(xp), asInt8(yp), p.in[2], rows, cols)
						} else {
							maxPlaneCodes(xp, yp, p.in[2], rows, cols)
						}
					}
				})
			}
			return []*tensor.Tensor{byteTensor(yb, signed, append([]int{xs[0], xs[1]}, geo.out...)...)}, nil
		}
	}
	xv, isF := nnToFloat(x)
	y := f.allocF32(planes * p.outLen)
	var idx []int64
	if k.max && k.wantIndices {
		idx = make([]int64, len(y))
	}
	if k.max && idx == nil && p.in[0] == 1 && p.d[1] == 1 && p.d[2] == 1 {
		// 2-D max pooling without dilation or indices: the windows'
		// input ranges are computed once for all planes.
		rows, cols := p.ranges(1), p.ranges(2)
		parallel.For(planes, max(1, 8192/max(1, p.outLen*p.k[1]*p.k[2])), func(s, e int) {
			for pl := s; pl < e; pl++ {
				p.maxPlane2D(xv[pl*p.inLen:(pl+1)*p.inLen], y[pl*p.outLen:(pl+1)*p.outLen], rows, cols)
			}
		})
		return k.outputs(x, y, nil, geo.out, isF), nil
	}
	if !k.max && p.in[0] == 1 && p.d[1] == 1 && p.d[2] == 1 {
		// 2-D average pooling without dilation: the windows' input
		// ranges and counts are computed once for all planes.
		rows, cols := p.ranges(1), p.ranges(2)
		rowN, colN := p.paddedCounts(1), p.paddedCounts(2)
		parallel.For(planes, max(1, 8192/max(1, p.outLen*p.k[1]*p.k[2])), func(s, e int) {
			for pl := s; pl < e; pl++ {
				p.avgPlane2D(xv[pl*p.inLen:(pl+1)*p.inLen], y[pl*p.outLen:(pl+1)*p.outLen], rows, cols, rowN, colN, k.includePad)
			}
		})
		return k.outputs(x, y, nil, geo.out, isF), nil
	}
	parallel.For(planes, 1, func(s, e int) {
		for pl := s; pl < e; pl++ {
			xp := xv[pl*p.inLen : (pl+1)*p.inLen]
			yp := y[pl*p.outLen : (pl+1)*p.outLen]
			if k.max {
				var ip []int64
				if idx != nil {
					ip = idx[pl*p.outLen : (pl+1)*p.outLen]
				}
				p.maxPlane(xp, yp, ip, int64(pl*p.inLen), k.storageOrder == 1)
			} else {
				p.avgPlane(xp, yp, k.includePad)
			}
		}
	})
	return k.outputs(x, y, idx, geo.out, isF), nil
}

// outputs wraps the pooled planes y (and the indices idx, if any) of
// input x with spatial output sizes out.
func (k *poolKernel) outputs(x *tensor.Tensor, y []float32, idx []int64, out []int, isF bool) []*tensor.Tensor {
	yShape := append([]int{x.Dim(0), x.Dim(1)}, out...)
	yt := nnTensor(y, yShape)
	if !isF {
		yt = tensor.Cast(yt, x.DType())
	}
	outs := []*tensor.Tensor{yt}
	if idx != nil {
		outs = append(outs, nnInt64Tensor(idx, yShape))
	}
	return outs
}

// maxStep is one step of MaxPool's scan: v replaces best when larger, or
// when it is the first NaN.
func maxStep(best, v float32) float32 {
	if v > best || (v != v && best == best) {
		return v
	}
	return best
}

// ranges returns, for every output position of dimension i (dilation 1),
// the input range [lo, hi) its window covers inside the input.
func (p *pool3) ranges(i int) [][2]int {
	r := make([][2]int, p.out[i])
	for o := range r {
		start := o*p.s[i] - p.pb[i]
		r[o] = [2]int{min(max(start, 0), p.in[i]), max(min(start+p.k[i], p.in[i]), 0)}
	}
	return r
}

// maxPlane2D is maxPlane for 2-D windows without dilation or indices,
// over the precomputed row and column ranges: the same comparisons in the
// same order (the first value, then any larger one or the first NaN), so
// the same result.
func (p *pool3) maxPlane2D(x, y []float32, rows, cols [][2]int) {
	w := p.in[2]
	if p.k[1] == 2 && p.k[2] == 2 && p.s[1] == 2 && p.s[2] == 2 && p.pb[1] == 0 && p.pb[2] == 0 &&
		2*len(rows) <= p.in[1] && 2*len(cols) <= w {
		// 2x2 windows, stride 2, all inside the input.
		ow := len(cols)
		for oh := range rows {
			r0, r1 := x[2*oh*w:][:2*ow], x[(2*oh+1)*w:][:2*ow]
			yr := y[oh*ow : (oh+1)*ow]
			for j := range yr {
				a, b := r0[2*j:2*j+2:2*j+2], r1[2*j:2*j+2:2*j+2]
				yr[j] = maxStep(maxStep(maxStep(a[0], a[1]), b[0]), b[1])
			}
		}
		return
	}
	o := 0
	for _, rr := range rows {
		for _, cr := range cols {
			best := nnNegInf
			first := true
			for ih := rr[0]; ih < rr[1]; ih++ {
				for _, v := range x[ih*w+cr[0] : ih*w+cr[1]] {
					if v > best || first || (v != v && best == best) {
						best, first = v, false
					}
				}
			}
			y[o] = best
			o++
		}
	}
}

// nonEmpty reports whether every window range holds at least one input
// position.
func nonEmpty(r [][2]int) bool {
	for _, v := range r {
		if v[0] >= v[1] {
			return false
		}
	}
	return true
}

// asInt8 views bytes as int8 codes.
func asInt8(b []byte) []int8 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*int8)(unsafe.Pointer(&b[0])), len(b))
}

// params2D returns the qelem/pool parameters of a 2-D, undilated p over
// n x c planes when they place the same windows: the padding before the
// input is at most half the kernel and PyTorch's output size for it, in
// floor or ceil mode, is p's. The windows then start at the same places;
// the padding after the input only sizes the output (a max pool's padded
// positions never win).
func (p *pool3) params2D(n, c int) (pool.Pool2DParams, bool) {
	pp := pool.Pool2DParams{N: n, C: c, H: p.in[1], W: p.in[2], KH: p.k[1], KW: p.k[2],
		StrideH: p.s[1], StrideW: p.s[2], PadH: p.pb[1], PadW: p.pb[2]}
	for _, ceil := range []bool{false, true} {
		pp.CeilMode = ceil
		if pp.Validate() == nil && pp.OutH() == p.out[1] && pp.OutW() == p.out[2] {
			return pp, true
		}
	}
	return pp, false
}

// maxPlaneCodes is maxPlane2D on one plane of 8-bit codes (w columns),
// over the precomputed non-empty row and column ranges of the windows.
func maxPlaneCodes[T int8 | uint8](x, y []T, w int, rows, cols [][2]int) {
	o := 0
	for _, rr := range rows {
		for _, cr := range cols {
			best := x[rr[0]*w+cr[0]]
			for ih := rr[0]; ih < rr[1]; ih++ {
				for _, v := range x[ih*w+cr[0] : ih*w+cr[1]] {
					best = max(best, v)
				}
			}
			y[o] = best
			o++
		}
	}
}

// paddedCounts returns, for every output position of dimension i, how
// many of its window's positions lie inside the padded input (taps'
// second result).
func (p *pool3) paddedCounts(i int) []int {
	var buf [16]int
	n := make([]int, p.out[i])
	for o := range n {
		_, n[o] = p.taps(i, o, buf[:0])
	}
	return n
}

// avgPlane2D is avgPlane for 2-D windows without dilation, over the
// precomputed row and column ranges and padded counts: the same float32
// sums in the same order (rows, then columns), so the same result.
func (p *pool3) avgPlane2D(x, y []float32, rows, cols [][2]int, rowN, colN []int, includePad bool) {
	w := p.in[2]
	o := 0
	for oh, rr := range rows {
		for ow, cr := range cols {
			var sum float32
			for ih := rr[0]; ih < rr[1]; ih++ {
				for _, v := range x[ih*w+cr[0] : ih*w+cr[1]] {
					sum += v
				}
			}
			cnt := (rr[1] - rr[0]) * (cr[1] - cr[0])
			if includePad {
				cnt = rowN[oh] * colN[ow]
			}
			if cnt == 0 {
				y[o] = float32(math.NaN())
			} else {
				y[o] = sum / float32(cnt)
			}
			o++
		}
	}
}

// pool3 is a pooling geometry over 3 spatial dimensions; 1-D and 2-D
// pools are viewed with leading dimensions of size 1.
type pool3 struct {
	in, out, k, s, d, pb, pe [3]int
	inLen, outLen            int
}

func newPool3(g nnGeom) pool3 {
	var p pool3
	off := 3 - len(g.in)
	for i := range 3 {
		p.in[i], p.out[i], p.k[i], p.s[i], p.d[i] = 1, 1, 1, 1, 1
	}
	for i := range g.in {
		j := i + off
		p.in[j], p.out[j], p.k[j], p.s[j], p.d[j] = g.in[i], g.out[i], g.kernel[i], g.strides[i], g.dilations[i]
		p.pb[j], p.pe[j] = g.padBegin[i], g.padEnd[i]
	}
	p.inLen = p.in[0] * p.in[1] * p.in[2]
	p.outLen = p.out[0] * p.out[1] * p.out[2]
	return p
}

// taps returns the input positions of window o in dimension i (those inside
// the input) and the number of window positions inside the padded input.
func (p *pool3) taps(i, o int, buf []int) ([]int, int) {
	buf = buf[:0]
	padded := 0
	start := o*p.s[i] - p.pb[i]
	for t := range p.k[i] {
		v := start + t*p.d[i]
		if v >= -p.pb[i] && v < p.in[i]+p.pe[i] {
			padded++
		}
		if v >= 0 && v < p.in[i] {
			buf = append(buf, v)
		}
	}
	return buf, padded
}

// maxPlane computes one plane of MaxPool. Indices (when idx is not nil)
// are base plus the offset of the first maximum in the plane, row-major or
// (colMajor) column-major.
func (p *pool3) maxPlane(x, y []float32, idx []int64, base int64, colMajor bool) {
	var b0, b1, b2 [16]int
	o := 0
	for od := range p.out[0] {
		t0, _ := p.taps(0, od, b0[:0])
		for oh := range p.out[1] {
			t1, _ := p.taps(1, oh, b1[:0])
			for ow := range p.out[2] {
				t2, _ := p.taps(2, ow, b2[:0])
				best := nnNegInf
				bi := -1
				for _, id := range t0 {
					for _, ih := range t1 {
						row := (id*p.in[1] + ih) * p.in[2]
						for _, iw := range t2 {
							if v := x[row+iw]; v > best || bi < 0 || (v != v && best == best) {
								best, bi = v, row+iw
							}
						}
					}
				}
				y[o] = best
				if idx != nil {
					if bi < 0 {
						idx[o] = -1
					} else {
						off := int64(bi)
						if colMajor {
							id, ih, iw := bi/(p.in[1]*p.in[2]), bi/p.in[2]%p.in[1], bi%p.in[2]
							off = int64(p.colMajorOffset(id, ih, iw))
						}
						idx[o] = base + off
					}
				}
				o++
			}
		}
	}
}

// colMajorOffset is the column-major offset of (d, h, w) over the pool's
// real spatial dimensions (the leading size-1 ones add nothing).
func (p *pool3) colMajorOffset(d, h, w int) int {
	// Column-major: the first real dimension varies fastest.
	return d + p.in[0]*(h+p.in[1]*w)
}

// avgPlane computes one plane of AveragePool.
func (p *pool3) avgPlane(x, y []float32, includePad bool) {
	var b0, b1, b2 [16]int
	o := 0
	for od := range p.out[0] {
		t0, n0 := p.taps(0, od, b0[:0])
		for oh := range p.out[1] {
			t1, n1 := p.taps(1, oh, b1[:0])
			for ow := range p.out[2] {
				t2, n2 := p.taps(2, ow, b2[:0])
				var sum float32
				for _, id := range t0 {
					for _, ih := range t1 {
						row := (id*p.in[1] + ih) * p.in[2]
						for _, iw := range t2 {
							sum += x[row+iw]
						}
					}
				}
				cnt := len(t0) * len(t1) * len(t2)
				if includePad {
					cnt = n0 * n1 * n2
				}
				if cnt == 0 {
					y[o] = float32(math.NaN())
				} else {
					y[o] = sum / float32(cnt)
				}
				o++
			}
		}
	}
}

// globalPoolKernel is GlobalAveragePool or GlobalMaxPool.
type globalPoolKernel struct{ max bool }

func compileGlobalPool(n *graph.Node, isMax bool) (Kernel, error) {
	if err := nIn(n, 1, 1); err != nil {
		return nil, err
	}
	return &globalPoolKernel{max: isMax}, nil
}

// Run reduces every plane to one value.
func (k *globalPoolKernel) Run(_ *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	if err := wantFloat("the input", x); err != nil {
		return nil, err
	}
	xs := x.Shape()
	if len(xs) < 2 {
		return nil, fmt.Errorf("input has shape %v: want [N, C, ...]", xs)
	}
	planes := xs[0] * xs[1]
	hw := nnProd(xs[2:])
	xv := x.F32()
	y := make([]float32, planes)
	parallel.For(planes, max(1, 16384/max(1, hw)), func(s, e int) {
		for pl := s; pl < e; pl++ {
			v := xv[pl*hw : (pl+1)*hw]
			if k.max {
				m := nnNegInf
				for i, f := range v {
					if f > m || i == 0 || f != f {
						m = f
						if f != f {
							break
						}
					}
				}
				y[pl] = m
			} else {
				y[pl] = float32(conv.SumF64(v) / float64(hw))
			}
		}
	})
	yShape := []int{xs[0], xs[1]}
	for range xs[2:] {
		yShape = append(yShape, 1)
	}
	return []*tensor.Tensor{nnTensor(y, yShape)}, nil
}
