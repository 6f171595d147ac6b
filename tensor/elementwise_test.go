package tensor

import (
	"fmt"
	"math"
	"testing"
)

var nan32 = float32(math.NaN())

func checkF32(t *testing.T, name string, got *Tensor, want []float32) {
	t.Helper()
	g := got.F32()
	if len(g) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(g), len(want))
	}
	for i := range want {
		w := want[i]
		if w != w {
			if g[i] == g[i] {
				t.Fatalf("%s[%d] = %v, want NaN", name, i, g[i])
			}
			continue
		}
		if g[i] != w || math.Signbit(float64(g[i])) != math.Signbit(float64(w)) {
			t.Fatalf("%s[%d] = %v, want %v (all: %v)", name, i, g[i], w, g)
		}
	}
}

func TestUnaryHandValues(t *testing.T) {
	x := FromFloat32([]float32{0, 1, -2, 0.5})
	negz := float32(math.Copysign(0, -1))
	checkF32(t, "Neg", Neg(x), []float32{negz, -1, 2, -0.5})
	checkF32(t, "Abs", Abs(FromFloat32([]float32{negz, -3, 2, nan32})), []float32{0, 3, 2, nan32})
	// exp(1) and exp(-2) rounded to float32.
	checkF32(t, "Exp", Exp(x), []float32{1, 2.7182817, 0.13533528, 1.6487212})
	checkF32(t, "Log", Log(FromFloat32([]float32{1, 0, -1, 4})), []float32{0, float32(math.Inf(-1)), nan32, 1.3862944})
	checkF32(t, "Sqrt", Sqrt(FromFloat32([]float32{4, 2, 0, -1})), []float32{2, 1.4142135, 0, nan32})
	checkF32(t, "Rsqrt", Rsqrt(FromFloat32([]float32{4, 0.25, 0})), []float32{0.5, 2, float32(math.Inf(1))})
	checkF32(t, "Reciprocal", Reciprocal(FromFloat32([]float32{4, -0.5, 0})), []float32{0.25, -2, float32(math.Inf(1))})
	checkF32(t, "Sin", Sin(FromFloat32([]float32{0, math.Pi / 2})), []float32{0, 1})
	checkF32(t, "Cos", Cos(FromFloat32([]float32{0, math.Pi})), []float32{1, -1})
	// erf(1) = 0.8427007929..., erf(-0.5) = -0.5204998778...
	checkF32(t, "Erf", Erf(FromFloat32([]float32{0, 1, -0.5, 10})), []float32{0, 0.84270079, -0.52049988, 1})
	// tanh(1) = 0.7615941559..., sigmoid(2) = 0.8807970779...
	checkF32(t, "Tanh", Tanh(FromFloat32([]float32{0, 1, -1, 30})), []float32{0, 0.76159416, -0.76159416, 1})
	checkF32(t, "Sigmoid", Sigmoid(FromFloat32([]float32{0, 2, -2, -200, 200})), []float32{0.5, 0.88079708, 0.11920292, 0, 1})
	checkF32(t, "ReLU", ReLU(FromFloat32([]float32{-1, 0, 2, nan32})), []float32{0, 0, 2, nan32})
	checkF32(t, "Sign", Sign(FromFloat32([]float32{-3, 0, negz, 2, nan32})), []float32{-1, 0, 0, 1, 0})
	checkF32(t, "Floor", Floor(FromFloat32([]float32{1.5, -1.5, 2})), []float32{1, -2, 2})
	checkF32(t, "Ceil", Ceil(FromFloat32([]float32{1.5, -1.5, 2})), []float32{2, -1, 2})
	checkF32(t, "Round", Round(FromFloat32([]float32{0.5, 1.5, 2.5, -0.5, -1.5, 2.6, -2.4})), []float32{0, 2, 2, negz, -2, 3, -2})
	checkF32(t, "Clamp", Clamp(FromFloat32([]float32{-5, 0.5, 7, nan32}), -1, 1), []float32{-1, 0.5, 1, nan32})
	checkF32(t, "Clamp lo>hi", Clamp(FromFloat32([]float32{-5, 0.5, 7}), 2, 1), []float32{1, 1, 1})
	checkF32(t, "Map", Map(x, func(v float32) float32 { return 2*v + 1 }), []float32{1, 3, -3, 2})
	checkF32(t, "AddScalar", AddScalar(x, 1.5), []float32{1.5, 2.5, -0.5, 2})
	checkF32(t, "MulScalar", MulScalar(x, -2), []float32{negz, -2, 4, -1})
	checkF32(t, "PowScalar 2", PowScalar(x, 2), []float32{0, 1, 4, 0.25})
	checkF32(t, "PowScalar 3", PowScalar(x, 3), []float32{0, 1, -8, 0.125})
	checkF32(t, "PowScalar 0.5", PowScalar(FromFloat32([]float32{9, 2, -1}), 0.5), []float32{3, 1.4142135, nan32})
	checkF32(t, "PowScalar -1", PowScalar(FromFloat32([]float32{4, -0.5}), -1), []float32{0.25, -2})
	checkF32(t, "PowScalar 0", PowScalar(FromFloat32([]float32{0, nan32, 3}), 0), []float32{1, 1, 1})
	checkF32(t, "Pow", Pow(FromFloat32([]float32{2, 4, -8}), FromFloat32([]float32{10, 0.5, 1.0 / 3})), []float32{1024, 2, nan32})
	checkF32(t, "Maximum NaN", Maximum(FromFloat32([]float32{1, nan32, 3}), FromFloat32([]float32{nan32, 2, 2})), []float32{nan32, nan32, 3})
	checkF32(t, "Minimum NaN", Minimum(FromFloat32([]float32{1, nan32, 3}), FromFloat32([]float32{nan32, 2, 2})), []float32{nan32, nan32, 2})
	if got := Neg(FromInt64([]int64{3, -4})); fmt.Sprint(got.I64()) != "[-3 4]" {
		t.Fatalf("int Neg %v", got)
	}
	if got := Abs(FromInt32([]int32{3, -4})); fmt.Sprint(got.I32()) != "[3 4]" {
		t.Fatalf("int Abs %v", got)
	}
	// 0-dimensional inputs keep shape [].
	if s := Exp(Scalar(0)); s.NDim() != 0 || s.Item() != 1 {
		t.Fatalf("Exp(scalar) = %v", s)
	}
	mustPanic(t, "tensor: Exp: tensor is int64", func() { Exp(FromInt64([]int64{1})) })
}

func BenchmarkAdd(b *testing.B) {
	cases := []struct {
		name   string
		as, bs []int
	}{
		{"same/1x1048576", []int{1 << 20}, []int{1 << 20}},
		{"scalar/1x1048576", []int{1 << 20}, []int{}},
		{"bias/32x64x16x16+64x1x1", []int{32, 64, 16, 16}, []int{64, 1, 1}},
		{"row/4096x256+256", []int{4096, 256}, []int{256}},
	}
	for _, c := range cases {
		x, y := seq(c.as...), seq(c.bs...)
		out := Add(x, y)
		n := out.Numel()
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				Add(x, y)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

func BenchmarkSumTo(b *testing.B) {
	g := seq(32, 64, 16, 16)
	b.Run("32x64x16x16->64x1x1", func(b *testing.B) {
		for b.Loop() {
			SumTo(g, []int{64, 1, 1})
		}
		b.ReportMetric(float64(g.Numel())*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}

func BenchmarkUnary(b *testing.B) {
	x := seq(1 << 16)
	fs := []struct {
		name string
		f    func(*Tensor) *Tensor
	}{
		{"ReLU", ReLU}, {"Exp", Exp}, {"Sigmoid", Sigmoid}, {"Tanh", Tanh}, {"Erf", Erf}, {"Sqrt", Sqrt},
	}
	for _, c := range fs {
		b.Run(c.name+"/65536", func(b *testing.B) {
			for b.Loop() {
				c.f(x)
			}
			b.ReportMetric(float64(x.Numel())*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
		})
	}
}
