package fx

import (
	"errors"
	"fmt"
	"slices"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// This file holds GraphModule's shape operators and reductions.

// intsInput reads integer input i, nil when absent.
func intsInput(in []*tensor.Tensor, i int) ([]int, bool, error) {
	if i >= len(in) || in[i] == nil {
		return nil, false, nil
	}
	v, err := ints(in[i])
	return v, true, err
}

// intsInputOrAttr reads integer input i (opset 13+ and later forms) or,
// when absent, the ints attribute name (older opsets); ok is false when
// the node has neither.
func intsInputOrAttr(n *graph.Node, in []*tensor.Tensor, i int, name string) (v []int, ok bool, err error) {
	if v, ok, err = intsInput(in, i); err != nil || ok || !n.Has(name) {
		return v, ok, err
	}
	if v, err = attrInts(n, name, nil); err != nil {
		return nil, false, err
	}
	return v, true, nil
}

// axesOf returns the axes of a node from its input i (opset 13+) or its
// "axes" attribute, normalized for rank r.
func axesOf(n *graph.Node, in []*tensor.Tensor, i, r int) ([]int, bool, error) {
	axes, ok, err := intsInputOrAttr(n, in, i, "axes")
	if err != nil {
		return nil, false, err
	}
	for k, a := range axes {
		if axes[k], err = normAxis(a, r); err != nil {
			return nil, false, err
		}
	}
	return axes, ok, nil
}

func runShape(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := need(n, in, 0)
	if err != nil {
		return nil, err
	}
	r := x.NDim()
	start, err := attrInt(n, "start", 0)
	if err != nil {
		return nil, err
	}
	end, err := attrInt(n, "end", r)
	if err != nil {
		return nil, err
	}
	clampAx := func(a int) int {
		if a < 0 {
			a += r
		}
		return min(max(a, 0), r)
	}
	start, end = clampAx(start), clampAx(end)
	var d []int64
	for _, s := range x.Shape()[start:max(start, end)] {
		d = append(d, int64(s))
	}
	return one1(tensor.FromInt64(d, len(d))), nil
}

// runReshape resolves 0 (copy the input's size, unless allowzero) and -1.
func runReshape(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := need(n, in, 0)
	if err != nil {
		return nil, err
	}
	shape, err := needInts(n, in, 1)
	if err != nil {
		return nil, err
	}
	az, err := attrInt(n, "allowzero", 0)
	if err != nil {
		return nil, err
	}
	shape = slices.Clone(shape)
	for i, d := range shape {
		if d == 0 && az == 0 {
			if i >= x.NDim() {
				return nil, fmt.Errorf("shape %v copies dimension %d of a rank-%d input", shape, i, x.NDim())
			}
			shape[i] = x.Dim(i)
		}
	}
	return one1(ops.Reshape(x, shape...)), nil
}

func runFlatten(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := need(n, in, 0)
	if err != nil {
		return nil, err
	}
	ax, err := attrInt(n, "axis", 1)
	if err != nil {
		return nil, err
	}
	r := x.NDim()
	if ax < 0 {
		ax += r
	}
	if ax < 0 || ax > r {
		return nil, fmt.Errorf("axis %d out of range for rank %d", ax, r)
	}
	outer := 1
	for _, d := range x.Shape()[:ax] {
		outer *= d
	}
	inner := 1
	for _, d := range x.Shape()[ax:] {
		inner *= d
	}
	return one1(ops.Reshape(x, outer, inner)), nil
}

func runSqueeze(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := need(n, in, 0)
	if err != nil {
		return nil, err
	}
	axes, ok, err := axesOf(n, in, 1, x.NDim())
	if err != nil {
		return nil, err
	}
	if !ok {
		for i, d := range x.Shape() {
			if d == 1 {
				axes = append(axes, i)
			}
		}
	}
	for _, a := range axes {
		if x.Dim(a) != 1 {
			return nil, fmt.Errorf("axis %d has size %d, not 1", a, x.Dim(a))
		}
	}
	if len(axes) == 0 {
		return one1(x), nil
	}
	return one1(ops.Squeeze(x, axes...)), nil
}

func runUnsqueeze(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := need(n, in, 0)
	if err != nil {
		return nil, err
	}
	raw, _, err := intsInputOrAttr(n, in, 1, "axes")
	if err != nil {
		return nil, err
	}
	r := x.NDim() + len(raw)
	axes := make([]int, len(raw))
	for i, a := range raw {
		if axes[i], err = normAxis(a, r); err != nil {
			return nil, err
		}
	}
	slices.Sort(axes)
	for _, a := range axes {
		x = ops.Unsqueeze(x, a)
	}
	return one1(x), nil
}

func runTranspose(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := need(n, in, 0)
	if err != nil {
		return nil, err
	}
	r := x.NDim()
	def := make([]int, r)
	for i := range def {
		def[i] = r - 1 - i
	}
	perm, err := attrInts(n, "perm", def)
	if err != nil {
		return nil, err
	}
	if len(perm) != r {
		return nil, fmt.Errorf("perm %v for rank %d", perm, r)
	}
	return one1(ops.Permute(x, perm...)), nil
}

// runSlice slices along each axis in turn, with ONNX's clamping of starts
// and ends; steps must be positive.
func runSlice(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := need(n, in, 0)
	if err != nil {
		return nil, err
	}
	starts, _, err := intsInput(in, 1)
	if err != nil {
		return nil, err
	}
	ends, _, err := intsInput(in, 2)
	if err != nil {
		return nil, err
	}
	if len(starts) != len(ends) {
		return nil, fmt.Errorf("starts %v and ends %v differ in length", starts, ends)
	}
	axes, ok, err := axesOf(n, in, 3, x.NDim())
	if err != nil {
		return nil, err
	}
	if !ok {
		for i := range starts {
			axes = append(axes, i)
		}
	}
	steps, ok, err := intsInput(in, 4)
	if err != nil {
		return nil, err
	}
	if !ok {
		steps = make([]int, len(starts))
		for i := range steps {
			steps[i] = 1
		}
	}
	if len(axes) != len(starts) || len(steps) != len(starts) {
		return nil, fmt.Errorf("axes %v and steps %v do not match starts %v", axes, steps, starts)
	}
	for i, a := range axes {
		if steps[i] <= 0 {
			return nil, fmt.Errorf("step %d: only positive steps are supported", steps[i])
		}
		d := x.Dim(a)
		clampEnd := func(v int) int {
			if v < 0 {
				v += d
			}
			return min(max(v, 0), d)
		}
		s, e := clampEnd(starts[i]), clampEnd(ends[i])
		e = max(s, e)
		x = ops.Slice(x, a, s, e, steps[i])
	}
	return one1(x), nil
}

func runConcat(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if len(in) == 0 {
		return nil, errors.New("no inputs")
	}
	for i := range in {
		if _, err := need(n, in, i); err != nil {
			return nil, err
		}
	}
	ax, err := axisAttr(n, 0, in[0].NDim())
	if err != nil {
		return nil, err
	}
	return one1(ops.Concat(in, ax)), nil
}

func runSplit(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := need(n, in, 0)
	if err != nil {
		return nil, err
	}
	ax, err := axisAttr(n, 0, x.NDim())
	if err != nil {
		return nil, err
	}
	sizes, ok, err := intsInputOrAttr(n, in, 1, "split")
	if err != nil {
		return nil, err
	}
	if !ok {
		k := len(n.Outputs)
		if n.Has("num_outputs") {
			if k, err = attrInt(n, "num_outputs", k); err != nil {
				return nil, err
			}
		}
		d := x.Dim(ax)
		per := (d + k - 1) / k
		for left := d; left > 0; left -= per {
			sizes = append(sizes, min(per, left))
		}
	}
	return ops.Split(x, sizes, ax), nil
}

// runGather gathers along an axis with IndexSelect: indices of any rank
// are flattened and the result reshaped; negative indices count from the
// end.
func runGather(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, idx, err := need2(n, in)
	if err != nil {
		return nil, err
	}
	ax, err := axisAttr(n, 0, x.NDim())
	if err != nil {
		return nil, err
	}
	raw, err := ints(idx)
	if err != nil {
		return nil, err
	}
	d := x.Dim(ax)
	flat := make([]int64, len(raw))
	for i, v := range raw {
		if v < -d || v >= d {
			return nil, fmt.Errorf("index %d out of range for size %d", v, d)
		}
		if v < 0 {
			v += d
		}
		flat[i] = int64(v)
	}
	y := ops.IndexSelect(x, ax, tensor.FromInt64(flat, len(flat)))
	shape := append(append(slices.Clone(x.Shape()[:ax]), idx.Shape()...), x.Shape()[ax+1:]...)
	return one1(ops.Reshape(y, shape...)), nil
}

func runGatherElements(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, idx, err := need2(n, in)
	if err != nil {
		return nil, err
	}
	ax, err := attrInt(n, "axis", 0)
	if err != nil {
		return nil, err
	}
	return one1(ops.Gather(x, ax, idx)), nil
}

// runPad maps constant Pad (ONNX's begins-then-ends order, optional axes)
// to ops.Pad's (before, after) pairs from the last dimension backwards.
func runPad(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := need(n, in, 0)
	if err != nil {
		return nil, err
	}
	mode, err := n.StringAttr("mode", "constant")
	if err != nil {
		return nil, err
	}
	if mode != "constant" {
		return nil, fmt.Errorf("mode %s is not supported", mode)
	}
	pads, _, err := intsInputOrAttr(n, in, 1, "pads")
	if err != nil {
		return nil, err
	}
	var value float32
	if len(in) > 2 && in[2] != nil {
		v, ok := scalarOf(in[2])
		if !ok {
			return nil, fmt.Errorf("constant_value has shape %v, want a float32 scalar", in[2].Shape())
		}
		value = v
	}
	r := x.NDim()
	axes, ok, err := axesOf(n, in, 3, r)
	if err != nil {
		return nil, err
	}
	if !ok {
		for i := 0; i < r; i++ {
			axes = append(axes, i)
		}
	}
	k := len(axes)
	if len(pads) != 2*k {
		return nil, fmt.Errorf("pads %v for %d axes", pads, k)
	}
	before, after := make([]int, r), make([]int, r)
	for i, a := range axes {
		before[a], after[a] = pads[i], pads[k+i]
	}
	var p []int
	for d := r - 1; d >= 0; d-- {
		p = append(p, before[d], after[d])
	}
	return one1(ops.Pad(x, p, value)), nil
}

// runExpand broadcasts x with the shape input (bidirectionally, as ONNX's
// Expand).
func runExpand(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := need(n, in, 0)
	if err != nil {
		return nil, err
	}
	shape, err := needInts(n, in, 1)
	if err != nil {
		return nil, err
	}
	out, err := tensor.BroadcastShapes(x.Shape(), shape)
	if err != nil {
		return nil, err
	}
	return one1(ops.Expand(x, out...)), nil
}

func runTile(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := need(n, in, 0)
	if err != nil {
		return nil, err
	}
	reps, err := needInts(n, in, 1)
	if err != nil {
		return nil, err
	}
	if len(reps) != x.NDim() {
		return nil, fmt.Errorf("repeats %v for rank %d", reps, x.NDim())
	}
	return one1(ops.Repeat(x, reps...)), nil
}

// runReduce maps ReduceSum, ReduceMean, ReduceMax and ReduceMin with axes
// as an input or an attribute; no axes reduce all dimensions unless
// noop_with_empty_axes.
func runReduce(opType string) interpretFunc {
	return func(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		x, err := need(n, in, 0)
		if err != nil {
			return nil, err
		}
		keep, err := attrInt(n, "keepdims", 1)
		if err != nil {
			return nil, err
		}
		noop, err := attrInt(n, "noop_with_empty_axes", 0)
		if err != nil {
			return nil, err
		}
		r := x.NDim()
		axes, _, err := axesOf(n, in, 1, r)
		if err != nil {
			return nil, err
		}
		if len(axes) == 0 {
			if noop != 0 {
				return one1(x), nil
			}
			for i := 0; i < r; i++ {
				axes = append(axes, i)
			}
		}
		if r == 0 {
			return one1(x), nil
		}
		switch opType {
		case "ReduceSum":
			return one1(ops.Sum(x, axes, keep != 0)), nil
		case "ReduceMean":
			return one1(ops.Mean(x, axes, keep != 0)), nil
		}
		sorted := slices.Clone(axes)
		slices.Sort(sorted)
		sorted = slices.Compact(sorted)
		y := x
		for _, a := range sorted {
			if opType == "ReduceMax" {
				y, _ = ops.Max(y, a, true)
			} else {
				y, _ = ops.Min(y, a, true)
			}
		}
		if keep == 0 {
			y = ops.Squeeze(y, sorted...)
		}
		return one1(y), nil
	}
}
