package ops

import (
	"github.com/quanta-go/quanta/tensor"
)

// This file holds the differentiable shape operations. Reshape, View,
// Flatten, Squeeze and Unsqueeze share storage with their input; the others
// return new tensors (see package tensor). Each gradient is the adjoint of
// the data movement: a reshape back, the inverse permutation, a scatter
// into zeros, or a sum over repeated copies.

// ShapeAttrs are the attributes of Reshape, View and Expand.
type ShapeAttrs struct{ Shape []int }

// FlattenAttrs are the attributes of Flatten.
type FlattenAttrs struct{ StartDim, EndDim int }

// SqueezeAttrs are the attributes of Squeeze (empty Dims: every size-1
// dimension).
type SqueezeAttrs struct{ Dims []int }

// DimAttrs are the attributes of ops that take one dimension: Unsqueeze,
// Concat, Stack, IndexSelect, Gather, Softmax and LogSoftmax.
type DimAttrs struct{ Dim int }

// TransposeAttrs are the attributes of Transpose.
type TransposeAttrs struct{ Dim0, Dim1 int }

// PermuteAttrs are the attributes of Permute.
type PermuteAttrs struct{ Perm []int }

// SliceAttrs are the attributes of Slice and Narrow (recorded as the
// resolved range Start:End:Step).
type SliceAttrs struct{ Dim, Start, End, Step int }

// SplitAttrs are the attributes of Split and Chunk (recorded as the
// resolved piece sizes).
type SplitAttrs struct {
	Sizes []int
	Dim   int
}

// PadAttrs are the attributes of Pad.
type PadAttrs struct {
	Pads  []int
	Value float32
}

// RepeatAttrs are the attributes of Repeat.
type RepeatAttrs struct{ Reps []int }

// shInts copies an int slice for an attribute struct.
func shInts(v []int) []int { return append([]int(nil), v...) }

// shReshapeBack returns the backward of an op that only changes the shape.
func shReshapeBack(xs []int) func(g []*tensor.Tensor) []*tensor.Tensor {
	return func(g []*tensor.Tensor) []*tensor.Tensor { return Ts(g[0].Reshape(xs...)) }
}

// Reshape returns x with a new shape, sharing its storage; one dimension
// may be -1 (torch.reshape). The gradient is reshaped back.
func Reshape(x *tensor.Tensor, shape ...int) *tensor.Tensor {
	out := x.Reshape(shape...)
	return Apply("Reshape", ShapeAttrs{shInts(shape)}, Ts(x), Ts(out), shReshapeBack(x.Shape()))
}

// View is Reshape under PyTorch's other name (torch.Tensor.view): quanta
// tensors are contiguous, so every reshape is a view.
func View(x *tensor.Tensor, shape ...int) *tensor.Tensor {
	out := x.Reshape(shape...)
	return Apply("View", ShapeAttrs{shInts(shape)}, Ts(x), Ts(out), shReshapeBack(x.Shape()))
}

// Flatten merges dimensions startDim..endDim (torch.flatten), sharing
// storage.
func Flatten(x *tensor.Tensor, startDim, endDim int) *tensor.Tensor {
	out := tensor.Flatten(x, startDim, endDim)
	return Apply("Flatten", FlattenAttrs{startDim, endDim}, Ts(x), Ts(out), shReshapeBack(x.Shape()))
}

// Squeeze removes size-1 dimensions (all, or those in dims)
// (torch.squeeze), sharing storage.
func Squeeze(x *tensor.Tensor, dims ...int) *tensor.Tensor {
	out := tensor.Squeeze(x, dims...)
	return Apply("Squeeze", SqueezeAttrs{shInts(dims)}, Ts(x), Ts(out), shReshapeBack(x.Shape()))
}

// Unsqueeze inserts a size-1 dimension at dim (torch.unsqueeze), sharing
// storage.
func Unsqueeze(x *tensor.Tensor, dim int) *tensor.Tensor {
	out := tensor.Unsqueeze(x, dim)
	return Apply("Unsqueeze", DimAttrs{dim}, Ts(x), Ts(out), shReshapeBack(x.Shape()))
}

// Transpose swaps dimensions d0 and d1 (torch.transpose, materialized).
func Transpose(x *tensor.Tensor, d0, d1 int) *tensor.Tensor {
	out := tensor.Transpose(x, d0, d1)
	return Apply("Transpose", TransposeAttrs{d0, d1}, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(tensor.Transpose(g[0], d0, d1))
	})
}

// Permute reorders dimensions (torch.permute, materialized). The gradient
// is permuted back by the inverse permutation.
func Permute(x *tensor.Tensor, perm ...int) *tensor.Tensor {
	out := tensor.Permute(x, perm...)
	inv := make([]int, len(perm))
	for i, p := range perm {
		inv[x.Axis(p)] = i
	}
	return Apply("Permute", PermuteAttrs{shInts(perm)}, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(tensor.Permute(g[0], inv...))
	})
}

// Slice returns x[..., start:end:step, ...] along dim with PyTorch's
// slicing rules (see tensor.Slice). The gradient is scattered into zeros.
func Slice(x *tensor.Tensor, dim, start, end, step int) *tensor.Tensor {
	dim = x.Axis(dim)
	first, count := tensor.SliceBounds(x.Dim(dim), start, end, step)
	return shSlice("Slice", x, dim, first, count, step)
}

// Narrow returns length entries of x along dim from start (torch.narrow).
func Narrow(x *tensor.Tensor, dim, start, length int) *tensor.Tensor {
	out := tensor.Narrow(x, dim, start, length)
	dim = x.Axis(dim)
	if start < 0 {
		start += x.Dim(dim)
	}
	xs := x.Shape()
	return Apply("Narrow", SliceAttrs{dim, start, start + length, 1}, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(tensor.SliceScatter(tensor.Zeros(xs...), g[0], dim, start, start+length, 1))
	})
}

func shSlice(name string, x *tensor.Tensor, dim, first, count, step int) *tensor.Tensor {
	end := first + count*step
	out := tensor.Slice(x, dim, first, end, step)
	xs := x.Shape()
	return Apply(name, SliceAttrs{dim, first, end, step}, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(tensor.SliceScatter(tensor.Zeros(xs...), g[0], dim, first, end, step))
	})
}

// Concat joins tensors along dim (torch.cat). Each input's gradient is its
// slice of the output gradient.
func Concat(xs []*tensor.Tensor, dim int) *tensor.Tensor {
	out := tensor.Concat(xs, dim)
	ins := shInts(nil)
	for _, x := range xs {
		if s := x.Shape(); len(s) == 1 && s[0] == 0 {
			ins = append(ins, -1) // skipped, as by tensor.Concat
			continue
		}
		ins = append(ins, x.Dim(dim))
	}
	d := out.Axis(dim)
	return Apply("Concat", DimAttrs{dim}, xs, Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		grads := make([]*tensor.Tensor, len(xs))
		at := 0
		for i, n := range ins {
			if n < 0 {
				continue
			}
			if needs(xs[i]) {
				grads[i] = tensor.Narrow(g[0], d, at, n)
			}
			at += n
		}
		return grads
	})
}

// Stack joins equally shaped tensors along a new dimension dim
// (torch.stack).
func Stack(xs []*tensor.Tensor, dim int) *tensor.Tensor {
	out := tensor.Stack(xs, dim)
	d := out.Axis(dim)
	return Apply("Stack", DimAttrs{dim}, xs, Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		grads := make([]*tensor.Tensor, len(xs))
		for i, x := range xs {
			if needs(x) {
				grads[i] = tensor.Narrow(g[0], d, i, 1).Reshape(x.Shape()...)
			}
		}
		return grads
	})
}

// Split cuts x along dim into pieces of the given sizes (torch.split with a
// list of sizes). Gradients of the pieces are joined back together, with
// zeros for pieces that received none.
func Split(x *tensor.Tensor, sizes []int, dim int) []*tensor.Tensor {
	return shSplit("Split", x, sizes, dim)
}

// Chunk cuts x along dim into at most n pieces as torch.chunk does (see
// tensor.ChunkSizes).
func Chunk(x *tensor.Tensor, n, dim int) []*tensor.Tensor {
	return shSplit("Chunk", x, tensor.ChunkSizes(x.Dim(dim), n), dim)
}

func shSplit(name string, x *tensor.Tensor, sizes []int, dim int) []*tensor.Tensor {
	outs := tensor.Split(x, sizes, dim)
	d := x.Axis(dim)
	Apply(name, SplitAttrs{shInts(sizes), dim}, Ts(x), outs, func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(tensor.Concat(g, d))
	})
	return outs
}

// IndexSelect picks entries idx (int64 or int32, 0- or 1-dimensional) of x
// along dim (torch.index_select). The gradient adds the output gradient
// back at those entries (tensor.IndexAdd); idx gets none.
func IndexSelect(x *tensor.Tensor, dim int, idx *tensor.Tensor) *tensor.Tensor {
	out := tensor.IndexSelect(x, dim, idx)
	xs := x.Shape()
	return Apply("IndexSelect", DimAttrs{dim}, Ts(x, idx), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(tensor.IndexAdd(tensor.Zeros(xs...), dim, idx, g[0]), nil)
	})
}

// Gather picks values of x along dim by index (torch.gather). The gradient
// is scattered back with tensor.ScatterAdd; idx gets none.
func Gather(x *tensor.Tensor, dim int, idx *tensor.Tensor) *tensor.Tensor {
	out := tensor.Gather(x, dim, idx)
	xs := x.Shape()
	return Apply("Gather", DimAttrs{dim}, Ts(x, idx), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(tensor.ScatterAdd(tensor.Zeros(xs...), dim, idx, g[0]), nil)
	})
}

// Pad pads x with a constant (torch.nn.functional.pad, constant mode):
// pads lists (before, after) pairs from the last dimension backwards, and
// negative pads crop. The gradient is the output gradient cropped by the
// same pads (padding where the forward cropped, with zeros).
func Pad(x *tensor.Tensor, pads []int, value float32) *tensor.Tensor {
	out := tensor.Pad(x, pads, value)
	neg := make([]int, len(pads))
	for i, p := range pads {
		neg[i] = -p
	}
	return Apply("Pad", PadAttrs{shInts(pads), value}, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(tensor.Pad(g[0], neg, 0))
	})
}

// Expand broadcasts x to shape (torch.Tensor.expand, materialized; -1
// keeps a dimension). The gradient is summed back to x's shape.
func Expand(x *tensor.Tensor, shape ...int) *tensor.Tensor {
	out := tensor.Expand(x, shape...)
	xs := x.Shape()
	return Apply("Expand", ShapeAttrs{shInts(shape)}, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(tensor.SumTo(g[0], xs))
	})
}

// Repeat tiles x reps[i] times along each dimension (torch.Tensor.repeat).
// The gradient sums the copies.
func Repeat(x *tensor.Tensor, reps ...int) *tensor.Tensor {
	out := tensor.Repeat(x, reps...)
	xs := x.Shape()
	lead := len(reps) - len(xs)
	// View the gradient as [r0, s0, r1, s1, ...] and sum the r dimensions.
	split := make([]int, 0, 2*len(reps))
	var sumDims []int
	for i, r := range reps {
		s := 1
		if i >= lead {
			s = xs[i-lead]
		}
		sumDims = append(sumDims, len(split))
		split = append(split, r, s)
	}
	return Apply("Repeat", RepeatAttrs{shInts(reps)}, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(tensor.Sum(g[0].Reshape(split...), sumDims, false).Reshape(xs...))
	})
}
