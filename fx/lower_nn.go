package fx

import (
	"errors"
	"fmt"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// This file maps the neural-network ops (convolution, linear layers,
// pooling, normalization, embeddings, resizing, softmax) to ONNX operators
// at opset 17.

// lowerConv maps Conv2d and Conv1d to Conv, unsqueezing an unbatched
// input.
func lowerConv(e *emitter, a any) error {
	x, w, err := e.need2()
	if err != nil {
		return err
	}
	ws := e.shape(1)
	var m map[string]*graph.Attr
	spatial := len(ws) - 2
	switch at := a.(type) {
	case ops.ConvAttrs:
		m = attrs("kernel_shape", aInts(ws[2], ws[3]),
			"strides", aInts(one(at.Stride[0]), one(at.Stride[1])),
			"pads", aInts(at.Padding[0], at.Padding[1], at.Padding[0], at.Padding[1]),
			"dilations", aInts(one(at.Dilation[0]), one(at.Dilation[1])),
			"group", aInt(one(at.Groups)))
	case ops.Conv1dAttrs:
		m = attrs("kernel_shape", aInts(ws[2]), "strides", aInts(one(at.Stride)),
			"pads", aInts(at.Padding, at.Padding), "dilations", aInts(one(at.Dilation)), "group", aInt(one(at.Groups)))
	default:
		return fmt.Errorf("attributes are %T, want ops.ConvAttrs or ops.Conv1dAttrs", a)
	}
	unbatched := len(e.shape(0)) == spatial+1
	e.bind(0, e.batched(x, unbatched, func(x *graph.Value) *graph.Value {
		return e.tmp("Conv", graph.Type{}, []*graph.Value{x, w, e.in(2)}, m)
	}))
	return nil
}

// lowerConvTranspose maps ConvTranspose2d to ConvTranspose.
func lowerConvTranspose(e *emitter, a any) error {
	at, x, err := attrsAndInput[ops.ConvTransposeAttrs](e, a)
	if err != nil {
		return err
	}
	w, err := e.need(1)
	if err != nil {
		return err
	}
	ws := e.shape(1)
	m := attrs("kernel_shape", aInts(ws[2], ws[3]),
		"strides", aInts(one(at.Stride[0]), one(at.Stride[1])),
		"pads", aInts(at.Padding[0], at.Padding[1], at.Padding[0], at.Padding[1]),
		"output_padding", aInts(at.OutputPadding[0], at.OutputPadding[1]),
		"dilations", aInts(one(at.Dilation[0]), one(at.Dilation[1])),
		"group", aInt(one(at.Groups)))
	e.bind(0, e.batched(x, len(e.shape(0)) == 3, func(x *graph.Value) *graph.Value {
		return e.tmp("ConvTranspose", graph.Type{}, []*graph.Value{x, w, e.in(2)}, m)
	}))
	return nil
}

// lowerLinear maps Linear to Gemm(transB=1) for a 2-D input, else to
// MatMul with the transposed weight, plus Add for the bias.
func lowerLinear(e *emitter, _ any) error {
	x, w, err := e.need2()
	if err != nil {
		return err
	}
	b := e.in(2)
	if len(e.shape(0)) == 2 {
		e.emit1("Gemm", attrs("transB", aInt(1)), x, w, b)
		return nil
	}
	ws := e.shape(1)
	wt := e.tmp("Transpose", likeShape([]int{ws[1], ws[0]}), []*graph.Value{w}, attrs("perm", aInts(1, 0)))
	if b == nil {
		e.emit1("MatMul", nil, x, wt)
		return nil
	}
	y := e.tmp("MatMul", like(e.outs[0]), []*graph.Value{x, wt}, nil)
	e.emit1("Add", nil, y, b)
	return nil
}

// poolAttrs returns the ONNX attributes of a 2-D pooling with PoolAttrs,
// choosing ceil_mode from the traced output size: PyTorch drops a last
// window that starts in the right padding, ONNX's opset 17 formula does
// not, so ceil_mode is set only when the output needs it and ONNX's
// formula gives the same size.
func poolAttrs(e *emitter, a ops.PoolAttrs, avg bool) (map[string]*graph.Attr, error) {
	xs, ys := e.shape(0), e.outShape(0)
	r := len(xs)
	var k, s, p, d [2]int
	floorOK, ceilOK := true, true
	for i := 0; i < 2; i++ {
		k[i], p[i], d[i] = a.Kernel[i], a.Padding[i], one(a.Dilation[i])
		s[i] = a.Stride[i]
		if s[i] == 0 {
			s[i] = k[i]
		}
		span := xs[r-2+i] + 2*p[i] - d[i]*(k[i]-1) - 1
		got := ys[len(ys)-2+i]
		floorOK = floorOK && got == span/s[i]+1
		ceilOK = ceilOK && got == (span+s[i]-1)/s[i]+1
	}
	m := attrs("kernel_shape", aInts(k[0], k[1]), "strides", aInts(s[0], s[1]),
		"pads", aInts(p[0], p[1], p[0], p[1]))
	switch {
	case floorOK:
	case a.CeilMode && ceilOK:
		m["ceil_mode"] = aInt(1)
	default:
		return nil, fmt.Errorf("output %v of input %v with %+v cannot be expressed with ONNX's ceil_mode", ys, xs, a)
	}
	if avg {
		if a.CountIncludePad {
			m["count_include_pad"] = aInt(1)
		}
	} else {
		m["dilations"] = aInts(d[0], d[1])
	}
	return m, nil
}

// lowerPool maps MaxPool2d to MaxPool and AvgPool2d to AveragePool.
func lowerPool(opType string) lowerFunc {
	return func(e *emitter, a any) error {
		at, x, err := attrsAndInput[ops.PoolAttrs](e, a)
		if err != nil {
			return err
		}
		m, err := poolAttrs(e, at, opType == "AveragePool")
		if err != nil {
			return err
		}
		e.bind(0, e.batched(x, len(e.shape(0)) == 3, func(x *graph.Value) *graph.Value {
			return e.tmp(opType, graph.Type{}, []*graph.Value{x}, m)
		}))
		return nil
	}
}

// lowerAdaptiveAvgPool maps AdaptiveAvgPool2d to GlobalAveragePool for a
// 1×1 output, and to AveragePool when the output size divides the input
// size (then the windows are equal and disjoint); other sizes have no ONNX
// operator.
func lowerAdaptiveAvgPool(e *emitter, a any) error {
	at, x, err := attrsAndInput[ops.AdaptivePoolAttrs](e, a)
	if err != nil {
		return err
	}
	xs := e.shape(0)
	h, w := xs[len(xs)-2], xs[len(xs)-1]
	oh, ow := at.Output[0], at.Output[1]
	var opType string
	var m map[string]*graph.Attr
	switch {
	case oh == 1 && ow == 1:
		opType = "GlobalAveragePool"
	case oh > 0 && ow > 0 && h%oh == 0 && w%ow == 0:
		opType = "AveragePool"
		m = attrs("kernel_shape", aInts(h/oh, w/ow), "strides", aInts(h/oh, w/ow))
	default:
		return fmt.Errorf("output %dx%d does not divide input %dx%d (no ONNX operator computes it)", oh, ow, h, w)
	}
	e.bind(0, e.batched(x, len(xs) == 3, func(x *graph.Value) *graph.Value {
		return e.tmp(opType, graph.Type{}, []*graph.Value{x}, m)
	}))
	return nil
}

// lowerBatchNorm maps evaluation-mode BatchNorm to BatchNormalization,
// with constant scale 1 and bias 0 when the module has none.
func lowerBatchNorm(e *emitter, a any) error {
	at, err := as[ops.BatchNormAttrs](a)
	if err != nil {
		return err
	}
	if at.Training {
		return errors.New("BatchNorm in training mode: call nn.Eval on the model before tracing")
	}
	x, err := e.need(0)
	if err != nil {
		return err
	}
	c := e.shape(0)[1]
	w, b := e.in(1), e.in(2)
	if w == nil {
		w = e.constant("BatchNormalization_scale", tensor.Ones(c))
	}
	if b == nil {
		b = e.constant("BatchNormalization_bias", tensor.Zeros(c))
	}
	mean, err := e.need(3)
	if err != nil {
		return err
	}
	vr, err := e.need(4)
	if err != nil {
		return err
	}
	e.emit1("BatchNormalization", attrs("epsilon", graph.AFloat(at.Eps)), x, w, b, mean, vr)
	return nil
}

// lowerLayerNorm maps LayerNorm to LayerNormalization over the trailing
// normalized dimensions (scale 1 when the module has no weight).
func lowerLayerNorm(e *emitter, a any) error {
	at, x, err := attrsAndInput[ops.LayerNormAttrs](e, a)
	if err != nil {
		return err
	}
	w := e.in(1)
	if w == nil {
		w = e.constant("LayerNormalization_scale", tensor.Ones(at.NormalizedShape...))
	}
	e.emit1("LayerNormalization", attrs("axis", aInt(-len(at.NormalizedShape)), "epsilon", graph.AFloat(at.Eps)), x, w, e.in(2))
	return nil
}

// lowerGroupNorm maps GroupNorm as PyTorch's ONNX exporter does before
// opset 18: Reshape to [N, groups, -1], InstanceNormalization without
// affine parameters, Reshape back to the input's shape, then Mul by the
// weight and Add the bias, unsqueezed to [C, 1, ...].
func lowerGroupNorm(e *emitter, a any) error {
	at, x, err := attrsAndInput[ops.GroupNormAttrs](e, a)
	if err != nil {
		return err
	}
	r := len(e.shape(0))
	g := at.Groups
	h := e.tmp("Reshape", graph.Type{}, []*graph.Value{x, e.ints("Reshape_shape", 0, g, -1)}, nil)
	h = e.tmp("InstanceNormalization", graph.Type{}, []*graph.Value{h,
		e.constant("InstanceNormalization_scale", tensor.Ones(g)),
		e.constant("InstanceNormalization_bias", tensor.Zeros(g))}, attrs("epsilon", graph.AFloat(at.Eps)))
	shape := e.tmp("Shape", graph.TensorType(graph.Int64, int64(r)), []*graph.Value{x}, nil)
	h = e.tmp("Reshape", like(e.outs[0]), []*graph.Value{h, shape}, nil)
	channel := func(v *graph.Value) *graph.Value {
		if r <= 2 {
			return v
		}
		axes := make([]int, r-2)
		for i := range axes {
			axes[i] = i + 1
		}
		return e.tmp("Unsqueeze", graph.Type{}, []*graph.Value{v, e.ints("Unsqueeze_axes", axes...)}, nil)
	}
	if w := e.in(1); w != nil {
		h = e.tmp("Mul", like(e.outs[0]), []*graph.Value{h, channel(w)}, nil)
	}
	if b := e.in(2); b != nil {
		h = e.tmp("Add", like(e.outs[0]), []*graph.Value{h, channel(b)}, nil)
	}
	e.bind(0, h)
	return nil
}

// lowerEmbedding maps Embedding(idx, weight) to Gather(weight, idx).
func lowerEmbedding(e *emitter, _ any) error {
	idx, w, err := e.need2()
	if err != nil {
		return err
	}
	e.emit1("Gather", attrs("axis", aInt(0)), w, idx)
	return nil
}

// lowerEmbeddingBag maps an EmbeddingBag of fixed-length bags (2-D indices,
// no offsets) to Gather and a reduction over the bag dimension.
func lowerEmbeddingBag(e *emitter, a any) error {
	at, err := as[ops.EmbeddingBagAttrs](a)
	if err != nil {
		return err
	}
	if e.in(1) != nil {
		return errors.New("bags given by offsets have no ONNX mapping (use 2-D indices)")
	}
	idx, err := e.need(0)
	if err != nil {
		return err
	}
	w, err := e.need(2)
	if err != nil {
		return err
	}
	if is := e.shape(0); len(is) != 2 || is[1] == 0 {
		return fmt.Errorf("indices %v: want 2-D non-empty bags", is)
	}
	rows := e.tmp("Gather", graph.Type{}, []*graph.Value{w, idx}, attrs("axis", aInt(0)))
	switch at.Mode {
	case "sum":
		e.emit1("ReduceSum", attrs("keepdims", aInt(0)), rows, e.ints("ReduceSum_axes", 1))
	case "mean":
		e.emit1("ReduceMean", attrs("axes", aInts(1), "keepdims", aInt(0)), rows)
	case "max":
		e.emit1("ReduceMax", attrs("axes", aInts(1), "keepdims", aInt(0)), rows)
	default:
		return fmt.Errorf("unknown mode %q", at.Mode)
	}
	return nil
}

// lowerUpsample maps UpsampleNearest2d and UpsampleBilinear2d to Resize:
// nearest with "asymmetric" coordinates and "floor" rounding, bilinear
// with "pytorch_half_pixel" or "align_corners" coordinates, as PyTorch's
// exporter does; a size becomes the sizes input, a scale factor the scales
// input (which maps output to input coordinates by the factor itself, as
// PyTorch does when recompute_scale_factor is unset).
func lowerUpsample(mode string) lowerFunc {
	return func(e *emitter, a any) error {
		at, x, err := attrsAndInput[ops.UpsampleAttrs](e, a)
		if err != nil {
			return err
		}
		xs := e.shape(0)
		r := len(xs)
		var scales, sizes *graph.Value
		if at.Size != [2]int{} {
			sz := append(append([]int(nil), xs[:r-2]...), at.Size[0], at.Size[1])
			sizes = e.ints("Resize_sizes", sz...)
		} else {
			f := make([]float32, r)
			for i := range f {
				f[i] = 1
			}
			f[r-2], f[r-1] = float32(at.ScaleFactor[0]), float32(at.ScaleFactor[1])
			scales = e.constant("Resize_scales", tensor.FromFloat32(f, r))
		}
		m := attrs("mode", graph.AString(mode))
		if mode == "nearest" {
			m["coordinate_transformation_mode"] = graph.AString("asymmetric")
			m["nearest_mode"] = graph.AString("floor")
		} else if at.AlignCorners {
			m["coordinate_transformation_mode"] = graph.AString("align_corners")
		} else {
			m["coordinate_transformation_mode"] = graph.AString("pytorch_half_pixel")
		}
		e.emit1("Resize", m, x, nil, scales, sizes)
		return nil
	}
}

// lowerSoftmax maps Softmax and LogSoftmax along one dimension (opset 13
// semantics).
func lowerSoftmax(opType string) lowerFunc {
	return func(e *emitter, a any) error {
		at, x, err := attrsAndInput[ops.DimAttrs](e, a)
		if err != nil {
			return err
		}
		e.emit1(opType, attrs("axis", aInt(at.Dim)), x)
		return nil
	}
}

// refuse returns a lowering that fails with msg.
func refuse(msg string) lowerFunc {
	return func(*emitter, any) error { return errors.New(msg) }
}
