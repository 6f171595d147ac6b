package fx

import (
	"errors"
	"fmt"
	"math"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// This file is GraphModule's operator table: each ONNX operator (opset 13+
// meanings) as calls to package ops, so that autograd sees them. Shape
// inputs (axes, pads, shapes, split sizes) are read as integers; they carry
// no gradient.

// interpretFunc computes a node's outputs from its inputs (nil entries are
// absent optional inputs).
type interpretFunc func(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error)

var interpreters map[string]interpretFunc

func init() {
	interpreters = map[string]interpretFunc{
		"Conv": runConv, "ConvTranspose": runConvTranspose, "Gemm": runGemm,
		"MatMul":  binaryOp(ops.MatMul),
		"MaxPool": runPool(false), "AveragePool": runPool(true), "GlobalAveragePool": runGlobalAveragePool,
		"BatchNormalization": runBatchNorm, "LayerNormalization": runLayerNorm,
		"InstanceNormalization": runInstanceNorm,
		"Resize":                runResize, "Softmax": softmaxOp(ops.Softmax), "LogSoftmax": softmaxOp(ops.LogSoftmax),

		"Add": binaryOp(ops.Add), "Sub": binaryOp(ops.Sub), "Mul": binaryOp(ops.Mul), "Div": binaryOp(ops.Div),
		"Pow": runPow, "Max": variadicOp(ops.Maximum), "Min": variadicOp(ops.Minimum),
		"Neg": unaryOp(ops.Neg), "Abs": unaryOp(ops.Abs), "Exp": unaryOp(ops.Exp), "Log": unaryOp(ops.Log),
		"Sqrt": unaryOp(ops.Sqrt), "Reciprocal": unaryOp(ops.Reciprocal), "Where": runWhere, "Clip": runClip,
		"Relu": unaryOp(ops.ReLU), "Sigmoid": unaryOp(ops.Sigmoid), "Tanh": unaryOp(ops.Tanh), "Erf": unaryOp(ops.Erf),
		"HardSwish": unaryOp(ops.Hardswish), "HardSigmoid": runHardSigmoid,
		"LeakyRelu": alphaOp(ops.LeakyReLU, 0.01), "Elu": alphaOp(ops.ELU, 1), "Softplus": unaryOp(ops.Softplus),
		"Greater": compareOp(tensor.Greater), "Less": compareOp(tensor.Less), "Equal": compareOp(tensor.Equal),
		"Identity": func(_ *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) { return in[:1], nil },
		"Constant": runConstant, "Cast": runCast,
		"QuantizeLinear": runQuantizeLinear, "DequantizeLinear": runDequantizeLinear,

		"Shape": runShape, "Reshape": runReshape, "Flatten": runFlatten, "Squeeze": runSqueeze, "Unsqueeze": runUnsqueeze,
		"Transpose": runTranspose, "Slice": runSlice, "Concat": runConcat, "Split": runSplit,
		"Gather": runGather, "GatherElements": runGatherElements, "Pad": runPad, "Expand": runExpand, "Tile": runTile,

		"ReduceSum": runReduce("ReduceSum"), "ReduceMean": runReduce("ReduceMean"),
		"ReduceMax": runReduce("ReduceMax"), "ReduceMin": runReduce("ReduceMin"),
	}
}

// runCast is Cast: a float32 to float32 cast keeps the gradient; other
// casts (shape arithmetic, masks) carry none.
func runCast(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := need(n, in, 0)
	if err != nil {
		return nil, err
	}
	to, err := n.Int("to", -1)
	if err != nil {
		return nil, err
	}
	dt, ok := graph.ElemType(to).DType()
	if !ok {
		return nil, fmt.Errorf("cast to %s is not supported", graph.ElemType(to))
	}
	if dt == x.DType() {
		return one1(x), nil
	}
	return one1(tensor.Cast(x.Detach(), dt)), nil
}

// need returns input i or an error naming it.
func need(n *graph.Node, in []*tensor.Tensor, i int) (*tensor.Tensor, error) {
	if i >= len(in) || in[i] == nil {
		return nil, fmt.Errorf("input %d is missing", i)
	}
	return in[i], nil
}

// need2 returns inputs 0 and 1 or an error naming the first one absent.
func need2(n *graph.Node, in []*tensor.Tensor) (*tensor.Tensor, *tensor.Tensor, error) {
	a, err := need(n, in, 0)
	if err != nil {
		return nil, nil, err
	}
	b, err := need(n, in, 1)
	if err != nil {
		return nil, nil, err
	}
	return a, b, nil
}

// optional returns input i, nil when absent.
func optional(in []*tensor.Tensor, i int) *tensor.Tensor {
	if i >= len(in) {
		return nil
	}
	return in[i]
}

// needInts reads integer input i (a shape or repeats), which must be
// present.
func needInts(n *graph.Node, in []*tensor.Tensor, i int) ([]int, error) {
	t, err := need(n, in, i)
	if err != nil {
		return nil, err
	}
	return ints(t)
}

func one1(t *tensor.Tensor) []*tensor.Tensor { return []*tensor.Tensor{t} }

func unaryOp(f func(*tensor.Tensor) *tensor.Tensor) interpretFunc {
	return func(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		x, err := need(n, in, 0)
		if err != nil {
			return nil, err
		}
		return one1(f(x)), nil
	}
}

func binaryOp(f func(a, b *tensor.Tensor) *tensor.Tensor) interpretFunc {
	return func(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		a, b, err := need2(n, in)
		if err != nil {
			return nil, err
		}
		return one1(f(a, b)), nil
	}
}

// variadicOp folds Max and Min over their inputs.
func variadicOp(f func(a, b *tensor.Tensor) *tensor.Tensor) interpretFunc {
	return func(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		y, err := need(n, in, 0)
		if err != nil {
			return nil, err
		}
		for i := 1; i < len(in); i++ {
			x, err := need(n, in, i)
			if err != nil {
				return nil, err
			}
			y = f(y, x)
		}
		return one1(y), nil
	}
}

// alphaOp maps LeakyRelu and Elu: f with the "alpha" attribute (def when
// absent).
func alphaOp(f func(*tensor.Tensor, float32) *tensor.Tensor, def float32) interpretFunc {
	return func(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		x, err := need(n, in, 0)
		if err != nil {
			return nil, err
		}
		alpha, err := n.Float("alpha", def)
		if err != nil {
			return nil, err
		}
		return one1(f(x, alpha)), nil
	}
}

func compareOp(f func(a, b *tensor.Tensor) *tensor.Tensor) interpretFunc {
	return binaryOp(func(a, b *tensor.Tensor) *tensor.Tensor { return f(a.Detach(), b.Detach()) })
}

// ints reads a 1-D (or scalar) int64 or int32 tensor.
func ints(t *tensor.Tensor) ([]int, error) {
	var out []int
	switch t.DType() {
	case tensor.Int64:
		for _, v := range t.I64() {
			out = append(out, int(v))
		}
	case tensor.Int32:
		for _, v := range t.I32() {
			out = append(out, int(v))
		}
	default:
		return nil, fmt.Errorf("integer input is %s, want int64", t.DType())
	}
	return out, nil
}

// attrInts reads an ints attribute as ints.
func attrInts(n *graph.Node, name string, def []int) ([]int, error) {
	v, err := n.Ints(name, nil)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return def, nil
	}
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out, nil
}

func attrInt(n *graph.Node, name string, def int) (int, error) {
	v, err := n.Int(name, int64(def))
	return int(v), err
}

// axisAttr reads the "axis" attribute (def when absent), normalized for
// rank r.
func axisAttr(n *graph.Node, def, r int) (int, error) {
	ax, err := attrInt(n, "axis", def)
	if err != nil {
		return 0, err
	}
	return normAxis(ax, r)
}

// normAxis normalizes a possibly negative axis for rank r.
func normAxis(a, r int) (int, error) { return axis(a, r) }

// noAutoPad rejects auto_pad modes other than NOTSET.
func noAutoPad(n *graph.Node) error {
	p, err := n.StringAttr("auto_pad", "NOTSET")
	if err != nil {
		return err
	}
	if p != "NOTSET" && p != "" {
		return fmt.Errorf("auto_pad %s is not supported", p)
	}
	return nil
}

// spatialAttrs reads strides, pads (begins and ends) and dilations of a
// convolution or pooling over k spatial dimensions.
func spatialAttrs(n *graph.Node, k int) (strides, begin, end, dil []int, err error) {
	if err = noAutoPad(n); err != nil {
		return
	}
	ones := make([]int, k)
	for i := range ones {
		ones[i] = 1
	}
	if strides, err = attrInts(n, "strides", ones); err != nil {
		return
	}
	if dil, err = attrInts(n, "dilations", ones); err != nil {
		return
	}
	pads, err := attrInts(n, "pads", make([]int, 2*k))
	if err != nil {
		return
	}
	if len(strides) != k || len(dil) != k || len(pads) != 2*k {
		err = fmt.Errorf("strides %v, dilations %v, pads %v do not fit %d spatial dimensions", strides, dil, pads, k)
		return
	}
	return strides, pads[:k], pads[k:], dil, nil
}

// padSpatial pads x's trailing k dimensions by begin/end with value when
// they differ (asymmetric padding), and returns the symmetric padding left
// for the op.
func padSpatial(x *tensor.Tensor, begin, end []int, value float32) (*tensor.Tensor, []int) {
	sym := true
	for i := range begin {
		sym = sym && begin[i] == end[i]
	}
	if sym {
		return x, begin
	}
	k := len(begin)
	var p []int
	for i := k - 1; i >= 0; i-- {
		p = append(p, begin[i], end[i])
	}
	return ops.Pad(x, p, value), make([]int, k)
}

func runConv(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, w, err := need2(n, in)
	if err != nil {
		return nil, err
	}
	b := optional(in, 2)
	k := w.NDim() - 2
	strides, begin, end, dil, err := spatialAttrs(n, k)
	if err != nil {
		return nil, err
	}
	group, err := attrInt(n, "group", 1)
	if err != nil {
		return nil, err
	}
	x, pad := padSpatial(x, begin, end, 0)
	switch k {
	case 1:
		return one1(ops.Conv1d(x, w, b, ops.Conv1dAttrs{Stride: strides[0], Padding: pad[0], Dilation: dil[0], Groups: group})), nil
	case 2:
		return one1(ops.Conv2d(x, w, b, ops.ConvAttrs{Stride: [2]int{strides[0], strides[1]}, Padding: [2]int{pad[0], pad[1]},
			Dilation: [2]int{dil[0], dil[1]}, Groups: group})), nil
	}
	return nil, fmt.Errorf("%d-D convolution is not supported", k)
}

func runConvTranspose(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, w, err := need2(n, in)
	if err != nil {
		return nil, err
	}
	b := optional(in, 2)
	if w.NDim() != 4 {
		return nil, fmt.Errorf("%d-D transposed convolution is not supported", w.NDim()-2)
	}
	if n.Has("output_shape") {
		return nil, errors.New("output_shape is not supported (use pads and output_padding)")
	}
	strides, begin, end, dil, err := spatialAttrs(n, 2)
	if err != nil {
		return nil, err
	}
	if begin[0] != end[0] || begin[1] != end[1] {
		return nil, fmt.Errorf("asymmetric pads %v %v are not supported", begin, end)
	}
	op, err := attrInts(n, "output_padding", []int{0, 0})
	if err != nil {
		return nil, err
	}
	group, err := attrInt(n, "group", 1)
	if err != nil {
		return nil, err
	}
	if len(op) != 2 {
		return nil, fmt.Errorf("output_padding %v", op)
	}
	return one1(ops.ConvTranspose2d(x, w, b, ops.ConvTransposeAttrs{Stride: [2]int{strides[0], strides[1]},
		Padding: [2]int{begin[0], begin[1]}, OutputPadding: [2]int{op[0], op[1]}, Dilation: [2]int{dil[0], dil[1]}, Groups: group})), nil
}

// runGemm is Linear for transB=1 without scaling and a 1-D bias (the
// traced form), else MatMul with transposes, scales and Add.
func runGemm(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	a, b, err := need2(n, in)
	if err != nil {
		return nil, err
	}
	c := optional(in, 2)
	transA, err := attrInt(n, "transA", 0)
	if err != nil {
		return nil, err
	}
	transB, err := attrInt(n, "transB", 0)
	if err != nil {
		return nil, err
	}
	alpha, err := n.Float("alpha", 1)
	if err != nil {
		return nil, err
	}
	beta, err := n.Float("beta", 1)
	if err != nil {
		return nil, err
	}
	if transA != 0 {
		a = ops.Transpose(a, 0, 1)
	}
	if transB != 0 && alpha == 1 && (c == nil || beta == 1 && c.NDim() == 1 && c.Dim(0) == b.Dim(0)) {
		return one1(ops.Linear(a, b, c)), nil
	}
	if transB != 0 {
		b = ops.Transpose(b, 0, 1)
	}
	y := ops.MatMul(a, b)
	if alpha != 1 {
		y = ops.MulScalar(y, alpha)
	}
	if c != nil {
		if beta != 1 {
			c = ops.MulScalar(c, beta)
		}
		y = ops.Add(y, c)
	}
	return one1(y), nil
}

// runPool runs 2-D MaxPool and AveragePool, checking that the output has
// the size ONNX's formula gives.
func runPool(avg bool) interpretFunc {
	return func(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		x, err := need(n, in, 0)
		if err != nil {
			return nil, err
		}
		kernel, err := attrInts(n, "kernel_shape", nil)
		if err != nil {
			return nil, err
		}
		if len(kernel) != 2 {
			return nil, fmt.Errorf("kernel_shape %v: only 2-D pooling is supported", kernel)
		}
		strides, begin, end, dil, err := spatialAttrs(n, 2)
		if err != nil {
			return nil, err
		}
		ceil, err := attrInt(n, "ceil_mode", 0)
		if err != nil {
			return nil, err
		}
		cip, err := attrInt(n, "count_include_pad", 0)
		if err != nil {
			return nil, err
		}
		if begin[0] != end[0] || begin[1] != end[1] {
			return nil, fmt.Errorf("asymmetric pads %v %v are not supported", begin, end)
		}
		if len(n.Outputs) > 1 && n.Outputs[1] != nil {
			return nil, errors.New("MaxPool indices are not supported")
		}
		a := ops.PoolAttrs{Kernel: [2]int{kernel[0], kernel[1]}, Stride: [2]int{strides[0], strides[1]},
			Padding: [2]int{begin[0], begin[1]}, Dilation: [2]int{dil[0], dil[1]}, CeilMode: ceil != 0, CountIncludePad: cip != 0}
		var y *tensor.Tensor
		if avg {
			if dil[0] != 1 || dil[1] != 1 {
				return nil, fmt.Errorf("dilated AveragePool is not supported")
			}
			y = ops.AvgPool2d(x, a)
		} else {
			y = ops.MaxPool2d(x, a)
		}
		r := x.NDim()
		for i := 0; i < 2; i++ {
			span := x.Dim(r-2+i) + 2*begin[i] - dil[i]*(kernel[i]-1) - 1
			want := span/strides[i] + 1
			if ceil != 0 {
				want = (span+strides[i]-1)/strides[i] + 1
			}
			if got := y.Dim(r - 2 + i); got != want {
				return nil, fmt.Errorf("output size %d along spatial axis %d, ONNX's formula gives %d (ceil_mode with a last window in the padding)", got, i, want)
			}
		}
		return one1(y), nil
	}
}

func runGlobalAveragePool(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := need(n, in, 0)
	if err != nil {
		return nil, err
	}
	if x.NDim() == 4 {
		return one1(ops.AdaptiveAvgPool2d(x, 1, 1)), nil
	}
	if x.NDim() < 3 {
		return nil, fmt.Errorf("input of rank %d", x.NDim())
	}
	var dims []int
	for d := 2; d < x.NDim(); d++ {
		dims = append(dims, d)
	}
	return one1(ops.Mean(x, dims, true)), nil
}

func runBatchNorm(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if tm, err := attrInt(n, "training_mode", 0); err != nil || tm != 0 {
		return nil, errors.New("training_mode BatchNormalization is not supported")
	}
	var t [5]*tensor.Tensor
	for i := range t {
		x, err := need(n, in, i)
		if err != nil {
			return nil, err
		}
		t[i] = x
	}
	eps, err := n.Float("epsilon", 1e-5)
	if err != nil {
		return nil, err
	}
	return one1(ops.BatchNorm(t[0], t[3], t[4], t[1], t[2], false, 0.1, eps)), nil
}

func runLayerNorm(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, scale, err := need2(n, in)
	if err != nil {
		return nil, err
	}
	bias := optional(in, 2)
	ax, err := axisAttr(n, -1, x.NDim())
	if err != nil {
		return nil, err
	}
	eps, err := n.Float("epsilon", 1e-5)
	if err != nil {
		return nil, err
	}
	for _, o := range n.Outputs[1:] {
		if o != nil {
			return nil, errors.New("the Mean and InvStdDev outputs are not supported")
		}
	}
	return one1(ops.LayerNorm(x, x.Shape()[ax:], scale, bias, eps)), nil
}

// runInstanceNorm normalizes each (sample, channel) over the spatial
// positions: a LayerNorm without affine parameters over the flattened
// spatial dimensions, then scale and bias per channel.
func runInstanceNorm(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, scale, err := need2(n, in)
	if err != nil {
		return nil, err
	}
	bias, err := need(n, in, 2)
	if err != nil {
		return nil, err
	}
	if x.NDim() < 3 {
		return nil, fmt.Errorf("input of rank %d", x.NDim())
	}
	eps, err := n.Float("epsilon", 1e-5)
	if err != nil {
		return nil, err
	}
	xs := x.Shape()
	h := ops.Reshape(x, xs[0], xs[1], -1)
	h = ops.LayerNorm(h, []int{h.Dim(2)}, nil, nil, eps)
	h = ops.Reshape(h, xs...)
	cs := make([]int, x.NDim()-1)
	for i := range cs {
		cs[i] = 1
	}
	cs[0] = xs[1]
	return one1(ops.Add(ops.Mul(h, ops.Reshape(scale, cs...)), ops.Reshape(bias, cs...))), nil
}

// runResize maps the Resize forms tracing emits: nearest with asymmetric
// coordinates and floor rounding, and linear with pytorch_half_pixel or
// align_corners coordinates, over the last two dimensions.
func runResize(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := need(n, in, 0)
	if err != nil {
		return nil, err
	}
	r := x.NDim()
	if r != 3 && r != 4 {
		return nil, fmt.Errorf("input of rank %d, want 3 or 4", r)
	}
	mode, err := n.StringAttr("mode", "nearest")
	if err != nil {
		return nil, err
	}
	ctm, err := n.StringAttr("coordinate_transformation_mode", "half_pixel")
	if err != nil {
		return nil, err
	}
	nm, err := n.StringAttr("nearest_mode", "round_prefer_floor")
	if err != nil {
		return nil, err
	}
	var a ops.UpsampleAttrs
	switch {
	case len(in) > 3 && in[3] != nil && in[3].Numel() > 0:
		sz, err := ints(in[3])
		if err != nil {
			return nil, err
		}
		if len(sz) != r {
			return nil, fmt.Errorf("sizes %v for rank %d", sz, r)
		}
		for i := 0; i < r-2; i++ {
			if sz[i] != x.Dim(i) {
				return nil, fmt.Errorf("sizes %v resize a leading dimension", sz)
			}
		}
		a.Size = [2]int{sz[r-2], sz[r-1]}
	case len(in) > 2 && in[2] != nil && in[2].Numel() > 0:
		if in[2].DType() != tensor.Float32 || in[2].Numel() != r {
			return nil, fmt.Errorf("scales %v for rank %d", in[2].Shape(), r)
		}
		s := in[2].F32()
		for i := 0; i < r-2; i++ {
			if s[i] != 1 {
				return nil, fmt.Errorf("scales %v resize a leading dimension", s)
			}
		}
		a.ScaleFactor = [2]float64{float64(s[r-2]), float64(s[r-1])}
	default:
		return nil, errors.New("neither scales nor sizes given")
	}
	switch {
	case mode == "nearest" && ctm == "asymmetric" && nm == "floor":
		return one1(ops.UpsampleNearest2d(x, a)), nil
	case mode == "linear" && (ctm == "pytorch_half_pixel" || ctm == "align_corners"):
		a.AlignCorners = ctm == "align_corners"
		return one1(ops.UpsampleBilinear2d(x, a)), nil
	}
	return nil, fmt.Errorf("mode %s with coordinate_transformation_mode %s and nearest_mode %s is not supported", mode, ctm, nm)
}

func softmaxOp(f func(*tensor.Tensor, int) *tensor.Tensor) interpretFunc {
	return func(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		x, err := need(n, in, 0)
		if err != nil {
			return nil, err
		}
		ax, err := attrInt(n, "axis", -1)
		if err != nil {
			return nil, err
		}
		return one1(f(x, ax)), nil
	}
}

// scalarOf returns the value of a one-element float32 tensor that needs
// no gradient.
func scalarOf(t *tensor.Tensor) (float32, bool) {
	if t == nil || t.DType() != tensor.Float32 || t.Numel() != 1 || t.RequiresGrad() {
		return 0, false
	}
	return t.F32()[0], true
}

// runPow raises to a constant scalar exponent with PowScalar (as traced),
// else with Pow.
func runPow(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, p, err := need2(n, in)
	if err != nil {
		return nil, err
	}
	if s, ok := scalarOf(p); ok && p.NDim() <= x.NDim() {
		return one1(ops.PowScalar(x, s)), nil
	}
	return one1(ops.Pow(x, p)), nil
}

func runWhere(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	c, a, err := need2(n, in)
	if err != nil {
		return nil, err
	}
	b, err := need(n, in, 2)
	if err != nil {
		return nil, err
	}
	return one1(ops.Where(c, a, b)), nil
}

// runClip clamps to the min and max inputs (opset 11+) or attributes
// (older opsets); absent bounds are infinite.
func runClip(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := need(n, in, 0)
	if err != nil {
		return nil, err
	}
	lo, err := n.Float("min", float32(math.Inf(-1)))
	if err != nil {
		return nil, err
	}
	hi, err := n.Float("max", float32(math.Inf(1)))
	if err != nil {
		return nil, err
	}
	for i, dst := range []*float32{&lo, &hi} {
		if len(in) > i+1 && in[i+1] != nil {
			t := in[i+1]
			if t.DType() != tensor.Float32 || t.Numel() != 1 {
				return nil, fmt.Errorf("bound %d has shape %v, want a float32 scalar", i+1, t.Shape())
			}
			*dst = t.F32()[0]
		}
	}
	return one1(ops.Clamp(x, lo, hi)), nil
}

func runHardSigmoid(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := need(n, in, 0)
	if err != nil {
		return nil, err
	}
	alpha, err := n.Float("alpha", 0.2)
	if err != nil {
		return nil, err
	}
	beta, err := n.Float("beta", 0.5)
	if err != nil {
		return nil, err
	}
	if alpha == float32(1.0/6) && beta == 0.5 {
		return one1(ops.Hardsigmoid(x)), nil
	}
	return one1(ops.Clamp(ops.AddScalar(ops.MulScalar(x, alpha), beta), 0, 1)), nil
}

func runConstant(n *graph.Node, _ []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t, err := n.Tensor("value")
	if err != nil {
		return nil, err
	}
	if t != nil {
		return one1(t), nil
	}
	if n.Has("value_float") {
		f, err := n.Float("value_float", 0)
		return one1(tensor.Scalar(f)), err
	}
	if n.Has("value_int") {
		v, err := n.Int("value_int", 0)
		return one1(tensor.FromInt64([]int64{v})), err
	}
	return nil, errors.New("only value, value_float and value_int are supported")
}
