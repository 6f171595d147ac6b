package tensor

import (
	"fmt"
	"math"
)

// ewNum are the element types of arithmetic ops.
type ewNum interface {
	~float32 | ~int32 | ~int64
}

// ewOp names a binary arithmetic kernel.
type ewOp uint8

const (
	ewAdd ewOp = iota
	ewSub
	ewMul
	ewDiv
	ewMax
	ewMin
)

var ewOpNames = [...]string{"Add", "Sub", "Mul", "Div", "Maximum", "Minimum"}

// ewArithVV computes d[i] = a[i] op b[i].
func ewArithVV[T ewNum](op ewOp, d, a, b []T) {
	a, b = a[:len(d)], b[:len(d)]
	switch op {
	case ewAdd:
		for i := range d {
			d[i] = a[i] + b[i]
		}
	case ewSub:
		for i := range d {
			d[i] = a[i] - b[i]
		}
	case ewMul:
		for i := range d {
			d[i] = a[i] * b[i]
		}
	case ewDiv:
		for i := range d {
			d[i] = a[i] / b[i]
		}
	case ewMax:
		for i := range d {
			d[i] = ewMaxOf(a[i], b[i])
		}
	case ewMin:
		for i := range d {
			d[i] = ewMinOf(a[i], b[i])
		}
	}
}

// ewArithVS computes d[i] = a[i] op s.
func ewArithVS[T ewNum](op ewOp, d, a []T, s T) {
	a = a[:len(d)]
	switch op {
	case ewAdd:
		for i := range d {
			d[i] = a[i] + s
		}
	case ewSub:
		for i := range d {
			d[i] = a[i] - s
		}
	case ewMul:
		for i := range d {
			d[i] = a[i] * s
		}
	case ewDiv:
		for i := range d {
			d[i] = a[i] / s
		}
	case ewMax:
		for i := range d {
			d[i] = ewMaxOf(a[i], s)
		}
	case ewMin:
		for i := range d {
			d[i] = ewMinOf(a[i], s)
		}
	}
}

// ewArithSV computes d[i] = s op b[i].
func ewArithSV[T ewNum](op ewOp, d []T, s T, b []T) {
	b = b[:len(d)]
	switch op {
	case ewAdd:
		for i := range d {
			d[i] = s + b[i]
		}
	case ewSub:
		for i := range d {
			d[i] = s - b[i]
		}
	case ewMul:
		for i := range d {
			d[i] = s * b[i]
		}
	case ewDiv:
		for i := range d {
			d[i] = s / b[i]
		}
	case ewMax:
		for i := range d {
			d[i] = ewMaxOf(s, b[i])
		}
	case ewMin:
		for i := range d {
			d[i] = ewMinOf(s, b[i])
		}
	}
}

// ewMaxOf is torch.maximum for one pair: NaN in either operand propagates.
func ewMaxOf[T ewNum](x, y T) T {
	if x < y || y != y {
		return y
	}
	return x
}

// ewMinOf is torch.minimum for one pair: NaN in either operand propagates.
func ewMinOf[T ewNum](x, y T) T {
	if y < x || y != y {
		return y
	}
	return x
}

func ewArith[T ewNum](op ewOp, out []int, d, a, b []T, as, bs []int) {
	ewBroadcast2(out, as, bs, d, a, b,
		func(d, a, b []T) { ewArithVV(op, d, a, b) },
		func(d, a []T, s T) { ewArithVS(op, d, a, s) },
		func(d []T, s T, b []T) { ewArithSV(op, d, s, b) })
}

// ewBinary checks dtypes and shapes and runs an arithmetic op.
func ewBinary(op ewOp, a, b *Tensor) *Tensor {
	name := ewOpNames[op]
	if a.dtype != b.dtype {
		panic(fmt.Sprintf("tensor: %s: dtype mismatch %v%v and %v%v", name, a.dtype, a.Shape(), b.dtype, b.Shape()))
	}
	as, bs := a.Shape(), b.Shape()
	var shape []int
	if SameShape(as, bs) {
		shape = as
	} else {
		shape = ewBroadcastShape(name, as, bs)
	}
	out := ewNew(a.dtype, shape)
	switch {
	case a.dtype == Float32:
		ewArith(op, shape, out.f32, a.f32, b.f32, as, bs)
	case a.dtype == Int64 && op != ewDiv:
		ewArith(op, shape, out.i64, a.i64, b.i64, as, bs)
	case a.dtype == Int32 && op != ewDiv:
		ewArith(op, shape, out.i32, a.i32, b.i32, as, bs)
	default:
		panic(fmt.Sprintf("tensor: %s: unsupported dtype %v (shapes %v and %v)", name, a.dtype, as, bs))
	}
	return out
}

// Add returns a + b with NumPy broadcasting. Both operands must have the
// same dtype: float32, int32 or int64.
func Add(a, b *Tensor) *Tensor { return ewBinary(ewAdd, a, b) }

// Sub returns a - b with broadcasting (float32, int32 or int64).
func Sub(a, b *Tensor) *Tensor { return ewBinary(ewSub, a, b) }

// Mul returns a * b elementwise with broadcasting (float32, int32 or int64).
func Mul(a, b *Tensor) *Tensor { return ewBinary(ewMul, a, b) }

// Div returns a / b elementwise with broadcasting (float32 only; Cast
// integer tensors first, as torch's true division does).
func Div(a, b *Tensor) *Tensor { return ewBinary(ewDiv, a, b) }

// Maximum returns the elementwise maximum with broadcasting
// (torch.maximum: NaN propagates). float32, int32 or int64.
func Maximum(a, b *Tensor) *Tensor { return ewBinary(ewMax, a, b) }

// Minimum returns the elementwise minimum with broadcasting
// (torch.minimum: NaN propagates). float32, int32 or int64.
func Minimum(a, b *Tensor) *Tensor { return ewBinary(ewMin, a, b) }

// ewPow is float32(pow(float64(x), float64(y))).
func ewPow(x, y float32) float32 { return float32(math.Pow(float64(x), float64(y))) }

// Pow returns a raised to b elementwise with broadcasting (float32),
// computed in float64 and rounded once.
func Pow(a, b *Tensor) *Tensor {
	a.need("Pow", Float32)
	b.need("Pow", Float32)
	as, bs := a.Shape(), b.Shape()
	shape := ewBroadcastShape("Pow", as, bs)
	out := New(Float32, shape...)
	ewBroadcast2(shape, as, bs, out.f32, a.f32, b.f32,
		func(d, a, b []float32) {
			b = b[:len(a)]
			for i := range d {
				d[i] = ewPow(a[i], b[i])
			}
		},
		func(d, a []float32, s float32) { ewPowScalar(d, a, s) },
		func(d []float32, s float32, b []float32) {
			for i := range d {
				d[i] = ewPow(s, b[i])
			}
		})
	return out
}

// ewPowScalar computes d[i] = a[i]**p, with the exponents 1, 2, 0.5 and -1
// done by exact float32 arithmetic (as a correctly rounded pow would).
func ewPowScalar(d, a []float32, p float32) {
	a = a[:len(d)]
	switch p {
	case 1:
		copy(d, a)
	case 2:
		for i := range d {
			d[i] = a[i] * a[i]
		}
	case 0.5:
		for i := range d {
			d[i] = float32(math.Sqrt(float64(a[i])))
		}
	case -1:
		for i := range d {
			d[i] = 1 / a[i]
		}
	default:
		for i := range d {
			d[i] = ewPow(a[i], p)
		}
	}
}

// PowScalar returns t**p elementwise (float32).
func PowScalar(t *Tensor, p float32) *Tensor {
	t.need("PowScalar", Float32)
	out := New(Float32, t.Shape()...)
	ewPowScalar(out.f32, t.f32, p)
	return out
}

// AddScalar returns t + s (float32).
func AddScalar(t *Tensor, s float32) *Tensor {
	t.need("AddScalar", Float32)
	out := New(Float32, t.Shape()...)
	ewArithVS(ewAdd, out.f32, t.f32, s)
	return out
}

// MulScalar returns t * s (float32).
func MulScalar(t *Tensor, s float32) *Tensor {
	t.need("MulScalar", Float32)
	out := New(Float32, t.Shape()...)
	ewArithVS(ewMul, out.f32, t.f32, s)
	return out
}

// AddInPlace adds src, broadcast to dst's shape, into dst (float32) and
// returns dst.
func AddInPlace(dst, src *Tensor) *Tensor {
	dst.need("AddInPlace", Float32)
	src.need("AddInPlace", Float32)
	ds, ss := dst.Shape(), src.Shape()
	if b, err := BroadcastShapes(ds, ss); err != nil || !SameShape(b, ds) {
		panic(fmt.Sprintf("tensor: AddInPlace: cannot add shape %v into %v", ss, ds))
	}
	ewArith(ewAdd, ds, dst.f32, dst.f32, src.f32, ds, ss)
	return dst
}

// AddScaledInPlace computes dst += alpha*src for same-shape float32
// tensors (BLAS axpy) and returns dst.
func AddScaledInPlace(dst, src *Tensor, alpha float32) *Tensor {
	dst.need("AddScaledInPlace", Float32)
	src.need("AddScaledInPlace", Float32)
	if !SameShape(dst.Shape(), src.Shape()) {
		panic(fmt.Sprintf("tensor: AddScaledInPlace: shapes %v and %v differ", dst.Shape(), src.Shape()))
	}
	d := dst.f32
	s := src.f32[:len(d)]
	for i := range d {
		d[i] += alpha * s[i]
	}
	return dst
}

// ScaleInPlace multiplies t (float32) by s in place and returns t.
func ScaleInPlace(t *Tensor, s float32) *Tensor {
	t.need("ScaleInPlace", Float32)
	ewArithVS(ewMul, t.f32, t.f32, s)
	return t
}

// Map returns f applied to every element of the float32 tensor t.
func Map(t *Tensor, f func(float32) float32) *Tensor {
	t.need("Map", Float32)
	out := New(Float32, t.Shape()...)
	d := out.f32
	for i, v := range t.f32 {
		d[i] = f(v)
	}
	return out
}

// ewMap64 applies a float64 function to every element of a float32 tensor,
// rounding each result once to float32.
func ewMap64(op string, t *Tensor, f func(float64) float64) *Tensor {
	t.need(op, Float32)
	out := New(Float32, t.Shape()...)
	d := out.f32
	for i, v := range t.f32 {
		d[i] = float32(f(float64(v)))
	}
	return out
}

// Neg returns -t (float32, int32 or int64).
func Neg(t *Tensor) *Tensor {
	out := ewNew(t.dtype, t.Shape())
	switch t.dtype {
	case Float32:
		d := out.f32
		for i, v := range t.f32 {
			d[i] = -v
		}
	case Int32:
		ewArithSV(ewSub, out.i32, 0, t.i32)
	case Int64:
		ewArithSV(ewSub, out.i64, 0, t.i64)
	default:
		panic(fmt.Sprintf("tensor: Neg: unsupported dtype %v%v", t.dtype, t.Shape()))
	}
	return out
}

// Abs returns |t| (float32, int32 or int64).
func Abs(t *Tensor) *Tensor {
	out := ewNew(t.dtype, t.Shape())
	switch t.dtype {
	case Float32:
		for i, v := range t.f32 {
			out.f32[i] = math.Float32frombits(math.Float32bits(v) &^ (1 << 31))
		}
	case Int32:
		for i, v := range t.i32 {
			out.i32[i] = max(v, -v)
		}
	case Int64:
		for i, v := range t.i64 {
			out.i64[i] = max(v, -v)
		}
	default:
		panic(fmt.Sprintf("tensor: Abs: unsupported dtype %v%v", t.dtype, t.Shape()))
	}
	return out
}

// Exp returns e**t elementwise (float32).
func Exp(t *Tensor) *Tensor { return ewMap64("Exp", t, math.Exp) }

// Log returns the natural logarithm elementwise (float32).
func Log(t *Tensor) *Tensor { return ewMap64("Log", t, math.Log) }

// ewRound names the cheap float64 intrinsics ewIntrinsic runs inline.
type ewRound uint8

const (
	ewSqrt ewRound = iota
	ewRsqrt
	ewFloor
	ewCeil
	ewRoundEven
)

// ewIntrinsic applies a function the compiler turns into one or two
// instructions, with the call written out so that it is inlined.
func ewIntrinsic(op string, k ewRound, t *Tensor) *Tensor {
	t.need(op, Float32)
	out := New(Float32, t.Shape()...)
	d := out.f32
	s := t.f32[:len(d)]
	switch k {
	case ewSqrt:
		for i := range d {
			d[i] = float32(math.Sqrt(float64(s[i])))
		}
	case ewRsqrt:
		for i := range d {
			d[i] = float32(1 / math.Sqrt(float64(s[i])))
		}
	case ewFloor:
		for i := range d {
			d[i] = float32(math.Floor(float64(s[i])))
		}
	case ewCeil:
		for i := range d {
			d[i] = float32(math.Ceil(float64(s[i])))
		}
	case ewRoundEven:
		for i := range d {
			d[i] = float32(math.RoundToEven(float64(s[i])))
		}
	}
	return out
}

// Sqrt returns the square root elementwise (float32).
func Sqrt(t *Tensor) *Tensor { return ewIntrinsic("Sqrt", ewSqrt, t) }

// Rsqrt returns 1/sqrt(t) elementwise (float32), rounded once from float64.
func Rsqrt(t *Tensor) *Tensor { return ewIntrinsic("Rsqrt", ewRsqrt, t) }

// Reciprocal returns 1/t elementwise (float32).
func Reciprocal(t *Tensor) *Tensor {
	t.need("Reciprocal", Float32)
	out := New(Float32, t.Shape()...)
	ewArithSV(ewDiv, out.f32, 1, t.f32)
	return out
}

// Sin returns the sine elementwise (float32).
func Sin(t *Tensor) *Tensor { return ewMap64("Sin", t, math.Sin) }

// Cos returns the cosine elementwise (float32).
func Cos(t *Tensor) *Tensor { return ewMap64("Cos", t, math.Cos) }

// Erf returns the error function elementwise (float32).
func Erf(t *Tensor) *Tensor { return ewMap64("Erf", t, math.Erf) }

// Tanh returns the hyperbolic tangent elementwise (float32).
func Tanh(t *Tensor) *Tensor { return ewMap64("Tanh", t, math.Tanh) }

// Sigmoid returns 1/(1+exp(-t)) elementwise (float32).
func Sigmoid(t *Tensor) *Tensor {
	return ewMap64("Sigmoid", t, func(x float64) float64 { return 1 / (1 + math.Exp(-x)) })
}

// ReLU returns max(t, 0) elementwise (float32); NaN propagates.
func ReLU(t *Tensor) *Tensor {
	t.need("ReLU", Float32)
	out := New(Float32, t.Shape()...)
	d := out.f32
	s := t.f32[:len(d)]
	for i := range d {
		d[i] = max(s[i], 0) // NaN propagates; -0 gives +0
	}
	return out
}

// Sign returns -1, 0 or 1 by the sign of each element (float32); NaN gives
// 0 and -0 gives 0, as torch.sign.
func Sign(t *Tensor) *Tensor {
	t.need("Sign", Float32)
	out := New(Float32, t.Shape()...)
	d := out.f32
	for i, v := range t.f32 {
		switch {
		case v > 0:
			d[i] = 1
		case v < 0:
			d[i] = -1
		}
	}
	return out
}

// Floor rounds toward -Inf elementwise (float32).
func Floor(t *Tensor) *Tensor { return ewIntrinsic("Floor", ewFloor, t) }

// Ceil rounds toward +Inf elementwise (float32).
func Ceil(t *Tensor) *Tensor { return ewIntrinsic("Ceil", ewCeil, t) }

// Round rounds to the nearest integer, halves to even, elementwise
// (float32), as torch.round.
func Round(t *Tensor) *Tensor { return ewIntrinsic("Round", ewRoundEven, t) }

// Clamp limits t (float32) to [lo, hi] as torch.clamp: min(max(x, lo), hi),
// so every element is hi when lo > hi, and NaN propagates.
func Clamp(t *Tensor, lo, hi float32) *Tensor {
	t.need("Clamp", Float32)
	out := New(Float32, t.Shape()...)
	d := out.f32
	s := t.f32[:len(d)]
	for i := range d {
		d[i] = min(max(s[i], lo), hi) // NaN propagates
	}
	return out
}
