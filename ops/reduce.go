package ops

import (
	"github.com/quanta-go/quanta/tensor"
)

// ReduceAttrs are the attributes of the reductions Sum, Mean, Var, Max and
// Min (Dims empty: every dimension; Max and Min have one dim). Unbiased is
// only used by Var.
type ReduceAttrs struct {
	Dims     []int
	KeepDim  bool
	Unbiased bool
}

// shKeepShape returns x's shape with the reduced dims (all when dims is
// empty) set to 1, and the number of elements each output reduces.
func shKeepShape(x *tensor.Tensor, dims []int) (keep []int, count int) {
	xs := x.Shape()
	keep = append([]int{}, xs...)
	count = 1
	if len(dims) == 0 {
		for i, d := range keep {
			count *= d
			keep[i] = 1
		}
		return keep, count
	}
	for _, d := range dims {
		if len(xs) == 0 {
			continue
		}
		d = x.Axis(d)
		if keep[d] != 1 {
			count *= keep[d]
		}
		keep[d] = 1
	}
	return keep, count
}

// shBroadcastBack expands a reduction's output gradient g back over the
// reduced dimensions of an input of shape xs.
func shBroadcastBack(g *tensor.Tensor, keep, xs []int) *tensor.Tensor {
	return tensor.Expand(g.Reshape(keep...), xs...)
}

// Sum adds x over dims (all when empty), keeping them as size 1 when
// keepDim is set (torch.sum; integer and bool tensors give int64). The
// gradient is broadcast back.
func Sum(x *tensor.Tensor, dims []int, keepDim bool) *tensor.Tensor {
	out := tensor.Sum(x, dims, keepDim)
	xs := x.Shape()
	keep, _ := shKeepShape(x, dims)
	return Apply("Sum", ReduceAttrs{Dims: shInts(dims), KeepDim: keepDim}, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(shBroadcastBack(g[0], keep, xs))
	})
}

// Mean averages x over dims (all when empty) (torch.mean). The gradient
// is broadcast back and divided by the number of averaged elements.
func Mean(x *tensor.Tensor, dims []int, keepDim bool) *tensor.Tensor {
	out := tensor.Mean(x, dims, keepDim)
	xs := x.Shape()
	keep, count := shKeepShape(x, dims)
	return Apply("Mean", ReduceAttrs{Dims: shInts(dims), KeepDim: keepDim}, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(tensor.ScaleInPlace(shBroadcastBack(g[0], keep, xs), float32(1/float64(count))))
	})
}

// SumAll returns the sum of all elements of x as a 0-dimensional float32
// tensor (accumulated in float64).
func SumAll(x *tensor.Tensor) *tensor.Tensor {
	out := tensor.Scalar(float32(tensor.SumAll(x)))
	xs := x.Shape()
	return Apply("SumAll", nil, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(tensor.Full(float32(g[0].Item()), xs...))
	})
}

// MeanAll returns the mean of all elements of x as a 0-dimensional float32
// tensor (NaN when x is empty).
func MeanAll(x *tensor.Tensor) *tensor.Tensor {
	out := tensor.Scalar(float32(tensor.MeanAll(x)))
	xs := x.Shape()
	n := x.Numel()
	return Apply("MeanAll", nil, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(tensor.Full(float32(g[0].Item()/float64(n)), xs...))
	})
}

// Var is the variance of x over dims (all when empty), divided by N-1 when
// unbiased, else N (torch.var). Its gradient is 2(x-mean)/(N-ddof) times
// the broadcast output gradient.
func Var(x *tensor.Tensor, dims []int, unbiased, keepDim bool) *tensor.Tensor {
	out := tensor.Var(x, dims, unbiased, keepDim)
	keep, count := shKeepShape(x, dims)
	denom := count
	if unbiased {
		denom--
	}
	attrs := ReduceAttrs{Dims: shInts(dims), KeepDim: keepDim, Unbiased: unbiased}
	return Apply("Var", attrs, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		diff := tensor.Sub(x, tensor.Mean(x, dims, true))
		gx := tensor.Mul(diff, g[0].Reshape(keep...))
		return Ts(tensor.ScaleInPlace(gx, float32(2/float64(denom))))
	})
}

// Max returns the largest values of x along dim and their int64 indices
// (torch.max with a dim; NaN propagates, ties give the first index). The
// gradient flows to the selected elements only; indices carry no history.
func Max(x *tensor.Tensor, dim int, keepDim bool) (values, indices *tensor.Tensor) {
	values, indices = tensor.Max(x, dim, keepDim)
	shArgGrad("Max", x, dim, keepDim, values, indices)
	return values, indices
}

// Min returns the smallest values of x along dim and their int64 indices
// (torch.min with a dim), with the gradient of Max.
func Min(x *tensor.Tensor, dim int, keepDim bool) (values, indices *tensor.Tensor) {
	values, indices = tensor.Min(x, dim, keepDim)
	shArgGrad("Min", x, dim, keepDim, values, indices)
	return values, indices
}

// shArgGrad records an op whose output is x's entries at indices along dim.
func shArgGrad(name string, x *tensor.Tensor, dim int, keepDim bool, values, indices *tensor.Tensor) {
	xs := x.Shape()
	attrs := ReduceAttrs{Dims: []int{dim}, KeepDim: keepDim}
	Apply(name, attrs, Ts(x), Ts(values), func(g []*tensor.Tensor) []*tensor.Tensor {
		if len(xs) == 0 {
			return Ts(g[0].Clone())
		}
		d := x.Axis(dim)
		gk, ik := g[0], indices
		if !keepDim {
			gk, ik = tensor.Unsqueeze(gk, d), tensor.Unsqueeze(ik, d)
		}
		return Ts(tensor.ScatterAdd(tensor.Zeros(xs...), d, ik, gk))
	})
}
