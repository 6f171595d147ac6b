// Package tensor holds quanta's n-dimensional arrays: dtype, shape and
// contiguous row-major storage, plus the quantization parameters of
// quantized tensors and the slots package autograd uses to record gradients.
//
// Tensors are always contiguous. Reshape, Squeeze, Unsqueeze, Flatten and
// Detach share storage with the source, like PyTorch views; every other
// operation returns a new tensor. The functions in this
// package compute values only; package ops wraps them in the one op
// dispatcher that records autograd and graph nodes.
//
// Operations panic on programmer errors (mismatched shapes, wrong dtype),
// as gonum does, with a message naming the op and the shapes. Functions that
// read files or user data return errors instead.
package tensor

import (
	"fmt"
	"strings"
)

// Tensor is an n-dimensional array. The zero value is an empty float32
// tensor of shape [0].
type Tensor struct {
	dtype DType
	shape []int
	// dims holds shape when it has at most 4 dimensions, so that wrapping
	// data in a tensor is one allocation.
	dims [4]int

	f32 []float32
	i8  []int8
	u8  []uint8
	i32 []int32
	i64 []int64
	b   []bool

	qparams *QParams

	// autograd slots, managed by package autograd.
	requiresGrad bool
	grad         *Tensor
	gradFn       GradFn
	name         string
}

// GradFn is the autograd record of the operation that produced a tensor.
// Package autograd implements it; tensor only stores it.
type GradFn interface {
	// Name is the operation's name, e.g. "AddBackward".
	Name() string
}

// New returns a zero-filled tensor of the given dtype and shape.
func New(dtype DType, shape ...int) *Tensor {
	n := checkShape("New", shape)
	t := &Tensor{dtype: dtype}
	t.setShape(shape)
	switch dtype.Storage() {
	case Float32:
		t.f32 = make([]float32, n)
	case Int8:
		t.i8 = make([]int8, n)
	case Uint8:
		t.u8 = make([]uint8, n)
	case Int32:
		t.i32 = make([]int32, n)
	case Int64:
		t.i64 = make([]int64, n)
	case Bool:
		t.b = make([]bool, n)
	default:
		panic(fmt.Sprintf("tensor: New: unknown dtype %v", dtype))
	}
	return t
}

func checkShape(op string, shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("tensor: %s: negative dimension in shape %v", op, shape))
		}
		n *= d
	}
	return n
}

func wrapCheck(op string, n int, shape []int) {
	if m := checkShape(op, shape); m != n {
		panic(fmt.Sprintf("tensor: %s: %d elements do not fill shape %v (%d)", op, n, shape, m))
	}
}

// setShape stores a copy of shape, in t.dims when it fits.
func (t *Tensor) setShape(shape []int) {
	if len(shape) <= len(t.dims) {
		t.shape = t.dims[:len(shape):len(shape)]
		copy(t.shape, shape)
		return
	}
	t.shape = append([]int{}, shape...)
}

// FromFloat32 wraps data (not copied) as a float32 tensor. With no shape
// it is one-dimensional.
func FromFloat32(data []float32, shape ...int) *Tensor {
	if len(shape) == 0 {
		shape = []int{len(data)}
	}
	wrapCheck("FromFloat32", len(data), shape)
	t := &Tensor{dtype: Float32, f32: data}
	t.setShape(shape)
	return t
}

// FromInt64 wraps data (not copied) as an int64 tensor.
func FromInt64(data []int64, shape ...int) *Tensor {
	if len(shape) == 0 {
		shape = []int{len(data)}
	}
	wrapCheck("FromInt64", len(data), shape)
	t := &Tensor{dtype: Int64, i64: data}
	t.setShape(shape)
	return t
}

// FromInt32 wraps data (not copied) as an int32 tensor.
func FromInt32(data []int32, shape ...int) *Tensor {
	if len(shape) == 0 {
		shape = []int{len(data)}
	}
	wrapCheck("FromInt32", len(data), shape)
	t := &Tensor{dtype: Int32, i32: data}
	t.setShape(shape)
	return t
}

// FromInt8 wraps data (not copied) as an int8 tensor.
func FromInt8(data []int8, shape ...int) *Tensor {
	if len(shape) == 0 {
		shape = []int{len(data)}
	}
	wrapCheck("FromInt8", len(data), shape)
	t := &Tensor{dtype: Int8, i8: data}
	t.setShape(shape)
	return t
}

// FromUint8 wraps data (not copied) as a uint8 tensor.
func FromUint8(data []uint8, shape ...int) *Tensor {
	if len(shape) == 0 {
		shape = []int{len(data)}
	}
	wrapCheck("FromUint8", len(data), shape)
	t := &Tensor{dtype: Uint8, u8: data}
	t.setShape(shape)
	return t
}

// FromBool wraps data (not copied) as a bool tensor.
func FromBool(data []bool, shape ...int) *Tensor {
	if len(shape) == 0 {
		shape = []int{len(data)}
	}
	wrapCheck("FromBool", len(data), shape)
	t := &Tensor{dtype: Bool, b: data}
	t.setShape(shape)
	return t
}

// NewQuantized wraps integer storage as a quantized tensor. data must be
// []int8 for QInt8, []uint8 for QUInt8 or []int32 for QInt32.
func NewQuantized(dtype DType, data any, q *QParams, shape ...int) *Tensor {
	t := &Tensor{dtype: dtype, qparams: q}
	switch d := data.(type) {
	case []int8:
		if dtype != QInt8 {
			panic("tensor: NewQuantized: []int8 storage needs QInt8, got " + dtype.String())
		}
		t.i8 = d
		wrapCheck("NewQuantized", len(d), shape)
		t.setShape(shape)
	case []uint8:
		if dtype != QUInt8 {
			panic("tensor: NewQuantized: []uint8 storage needs QUInt8, got " + dtype.String())
		}
		t.u8 = d
		wrapCheck("NewQuantized", len(d), shape)
		t.setShape(shape)
	case []int32:
		if dtype != QInt32 {
			panic("tensor: NewQuantized: []int32 storage needs QInt32, got " + dtype.String())
		}
		t.i32 = d
		wrapCheck("NewQuantized", len(d), shape)
		t.setShape(shape)
	default:
		panic(fmt.Sprintf("tensor: NewQuantized: unsupported storage %T", data))
	}
	return t
}

// Scalar returns a 0-dimensional float32 tensor holding v.
func Scalar(v float32) *Tensor { return &Tensor{dtype: Float32, shape: []int{}, f32: []float32{v}} }

// Zeros returns a float32 tensor of zeros.
func Zeros(shape ...int) *Tensor { return New(Float32, shape...) }

// Ones returns a float32 tensor of ones.
func Ones(shape ...int) *Tensor { return Full(1, shape...) }

// Full returns a float32 tensor filled with v.
func Full(v float32, shape ...int) *Tensor {
	t := New(Float32, shape...)
	for i := range t.f32 {
		t.f32[i] = v
	}
	return t
}

// ZerosLike returns zeros with t's dtype and shape.
func ZerosLike(t *Tensor) *Tensor { return New(t.dtype, t.shape...) }

// Arange returns the float32 values start, start+step, ... below end.
func Arange(start, end, step float32) *Tensor {
	if step == 0 {
		panic("tensor: Arange: step is 0")
	}
	var v []float32
	for x := start; (step > 0 && x < end) || (step < 0 && x > end); x += step {
		v = append(v, x)
	}
	return FromFloat32(v)
}

// DType returns the element type.
func (t *Tensor) DType() DType { return t.dtype }

// Shape returns the dimensions. The slice is shared: do not modify it.
func (t *Tensor) Shape() []int {
	if t.shape == nil && t.f32 == nil && t.i8 == nil && t.u8 == nil && t.i32 == nil && t.i64 == nil && t.b == nil {
		return []int{0} // the zero Tensor: empty float32 of shape [0]
	}
	return t.shape
}

// NDim returns the number of dimensions.
func (t *Tensor) NDim() int { return len(t.Shape()) }

// Dim returns the size of dimension i; negative i counts from the end.
func (t *Tensor) Dim(i int) int { return t.Shape()[t.axis("Dim", i)] }

// Numel returns the number of elements.
func (t *Tensor) Numel() int {
	n := 1
	for _, d := range t.Shape() {
		n *= d
	}
	return n
}

// Axis normalizes a possibly negative axis for this tensor, panicking when
// it is out of range.
func (t *Tensor) Axis(i int) int { return t.axis("Axis", i) }

func (t *Tensor) axis(op string, i int) int {
	n := t.NDim()
	if i < 0 {
		i += n
	}
	if i < 0 || i >= n {
		panic(fmt.Sprintf("tensor: %s: axis %d out of range for shape %v", op, i, t.Shape()))
	}
	return i
}

// Strides returns row-major element strides.
func (t *Tensor) Strides() []int { return Strides(t.Shape()) }

// Strides returns the row-major element strides of shape.
func Strides(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}

// SameShape reports whether a and b have equal shapes.
func SameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (t *Tensor) need(op string, d DType) {
	if t.dtype.Storage() != d {
		panic(fmt.Sprintf("tensor: %s: tensor is %v, want %v storage", op, t.dtype, d))
	}
}

// F32 returns the float32 storage (shared). It panics for other dtypes.
func (t *Tensor) F32() []float32 { t.need("F32", Float32); return t.f32 }

// I8 returns the int8 storage (Int8 and QInt8).
func (t *Tensor) I8() []int8 { t.need("I8", Int8); return t.i8 }

// U8 returns the uint8 storage (Uint8 and QUInt8).
func (t *Tensor) U8() []uint8 { t.need("U8", Uint8); return t.u8 }

// I32 returns the int32 storage (Int32 and QInt32).
func (t *Tensor) I32() []int32 { t.need("I32", Int32); return t.i32 }

// I64 returns the int64 storage.
func (t *Tensor) I64() []int64 { t.need("I64", Int64); return t.i64 }

// Bools returns the bool storage.
func (t *Tensor) Bools() []bool { t.need("Bools", Bool); return t.b }

// QParams returns the quantization parameters of a quantized tensor (nil
// for other dtypes).
func (t *Tensor) QParams() *QParams { return t.qparams }

// SetQParams sets the quantization parameters.
func (t *Tensor) SetQParams(q *QParams) { t.qparams = q }

// Item returns the single element of a one-element tensor as float64.
func (t *Tensor) Item() float64 {
	if t.Numel() != 1 {
		panic(fmt.Sprintf("tensor: Item: tensor of shape %v has %d elements", t.Shape(), t.Numel()))
	}
	return t.At()
}

// At returns the element at the given indices as float64 (the flat index 0
// when no indices are given). Quantized tensors return the integer value.
func (t *Tensor) At(idx ...int) float64 {
	off := 0
	if len(idx) > 0 {
		off = t.offset("At", idx)
	}
	switch t.dtype.Storage() {
	case Float32:
		return float64(t.f32[off])
	case Int8:
		return float64(t.i8[off])
	case Uint8:
		return float64(t.u8[off])
	case Int32:
		return float64(t.i32[off])
	case Int64:
		return float64(t.i64[off])
	case Bool:
		if t.b[off] {
			return 1
		}
		return 0
	}
	panic("tensor: At: bad dtype")
}

// Set stores v (converted to the dtype) at the given indices.
func (t *Tensor) Set(v float64, idx ...int) {
	off := t.offset("Set", idx)
	switch t.dtype.Storage() {
	case Float32:
		t.f32[off] = float32(v)
	case Int8:
		t.i8[off] = int8(v)
	case Uint8:
		t.u8[off] = uint8(v)
	case Int32:
		t.i32[off] = int32(v)
	case Int64:
		t.i64[off] = int64(v)
	case Bool:
		t.b[off] = v != 0
	}
}

func (t *Tensor) offset(op string, idx []int) int {
	sh := t.Shape()
	if len(idx) != len(sh) {
		panic(fmt.Sprintf("tensor: %s: %d indices for shape %v", op, len(idx), sh))
	}
	off := 0
	for i, x := range idx {
		if x < 0 || x >= sh[i] {
			panic(fmt.Sprintf("tensor: %s: index %v out of range for shape %v", op, idx, sh))
		}
		off = off*sh[i] + x
	}
	return off
}

// Clone returns a deep copy of the values (not the autograd state).
func (t *Tensor) Clone() *Tensor {
	c := &Tensor{dtype: t.dtype, shape: append([]int{}, t.Shape()...), qparams: t.qparams.Clone()}
	c.f32 = append([]float32(nil), t.f32...)
	c.i8 = append([]int8(nil), t.i8...)
	c.u8 = append([]uint8(nil), t.u8...)
	c.i32 = append([]int32(nil), t.i32...)
	c.i64 = append([]int64(nil), t.i64...)
	c.b = append([]bool(nil), t.b...)
	if c.dtype.Storage() == Float32 && c.f32 == nil {
		c.f32 = []float32{}
	}
	return c
}

// CopyFrom copies src's values into t; dtypes and element counts must match.
func (t *Tensor) CopyFrom(src *Tensor) {
	if t.dtype != src.dtype || t.Numel() != src.Numel() {
		panic(fmt.Sprintf("tensor: CopyFrom: %v%v from %v%v", t.dtype, t.Shape(), src.dtype, src.Shape()))
	}
	copy(t.f32, src.f32)
	copy(t.i8, src.i8)
	copy(t.u8, src.u8)
	copy(t.i32, src.i32)
	copy(t.i64, src.i64)
	copy(t.b, src.b)
	t.qparams = src.qparams.Clone()
}

// Reshape returns a tensor sharing t's storage with a new shape. One
// dimension may be -1 and is inferred.
func (t *Tensor) Reshape(shape ...int) *Tensor {
	shape = InferShape(t.Numel(), shape, "Reshape")
	c := *t
	c.shape = shape
	c.requiresGrad, c.grad, c.gradFn, c.name = false, nil, nil, ""
	return &c
}

// InferShape resolves one -1 dimension so shape holds n elements.
func InferShape(n int, shape []int, op string) []int {
	shape = append([]int{}, shape...)
	neg, prod := -1, 1
	for i, d := range shape {
		if d == -1 {
			if neg >= 0 {
				panic(fmt.Sprintf("tensor: %s: more than one -1 in %v", op, shape))
			}
			neg = i
			continue
		}
		if d < 0 {
			panic(fmt.Sprintf("tensor: %s: bad dimension in %v", op, shape))
		}
		prod *= d
	}
	if neg >= 0 {
		if prod == 0 || n%prod != 0 {
			panic(fmt.Sprintf("tensor: %s: cannot infer -1 in %v for %d elements", op, shape, n))
		}
		shape[neg] = n / prod
		prod = n
	}
	if prod != n {
		panic(fmt.Sprintf("tensor: %s: shape %v does not hold %d elements", op, shape, n))
	}
	return shape
}

// Detach returns a tensor sharing t's storage with no autograd history.
func (t *Tensor) Detach() *Tensor {
	c := *t
	c.requiresGrad, c.grad, c.gradFn = false, nil, nil
	return &c
}

// RequiresGrad reports whether gradients flow to or through t.
func (t *Tensor) RequiresGrad() bool { return t.requiresGrad }

// SetRequiresGrad marks a leaf tensor (a parameter) as needing gradients.
// It returns t for chaining.
func (t *Tensor) SetRequiresGrad(v bool) *Tensor { t.requiresGrad = v; return t }

// Grad returns the accumulated gradient of a leaf (nil before Backward).
func (t *Tensor) Grad() *Tensor { return t.grad }

// SetGrad replaces the accumulated gradient (nil clears it).
func (t *Tensor) SetGrad(g *Tensor) { t.grad = g }

// GradFn returns the autograd record of the op that produced t (nil for
// leaves and for tensors made without grad tracking).
func (t *Tensor) GradFn() GradFn { return t.gradFn }

// SetGradFn is used by package autograd to attach history to an op output.
func (t *Tensor) SetGradFn(f GradFn) { t.gradFn = f; t.requiresGrad = f != nil || t.requiresGrad }

// IsLeaf reports whether t has no autograd history.
func (t *Tensor) IsLeaf() bool { return t.gradFn == nil }

// Name returns an optional name (parameters carry their dotted path).
func (t *Tensor) Name() string { return t.name }

// SetName sets the optional name.
func (t *Tensor) SetName(n string) { t.name = n }

// String prints dtype, shape and up to 8 values.
func (t *Tensor) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "tensor(%v%v", t.dtype, t.Shape())
	n := t.Numel()
	m := n
	if m > 8 {
		m = 8
	}
	sb.WriteString(" [")
	for i := 0; i < m; i++ {
		if i > 0 {
			sb.WriteString(" ")
		}
		fmt.Fprintf(&sb, "%.6g", t.flat(i))
	}
	if n > m {
		sb.WriteString(" ...")
	}
	sb.WriteString("])")
	return sb.String()
}

func (t *Tensor) flat(i int) float64 {
	switch t.dtype.Storage() {
	case Float32:
		return float64(t.f32[i])
	case Int8:
		return float64(t.i8[i])
	case Uint8:
		return float64(t.u8[i])
	case Int32:
		return float64(t.i32[i])
	case Int64:
		return float64(t.i64[i])
	case Bool:
		if t.b[i] {
			return 1
		}
	}
	return 0
}

// Float64s returns the elements converted to float64 (a copy).
func (t *Tensor) Float64s() []float64 {
	out := make([]float64, t.Numel())
	for i := range out {
		out[i] = t.flat(i)
	}
	return out
}
