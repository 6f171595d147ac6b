package exec

import (
	"fmt"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/kernels/qdyn"
	"github.com/quanta-go/quanta/internal/kernels/qelem"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/tensor"
)

// This file holds ONNX's quantization operators with their reference
// semantics (DESIGN.md "Numerics", all arithmetic in internal/kernels/qmath):
//
//	QuantizeLinear        y = saturate(RNE(x / scale) + zp)           per tensor or per axis
//	DequantizeLinear      y = float32(x - zp) * scale                 per tensor or per axis
//	DynamicQuantizeLinear ONNX's uint8 rule (qdyn.ChooseONNX), then QuantizeLinear
//	MatMulInteger         int32 sums of (a - za)(b - zb)               exact
//	ConvInteger           int32 sums of (x - zx)(w - zw)               exact
//	QLinearMatMul/Conv    y = saturate(RNE(float32(acc) * M) + zy),  M = float32(float32(sa*sw)/sy)
//
// The integer products are exact int32 accumulations; nothing goes through
// float but the final requantization.

func init() {
	register("QuantizeLinear", 10, compileQuantizeLinear)
	register("DequantizeLinear", 10, compileDequantizeLinear)
	register("DynamicQuantizeLinear", 11, compileDynamicQuantizeLinear)
	register("MatMulInteger", 10, compileMatMulInteger)
	register("QLinearMatMul", 10, compileQLinearMatMul)
	register("ConvInteger", 10, compileConvInteger)
	register("QLinearConv", 10, compileQLinearConv)
}

// quantElemRange returns the integer range of a QuantizeLinear output
// type: uint8, int8, uint16 or int16 (the 16-bit types are held as int32).
func quantElemRange(e graph.ElemType) (lo, hi int32, ok bool) {
	switch e {
	case graph.Uint8:
		lo, hi = qmath.Range(false, 8)
	case graph.Int8:
		lo, hi = qmath.Range(true, 8)
	case graph.Uint16:
		lo, hi = qmath.Range(false, 16)
	case graph.Int16:
		lo, hi = qmath.Range(true, 16)
	default:
		return 0, 0, false
	}
	return lo, hi, true
}

// qRange returns the integer range of an 8-bit (or int32) quantized dtype.
func qRange(d tensor.DType) (lo, hi int32, err error) {
	switch d {
	case tensor.Uint8, tensor.Int8:
		lo, hi, _ = quantElemRange(graph.ElemTypeOf(d))
	case tensor.Int32:
		lo, hi = qmath.Range(true, 32)
	default:
		return 0, 0, fmt.Errorf("quantized type %s is not supported (want uint8, int8 or int32)", d)
	}
	return lo, hi, nil
}

// int32s returns the values of an 8- or 32-bit integer tensor as int32.
func int32s(t *tensor.Tensor) ([]int32, error) {
	switch t.DType() {
	case tensor.Uint8, tensor.Int8:
		return tensor.Cast(t, tensor.Int32).I32(), nil
	case tensor.Int32:
		return t.I32(), nil
	}
	return nil, fmt.Errorf("want a uint8, int8 or int32 tensor, got %s", t.DType())
}

// qparams holds the scales and zero points of a (De)QuantizeLinear node,
// one pair per channel along axis or a single pair.
type qparams struct {
	scale []float32
	zp    []int32
	axis  int // -1: per tensor
}

// readQParams checks a scale (float32) and an optional zero point for a
// tensor of shape xsh: both one-element (per tensor) or 1-D of the size of
// dimension ax (per axis, opset 13).
func readQParams(scale, zp *tensor.Tensor, xsh []int, ax int64) (qparams, error) {
	var q qparams
	if err := wantFloat("the scale", scale); err != nil {
		return q, err
	}
	q.scale = scale.F32()
	q.axis = -1
	if scale.Numel() != 1 {
		if scale.NDim() != 1 {
			return q, fmt.Errorf("the scale must be one value or 1-D, has shape %v", scale.Shape())
		}
		a, err := axis(ax, len(xsh))
		if err != nil {
			return q, err
		}
		if scale.Numel() != xsh[a] {
			return q, fmt.Errorf("%d scales for dimension %d of %v", scale.Numel(), a, xsh)
		}
		q.axis = a
	}
	if zp == nil {
		q.zp = make([]int32, len(q.scale))
		return q, nil
	}
	if zp.Numel() != scale.Numel() {
		return q, fmt.Errorf("zero point of shape %v for scale of shape %v", zp.Shape(), scale.Shape())
	}
	v, err := int32s(zp)
	if err != nil {
		return q, fmt.Errorf("zero point: %w", err)
	}
	q.zp = v
	return q, nil
}

// index returns the qparams index of flat element i of a tensor whose
// quantization axis has c entries of inner elements each.
func (q qparams) index(i, inner, c int) int {
	if q.axis < 0 {
		return 0
	}
	return i / inner % c
}

func compileQuantizeLinear(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 2, 3); err != nil {
		return nil, err
	}
	opset := c.Opset("")
	ax, err := n.Int("axis", 1)
	if err != nil {
		return nil, err
	}
	bs, err := n.Int("block_size", 0)
	if err != nil {
		return nil, err
	}
	if bs != 0 {
		return nil, fmt.Errorf("blocked quantization (block_size %d) is not supported", bs)
	}
	outElem := graph.Uint8
	if od, err := n.Int("output_dtype", 0); err != nil {
		return nil, err
	} else if od != 0 && opset >= 21 {
		outElem = graph.ElemType(od)
		if _, _, ok := quantElemRange(outElem); !ok {
			return nil, fmt.Errorf("output_dtype %s is not supported (want uint8, int8, uint16 or int16)", outElem)
		}
	}
	// The zero point's declared type decides the output type; 16-bit
	// zero points are held as int32, so only the declaration tells uint16
	// from int16.
	zpElem := graph.Undefined
	if zv := n.Input(2); zv != nil {
		zpElem = zv.Type.Elem
	}
	if opset < 13 {
		ax = 1
	}
	return frameOne(func(f *Frame, in []*tensor.Tensor) (*tensor.Tensor, error) {
		x, zpT := in[0], optIn(in, 2)
		if x.DType() != tensor.Float32 && x.DType() != tensor.Int32 {
			return nil, fmt.Errorf("x must be float32 or int32, got %s", x.DType())
		}
		elem := outElem
		if zpT != nil {
			switch zpT.DType() {
			case tensor.Uint8:
				elem = graph.Uint8
			case tensor.Int8:
				elem = graph.Int8
			case tensor.Int32:
				if zpElem != graph.Uint16 && zpElem != graph.Int16 {
					return nil, fmt.Errorf("zero point type %s is not supported (want uint8, int8, uint16 or int16)", zpElem)
				}
				elem = zpElem
			default:
				return nil, fmt.Errorf("zero point type %s is not supported (want uint8, int8, uint16 or int16)", zpT.DType())
			}
		}
		lo, hi, _ := quantElemRange(elem)
		dt, _ := elem.DType()
		q, err := readQParams(in[1], zpT, x.Shape(), ax)
		if err != nil {
			return nil, err
		}
		xf := x
		if x.DType() != tensor.Float32 {
			xf = tensor.Cast(x, tensor.Float32)
		}
		xv := xf.F32()
		if q.axis < 0 && dt != tensor.Int32 {
			// One scale, 8-bit codes: the vectorized byte kernel.
			b := f.allocBytes(len(xv))
			if dt == tensor.Uint8 {
				qelem.Quantize(b, xv, q.scale[0], q.zp[0], lo, hi)
				return tensor.FromUint8(b, x.Shape()...), nil
			}
			s8 := asInt8(b)
			qelem.Quantize(s8, xv, q.scale[0], q.zp[0], lo, hi)
			return tensor.FromInt8(s8, x.Shape()...), nil
		}
		var out []int32
		if dt == tensor.Int32 {
			out = f.allocI32(len(xv))
		} else {
			out = make([]int32, len(xv))
		}
		if q.axis < 0 {
			// One scale: the vectorized kernel (exact, as qmath.Quantize).
			qelem.Quantize32(out, xv, q.scale[0], q.zp[0], lo, hi)
		} else {
			inner, ch := shapeNumel(x.Shape()[q.axis+1:]), x.Dim(q.axis)
			for i, v := range xv {
				k := q.index(i, inner, ch)
				out[i] = qmath.Quantize(v, q.scale[k], q.zp[k], lo, hi)
			}
		}
		if dt == tensor.Int32 {
			return tensor.FromInt32(out, x.Shape()...), nil
		}
		return tensor.Cast(tensor.FromInt32(out, x.Shape()...), dt), nil
	}), nil
}

func compileDequantizeLinear(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 2, 3); err != nil {
		return nil, err
	}
	ax, err := n.Int("axis", 1)
	if err != nil {
		return nil, err
	}
	bs, err := n.Int("block_size", 0)
	if err != nil {
		return nil, err
	}
	if bs != 0 {
		return nil, fmt.Errorf("blocked quantization (block_size %d) is not supported", bs)
	}
	if c.Opset("") < 13 {
		ax = 1
	}
	return frameOne(func(f *Frame, in []*tensor.Tensor) (*tensor.Tensor, error) {
		x, zpT := in[0], optIn(in, 2)
		if zpT != nil && zpT.DType() != x.DType() {
			return nil, fmt.Errorf("x is %s and its zero point %s", x.DType(), zpT.DType())
		}
		q, err := readQParams(in[1], zpT, x.Shape(), ax)
		if err != nil {
			return nil, err
		}
		if (x.DType() == tensor.Uint8 || x.DType() == tensor.Int8) && len(q.scale) == 1 {
			// 8-bit per tensor: the 256 values Dequantize gives, looked
			// up by byte.
			var tab [256]float32
			for b := range tab {
				v := int32(b)
				if x.DType() == tensor.Int8 {
					v = int32(int8(b))
				}
				tab[b] = qmath.Dequantize(v, q.zp[0], q.scale[0])
			}
			xb := bytesOf(x)
			out := f.allocF32(len(xb))
			for i, b := range xb {
				out[i] = tab[b]
			}
			return tensor.FromFloat32(out, x.Shape()...), nil
		}
		xv, err := int32s(x)
		if err != nil {
			return nil, fmt.Errorf("x: %w", err)
		}
		out := f.allocF32(len(xv))
		if len(q.scale) == 1 {
			qelem.Dequantize32(out, xv, q.scale[0], q.zp[0])
			return tensor.FromFloat32(out, x.Shape()...), nil
		}
		inner, ch := 1, 1
		if q.axis >= 0 {
			inner, ch = shapeNumel(x.Shape()[q.axis+1:]), x.Dim(q.axis)
		}
		for i, v := range xv {
			k := q.index(i, inner, ch)
			out[i] = qmath.Dequantize(v, q.zp[k], q.scale[k])
		}
		return tensor.FromFloat32(out, x.Shape()...), nil
	}), nil
}

func compileDynamicQuantizeLinear(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 1, 1); err != nil {
		return nil, err
	}
	return KernelFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := wantFloat("x", in[0]); err != nil {
			return nil, err
		}
		xv := in[0].F32()
		lo, hi, nan := qdyn.MinMax(xv)
		if nan {
			return nil, fmt.Errorf("x holds NaN")
		}
		if len(xv) == 0 {
			lo, hi = 0, 0
		}
		scale, zp := qdyn.ChooseONNX(lo, hi)
		out := make([]uint8, len(xv))
		for i, v := range xv {
			out[i] = uint8(qmath.Quantize(v, scale, zp, 0, 255))
		}
		return []*tensor.Tensor{
			tensor.FromUint8(out, in[0].Shape()...),
			tensor.Scalar(scale),
			tensor.FromUint8([]uint8{uint8(zp)}).Reshape(),
		}, nil
	}), nil
}

// zpShift returns x (uint8 or int8) minus its zero point as an int32
// tensor. zp is nil, one element, a vector of size rowDim's length placed
// on dimension rowDim (-2 for a per-row A, -1 for a per-column B), or a
// tensor that broadcasts to x.
func zpShift(x, zp *tensor.Tensor, rowDim int) (*tensor.Tensor, error) {
	if x.DType() != tensor.Uint8 && x.DType() != tensor.Int8 {
		return nil, fmt.Errorf("want uint8 or int8 operands, got %s", x.DType())
	}
	x32 := tensor.Cast(x, tensor.Int32)
	if zp == nil {
		return x32, nil
	}
	if zp.DType() != x.DType() {
		return nil, fmt.Errorf("operand is %s and its zero point %s", x.DType(), zp.DType())
	}
	z := tensor.Cast(zp, tensor.Int32)
	switch {
	case z.Numel() == 1:
		z = z.Reshape()
	case z.NDim() == 1 && x.NDim() >= 2 && rowDim == -2 && z.Dim(0) == x.Dim(-2):
		z = z.Reshape(z.Dim(0), 1)
	}
	if _, err := tensor.BroadcastShapes(x32.Shape(), z.Shape()); err != nil {
		return nil, fmt.Errorf("zero point of shape %v for an operand of shape %v", zp.Shape(), x.Shape())
	}
	return tensor.Sub(x32, z), nil
}

// intMatMul multiplies int32 tensors with numpy matmul rules (1-D operands
// and broadcast batch dimensions), accumulating exactly in int32. It
// returns the product and the number of its rows and columns.
func intMatMul(a, b *tensor.Tensor) (*tensor.Tensor, error) {
	as, bs := a.Shape(), b.Shape()
	if len(as) == 0 || len(bs) == 0 {
		return nil, fmt.Errorf("matmul of scalars")
	}
	dropRow, dropCol := len(as) == 1, len(bs) == 1
	if dropRow {
		a = a.Reshape(1, as[0])
	}
	if dropCol {
		b = b.Reshape(bs[0], 1)
	}
	as, bs = a.Shape(), b.Shape()
	m, k, n := as[len(as)-2], as[len(as)-1], bs[len(bs)-1]
	if bs[len(bs)-2] != k {
		return nil, fmt.Errorf("inner dimensions differ: %v x %v", as, bs)
	}
	batch, err := tensor.BroadcastShapes(as[:len(as)-2], bs[:len(bs)-2])
	if err != nil {
		return nil, err
	}
	a = tensor.Expand(a, append(append([]int{}, batch...), m, k)...)
	b = tensor.Expand(b, append(append([]int{}, batch...), k, n)...)
	av, bv := a.I32(), b.I32()
	nb := shapeNumel(batch)
	out := make([]int32, nb*m*n)
	for p := 0; p < nb; p++ {
		A, B, C := av[p*m*k:(p+1)*m*k], bv[p*k*n:(p+1)*k*n], out[p*m*n:(p+1)*m*n]
		for i := 0; i < m; i++ {
			row := C[i*n : (i+1)*n]
			for q := 0; q < k; q++ {
				x := A[i*k+q]
				if x == 0 {
					continue
				}
				for j, y := range B[q*n : (q+1)*n] {
					row[j] += x * y
				}
			}
		}
	}
	shape := append([]int{}, batch...)
	if !dropRow {
		shape = append(shape, m)
	}
	if !dropCol {
		shape = append(shape, n)
	}
	return tensor.FromInt32(out, shape...), nil
}

func compileMatMulInteger(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 2, 4); err != nil {
		return nil, err
	}
	return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		return matMulAcc(in[0], optIn(in, 2), in[1], optIn(in, 3))
	}), nil
}

// matMulAcc returns the int32 product of (a - za) and (b - zb) with
// MatMulInteger's zero-point forms. A uint8 a with one zero point times a
// 2-D int8 b runs on the qgemm kernels (exact, as the reference); other
// forms use intMatMul.
func matMulAcc(a, za, b, zb *tensor.Tensor) (*tensor.Tensor, error) {
	if a.DType() == tensor.Uint8 && b.DType() == tensor.Int8 && a.NDim() >= 1 && b.NDim() == 2 &&
		(za == nil || za.DType() == tensor.Uint8 && za.Numel() == 1) &&
		(zb == nil || zb.DType() == tensor.Int8 && (zb.Numel() == 1 || zb.NDim() == 1 && zb.Numel() == b.Dim(1))) &&
		a.Dim(-1) == b.Dim(0) {
		return matMulU8S8(a, za, b, zb), nil
	}
	az, err := zpShift(a, za, -2)
	if err != nil {
		return nil, fmt.Errorf("a: %w", err)
	}
	bz, err := zpShift(b, zb, -1)
	if err != nil {
		return nil, fmt.Errorf("b: %w", err)
	}
	return intMatMul(az, bz)
}

// scalesFor reads a float32 scale that is one value or one per index of a
// dimension of size n.
func scalesFor(what string, t *tensor.Tensor, n int) ([]float32, error) {
	if err := wantFloat(what, t); err != nil {
		return nil, err
	}
	if t.Numel() != 1 && t.Numel() != n {
		return nil, fmt.Errorf("%s has %d values, want 1 or %d", what, t.Numel(), n)
	}
	return t.F32(), nil
}

// outZeroPoint reads the output zero point (uint8 by default).
func outZeroPoint(t *tensor.Tensor) (zp int32, dt tensor.DType, err error) {
	if t == nil {
		return 0, tensor.Uint8, nil
	}
	if t.Numel() != 1 || (t.DType() != tensor.Uint8 && t.DType() != tensor.Int8) {
		return 0, 0, fmt.Errorf("output zero point must be one uint8 or int8, got %s%v", t.DType(), t.Shape())
	}
	v, _ := int32s(t)
	return v[0], t.DType(), nil
}

// requantize maps int32 accumulators to the output grid of dtype dt,
// element i with the multiplier mult(i).
func requantize(acc []int32, mult func(i int) float32, zp int32, dt tensor.DType, shape []int) *tensor.Tensor {
	lo, hi, _ := qRange(dt)
	out := make([]int32, len(acc))
	for i, v := range acc {
		out[i] = qmath.Requantize(v, mult(i), zp, lo, hi)
	}
	return tensor.Cast(tensor.FromInt32(out, shape...), dt)
}

func compileQLinearMatMul(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 8, 8); err != nil {
		return nil, err
	}
	return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		a, b := in[0], in[3]
		if a.NDim() < 1 || b.NDim() < 1 {
			return nil, fmt.Errorf("matmul of scalars")
		}
		rows, cols := 1, 1
		if a.NDim() >= 2 {
			rows = a.Dim(-2)
		}
		if b.NDim() >= 2 {
			cols = b.Dim(-1)
		}
		sa, err := scalesFor("a_scale", in[1], rows)
		if err != nil {
			return nil, err
		}
		sb, err := scalesFor("b_scale", in[4], cols)
		if err != nil {
			return nil, err
		}
		sy, err := scalesFor("y_scale", in[6], 1)
		if err != nil {
			return nil, err
		}
		za, zb := in[2], in[5]
		if za != nil && za.Numel() != 1 && za.Numel() != rows {
			return nil, fmt.Errorf("a_zero_point has %d values for %d rows", za.Numel(), rows)
		}
		if zb != nil && zb.Numel() != 1 && zb.Numel() != cols {
			return nil, fmt.Errorf("b_zero_point has %d values for %d columns", zb.Numel(), cols)
		}
		acc, err := matMulAcc(a, za, b, zb)
		if err != nil {
			return nil, err
		}
		zy, dt, err := outZeroPoint(in[7])
		if err != nil {
			return nil, err
		}
		outCols := 1
		if b.NDim() >= 2 {
			outCols = cols
		}
		mult := func(i int) float32 {
			r, col := 0, 0
			if len(sa) > 1 {
				r = i / outCols % rows
			}
			if len(sb) > 1 {
				col = i % outCols
			}
			return qmath.Multiplier(sa[r], sb[col], sy[0])
		}
		return requantize(acc.I32(), mult, zy, dt, acc.Shape()), nil
	}), nil
}
