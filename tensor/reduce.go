package tensor

import (
	"fmt"
	"math"
)

// This file holds reductions (Sum, Mean, Var, Max, Min, Argmax, Argmin,
// SumAll, MeanAll), CumSum, and Softmax/LogSoftmax.
//
// Float32 sums accumulate in float64 and the summation order of each
// output is fixed, so results do not depend on how work is divided. Sums of
// integer and bool tensors are int64, as in PyTorch.

// shRedMask resolves the dims of a multi-dimension reduction to a mask over
// t's dimensions. Empty dims means every dimension. A 0-dimensional tensor
// accepts dims 0 and -1 (and reduces nothing).
func shRedMask(op string, t *Tensor, dims []int) []bool {
	n := t.NDim()
	mask := make([]bool, n)
	if len(dims) == 0 {
		for i := range mask {
			mask[i] = true
		}
		return mask
	}
	for _, d := range dims {
		if n == 0 && (d == 0 || d == -1) {
			continue
		}
		d = t.axis(op, d)
		if mask[d] {
			panic(fmt.Sprintf("tensor: %s: dimension %d appears more than once in %v", op, d, dims))
		}
		mask[d] = true
	}
	return mask
}

// shRedShape returns the output shape of a reduction and the number of
// input elements that reduce into each output.
func shRedShape(shape []int, mask []bool, keepDim bool) (out []int, count int) {
	out = []int{}
	count = 1
	for i, d := range shape {
		switch {
		case mask[i]:
			count *= d
			if keepDim {
				out = append(out, 1)
			}
		default:
			out = append(out, d)
		}
	}
	return out, count
}

// shRed is a reduction plan over a contiguous tensor. Dimensions of size 1
// are dropped and neighbours with the same role merged; the innermost
// merged dimension is a contiguous run of length run. When lastRed is true
// the run is reduced into one output; otherwise the run is a row of run
// outputs. kShape/kStr walk the other kept dimensions (the output rows) and
// rShape/rStr the other reduced ones.
type shRed struct {
	run          int
	lastRed      bool
	kShape, kStr []int
	rShape, rStr []int
}

func shNewRed(shape []int, mask []bool) *shRed {
	var gs []int
	var gr []bool
	for i, d := range shape {
		if d == 1 {
			continue
		}
		if k := len(gs) - 1; k >= 0 && gr[k] == mask[i] {
			gs[k] *= d
			continue
		}
		gs = append(gs, d)
		gr = append(gr, mask[i])
	}
	p := &shRed{run: 1, lastRed: true}
	if len(gs) == 0 {
		return p
	}
	st := Strides(gs)
	last := len(gs) - 1
	p.run, p.lastRed = gs[last], gr[last]
	for i := 0; i < last; i++ {
		if gr[i] {
			p.rShape, p.rStr = append(p.rShape, gs[i]), append(p.rStr, st[i])
		} else {
			p.kShape, p.kStr = append(p.kShape, gs[i]), append(p.kStr, st[i])
		}
	}
	return p
}

// rows is the number of output rows (outputs when lastRed, else rows of
// run outputs).
func (p *shRed) rows() int { return shProd(p.kShape) }

// each calls fn(row, off) for every output row and every reduced position,
// in order; off is the start of a contiguous input run of length p.run.
func (p *shRed) each(fn func(row, off int)) {
	ko := shNewOdo(p.kShape, p.kStr, p.kStr, 0, 0)
	ro := shNewOdo(p.rShape, p.rStr, p.rStr, 0, 0)
	nk, nr := p.rows(), shProd(p.rShape)
	for k := 0; k < nk; k++ {
		for r := 0; r < nr; r++ {
			fn(k, ko.a+ro.a)
			ro.next()
		}
		ko.next()
	}
}

// shSumRun sums x in float64 with four independent accumulators.
func shSumRun(x []float32) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += float64(x[i])
		s1 += float64(x[i+1])
		s2 += float64(x[i+2])
		s3 += float64(x[i+3])
	}
	for ; i < len(x); i++ {
		s0 += float64(x[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// shSumF64 returns the float64 sums of a float32 tensor under plan p, one
// per output in row-major output order.
func shSumF64(x []float32, p *shRed) []float64 {
	n := p.run
	if p.lastRed {
		acc := make([]float64, p.rows())
		p.each(func(o, off int) { acc[o] += shSumRun(x[off : off+n]) })
		return acc
	}
	acc := make([]float64, p.rows()*n)
	p.each(func(o, off int) {
		row, src := acc[o*n:(o+1)*n], x[off:off+n]
		for j, v := range src {
			row[j] += float64(v)
		}
	})
	return acc
}

func shSumI64(x []int64, p *shRed) []int64 {
	n := p.run
	if p.lastRed {
		acc := make([]int64, p.rows())
		p.each(func(o, off int) {
			var s int64
			for _, v := range x[off : off+n] {
				s += v
			}
			acc[o] += s
		})
		return acc
	}
	acc := make([]int64, p.rows()*n)
	p.each(func(o, off int) {
		row, src := acc[o*n:(o+1)*n], x[off:off+n]
		for j, v := range src {
			row[j] += v
		}
	})
	return acc
}

// shInt64s returns the elements of an integer or bool tensor as int64 (t's
// storage itself for int64).
func shInt64s(op string, t *Tensor) []int64 {
	if t.dtype.IsQuantized() {
		panic(fmt.Sprintf("tensor: %s: %v tensors are not supported; dequantize first", op, t.dtype))
	}
	if t.dtype == Int64 {
		return t.i64
	}
	n := t.Numel()
	out := make([]int64, n)
	for i := 0; i < n; i++ {
		out[i] = int64(t.flat(i))
	}
	return out
}

// Sum adds t's elements over dims (all dimensions when dims is empty),
// keeping them as size 1 when keepDim is set (torch.sum). Float32 tensors
// give float32 (accumulated in float64); integer and bool tensors give
// int64.
func Sum(t *Tensor, dims []int, keepDim bool) *Tensor {
	mask := shRedMask("Sum", t, dims)
	shape, _ := shRedShape(t.Shape(), mask, keepDim)
	p := shNewRed(t.Shape(), mask)
	if t.dtype == Float32 {
		out := shNew(Float32, shape...)
		if t.Numel() > 0 {
			for i, v := range shSumF64(t.f32, p) {
				out.f32[i] = float32(v)
			}
		}
		return out
	}
	x := shInt64s("Sum", t)
	out := shNew(Int64, shape...)
	if t.Numel() > 0 {
		copy(out.i64, shSumI64(x, p))
	}
	return out
}

func shNeedF32(op string, t *Tensor) {
	if t.dtype != Float32 {
		panic(fmt.Sprintf("tensor: %s: tensor is %v, want float32", op, t.dtype))
	}
}

// Mean averages a float32 tensor over dims (all when empty), as torch.mean.
// The mean over zero elements is NaN.
func Mean(t *Tensor, dims []int, keepDim bool) *Tensor {
	shNeedF32("Mean", t)
	mask := shRedMask("Mean", t, dims)
	shape, count := shRedShape(t.Shape(), mask, keepDim)
	out := shNew(Float32, shape...)
	if t.Numel() == 0 {
		for i := range out.f32 {
			out.f32[i] = float32(math.NaN())
		}
		return out
	}
	for i, v := range shSumF64(t.f32, shNewRed(t.Shape(), mask)) {
		out.f32[i] = float32(v / float64(count))
	}
	return out
}

// Var is the variance of a float32 tensor over dims (all when empty), as
// torch.var: divided by N-1 when unbiased, else by N; NaN when that is not
// positive. It is computed in two passes in float64.
func Var(t *Tensor, dims []int, unbiased, keepDim bool) *Tensor {
	shNeedF32("Var", t)
	mask := shRedMask("Var", t, dims)
	shape, count := shRedShape(t.Shape(), mask, keepDim)
	out := shNew(Float32, shape...)
	denom := count
	if unbiased {
		denom--
	}
	if denom <= 0 || t.Numel() == 0 {
		for i := range out.f32 {
			out.f32[i] = float32(math.NaN())
		}
		return out
	}
	p := shNewRed(t.Shape(), mask)
	mean := shSumF64(t.f32, p)
	for i := range mean {
		mean[i] /= float64(count)
	}
	acc := make([]float64, len(mean))
	x, n := t.f32, p.run
	if p.lastRed {
		p.each(func(o, off int) {
			m := mean[o]
			var s float64
			for _, v := range x[off : off+n] {
				d := float64(v) - m
				s += d * d
			}
			acc[o] += s
		})
	} else {
		p.each(func(o, off int) {
			row, ms, src := acc[o*n:(o+1)*n], mean[o*n:(o+1)*n], x[off:off+n]
			for j, v := range src {
				d := float64(v) - ms[j]
				row[j] += d * d
			}
		})
	}
	for i, v := range acc {
		out.f32[i] = float32(v / float64(denom))
	}
	return out
}

// SumAll returns the sum of all elements as float64 (float32 tensors are
// accumulated in float64). Quantized tensors are not supported.
func SumAll(t *Tensor) float64 {
	if t.dtype == Float32 {
		return shSumRun(t.f32)
	}
	var s int64
	for _, v := range shInt64s("SumAll", t) {
		s += v
	}
	return float64(s)
}

// MeanAll returns the mean of all elements as float64 (NaN when empty).
func MeanAll(t *Tensor) float64 { return SumAll(t) / float64(t.Numel()) }

func shBest[T shNum](vals []T, idx []int64, x []T, o, n, in int, isMax bool) {
	for a := 0; a < o; a++ {
		src := x[a*n*in : (a+1)*n*in]
		if in == 1 {
			b, bi := src[0], 0
			if isMax {
				for i, v := range src {
					if v > b || (v != v && b == b) {
						b, bi = v, i
					}
				}
			} else {
				for i, v := range src {
					if v < b || (v != v && b == b) {
						b, bi = v, i
					}
				}
			}
			vals[a], idx[a] = b, int64(bi)
			continue
		}
		best, bix := vals[a*in:(a+1)*in], idx[a*in:(a+1)*in]
		copy(best, src[:in])
		for i := 1; i < n; i++ {
			row := src[i*in : (i+1)*in]
			if isMax {
				for j, v := range row {
					if b := best[j]; v > b || (v != v && b == b) {
						best[j], bix[j] = v, int64(i)
					}
				}
			} else {
				for j, v := range row {
					if b := best[j]; v < b || (v != v && b == b) {
						best[j], bix[j] = v, int64(i)
					}
				}
			}
		}
	}
}

// shMaxMin computes the extreme values and their first indices along dim.
func shMaxMin(op string, t *Tensor, dim int, keepDim, isMax bool) (values, indices *Tensor) {
	shOrderable(op, t, dim)
	sh := t.Shape()
	if len(sh) == 0 && (dim == 0 || dim == -1) {
		return t.Clone(), shNew(Int64)
	}
	dim = t.axis(op, dim)
	if sh[dim] == 0 {
		panic(fmt.Sprintf("tensor: %s: dimension %d of %v is empty", op, dim, sh))
	}
	mask := make([]bool, len(sh))
	mask[dim] = true
	shape, _ := shRedShape(sh, mask, keepDim)
	q := t.qparams.Clone()
	if shPerChannel(q) && !keepDim && q.Axis > dim {
		q.Axis--
	}
	values = shAlloc(t, shape, q)
	indices = shNew(Int64, shape...)
	o, n, in := shOIN(sh, dim)
	switch t.dtype.Storage() {
	case Float32:
		shBest(values.f32, indices.i64, t.f32, o, n, in, isMax)
	case Int8:
		shBest(values.i8, indices.i64, t.i8, o, n, in, isMax)
	case Uint8:
		shBest(values.u8, indices.i64, t.u8, o, n, in, isMax)
	case Int32:
		shBest(values.i32, indices.i64, t.i32, o, n, in, isMax)
	case Int64:
		shBest(values.i64, indices.i64, t.i64, o, n, in, isMax)
	}
	return values, indices
}

// Max returns the largest values along dim and their int64 indices
// (torch.max with a dim). NaN wins over every number (it propagates); of
// equal values the first index is returned. Plain numeric dtypes and
// quantized tensors (compared as integers, except along a per-channel axis).
func Max(t *Tensor, dim int, keepDim bool) (values, indices *Tensor) {
	return shMaxMin("Max", t, dim, keepDim, true)
}

// Min returns the smallest values along dim and their int64 indices
// (torch.min with a dim); NaN and ties as for Max.
func Min(t *Tensor, dim int, keepDim bool) (values, indices *Tensor) {
	return shMaxMin("Min", t, dim, keepDim, false)
}

// Argmax returns the int64 index of the first largest value along dim
// (torch.argmax with a dim).
func Argmax(t *Tensor, dim int, keepDim bool) *Tensor {
	_, i := shMaxMin("Argmax", t, dim, keepDim, true)
	return i
}

// Argmin returns the int64 index of the first smallest value along dim
// (torch.argmin with a dim).
func Argmin(t *Tensor, dim int, keepDim bool) *Tensor {
	_, i := shMaxMin("Argmin", t, dim, keepDim, false)
	return i
}

// CumSum returns the running sums along dim (torch.cumsum). Float32
// tensors are accumulated in float64 and give float32; integer and bool
// tensors give int64.
func CumSum(t *Tensor, dim int) *Tensor {
	sh := t.Shape()
	if len(sh) == 0 {
		if dim != 0 && dim != -1 {
			t.axis("CumSum", dim)
		}
		sh, dim = []int{1}, 0
	} else {
		dim = t.axis("CumSum", dim)
	}
	o, n, in := shOIN(sh, dim)
	if t.dtype == Float32 {
		out := shNew(Float32, t.Shape()...)
		acc := make([]float64, in)
		for a := 0; a < o; a++ {
			clear(acc)
			for i := 0; i < n; i++ {
				base := (a*n + i) * in
				for j, v := range t.f32[base : base+in] {
					acc[j] += float64(v)
					out.f32[base+j] = float32(acc[j])
				}
			}
		}
		return out
	}
	x := shInt64s("CumSum", t)
	out := shNew(Int64, t.Shape()...)
	acc := make([]int64, in)
	for a := 0; a < o; a++ {
		clear(acc)
		for i := 0; i < n; i++ {
			base := (a*n + i) * in
			for j, v := range x[base : base+in] {
				acc[j] += v
				out.i64[base+j] = acc[j]
			}
		}
	}
	return out
}

// Softmax returns exp(x - max) / sum(exp(x - max)) along dim of a float32
// tensor (torch.softmax). Subtracting the maximum keeps it finite for any
// finite input; sums are accumulated in float64.
func Softmax(t *Tensor, dim int) *Tensor { return shSoftmax("Softmax", t, dim, false) }

// LogSoftmax returns x - max - log(sum(exp(x - max))) along dim of a
// float32 tensor (torch.log_softmax), without forming the softmax.
func LogSoftmax(t *Tensor, dim int) *Tensor { return shSoftmax("LogSoftmax", t, dim, true) }

func shSoftmax(op string, t *Tensor, dim int, log bool) *Tensor {
	shNeedF32(op, t)
	sh := t.Shape()
	if len(sh) == 0 {
		if dim != 0 && dim != -1 {
			t.axis(op, dim)
		}
		sh, dim = []int{1}, 0
	} else {
		dim = t.axis(op, dim)
	}
	out := shNew(Float32, t.Shape()...)
	o, n, in := shOIN(sh, dim)
	if n == 0 {
		return out
	}
	x, y := t.f32, out.f32
	if in == 1 {
		for a := 0; a < o; a++ {
			shSoftmaxRow(y[a*n:(a+1)*n], x[a*n:(a+1)*n], log)
		}
		return out
	}
	m := make([]float32, in)
	s := make([]float64, in)
	for a := 0; a < o; a++ {
		src, dst := x[a*n*in:(a+1)*n*in], y[a*n*in:(a+1)*n*in]
		copy(m, src[:in])
		for i := 1; i < n; i++ {
			for j, v := range src[i*in : (i+1)*in] {
				if v > m[j] {
					m[j] = v
				}
			}
		}
		clear(s)
		for i := 0; i < n; i++ {
			row, drow := src[i*in:(i+1)*in], dst[i*in:(i+1)*in]
			for j, v := range row {
				e := math.Exp(float64(v - m[j]))
				s[j] += e
				drow[j] = float32(e)
			}
		}
		if log {
			for j := range s {
				s[j] = math.Log(s[j])
			}
			for i := 0; i < n; i++ {
				row, drow := src[i*in:(i+1)*in], dst[i*in:(i+1)*in]
				for j, v := range row {
					drow[j] = float32(float64(v-m[j]) - s[j])
				}
			}
			continue
		}
		for j := range s {
			s[j] = 1 / s[j]
		}
		for i := 0; i < n; i++ {
			drow := dst[i*in : (i+1)*in]
			for j, v := range drow {
				drow[j] = float32(float64(v) * s[j])
			}
		}
	}
	return out
}

// shSoftmaxRow is the softmax (or log-softmax) of one contiguous row.
func shSoftmaxRow(y, x []float32, log bool) {
	m := x[0]
	for _, v := range x[1:] {
		if v > m {
			m = v
		}
	}
	var s float64
	if log {
		for _, v := range x {
			s += math.Exp(float64(v - m))
		}
		ls := math.Log(s)
		for j, v := range x {
			y[j] = float32(float64(v-m) - ls)
		}
		return
	}
	for j, v := range x {
		e := math.Exp(float64(v - m))
		s += e
		y[j] = float32(e)
	}
	inv := 1 / s
	for j, v := range y {
		y[j] = float32(float64(v) * inv)
	}
}
