package exec

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// This file holds the operators that rearrange a tensor without computing
// new values: Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat,
// Split, Slice, Shape, Size, Expand and Tile. They work on every dtype
// quanta tensors hold, so the int64 shape arithmetic of exported models
// (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) runs through them.
// Operators whose inputs changed into attributes (or back) across opsets
// read whichever the model's opset defines.

func init() {
	register("Reshape", 1, compileReshape)
	register("Flatten", 1, compileFlatten)
	register("Squeeze", 1, compileSqueeze)
	register("Unsqueeze", 1, compileUnsqueeze)
	register("Transpose", 1, compileTranspose)
	register("Concat", 1, compileConcat)
	register("Split", 2, compileSplit)
	register("Slice", 1, compileSlice)
	register("Shape", 1, compileShape)
	register("Size", 1, func(c *CompileContext, n *graph.Node) (Kernel, error) {
		if err := nIn(n, 1, 1); err != nil {
			return nil, err
		}
		return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
			return tensor.FromInt64([]int64{int64(in[0].Numel())}).Reshape(), nil
		}), nil
	})
	register("Expand", 8, func(c *CompileContext, n *graph.Node) (Kernel, error) {
		if err := nIn(n, 2, 2); err != nil {
			return nil, err
		}
		return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
			shape, err := shapeInput("shape", in[1])
			if err != nil {
				return nil, err
			}
			out, err := tensor.BroadcastShapes(in[0].Shape(), shape)
			if err != nil {
				return nil, err
			}
			return tensor.Expand(in[0], out...), nil
		}), nil
	})
	register("Tile", 6, func(c *CompileContext, n *graph.Node) (Kernel, error) {
		if err := nIn(n, 2, 2); err != nil {
			return nil, err
		}
		return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
			reps, err := shapeInput("repeats", in[1])
			if err != nil {
				return nil, err
			}
			if len(reps) != in[0].NDim() {
				return nil, fmt.Errorf("repeats has %d entries for an input of rank %d", len(reps), in[0].NDim())
			}
			if len(reps) == 0 {
				return in[0], nil
			}
			return tensor.Tile(in[0], reps...), nil
		}), nil
	})
}

// shapeInput reads a 1-D integer tensor of non-negative sizes.
func shapeInput(what string, t *tensor.Tensor) ([]int, error) {
	v, err := ints64(t)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if t.NDim() > 1 {
		return nil, fmt.Errorf("%s must be 1-D, got shape %v", what, t.Shape())
	}
	out := make([]int, len(v))
	for i, d := range v {
		if d < 0 || d > math.MaxInt32 {
			return nil, fmt.Errorf("%s %v: entry %d is out of range", what, v, i)
		}
		out[i] = int(d)
	}
	return out, nil
}

// axesArg returns the axes of Squeeze/Unsqueeze/Slice-like operators: the
// attribute before opset 13 (or the given input from then on), nil when
// absent.
func axesArg(c *CompileContext, n *graph.Node, input int, in []*tensor.Tensor) ([]int64, error) {
	if c.Opset("") < 13 {
		return n.Ints("axes", nil)
	}
	if input < len(in) && in[input] != nil {
		return ints64(in[input])
	}
	return nil, nil
}

func compileReshape(c *CompileContext, n *graph.Node) (Kernel, error) {
	var allowZero int64
	if c.Opset("") >= 14 {
		var err error
		if allowZero, err = n.Int("allowzero", 0); err != nil {
			return nil, err
		}
	}
	if c.Opset("") < 5 {
		if err := nIn(n, 1, 1); err != nil {
			return nil, err
		}
		shape, err := n.Ints("shape", nil)
		if err != nil {
			return nil, err
		}
		return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
			return reshape(in[0], shape, false)
		}), nil
	}
	if err := nIn(n, 2, 2); err != nil {
		return nil, err
	}
	return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		shape, err := ints64(in[1])
		if err != nil {
			return nil, fmt.Errorf("shape: %w", err)
		}
		return reshape(in[0], shape, allowZero != 0)
	}), nil
}

// reshape is ONNX Reshape: a 0 copies the input's dimension at that index
// (unless allowZero, when it is a zero size) and one -1 is inferred.
func reshape(x *tensor.Tensor, shape []int64, allowZero bool) (*tensor.Tensor, error) {
	in := x.Shape()
	out := make([]int, len(shape))
	infer, prod := -1, 1
	hasZero := false
	for i, d := range shape {
		switch {
		case d == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("shape %v has more than one -1", shape)
			}
			infer = i
			continue
		case d == 0 && !allowZero:
			if i >= len(in) {
				return nil, fmt.Errorf("shape %v copies dimension %d of an input of shape %v", shape, i, in)
			}
			out[i] = in[i]
		case d < 0 || d > math.MaxInt32:
			return nil, fmt.Errorf("shape %v has invalid entry %d", shape, d)
		default:
			hasZero = hasZero || d == 0
			out[i] = int(d)
		}
		prod *= out[i]
	}
	numel := x.Numel()
	if infer >= 0 {
		if allowZero && hasZero {
			return nil, fmt.Errorf("shape %v has both 0 and -1 with allowzero", shape)
		}
		if prod == 0 || numel%prod != 0 {
			return nil, fmt.Errorf("cannot reshape %v to %v", in, shape)
		}
		out[infer] = numel / prod
		prod *= out[infer]
	}
	if prod != numel {
		return nil, fmt.Errorf("cannot reshape %v (%d elements) to %v", in, numel, shape)
	}
	return x.Reshape(out...), nil
}

func compileFlatten(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 1, 1); err != nil {
		return nil, err
	}
	ax, err := n.Int("axis", 1)
	if err != nil {
		return nil, err
	}
	return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		sh := in[0].Shape()
		r := int64(len(sh))
		a := ax
		if a < -r || a > r {
			return nil, fmt.Errorf("axis %d out of range for rank %d", ax, r)
		}
		if a < 0 {
			a += r
		}
		outer := 1
		for _, d := range sh[:a] {
			outer *= d
		}
		inner := 1
		for _, d := range sh[a:] {
			inner *= d
		}
		return in[0].Reshape(outer, inner), nil
	}), nil
}

func compileSqueeze(c *CompileContext, n *graph.Node) (Kernel, error) {
	return compileAxesReshape(c, n, squeezeShape)
}

func compileUnsqueeze(c *CompileContext, n *graph.Node) (Kernel, error) {
	return compileAxesReshape(c, n, unsqueezeShape)
}

// compileAxesReshape compiles Squeeze and Unsqueeze: the input reshaped to
// the shape newShape gives for its shape and the axes (the attribute or
// input 1, nil when neither is given).
func compileAxesReshape(c *CompileContext, n *graph.Node, newShape func(sh []int, axes []int64) ([]int, error)) (Kernel, error) {
	if err := nIn(n, 1, 2); err != nil {
		return nil, err
	}
	return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		axes, err := axesArg(c, n, 1, in)
		if err != nil {
			return nil, fmt.Errorf("axes: %w", err)
		}
		out, err := newShape(in[0].Shape(), axes)
		if err != nil {
			return nil, err
		}
		return in[0].Reshape(out...), nil
	}), nil
}

// squeezeShape is Squeeze's output shape: sh without the given axes, all
// of size 1, or without every dimension of size 1 when axes is nil.
func squeezeShape(sh []int, axes []int64) ([]int, error) {
	drop := make([]bool, len(sh))
	if axes == nil {
		for i, d := range sh {
			drop[i] = d == 1
		}
	}
	for _, a := range axes {
		i, err := axis(a, len(sh))
		if err != nil {
			return nil, err
		}
		if sh[i] != 1 {
			return nil, fmt.Errorf("cannot squeeze axis %d of shape %v (size %d)", a, sh, sh[i])
		}
		drop[i] = true
	}
	out := []int{}
	for i, d := range sh {
		if !drop[i] {
			out = append(out, d)
		}
	}
	return out, nil
}

// unsqueezeShape is Unsqueeze's output shape: sh with dimensions of size 1
// inserted at the given axes of the result.
func unsqueezeShape(sh []int, axes []int64) ([]int, error) {
	if axes == nil {
		return nil, fmt.Errorf("axes are required")
	}
	return unsqueezeDims(sh, axes, 1)
}

// unsqueezeDims returns sh with the dimension unit inserted at the given
// axes of the result (Unsqueeze, at run time and in shape inference).
func unsqueezeDims[D any](sh []D, axes []int64, unit D) ([]D, error) {
	r := len(sh) + len(axes)
	idx, err := normAxes(axes, r)
	if err != nil {
		return nil, err
	}
	ins := make([]bool, r)
	for _, i := range idx {
		ins[i] = true
	}
	out := make([]D, r)
	j := 0
	for i := range out {
		if ins[i] {
			out[i] = unit
			continue
		}
		out[i] = sh[j]
		j++
	}
	return out, nil
}

func compileTranspose(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 1, 1); err != nil {
		return nil, err
	}
	perm, err := n.Ints("perm", nil)
	if err != nil {
		return nil, err
	}
	return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		r := in[0].NDim()
		p := make([]int, r)
		if perm == nil {
			for i := range p {
				p[i] = r - 1 - i
			}
		} else {
			if len(perm) != r {
				return nil, fmt.Errorf("perm %v for an input of rank %d", perm, r)
			}
			seen := make([]bool, r)
			for i, a := range perm {
				d, err := axis(a, r)
				if err != nil || seen[d] {
					return nil, fmt.Errorf("perm %v is not a permutation of %d axes", perm, r)
				}
				seen[d] = true
				p[i] = d
			}
		}
		if r < 2 {
			return in[0], nil
		}
		return tensor.Permute(in[0], p...), nil
	}), nil
}

func compileConcat(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 1, -1); err != nil {
		return nil, err
	}
	def := int64(math.MinInt64)
	if c.Opset("") < 4 {
		def = 1
	}
	ax, err := n.Int("axis", def)
	if err != nil {
		return nil, err
	}
	if ax == math.MinInt64 {
		return nil, fmt.Errorf("attribute axis is required")
	}
	return frameKernel(func(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		y, err := concat(f, in, ax)
		if err != nil {
			return nil, err
		}
		return []*tensor.Tensor{y}, nil
	}), nil
}

// concat joins in along axis ax; float32 outputs come from the frame's
// buffers.
func concat(f *Frame, in []*tensor.Tensor, ax int64) (*tensor.Tensor, error) {
	t0 := in[0]
	a, err := axis(ax, t0.NDim())
	if err != nil {
		return nil, err
	}
	nonEmpty := 0
	for i, t := range in {
		if t == nil {
			return nil, fmt.Errorf("input %d is missing", i)
		}
		if t.DType() != t0.DType() || t.NDim() != t0.NDim() {
			return nil, fmt.Errorf("input %d is %s%v, input 0 is %s%v", i, t.DType(), t.Shape(), t0.DType(), t0.Shape())
		}
		for d := range t0.Shape() {
			if d != a && t.Dim(d) != t0.Dim(d) {
				return nil, fmt.Errorf("input %d has shape %v, input 0 has %v (axis %d)", i, t.Shape(), t0.Shape(), a)
			}
		}
		if t.Dim(a) > 0 {
			nonEmpty++
		}
	}
	if nonEmpty == 0 {
		shape := append([]int(nil), t0.Shape()...)
		shape[a] = 0
		return tensor.New(t0.DType(), shape...), nil
	}
	if t0.DType() != tensor.Float32 {
		return tensor.Concat(in, a), nil
	}
	shape := append([]int(nil), t0.Shape()...)
	shape[a] = 0
	for _, t := range in {
		shape[a] += t.Dim(a)
	}
	y := f.allocF32(nnProd(shape))
	concatPieces(in, a, shape, func(i, dst, src, n int) {
		copy(y[dst:dst+n], in[i].F32()[src:src+n])
	})
	return nnTensor(y, shape), nil
}

// concatPieces calls piece(i, dst, src, n) for every input i and every
// index of the dimensions before axis a, split over threads: input i's n
// elements from offset src go to offset dst of the concatenation, whose
// shape is shape.
func concatPieces(in []*tensor.Tensor, a int, shape []int, piece func(i, dst, src, n int)) {
	outer, inner := nnProd(shape[:a]), nnProd(shape[a+1:])
	row := shape[a] * inner
	parallel.For(outer*len(in), max(1, 16384/max(1, row/len(in))), func(s, e int) {
		for it := s; it < e; it++ {
			o, i := it/len(in), it%len(in)
			off := 0
			for _, t := range in[:i] {
				off += t.Dim(a) * inner
			}
			n := in[i].Dim(a) * inner
			piece(i, o*row+off, o*n, n)
		}
	})
}

func compileSplit(c *CompileContext, n *graph.Node) (Kernel, error) {
	opset := c.Opset("")
	if err := nIn(n, 1, 2); err != nil {
		return nil, err
	}
	ax, err := n.Int("axis", 0)
	if err != nil {
		return nil, err
	}
	attrSplit, err := n.Ints("split", nil)
	if err != nil {
		return nil, err
	}
	numOut, err := n.Int("num_outputs", 0)
	if err != nil {
		return nil, err
	}
	nout := len(n.Outputs)
	if numOut != 0 && numOut != int64(nout) {
		return nil, fmt.Errorf("num_outputs %d but the node has %d outputs", numOut, nout)
	}
	return KernelFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		x := in[0]
		a, err := axis(ax, x.NDim())
		if err != nil {
			return nil, err
		}
		split := attrSplit
		if opset >= 13 || (opset < 13 && len(in) > 1 && in[1] != nil) {
			split = nil
			if len(in) > 1 && in[1] != nil {
				if split, err = ints64(in[1]); err != nil {
					return nil, fmt.Errorf("split: %w", err)
				}
				if len(split) == 0 {
					split = nil // an empty split input counts as absent
				}
			}
		}
		dim := x.Dim(a)
		var sizes []int
		switch {
		case split != nil:
			if len(split) != nout {
				return nil, fmt.Errorf("split %v has %d entries for %d outputs", split, len(split), nout)
			}
			total := 0
			for _, s := range split {
				if s < 0 {
					return nil, fmt.Errorf("split %v has a negative size", split)
				}
				sizes = append(sizes, int(s))
				total += int(s)
			}
			if total != dim {
				return nil, fmt.Errorf("split %v does not add up to dimension %d of %v", split, a, x.Shape())
			}
		case opset >= 18:
			// num_outputs: ceil-sized chunks, the last one smaller.
			per := (dim + nout - 1) / nout
			for i, at := 0, 0; i < nout; i++ {
				s := max(0, min(per, dim-at))
				sizes = append(sizes, s)
				at += s
			}
		default:
			if dim%nout != 0 {
				return nil, fmt.Errorf("dimension %d of %v does not split into %d equal parts", a, x.Shape(), nout)
			}
			for i := 0; i < nout; i++ {
				sizes = append(sizes, dim/nout)
			}
		}
		return tensor.Split(x, sizes, a), nil
	}), nil
}

func compileSlice(c *CompileContext, n *graph.Node) (Kernel, error) {
	if c.Opset("") < 10 {
		if err := nIn(n, 1, 1); err != nil {
			return nil, err
		}
		starts, err := n.Ints("starts", nil)
		if err != nil {
			return nil, err
		}
		ends, err := n.Ints("ends", nil)
		if err != nil {
			return nil, err
		}
		axes, err := n.Ints("axes", nil)
		if err != nil {
			return nil, err
		}
		if starts == nil || ends == nil {
			return nil, fmt.Errorf("attributes starts and ends are required")
		}
		return frameOne(func(f *Frame, in []*tensor.Tensor) (*tensor.Tensor, error) {
			return slice(f, in[0], starts, ends, axes, nil)
		}), nil
	}
	if err := nIn(n, 3, 5); err != nil {
		return nil, err
	}
	return frameOne(func(f *Frame, in []*tensor.Tensor) (*tensor.Tensor, error) {
		var args [4][]int64
		for i := range args {
			if 1+i < len(in) && in[1+i] != nil {
				v, err := ints64(in[1+i])
				if err != nil {
					return nil, fmt.Errorf("input %d: %w", 1+i, err)
				}
				args[i] = v
			}
		}
		return slice(f, in[0], args[0], args[1], args[2], args[3])
	}), nil
}

// slice is ONNX Slice: per listed axis (default 0..len(starts)-1), start
// and end are made non-negative by adding the dimension when negative, then
// clamped to [0, dim] for positive steps and to [0, dim-1] (start) and
// [-1, dim-1] (end) for negative steps. A float32 result comes from f's
// buffer arena.
func slice(f *Frame, x *tensor.Tensor, starts, ends, axes, steps []int64) (*tensor.Tensor, error) {
	sh := x.Shape()
	r := len(sh)
	if len(starts) != len(ends) {
		return nil, fmt.Errorf("%d starts and %d ends", len(starts), len(ends))
	}
	if axes != nil && len(axes) != len(starts) {
		return nil, fmt.Errorf("%d axes for %d starts", len(axes), len(starts))
	}
	if steps != nil && len(steps) != len(starts) {
		return nil, fmt.Errorf("%d steps for %d starts", len(steps), len(starts))
	}
	first := make([]int, r)
	step := make([]int, r)
	count := append([]int(nil), sh...)
	for i := range step {
		step[i] = 1
	}
	seen := make([]bool, r)
	for i := range starts {
		a := int64(i)
		if axes != nil {
			a = axes[i]
		}
		d, err := axis(a, r)
		if err != nil {
			return nil, err
		}
		if seen[d] {
			return nil, fmt.Errorf("axis %d is sliced twice", d)
		}
		seen[d] = true
		st := int64(1)
		if steps != nil {
			st = steps[i]
		}
		if st == 0 {
			return nil, fmt.Errorf("step 0 on axis %d", d)
		}
		s, cnt := sliceRange(int64(sh[d]), starts[i], ends[i], st)
		first[d], step[d], count[d] = int(s), int(st), int(cnt)
	}
	return stridedGather(f, x, first, step, count), nil
}

// sliceRange clamps Slice's start s and end e (negative ones count from
// the end) on a dimension of size dim for a nonzero step st, and returns
// the first index taken and how many are taken.
func sliceRange(dim, s, e, st int64) (first, count int64) {
	if s < 0 {
		s += dim
	}
	if e < 0 {
		e += dim
	}
	if st > 0 {
		s = max(0, min(s, dim))
		e = max(0, min(e, dim))
		if e > s {
			count = (e - s + st - 1) / st
		}
	} else {
		s = max(0, min(s, dim-1))
		e = max(-1, min(e, dim-1))
		if s > e {
			count = (s - e + (-st) - 1) / (-st)
		}
	}
	return s, count
}

// stridedGather returns the elements first[d] + i*step[d], i < count[d],
// of every dimension d of x (contiguous), as a tensor of shape count: the
// innermost dimension a run at a time (one copy when its step is 1). A
// float32 result comes from f's buffer arena.
func stridedGather(f *Frame, x *tensor.Tensor, first, step, count []int) *tensor.Tensor {
	total := 1
	for _, c := range count {
		total *= c
	}
	var out *tensor.Tensor
	if x.DType() == tensor.Float32 {
		out = nnTensor(f.allocF32(total), count)
	} else {
		out = tensor.New(x.DType(), count...)
	}
	if total == 0 {
		return out
	}
	st := x.Strides()
	switch x.DType().Storage() {
	case tensor.Float32:
		stridedCopy(out.F32(), x.F32(), st, first, step, count)
	case tensor.Int8:
		stridedCopy(out.I8(), x.I8(), st, first, step, count)
	case tensor.Uint8:
		stridedCopy(out.U8(), x.U8(), st, first, step, count)
	case tensor.Int32:
		stridedCopy(out.I32(), x.I32(), st, first, step, count)
	case tensor.Int64:
		stridedCopy(out.I64(), x.I64(), st, first, step, count)
	case tensor.Bool:
		stridedCopy(out.Bools(), x.Bools(), st, first, step, count)
	}
	return out
}

// stridedCopy fills dst (len = prod(count) > 0) with the strided elements
// of src (see stridedGather; strides are src's, in elements).
func stridedCopy[T any](dst, src []T, strides, first, step, count []int) {
	r := len(count)
	off := 0
	for d := range count {
		off += first[d] * strides[d]
	}
	if r == 0 {
		dst[0] = src[off]
		return
	}
	inner, is := count[r-1], step[r-1]*strides[r-1]
	var posBuf [8]int
	pos := posBuf[:0]
	if r-1 > len(posBuf) {
		pos = make([]int, r-1)
	} else {
		pos = posBuf[:r-1]
	}
	for o := 0; ; o += inner {
		run := dst[o : o+inner]
		if is == 1 {
			copy(run, src[off:off+inner])
		} else {
			for i, j := 0, off; i < inner; i, j = i+1, j+is {
				run[i] = src[j]
			}
		}
		d := r - 2
		for ; d >= 0; d-- {
			pos[d]++
			off += step[d] * strides[d]
			if pos[d] < count[d] {
				break
			}
			off -= pos[d] * step[d] * strides[d]
			pos[d] = 0
		}
		if d < 0 {
			return
		}
	}
}

func compileShape(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 1, 1); err != nil {
		return nil, err
	}
	start, err := n.Int("start", 0)
	if err != nil {
		return nil, err
	}
	end, err := n.Int("end", math.MaxInt64)
	if err != nil {
		return nil, err
	}
	return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		sh := in[0].Shape()
		r := int64(len(sh))
		clamp := func(v int64) int64 {
			if v < 0 {
				v += r
			}
			return max(0, min(v, r))
		}
		s, e := clamp(start), clamp(end)
		out := []int64{}
		for i := s; i < e; i++ {
			out = append(out, int64(sh[i]))
		}
		return tensor.FromInt64(out, len(out)), nil
	}), nil
}
