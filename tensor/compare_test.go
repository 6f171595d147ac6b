package tensor

import (
	"fmt"
	"math"
	"testing"
)

func TestComparisons(t *testing.T) {
	a := FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	b := FromFloat32([]float32{2, 2, 7}, 3)
	cases := []struct {
		name string
		f    func(a, b *Tensor) *Tensor
		want string
	}{
		{"Equal", Equal, "[false true false false false false]"},
		{"Greater", Greater, "[false false false true true false]"},
		{"Less", Less, "[true false true false false true]"},
		{"GreaterEqual", GreaterEqual, "[false true false true true false]"},
		{"LessEqual", LessEqual, "[true true true false false true]"},
	}
	for _, c := range cases {
		got := c.f(a, b)
		if got.DType() != Bool || !SameShape(got.Shape(), []int{2, 3}) || fmt.Sprint(got.Bools()) != c.want {
			t.Errorf("%s = %v %v, want %s", c.name, got, got.Bools(), c.want)
		}
	}
	// Scalar on the left swaps the comparison: 3 > x.
	if got := Greater(Scalar(3), FromFloat32([]float32{1, 3, 5})); fmt.Sprint(got.Bools()) != "[true false false]" {
		t.Errorf("3 > [1 3 5] = %v", got.Bools())
	}
	if got := LessEqual(Scalar(3), FromFloat32([]float32{1, 3, 5})); fmt.Sprint(got.Bools()) != "[false true true]" {
		t.Errorf("3 <= [1 3 5] = %v", got.Bools())
	}
	// NaN compares false, even with itself.
	n := FromFloat32([]float32{nan32, 1})
	if got := Equal(n, n); fmt.Sprint(got.Bools()) != "[false true]" {
		t.Errorf("NaN == NaN: %v", got.Bools())
	}
	// Integer and bool dtypes, 0-dim result shape.
	if got := Less(FromInt64([]int64{1, 5}, 2, 1), FromInt64([]int64{3, 4})); fmt.Sprint(got.Bools()) != "[true true false false]" {
		t.Errorf("int64 Less %v", got.Bools())
	}
	if got := Equal(FromUint8([]uint8{200}), FromUint8([]uint8{200, 1})); fmt.Sprint(got.Bools()) != "[true false]" {
		t.Errorf("uint8 Equal %v", got.Bools())
	}
	if got := Equal(FromBool([]bool{true, false}), FromBool([]bool{true})); fmt.Sprint(got.Bools()) != "[true false]" {
		t.Errorf("bool Equal %v", got.Bools())
	}
	if got := Equal(Scalar(1), Scalar(1)); got.NDim() != 0 || !got.Bools()[0] {
		t.Errorf("scalar Equal shape %v", got.Shape())
	}
	mustPanic(t, "tensor: Greater: unsupported dtype bool", func() { Greater(FromBool([]bool{true}), FromBool([]bool{true})) })
	mustPanic(t, "tensor: Less: shapes [2] and [3] do not broadcast", func() { Less(Zeros(2), Zeros(3)) })
}

func TestLogical(t *testing.T) {
	a := FromBool([]bool{true, true, false, false}, 2, 2)
	b := FromBool([]bool{true, false}, 2)
	if got := LogicalAnd(a, b); fmt.Sprint(got.Bools()) != "[true false false false]" {
		t.Errorf("And %v", got.Bools())
	}
	if got := LogicalOr(a, b); fmt.Sprint(got.Bools()) != "[true true true false]" {
		t.Errorf("Or %v", got.Bools())
	}
	if got := LogicalNot(b); fmt.Sprint(got.Bools()) != "[false true]" {
		t.Errorf("Not %v", got.Bools())
	}
}

func TestWhere(t *testing.T) {
	cond := FromBool([]bool{true, false, true}, 3, 1)
	a := FromFloat32([]float32{1, 2}, 2)
	b := Scalar(-1)
	got := Where(cond, a, b)
	if !SameShape(got.Shape(), []int{3, 2}) || fmt.Sprint(got.F32()) != "[1 2 -1 -1 1 2]" {
		t.Fatalf("Where = %v", got)
	}
	// Same-shape fast path and int64.
	c2 := FromBool([]bool{false, true})
	gi := Where(c2, FromInt64([]int64{1, 2}), FromInt64([]int64{3, 4}))
	if fmt.Sprint(gi.I64()) != "[3 2]" {
		t.Fatalf("Where int64 = %v", gi)
	}
	// Naive check of a three-way broadcast.
	cs, as, bs := []int{2, 1, 4}, []int{3, 1}, []int{1, 3, 4}
	c3 := New(Bool, cs...)
	for i := range c3.b {
		c3.b[i] = i%3 != 0
	}
	x, y := seq(as...), MulScalar(seq(bs...), -1)
	w := Where(c3, x, y)
	k := 0
	forEachIndex(w.Shape(), func(idx []int) {
		want := y.f32[naiveIndex(idx, bs)]
		if c3.b[naiveIndex(idx, cs)] {
			want = x.f32[naiveIndex(idx, as)]
		}
		if w.f32[k] != want {
			t.Fatalf("Where at %v = %v, want %v", idx, w.f32[k], want)
		}
		k++
	})
	mustPanic(t, "tensor: Where: shapes [2], [3] and [3] do not broadcast", func() {
		Where(FromBool([]bool{true, false}), Zeros(3), Zeros(3))
	})
}

func TestCast(t *testing.T) {
	x := FromFloat32([]float32{-1.7, 2.9, 300, -129, nan32, 0, 0.2})
	if got := Cast(x, Int8); fmt.Sprint(got.I8()) != "[-1 2 44 127 0 0 0]" {
		t.Errorf("float->int8 %v", got.I8())
	}
	if got := Cast(x, Int64); fmt.Sprint(got.I64()) != "[-1 2 300 -129 0 0 0]" {
		t.Errorf("float->int64 %v", got.I64())
	}
	if got := Cast(x, Uint8); fmt.Sprint(got.U8()) != "[255 2 44 127 0 0 0]" {
		t.Errorf("float->uint8 %v", got.U8())
	}
	if got := Cast(x, Bool); fmt.Sprint(got.Bools()) != "[true true true true true false true]" {
		t.Errorf("float->bool %v", got.Bools())
	}
	if got := Cast(FromFloat32([]float32{float32(math.Inf(1)), -1e30}), Int64); fmt.Sprint(got.I64()) != "[9223372036854775807 -9223372036854775808]" {
		t.Errorf("float->int64 saturation %v", got.I64())
	}
	if got := Cast(FromInt64([]int64{-1, 256, 3}), Uint8); fmt.Sprint(got.U8()) != "[255 0 3]" {
		t.Errorf("int64->uint8 %v", got.U8())
	}
	if got := Cast(FromInt32([]int32{-1, 7}), Float32); fmt.Sprint(got.F32()) != "[-1 7]" {
		t.Errorf("int32->float %v", got.F32())
	}
	if got := Cast(FromBool([]bool{true, false}), Float32); fmt.Sprint(got.F32()) != "[1 0]" {
		t.Errorf("bool->float %v", got.F32())
	}
	if got := Cast(FromUint8([]uint8{0, 9}), Bool); fmt.Sprint(got.Bools()) != "[false true]" {
		t.Errorf("uint8->bool %v", got.Bools())
	}
	src := FromInt64([]int64{5})
	same := Cast(src, Int64)
	same.I64()[0] = 6
	if src.I64()[0] != 5 {
		t.Error("Cast to the same dtype must copy")
	}
	if s := Cast(Scalar(2.5), Int32); s.NDim() != 0 || s.Item() != 2 {
		t.Errorf("scalar cast %v %v", s.Shape(), s)
	}
	mustPanic(t, "tensor: Cast: float32[1] to qint8", func() { Cast(Zeros(1), QInt8) })
}

func TestAllCloseMaxAbsDiff(t *testing.T) {
	a := FromFloat32([]float32{1, 2, float32(math.Inf(1))})
	b := FromFloat32([]float32{1.001, 2, float32(math.Inf(1))})
	if !AllClose(a, b, 1e-3, 0) || AllClose(a, b, 1e-4, 0) || !AllClose(a, b, 0, 1.01e-3) {
		t.Error("AllClose tolerance")
	}
	if AllClose(FromFloat32([]float32{nan32}), FromFloat32([]float32{nan32}), 1, 1) {
		t.Error("NaN must not be close")
	}
	if AllClose(Zeros(2), Zeros(3), 1, 1) {
		t.Error("unbroadcastable shapes must not be close")
	}
	if !AllClose(Zeros(2, 2), Scalar(0), 0, 0) || !AllClose(FromInt64([]int64{1, 2}), FromFloat32([]float32{1, 2}), 0, 0) {
		t.Error("broadcast / mixed dtype AllClose")
	}
	if d := MaxAbsDiff(a, b); math.Abs(d-0.001) > 1e-6 {
		t.Errorf("MaxAbsDiff = %v", d)
	}
	if d := MaxAbsDiff(FromFloat32([]float32{1, nan32}), FromFloat32([]float32{1, 1})); !math.IsNaN(d) {
		t.Errorf("MaxAbsDiff with NaN = %v", d)
	}
	if d := MaxAbsDiff(Zeros(2), Zeros(3)); !math.IsInf(d, 1) {
		t.Errorf("MaxAbsDiff of unbroadcastable shapes = %v", d)
	}
	if d := MaxAbsDiff(Zeros(0), Zeros(0)); d != 0 {
		t.Errorf("MaxAbsDiff of empty = %v", d)
	}
}
