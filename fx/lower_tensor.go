package fx

import (
	"errors"
	"fmt"
	"math"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// This file maps the elementwise, activation, shape and reduction ops.

// floatScalar adds a scalar initializer for an op on float32 x.
func (e *emitter) floatScalar(role string, v float32) (*graph.Value, error) {
	if d := e.ins[0].DType(); d != tensor.Float32 {
		return nil, fmt.Errorf("input is %s, want float32", d)
	}
	return e.scalar(role, v), nil
}

// withScalar maps AddScalar, MulScalar and PowScalar to the binary
// operator with a scalar initializer.
func withScalar(opType string) lowerFunc {
	return func(e *emitter, a any) error {
		at, x, err := attrsAndInput[ops.ScalarAttrs](e, a)
		if err != nil {
			return err
		}
		s, err := e.floatScalar(opType+"_scalar", at.Value)
		if err != nil {
			return err
		}
		e.emit1(opType, nil, x, s)
		return nil
	}
}

func lowerRsqrt(e *emitter, _ any) error {
	x, err := e.need(0)
	if err != nil {
		return err
	}
	e.emit1("Reciprocal", nil, e.tmp("Sqrt", like(e.ins[0]), []*graph.Value{x}, nil))
	return nil
}

func lowerWhere(e *emitter, _ any) error {
	c, a, err := e.need2()
	if err != nil {
		return err
	}
	b, err := e.need(2)
	if err != nil {
		return err
	}
	e.emit1("Where", nil, c, a, b)
	return nil
}

// lowerClip maps Clamp, Hardtanh and ReLU6 to Clip with scalar bounds.
func lowerClip(e *emitter, a any) error {
	at, x, err := attrsAndInput[ops.ClampAttrs](e, a)
	if err != nil {
		return err
	}
	lo, err := e.floatScalar("Clip_min", at.Min)
	if err != nil {
		return err
	}
	e.emit1("Clip", nil, x, lo, e.scalar("Clip_max", at.Max))
	return nil
}

func lowerHardsigmoid(e *emitter, _ any) error {
	x, err := e.need(0)
	if err != nil {
		return err
	}
	e.emit1("HardSigmoid", attrs("alpha", graph.AFloat(1.0/6), "beta", graph.AFloat(0.5)), x)
	return nil
}

func lowerLeakyReLU(e *emitter, a any) error {
	at, x, err := attrsAndInput[ops.LeakyReLUAttrs](e, a)
	if err != nil {
		return err
	}
	e.emit1("LeakyRelu", attrs("alpha", graph.AFloat(at.Slope)), x)
	return nil
}

func lowerELU(e *emitter, a any) error {
	at, x, err := attrsAndInput[ops.ELUAttrs](e, a)
	if err != nil {
		return err
	}
	e.emit1("Elu", attrs("alpha", graph.AFloat(at.Alpha)), x)
	return nil
}

// lowerGELU writes GELU with opset 17 operators (ONNX has Gelu from opset
// 20 only), as PyTorch's exporter does: the exact form as
// x*(erf(x/sqrt(2))+1)*0.5 (Div, Erf, Add, Mul, Mul), the tanh form as
// 0.5*x*(1+tanh(sqrt(2/pi)*(x+0.044715*x^3))).
func lowerGELU(e *emitter, a any) error {
	at, x, err := attrsAndInput[ops.GELUAttrs](e, a)
	if err != nil {
		return err
	}
	typ := like(e.ins[0])
	op := func(opType string, ins ...*graph.Value) *graph.Value { return e.tmp(opType, typ, ins, nil) }
	var h *graph.Value
	if at.Approximate {
		c, err := e.floatScalar("Gelu_kappa", 0.044715)
		if err != nil {
			return err
		}
		cube := op("Mul", op("Mul", x, x), x)
		inner := op("Add", x, op("Mul", cube, c))
		inner = op("Mul", inner, e.scalar("Gelu_beta", float32(math.Sqrt(2/math.Pi))))
		h = op("Add", op("Tanh", inner), e.scalar("Gelu_one", 1))
	} else {
		s, err := e.floatScalar("Gelu_sqrt2", math.Sqrt2)
		if err != nil {
			return err
		}
		h = op("Add", op("Erf", op("Div", x, s)), e.scalar("Gelu_one", 1))
	}
	e.emit1("Mul", nil, op("Mul", x, h), e.scalar("Gelu_half", 0.5))
	return nil
}

// lowerSiLU writes x*sigmoid(x).
func lowerSiLU(e *emitter, _ any) error {
	x, err := e.need(0)
	if err != nil {
		return err
	}
	e.emit1("Mul", nil, x, e.tmp("Sigmoid", like(e.ins[0]), []*graph.Value{x}, nil))
	return nil
}

// lowerSoftplus writes Softplus(beta*x)/beta, and where beta*x exceeds the
// threshold, x itself (Greater and Where) unless the threshold is at
// least 20, above which log1p(exp(v)) rounds to v in float32.
func lowerSoftplus(e *emitter, a any) error {
	at, x, err := attrsAndInput[ops.SoftplusAttrs](e, a)
	if err != nil {
		return err
	}
	typ := like(e.ins[0])
	bx := x
	if at.Beta != 1 {
		b, err := e.floatScalar("Softplus_beta", at.Beta)
		if err != nil {
			return err
		}
		bx = e.tmp("Mul", typ, []*graph.Value{x, b}, nil)
	}
	y := e.tmp("Softplus", typ, []*graph.Value{bx}, nil)
	if at.Beta != 1 {
		y = e.tmp("Div", typ, []*graph.Value{y, e.scalar("Softplus_beta", at.Beta)}, nil)
	}
	if at.Threshold < 20 {
		over := e.tmp("Greater", graph.Type{}, []*graph.Value{bx, e.scalar("Softplus_threshold", at.Threshold)}, nil)
		y = e.tmp("Where", typ, []*graph.Value{over, x, y}, nil)
	}
	e.bind(0, y)
	return nil
}

// lowerReshape maps Reshape and View to Reshape with the recorded shape
// (allowzero when it has a zero dimension, which PyTorch means literally).
func lowerReshape(e *emitter, a any) error {
	at, x, err := attrsAndInput[ops.ShapeAttrs](e, a)
	if err != nil {
		return err
	}
	var m map[string]*graph.Attr
	for _, d := range at.Shape {
		if d == 0 {
			m = attrs("allowzero", aInt(1))
		}
	}
	e.emit1("Reshape", m, x, e.ints("Reshape_shape", at.Shape...))
	return nil
}

// lowerFlatten maps Flatten(1, -1) to ONNX's Flatten(axis=1) and other
// ranges to Reshape with 0 (copy) for the leading dimensions, -1 for the
// merged ones and the trailing sizes.
func lowerFlatten(e *emitter, a any) error {
	at, x, err := attrsAndInput[ops.FlattenAttrs](e, a)
	if err != nil {
		return err
	}
	xs := e.shape(0)
	r := len(xs)
	if r == 0 {
		e.emit1("Reshape", nil, x, e.ints("Reshape_shape", 1))
		return nil
	}
	s, err := axis(at.StartDim, r)
	if err != nil {
		return err
	}
	end, err := axis(at.EndDim, r)
	if err != nil {
		return err
	}
	if s == 1 && end == r-1 {
		e.emit1("Flatten", attrs("axis", aInt(1)), x)
		return nil
	}
	shape := make([]int, 0, r)
	for i := 0; i < s; i++ {
		shape = append(shape, 0)
	}
	shape = append(shape, -1)
	shape = append(shape, xs[end+1:]...)
	e.emit1("Reshape", nil, x, e.ints("Reshape_shape", shape...))
	return nil
}

// lowerSqueeze removes the size-1 dimensions the op removed (torch ignores
// dimensions of other sizes, ONNX does not); with none, the output is the
// input.
func lowerSqueeze(e *emitter, a any) error {
	at, x, err := attrsAndInput[ops.SqueezeAttrs](e, a)
	if err != nil {
		return err
	}
	xs := e.shape(0)
	var axes []int
	if len(at.Dims) == 0 {
		for i, d := range xs {
			if d == 1 {
				axes = append(axes, i)
			}
		}
	} else {
		seen := map[int]bool{}
		for _, d := range at.Dims {
			d, err := axis(d, len(xs))
			if err != nil {
				return err
			}
			if xs[d] == 1 && !seen[d] {
				seen[d] = true
				axes = append(axes, d)
			}
		}
	}
	if len(axes) == 0 {
		e.bind(0, x)
		return nil
	}
	e.emit1("Squeeze", nil, x, e.ints("Squeeze_axes", axes...))
	return nil
}

func lowerUnsqueeze(e *emitter, a any) error {
	at, x, err := attrsAndInput[ops.DimAttrs](e, a)
	if err != nil {
		return err
	}
	d, err := axis(at.Dim, len(e.shape(0))+1)
	if err != nil {
		return err
	}
	e.emit1("Unsqueeze", nil, x, e.ints("Unsqueeze_axes", d))
	return nil
}

// transpose emits a Transpose of input 0 by perm.
func (e *emitter) transpose(perm []int) error {
	x, err := e.need(0)
	if err != nil {
		return err
	}
	e.emit1("Transpose", attrs("perm", aInts(perm...)), x)
	return nil
}

func lowerTranspose(e *emitter, a any) error {
	at, err := as[ops.TransposeAttrs](a)
	if err != nil {
		return err
	}
	r := len(e.shape(0))
	d0, err := axis(at.Dim0, r)
	if err != nil {
		return err
	}
	d1, err := axis(at.Dim1, r)
	if err != nil {
		return err
	}
	perm := make([]int, r)
	for i := range perm {
		perm[i] = i
	}
	perm[d0], perm[d1] = d1, d0
	return e.transpose(perm)
}

func lowerPermute(e *emitter, a any) error {
	at, err := as[ops.PermuteAttrs](a)
	if err != nil {
		return err
	}
	perm := make([]int, len(at.Perm))
	for i, p := range at.Perm {
		if perm[i], err = axis(p, len(at.Perm)); err != nil {
			return err
		}
	}
	return e.transpose(perm)
}

// lowerSlice maps Slice and Narrow (recorded with the resolved range) to
// Slice.
func lowerSlice(e *emitter, a any) error {
	at, x, err := attrsAndInput[ops.SliceAttrs](e, a)
	if err != nil {
		return err
	}
	d, err := axis(at.Dim, len(e.shape(0)))
	if err != nil {
		return err
	}
	e.emit1("Slice", nil, x, e.ints("Slice_starts", at.Start), e.ints("Slice_ends", at.End),
		e.ints("Slice_axes", d), e.ints("Slice_steps", one(at.Step)))
	return nil
}

// lowerConcat maps Concat, leaving out the empty 1-D tensors torch.cat
// skips.
func lowerConcat(e *emitter, a any) error {
	at, err := as[ops.DimAttrs](a)
	if err != nil {
		return err
	}
	var ins []*graph.Value
	for i, x := range e.ins {
		if s := x.Shape(); len(s) == 1 && s[0] == 0 && len(e.outShape(0)) != 1 {
			continue
		}
		ins = append(ins, e.in(i))
	}
	if len(ins) == 0 {
		return errors.New("no non-empty inputs")
	}
	d, err := axis(at.Dim, len(e.outShape(0)))
	if err != nil {
		return err
	}
	e.emit1("Concat", attrs("axis", aInt(d)), ins...)
	return nil
}

// lowerStack unsqueezes every input at the new dimension and concatenates.
func lowerStack(e *emitter, a any) error {
	at, err := as[ops.DimAttrs](a)
	if err != nil {
		return err
	}
	d, err := axis(at.Dim, len(e.outShape(0)))
	if err != nil {
		return err
	}
	ins := make([]*graph.Value, len(e.ins))
	for i := range e.ins {
		x, err := e.need(i)
		if err != nil {
			return err
		}
		ins[i] = e.tmp("Unsqueeze", graph.Type{}, []*graph.Value{x, e.ints("Unsqueeze_axes", d)}, nil)
	}
	e.emit1("Concat", attrs("axis", aInt(d)), ins...)
	return nil
}

// lowerSplit maps Split and Chunk (recorded with the piece sizes) to Split.
func lowerSplit(e *emitter, a any) error {
	at, x, err := attrsAndInput[ops.SplitAttrs](e, a)
	if err != nil {
		return err
	}
	d, err := axis(at.Dim, len(e.shape(0)))
	if err != nil {
		return err
	}
	e.emit("Split", []*graph.Value{x, e.ints("Split_split", at.Sizes...)}, attrs("axis", aInt(d)))
	return nil
}

// lowerIndexSelect maps IndexSelect to Gather along the dimension (a
// 0-dimensional index is unsqueezed, as index_select keeps the dimension).
func lowerIndexSelect(e *emitter, a any) error {
	at, x, err := attrsAndInput[ops.DimAttrs](e, a)
	if err != nil {
		return err
	}
	idx, err := e.need(1)
	if err != nil {
		return err
	}
	if len(e.shape(1)) == 0 {
		idx = e.tmp("Unsqueeze", graph.Type{}, []*graph.Value{idx, e.ints("Unsqueeze_axes", 0)}, nil)
	}
	d, err := axis(at.Dim, max(len(e.shape(0)), 1))
	if err != nil {
		return err
	}
	e.emit1("Gather", attrs("axis", aInt(d)), x, idx)
	return nil
}

// lowerGatherElements maps Gather (torch.gather) to GatherElements.
func lowerGatherElements(e *emitter, a any) error {
	at, x, err := attrsAndInput[ops.DimAttrs](e, a)
	if err != nil {
		return err
	}
	idx, err := e.need(1)
	if err != nil {
		return err
	}
	d, err := axis(at.Dim, len(e.shape(0)))
	if err != nil {
		return err
	}
	e.emit1("GatherElements", attrs("axis", aInt(d)), x, idx)
	return nil
}

// lowerPad maps constant Pad: torch lists (before, after) pairs from the
// last dimension backwards, ONNX all begins then all ends.
func lowerPad(e *emitter, a any) error {
	at, x, err := attrsAndInput[ops.PadAttrs](e, a)
	if err != nil {
		return err
	}
	r := len(e.shape(0))
	if len(at.Pads)%2 != 0 || len(at.Pads)/2 > r {
		return fmt.Errorf("pads %v do not fit rank %d", at.Pads, r)
	}
	pads := make([]int, 2*r)
	for i := 0; i < len(at.Pads)/2; i++ {
		d := r - 1 - i
		pads[d], pads[r+d] = at.Pads[2*i], at.Pads[2*i+1]
	}
	v, err := e.floatScalar("Pad_value", at.Value)
	if err != nil {
		return err
	}
	e.emit1("Pad", attrs("mode", graph.AString("constant")), x, e.ints("Pad_pads", pads...), v)
	return nil
}

// lowerExpand maps Expand to Expand to the traced output shape.
func lowerExpand(e *emitter, _ any) error {
	x, err := e.need(0)
	if err != nil {
		return err
	}
	e.emit1("Expand", nil, x, e.ints("Expand_shape", e.outShape(0)...))
	return nil
}

// lowerRepeat maps Repeat to Tile, unsqueezing leading dimensions first
// when there are more repetitions than dimensions.
func lowerRepeat(e *emitter, a any) error {
	at, x, err := attrsAndInput[ops.RepeatAttrs](e, a)
	if err != nil {
		return err
	}
	if lead := len(at.Reps) - len(e.shape(0)); lead > 0 {
		axes := make([]int, lead)
		for i := range axes {
			axes[i] = i
		}
		x = e.tmp("Unsqueeze", graph.Type{}, []*graph.Value{x, e.ints("Unsqueeze_axes", axes...)}, nil)
	}
	e.emit1("Tile", nil, x, e.ints("Tile_repeats", at.Reps...))
	return nil
}

// reduceNode emits a reduction of x over axes (all when empty): ReduceSum
// takes the axes as an input at opset 13+, the others as an attribute
// until opset 18.
func (e *emitter) reduceNode(opType string, x *graph.Value, axes []int, keep bool, typ graph.Type, final bool) *graph.Value {
	m := attrs("keepdims", aInt(0))
	if keep {
		m["keepdims"] = aInt(1)
	}
	ins := []*graph.Value{x}
	if len(axes) > 0 {
		if opType == "ReduceSum" {
			ins = append(ins, e.ints(opType+"_axes", axes...))
		} else {
			m["axes"] = aInts(axes...)
		}
	}
	if final {
		e.emit1(opType, m, ins...)
		return e.bound[0]
	}
	return e.tmp(opType, typ, ins, m)
}

// lowerReduce maps Sum, Mean, Max, Min (values), SumAll and MeanAll.
func lowerReduce(opType string) lowerFunc {
	return func(e *emitter, a any) error {
		x, err := e.need(0)
		if err != nil {
			return err
		}
		var at ops.ReduceAttrs
		if a != nil {
			if at, err = as[ops.ReduceAttrs](a); err != nil {
				return err
			}
		}
		if len(e.shape(0)) == 0 {
			e.bind(0, x)
			return nil
		}
		e.reduceNode(opType, x, at.Dims, at.KeepDim, graph.Type{}, true)
		return nil
	}
}

// lowerVar writes the variance as ReduceMean, Sub, Mul, ReduceSum and Div
// by N or N-1.
func lowerVar(e *emitter, a any) error {
	at, x, err := attrsAndInput[ops.ReduceAttrs](e, a)
	if err != nil {
		return err
	}
	xs := e.shape(0)
	count := 1
	if len(at.Dims) == 0 {
		for _, d := range xs {
			count *= d
		}
	} else {
		for _, d := range at.Dims {
			d, err := axis(d, len(xs))
			if err != nil {
				return err
			}
			count *= xs[d]
		}
	}
	if at.Unbiased {
		count--
	}
	typ := like(e.ins[0])
	mean := e.reduceNode("ReduceMean", x, at.Dims, true, graph.Type{}, false)
	diff := e.tmp("Sub", typ, []*graph.Value{x, mean}, nil)
	sq := e.tmp("Mul", typ, []*graph.Value{diff, diff}, nil)
	sum := e.reduceNode("ReduceSum", sq, at.Dims, at.KeepDim, like(e.outs[0]), false)
	n, err := e.floatScalar("Var_count", float32(count))
	if err != nil {
		return err
	}
	e.emit1("Div", nil, sum, n)
	return nil
}
