package tensor

import (
	"fmt"
	"strings"
	"testing"
)

// naiveIndex maps a multi-index of the broadcast output to the flat index of
// an operand of shape s (NumPy rules, computed the slow way).
func naiveIndex(outIdx []int, s []int) int {
	off := 0
	lead := len(outIdx) - len(s)
	for i, d := range s {
		x := outIdx[lead+i]
		if d == 1 {
			x = 0
		}
		off = off*d + x
	}
	return off
}

// forEachIndex visits every multi-index of shape in row-major order.
func forEachIndex(shape []int, fn func(idx []int)) {
	n := 1
	for _, d := range shape {
		n *= d
	}
	idx := make([]int, len(shape))
	for k := 0; k < n; k++ {
		r := k
		for i := len(shape) - 1; i >= 0; i-- {
			idx[i] = r % shape[i]
			r /= shape[i]
		}
		fn(idx)
	}
}

func seq(shape ...int) *Tensor {
	t := New(Float32, shape...)
	for i := range t.f32 {
		t.f32[i] = float32(i%7) - 2.5 + float32(i)*0.125
	}
	return t
}

func mustPanic(t *testing.T, want string, fn func()) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Fatalf("no panic, want %q", want)
		}
		if msg := fmt.Sprint(r); !strings.Contains(msg, want) {
			t.Fatalf("panic %q, want it to contain %q", msg, want)
		}
	}()
	fn()
}

func TestBroadcastShapes(t *testing.T) {
	cases := []struct {
		a, b, want []int
	}{
		{[]int{2, 3}, []int{3}, []int{2, 3}},
		{[]int{2, 1, 4}, []int{3, 1}, []int{2, 3, 4}},
		{[]int{}, []int{5, 2}, []int{5, 2}},
		{[]int{1}, []int{}, []int{1}},
		{[]int{0, 3}, []int{1, 3}, []int{0, 3}},
		{[]int{4, 1}, []int{1, 6}, []int{4, 6}},
	}
	for _, c := range cases {
		got, err := BroadcastShapes(c.a, c.b)
		if err != nil || !SameShape(got, c.want) {
			t.Errorf("BroadcastShapes(%v, %v) = %v, %v; want %v", c.a, c.b, got, err, c.want)
		}
	}
	if _, err := BroadcastShapes([]int{2, 3}, []int{2}); err == nil || !strings.Contains(err.Error(), "[2 3] and [2]") {
		t.Errorf("want error naming both shapes, got %v", err)
	}
}

func TestAddBroadcastHandValues(t *testing.T) {
	a := FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	b := FromFloat32([]float32{10, 20, 30}, 3)
	got := Add(a, b)
	want := []float32{11, 22, 33, 14, 25, 36}
	if !SameShape(got.Shape(), []int{2, 3}) || fmt.Sprint(got.F32()) != fmt.Sprint(want) {
		t.Fatalf("[2,3]+[3] = %v", got)
	}
	// [2,1,2] * [3,1] -> [2,3,2]
	x := FromFloat32([]float32{1, 2, 3, 4}, 2, 1, 2)
	y := FromFloat32([]float32{1, 10, 100}, 3, 1)
	got = Mul(x, y)
	want = []float32{1, 2, 10, 20, 100, 200, 3, 4, 30, 40, 300, 400}
	if !SameShape(got.Shape(), []int{2, 3, 2}) || fmt.Sprint(got.F32()) != fmt.Sprint(want) {
		t.Fatalf("[2,1,2]*[3,1] = %v", got)
	}
	// scalar on either side
	got = Sub(Scalar(10), FromFloat32([]float32{1, 2, 3}))
	if fmt.Sprint(got.F32()) != "[9 8 7]" {
		t.Fatalf("10-[1 2 3] = %v", got)
	}
	got = Div(FromFloat32([]float32{1, 2, 3}), Scalar(2))
	if fmt.Sprint(got.F32()) != "[0.5 1 1.5]" {
		t.Fatalf("[1 2 3]/2 = %v", got)
	}
	if s := Add(Scalar(1), Scalar(2)); s.NDim() != 0 || s.Item() != 3 {
		t.Fatalf("scalar+scalar = %v", s)
	}
	// int64 broadcasting
	gi := Add(FromInt64([]int64{1, 2, 3, 4}, 2, 2), FromInt64([]int64{100, 200}, 2, 1))
	if fmt.Sprint(gi.I64()) != "[101 102 203 204]" {
		t.Fatalf("int64 add = %v", gi)
	}
}

// TestBinaryMatchesNaive compares every arithmetic op on many broadcast
// shape pairs (exercising the fast paths and the general walk) with a naive
// per-element reference.
func TestBinaryMatchesNaive(t *testing.T) {
	pairs := [][2][]int{
		{{2, 3}, {2, 3}}, {{2, 3}, {3}}, {{3}, {2, 3}}, {{2, 1, 4}, {3, 1}},
		{{3, 1}, {2, 1, 4}}, {{4, 1}, {1, 5}}, {{5}, {}}, {{}, {5}}, {{1}, {2, 2}},
		{{2, 3, 4, 5}, {1, 3, 1, 1}}, {{2, 3, 4, 5}, {3, 4, 1}}, {{2, 1, 4, 1}, {1, 3, 1, 5}},
		{{1, 1, 3}, {3}}, {{0, 3}, {3}}, {{6, 2}, {2}}, {{7, 1, 1}, {1, 1, 9}},
		{{2, 3, 1}, {2, 3, 1}}, {{3, 1, 2}, {1, 4, 1}},
	}
	ops := []struct {
		name string
		f    func(a, b *Tensor) *Tensor
		ref  func(x, y float32) float32
	}{
		{"Add", Add, func(x, y float32) float32 { return x + y }},
		{"Sub", Sub, func(x, y float32) float32 { return x - y }},
		{"Mul", Mul, func(x, y float32) float32 { return x * y }},
		{"Div", Div, func(x, y float32) float32 { return x / y }},
		{"Maximum", Maximum, func(x, y float32) float32 { return max(x, y) }},
		{"Minimum", Minimum, func(x, y float32) float32 { return min(x, y) }},
		{"Pow", func(a, b *Tensor) *Tensor { return Pow(Abs(a), b) }, func(x, y float32) float32 {
			if x < 0 {
				x = -x
			}
			return ewPow(x, y)
		}},
	}
	for _, p := range pairs {
		a, b := seq(p[0]...), seq(p[1]...)
		for i := range b.f32 {
			b.f32[i] += 0.3 // no zero divisors
		}
		out, _ := BroadcastShapes(p[0], p[1])
		for _, op := range ops {
			got := op.f(a, b)
			if !SameShape(got.Shape(), out) {
				t.Fatalf("%s %v %v: shape %v, want %v", op.name, p[0], p[1], got.Shape(), out)
			}
			k := 0
			forEachIndex(out, func(idx []int) {
				want := op.ref(a.f32[naiveIndex(idx, p[0])], b.f32[naiveIndex(idx, p[1])])
				if got.f32[k] != want {
					t.Fatalf("%s %v %v at %v: %v, want %v", op.name, p[0], p[1], idx, got.f32[k], want)
				}
				k++
			})
		}
		// int32 and int64 follow the same walk.
		ai, bi := Cast(a, Int32), Cast(b, Int32)
		gi := Sub(ai, bi)
		al, bl := Cast(a, Int64), Cast(b, Int64)
		gl := Maximum(al, bl)
		k := 0
		forEachIndex(out, func(idx []int) {
			x32, y32 := ai.i32[naiveIndex(idx, p[0])], bi.i32[naiveIndex(idx, p[1])]
			x64, y64 := al.i64[naiveIndex(idx, p[0])], bl.i64[naiveIndex(idx, p[1])]
			if gi.i32[k] != x32-y32 || gl.i64[k] != max(x64, y64) {
				t.Fatalf("int ops %v %v at %v", p[0], p[1], idx)
			}
			k++
		})
	}
}

func TestBinaryPanics(t *testing.T) {
	mustPanic(t, "tensor: Add: shapes [2 3] and [2] do not broadcast", func() { Add(Zeros(2, 3), Zeros(2)) })
	mustPanic(t, "tensor: Mul: dtype mismatch", func() { Mul(Zeros(2), FromInt64([]int64{1, 2})) })
	mustPanic(t, "tensor: Div: unsupported dtype int64", func() { Div(FromInt64([]int64{1}), FromInt64([]int64{1})) })
	mustPanic(t, "tensor: Expand: cannot expand [2 3] to [4 3]", func() { Expand(Zeros(2, 3), 4, 3) })
	mustPanic(t, "tensor: SumTo: cannot sum shape [2 3] to [2]", func() { SumTo(Zeros(2, 3), []int{2}) })
}

func TestExpand(t *testing.T) {
	x := FromFloat32([]float32{1, 2, 3}, 3, 1)
	e := Expand(x, 2, -1, 4)
	if !SameShape(e.Shape(), []int{2, 3, 4}) {
		t.Fatalf("shape %v", e.Shape())
	}
	forEachIndex(e.Shape(), func(idx []int) {
		if e.At(idx...) != float64(idx[1]+1) {
			t.Fatalf("Expand at %v = %v", idx, e.At(idx...))
		}
	})
	// Expanded values are a copy.
	e.f32[0] = 99
	if x.f32[0] != 1 {
		t.Fatal("Expand shares storage")
	}
	b := Expand(FromBool([]bool{true, false}), 2, 2)
	if fmt.Sprint(b.Bools()) != "[true false true false]" {
		t.Fatalf("bool expand %v", b)
	}
	i8 := Expand(FromInt8([]int8{-3}), 3)
	if fmt.Sprint(i8.I8()) != "[-3 -3 -3]" {
		t.Fatalf("int8 expand %v", i8)
	}
	if s := Expand(Scalar(2), 2, 2); fmt.Sprint(s.F32()) != "[2 2 2 2]" {
		t.Fatalf("scalar expand %v", s)
	}
}

func TestSumTo(t *testing.T) {
	g := FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	cases := []struct {
		shape []int
		want  string
	}{
		{[]int{3}, "[5 7 9]"},
		{[]int{1, 3}, "[5 7 9]"},
		{[]int{2, 1}, "[6 15]"},
		{[]int{1, 1}, "[21]"},
		{[]int{}, "[21]"},
		{[]int{1, 2, 3}, "[1 2 3 4 5 6]"},
		{[]int{1, 2, 1}, "[6 15]"},
	}
	for _, c := range cases {
		s := SumTo(g, c.shape)
		if !SameShape(s.Shape(), c.shape) || fmt.Sprint(s.F32()) != c.want {
			t.Errorf("SumTo(%v) = %v, want %s", c.shape, s, c.want)
		}
	}
	if SumTo(g, []int{2, 3}) != g {
		t.Error("SumTo to the same shape should return its input")
	}
	// Naive check on a 4-d case: SumTo(Expand(x)) sums broadcast copies.
	for _, shp := range [][]int{{3, 1, 5}, {1, 4, 1}, {2, 1, 4, 1}, {5}, {4, 5}, {1}} {
		src := seq(2, 3, 4, 5)
		got := SumTo(src, shp)
		want := make([]float64, Zeros(shp...).Numel())
		k := 0
		forEachIndex(src.Shape(), func(idx []int) {
			want[naiveIndex(idx, shp)] += float64(src.f32[k])
			k++
		})
		for i, w := range want {
			if d := float64(got.f32[i]) - w; d > 1e-4 || d < -1e-4 {
				t.Fatalf("SumTo %v element %d: %v, want %v", shp, i, got.f32[i], w)
			}
		}
	}
}

func TestInPlaceHelpers(t *testing.T) {
	d := FromFloat32([]float32{1, 2, 3, 4}, 2, 2)
	AddInPlace(d, FromFloat32([]float32{10, 20}, 2))
	if fmt.Sprint(d.F32()) != "[11 22 13 24]" {
		t.Fatalf("AddInPlace %v", d)
	}
	ScaleInPlace(d, 0.5)
	if fmt.Sprint(d.F32()) != "[5.5 11 6.5 12]" {
		t.Fatalf("ScaleInPlace %v", d)
	}
	AddScaledInPlace(d, Ones(2, 2), -2)
	if fmt.Sprint(d.F32()) != "[3.5 9 4.5 10]" {
		t.Fatalf("AddScaledInPlace %v", d)
	}
	mustPanic(t, "tensor: AddInPlace: cannot add shape [2 2] into [2]", func() { AddInPlace(Zeros(2), Zeros(2, 2)) })
}
