package tensor

import (
	"fmt"
	"math"
)

// ewOrdered are the element types comparisons and casts handle.
type ewOrdered interface {
	~float32 | ~int8 | ~uint8 | ~int32 | ~int64
}

// ewCmp names a comparison.
type ewCmp uint8

const (
	ewEq ewCmp = iota
	ewGt
	ewLt
	ewGe
	ewLe
)

var ewCmpNames = [...]string{"Equal", "Greater", "Less", "GreaterEqual", "LessEqual"}

func ewCmpVV[T ewOrdered](c ewCmp, d []bool, a, b []T) {
	a, b = a[:len(d)], b[:len(d)]
	switch c {
	case ewEq:
		for i := range d {
			d[i] = a[i] == b[i]
		}
	case ewGt:
		for i := range d {
			d[i] = a[i] > b[i]
		}
	case ewLt:
		for i := range d {
			d[i] = a[i] < b[i]
		}
	case ewGe:
		for i := range d {
			d[i] = a[i] >= b[i]
		}
	case ewLe:
		for i := range d {
			d[i] = a[i] <= b[i]
		}
	}
}

func ewCmpVS[T ewOrdered](c ewCmp, d []bool, a []T, s T) {
	a = a[:len(d)]
	switch c {
	case ewEq:
		for i := range d {
			d[i] = a[i] == s
		}
	case ewGt:
		for i := range d {
			d[i] = a[i] > s
		}
	case ewLt:
		for i := range d {
			d[i] = a[i] < s
		}
	case ewGe:
		for i := range d {
			d[i] = a[i] >= s
		}
	case ewLe:
		for i := range d {
			d[i] = a[i] <= s
		}
	}
}

// ewSwapCmp returns the comparison c' with (s c b) == (b c' s).
func ewSwapCmp(c ewCmp) ewCmp {
	switch c {
	case ewGt:
		return ewLt
	case ewLt:
		return ewGt
	case ewGe:
		return ewLe
	case ewLe:
		return ewGe
	}
	return c
}

func ewCompareT[T ewOrdered](c ewCmp, out []int, d []bool, a, b []T, as, bs []int) {
	sw := ewSwapCmp(c)
	ewBroadcast2(out, as, bs, d, a, b,
		func(d []bool, a, b []T) { ewCmpVV(c, d, a, b) },
		func(d []bool, a []T, s T) { ewCmpVS(c, d, a, s) },
		func(d []bool, s T, b []T) { ewCmpVS(sw, d, b, s) })
}

func ewCompare(c ewCmp, a, b *Tensor) *Tensor {
	name := ewCmpNames[c]
	if a.dtype != b.dtype {
		panic(fmt.Sprintf("tensor: %s: dtype mismatch %v%v and %v%v", name, a.dtype, a.Shape(), b.dtype, b.Shape()))
	}
	as, bs := a.Shape(), b.Shape()
	shape := ewBroadcastShape(name, as, bs)
	out := ewNew(Bool, shape)
	d := out.b
	switch a.dtype {
	case Float32:
		ewCompareT(c, shape, d, a.f32, b.f32, as, bs)
	case Int8:
		ewCompareT(c, shape, d, a.i8, b.i8, as, bs)
	case Uint8:
		ewCompareT(c, shape, d, a.u8, b.u8, as, bs)
	case Int32:
		ewCompareT(c, shape, d, a.i32, b.i32, as, bs)
	case Int64:
		ewCompareT(c, shape, d, a.i64, b.i64, as, bs)
	case Bool:
		if c != ewEq {
			panic(fmt.Sprintf("tensor: %s: unsupported dtype bool", name))
		}
		ewBoolBinary(shape, d, a.b, b.b, as, bs, func(x, y bool) bool { return x == y })
	default:
		panic(fmt.Sprintf("tensor: %s: unsupported dtype %v (shapes %v and %v)", name, a.dtype, as, bs))
	}
	return out
}

// Equal returns the Bool tensor a == b with broadcasting. Operands have the
// same dtype (any non-quantized dtype). NaN is not equal to itself.
func Equal(a, b *Tensor) *Tensor { return ewCompare(ewEq, a, b) }

// Greater returns the Bool tensor a > b with broadcasting.
func Greater(a, b *Tensor) *Tensor { return ewCompare(ewGt, a, b) }

// Less returns the Bool tensor a < b with broadcasting.
func Less(a, b *Tensor) *Tensor { return ewCompare(ewLt, a, b) }

// GreaterEqual returns the Bool tensor a >= b with broadcasting.
func GreaterEqual(a, b *Tensor) *Tensor { return ewCompare(ewGe, a, b) }

// LessEqual returns the Bool tensor a <= b with broadcasting.
func LessEqual(a, b *Tensor) *Tensor { return ewCompare(ewLe, a, b) }

// ewBoolBinary runs a bool function with broadcasting. Boolean ops are
// rare, so one call per element is fine.
func ewBoolBinary(shape []int, d, a, b []bool, as, bs []int, f func(x, y bool) bool) {
	ewBroadcast2(shape, as, bs, d, a, b,
		func(d, a, b []bool) {
			for i := range d {
				d[i] = f(a[i], b[i])
			}
		},
		func(d, a []bool, s bool) {
			for i := range d {
				d[i] = f(a[i], s)
			}
		},
		func(d []bool, s bool, b []bool) {
			for i := range d {
				d[i] = f(s, b[i])
			}
		})
}

func ewLogical(name string, a, b *Tensor, f func(x, y bool) bool) *Tensor {
	a.need(name, Bool)
	b.need(name, Bool)
	as, bs := a.Shape(), b.Shape()
	shape := ewBroadcastShape(name, as, bs)
	out := ewNew(Bool, shape)
	ewBoolBinary(shape, out.b, a.b, b.b, as, bs, f)
	return out
}

// LogicalAnd returns a && b for Bool tensors, with broadcasting.
func LogicalAnd(a, b *Tensor) *Tensor {
	return ewLogical("LogicalAnd", a, b, func(x, y bool) bool { return x && y })
}

// LogicalOr returns a || b for Bool tensors, with broadcasting.
func LogicalOr(a, b *Tensor) *Tensor {
	return ewLogical("LogicalOr", a, b, func(x, y bool) bool { return x || y })
}

// LogicalNot returns !t for a Bool tensor.
func LogicalNot(t *Tensor) *Tensor {
	t.need("LogicalNot", Bool)
	out := ewNew(Bool, t.Shape())
	for i, v := range t.b {
		out.b[i] = !v
	}
	return out
}

// ewWhere fills d (shape out) with cond ? a : b, all three broadcast.
func ewWhere[T any](out []int, d []T, cond []bool, a, b []T, cs, as, bs []int) {
	if SameShape(cs, as) && SameShape(cs, bs) {
		a, b = a[:len(cond)], b[:len(cond)]
		for i, c := range cond {
			if c {
				d[i] = a[i]
			} else {
				d[i] = b[i]
			}
		}
		return
	}
	p := newEwPlan(out, cs, as, bs)
	n := p.inner
	sc, sa, sb := p.innerSt[0], p.innerSt[1], p.innerSt[2]
	p.each(func(o int, off []int) {
		row := d[o : o+n]
		oc, oa, ob := off[0], off[1], off[2]
		for i := range row {
			if cond[oc+i*sc] {
				row[i] = a[oa+i*sa]
			} else {
				row[i] = b[ob+i*sb]
			}
		}
	})
}

// Where returns cond ? a : b elementwise (torch.where), with all three
// broadcast together. cond is Bool; a and b share any non-quantized dtype.
func Where(cond, a, b *Tensor) *Tensor {
	cond.need("Where", Bool)
	if a.dtype != b.dtype || a.dtype.IsQuantized() {
		panic(fmt.Sprintf("tensor: Where: dtypes %v%v and %v%v", a.dtype, a.Shape(), b.dtype, b.Shape()))
	}
	cs, as, bs := cond.Shape(), a.Shape(), b.Shape()
	ab, err := BroadcastShapes(as, bs)
	var shape []int
	if err == nil {
		shape, err = BroadcastShapes(cs, ab)
	}
	if err != nil {
		panic(fmt.Sprintf("tensor: Where: shapes %v, %v and %v do not broadcast", cs, as, bs))
	}
	out := ewNew(a.dtype, shape)
	switch a.dtype {
	case Float32:
		ewWhere(shape, out.f32, cond.b, a.f32, b.f32, cs, as, bs)
	case Int8:
		ewWhere(shape, out.i8, cond.b, a.i8, b.i8, cs, as, bs)
	case Uint8:
		ewWhere(shape, out.u8, cond.b, a.u8, b.u8, cs, as, bs)
	case Int32:
		ewWhere(shape, out.i32, cond.b, a.i32, b.i32, cs, as, bs)
	case Int64:
		ewWhere(shape, out.i64, cond.b, a.i64, b.i64, cs, as, bs)
	case Bool:
		ewWhere(shape, out.b, cond.b, a.b, b.b, cs, as, bs)
	}
	return out
}

// ewTrunc converts a float to int64 by truncation toward zero. NaN gives 0
// and values beyond int64's range saturate, so the result never depends on
// the platform.
func ewTrunc(v float32) int64 {
	switch {
	case v != v:
		return 0
	case v >= 9.223372e18:
		return math.MaxInt64
	case v <= -9.223372e18:
		return math.MinInt64
	}
	return int64(v)
}

func ewConvert[S, D ewOrdered](d []D, s []S) {
	s = s[:len(d)]
	for i := range d {
		d[i] = D(s[i])
	}
}

func ewFromFloat[D ewOrdered](d []D, s []float32) {
	s = s[:len(d)]
	for i := range d {
		d[i] = D(ewTrunc(s[i]))
	}
}

func ewToBool[S ewOrdered](d []bool, s []S) {
	s = s[:len(d)]
	for i := range d {
		d[i] = s[i] != 0
	}
}

func ewFromBool[D ewOrdered](d []D, s []bool) {
	s = s[:len(d)]
	for i := range d {
		if s[i] {
			d[i] = 1
		}
	}
}

// ewCastFrom converts integer storage s into r.
func ewCastFrom[S ewOrdered](r *Tensor, s []S) {
	switch r.dtype {
	case Float32:
		ewConvert(r.f32, s)
	case Int8:
		ewConvert(r.i8, s)
	case Uint8:
		ewConvert(r.u8, s)
	case Int32:
		ewConvert(r.i32, s)
	case Int64:
		ewConvert(r.i64, s)
	case Bool:
		ewToBool(r.b, s)
	}
}

// Cast converts t to dtype, like torch's Tensor.to(dtype), between
// float32, int8, uint8, int32, int64 and bool. Float to integer truncates
// toward zero, then wraps to the target width as integer to integer
// conversions do (NaN becomes 0); anything nonzero (including NaN) is true.
// Casting to t's own dtype returns a copy. Quantized dtypes are not
// converted here (quantize or dequantize them instead).
func Cast(t *Tensor, dtype DType) *Tensor {
	if t.dtype.IsQuantized() || dtype.IsQuantized() {
		panic(fmt.Sprintf("tensor: Cast: %v%v to %v: quantized dtypes need quantize/dequantize", t.dtype, t.Shape(), dtype))
	}
	r := ewNew(dtype, t.Shape())
	if t.dtype == dtype {
		r.CopyFrom(t)
		return r
	}
	switch t.dtype {
	case Float32:
		switch dtype {
		case Int8:
			ewFromFloat(r.i8, t.f32)
		case Uint8:
			ewFromFloat(r.u8, t.f32)
		case Int32:
			ewFromFloat(r.i32, t.f32)
		case Int64:
			ewFromFloat(r.i64, t.f32)
		case Bool:
			ewToBool(r.b, t.f32)
		}
	case Int8:
		ewCastFrom(r, t.i8)
	case Uint8:
		ewCastFrom(r, t.u8)
	case Int32:
		ewCastFrom(r, t.i32)
	case Int64:
		ewCastFrom(r, t.i64)
	case Bool:
		switch dtype {
		case Float32:
			ewFromBool(r.f32, t.b)
		case Int8:
			ewFromBool(r.i8, t.b)
		case Uint8:
			ewFromBool(r.u8, t.b)
		case Int32:
			ewFromBool(r.i32, t.b)
		case Int64:
			ewFromBool(r.i64, t.b)
		}
	}
	return r
}

// ewPairF64 returns a's and b's elements as float64, broadcast to a common
// shape, or ok=false when the shapes do not broadcast.
func ewPairF64(a, b *Tensor) (x, y []float64, ok bool) {
	shape, err := BroadcastShapes(a.Shape(), b.Shape())
	if err != nil {
		return nil, nil, false
	}
	if !SameShape(a.Shape(), shape) {
		a = Expand(a, shape...)
	}
	if !SameShape(b.Shape(), shape) {
		b = Expand(b, shape...)
	}
	return a.Float64s(), b.Float64s(), true
}

// AllClose reports whether |a-b| <= atol + rtol*|b| for every element
// (torch.allclose with equal_nan=false): equal infinities are close, NaN
// never is. Shapes must broadcast (otherwise the result is false); dtypes
// may differ.
func AllClose(a, b *Tensor, rtol, atol float64) bool {
	x, y, ok := ewPairF64(a, b)
	if !ok {
		return false
	}
	for i, u := range x {
		v := y[i]
		if u == v {
			continue
		}
		if math.IsNaN(u) || math.IsNaN(v) || math.IsInf(u, 0) || math.IsInf(v, 0) {
			return false
		}
		if math.Abs(u-v) > atol+rtol*math.Abs(v) {
			return false
		}
	}
	return true
}

// MaxAbsDiff returns the largest |a-b| over the elements (broadcasting),
// as float64. It is NaN when either operand holds a NaN at a position and
// +Inf when the shapes do not broadcast; 0 for empty tensors.
func MaxAbsDiff(a, b *Tensor) float64 {
	x, y, ok := ewPairF64(a, b)
	if !ok {
		return math.Inf(1)
	}
	m := 0.0
	for i, u := range x {
		d := math.Abs(u - y[i])
		if u == y[i] {
			d = 0 // equal infinities
		}
		if d != d {
			return math.NaN()
		}
		m = max(m, d)
	}
	return m
}
