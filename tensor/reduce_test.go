package tensor

import (
	"fmt"
	"math"
	"testing"
)

// shNaiveReduce reduces x (as float64) over the dimensions in mask with f,
// visiting elements in row-major order; it returns outputs in row-major
// order of the kept dimensions.
func shNaiveReduce(x *Tensor, mask []bool, f func(vals []float64) float64) []float64 {
	sh := x.Shape()
	var keep []int
	for i, d := range sh {
		if !mask[i] {
			keep = append(keep, d)
		}
	}
	groups := make([][]float64, shProd(keep))
	ks := Strides(keep)
	shEachIndex(sh, func(idx []int) {
		o, k := 0, 0
		for i, v := range idx {
			if !mask[i] {
				o += v * ks[k]
				k++
			}
		}
		groups[o] = append(groups[o], shNaiveAt(x, idx))
	})
	out := make([]float64, len(groups))
	for i, g := range groups {
		out[i] = f(g)
	}
	return out
}

func shClose(t *testing.T, name string, got *Tensor, want []float64, tol float64) {
	t.Helper()
	g := got.Float64s()
	if len(g) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(g), len(want))
	}
	for i := range g {
		if math.IsNaN(want[i]) != math.IsNaN(g[i]) || math.Abs(g[i]-want[i]) > tol*(1+math.Abs(want[i])) {
			t.Fatalf("%s: element %d = %g, want %g", name, i, g[i], want[i])
		}
	}
}

func TestSumHand(t *testing.T) {
	x := shArange(2, 3, 4) // x[i][j][k] = 12i + 4j + k
	shWant(t, "sum dims 0,2", Sum(x, []int{0, 2}, false), []int{3}, []float64{60, 92, 124})
	shWant(t, "sum dims -1 keep", Sum(x, []int{-1}, true), []int{2, 3, 1}, []float64{6, 22, 38, 54, 70, 86})
	shWant(t, "sum all", Sum(x, nil, false), []int{}, []float64{276})
	shWant(t, "sum all keep", Sum(x, nil, true), []int{1, 1, 1}, []float64{276})
	shWant(t, "sum dim 0", Sum(x, []int{0}, false), []int{3, 4}, []float64{12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34})
	shWant(t, "sum empty dim", Sum(Zeros(0, 3), []int{0}, false), []int{3}, []float64{0, 0, 0})
	shWant(t, "sum of scalar", Sum(Scalar(2), []int{0}, false), []int{}, []float64{2})
	shPanics(t, "more than once", func() { Sum(x, []int{1, -2}, false) })

	b := Sum(FromBool([]bool{true, false, true, true}, 2, 2), []int{0}, false)
	if b.DType() != Int64 {
		t.Fatalf("sum of bool is %v, want int64", b.DType())
	}
	shWant(t, "sum bool", b, []int{2}, []float64{2, 1})
	i8 := Sum(FromInt8([]int8{100, 100, 100}), nil, false)
	shWant(t, "sum int8 does not wrap", i8, []int{}, []float64{300})
	if SumAll(FromInt8([]int8{-128, -128})) != -256 || SumAll(x) != 276 || MeanAll(x) != 11.5 {
		t.Fatal("SumAll/MeanAll")
	}
	shPanics(t, "dequantize", func() { Sum(NewQuantized(QInt8, []int8{1}, PerTensor(1, 0), 1), nil, false) })
}

func TestReduceMatchesNaive(t *testing.T) {
	g := NewRNG(11)
	shapes := [][]int{{7}, {5, 9}, {3, 1, 4, 6}, {2, 3, 4, 5}, {4, 33}, {1, 1}, {6, 2, 1, 7}}
	for _, sh := range shapes {
		x := RandUniform(g, -2, 2, sh...)
		xi := shNew(Int32, sh...)
		for i := range xi.i32 {
			xi.i32[i] = int32(g.IntN(200) - 100)
		}
		n := len(sh)
		for m := 0; m < 1<<n; m++ {
			mask := make([]bool, n)
			var dims []int
			for d := 0; d < n; d++ {
				if m>>d&1 == 1 {
					mask[d] = true
					dims = append(dims, d-n) // negative dims
				}
			}
			if len(dims) == 0 {
				for d := range mask {
					mask[d] = true
				}
			}
			name := fmt.Sprintf("%v dims %v", sh, dims)
			sum := func(v []float64) float64 {
				s := 0.0
				for _, e := range v {
					s += e
				}
				return s
			}
			shClose(t, "Sum "+name, Sum(x, dims, false), shNaiveReduce(x, mask, sum), 1e-6)
			shWant(t, "Sum int32 "+name, Sum(xi, dims, true), func() []int {
				s, _ := shRedShape(sh, mask, true)
				return s
			}(), shNaiveReduce(xi, mask, sum))
			mean := func(v []float64) float64 { return sum(v) / float64(len(v)) }
			shClose(t, "Mean "+name, Mean(x, dims, true), shNaiveReduce(x, mask, mean), 1e-6)
			for _, unbiased := range []bool{false, true} {
				vr := func(v []float64) float64 {
					m := mean(v)
					s := 0.0
					for _, e := range v {
						s += (e - m) * (e - m)
					}
					d := float64(len(v))
					if unbiased {
						d--
					}
					if d <= 0 {
						return math.NaN()
					}
					return s / d
				}
				shClose(t, fmt.Sprintf("Var(%v) %s", unbiased, name), Var(x, dims, unbiased, false), shNaiveReduce(x, mask, vr), 1e-5)
			}
		}
	}
}

func TestMeanVarHand(t *testing.T) {
	v := FromFloat32([]float32{1, 2, 3, 4})
	// torch.var: 1.6667 unbiased, 1.25 biased.
	shClose(t, "var unbiased", Var(v, nil, true, false), []float64{5.0 / 3}, 1e-7)
	shWant(t, "var biased", Var(v, nil, false, false), []int{}, []float64{1.25})
	shWant(t, "var of one", Var(FromFloat32([]float32{3}), nil, true, false), []int{}, []float64{math.NaN()})
	shWant(t, "mean", Mean(shArange(2, 3), []int{1}, false), []int{2}, []float64{1, 4})
	shWant(t, "mean empty", Mean(Zeros(0, 2), []int{0}, false), []int{2}, []float64{math.NaN(), math.NaN()})
	// Two-pass float64 variance is exact where the naive E[x^2]-E[x]^2 is not.
	big := FromFloat32([]float32{1e4 + 1, 1e4 + 2, 1e4 + 3})
	shWant(t, "var offset", Var(big, nil, true, false), []int{}, []float64{1})
	shPanics(t, "float32", func() { Mean(FromInt64([]int64{1}), nil, false) })
}

func TestMaxMinArg(t *testing.T) {
	nan := float32(math.NaN())
	// torch.max(torch.tensor([2.,5.,5.,1.]), 0) = (5, 1): the first maximum.
	v, i := Max(FromFloat32([]float32{2, 5, 5, 1}), 0, false)
	shWant(t, "max", v, []int{}, []float64{5})
	shWant(t, "max idx", i, []int{}, []float64{1})
	// NaN propagates with its index, for max and min.
	v, i = Max(FromFloat32([]float32{1, nan, 3, nan}), 0, false)
	shWant(t, "max nan", v, []int{}, []float64{math.NaN()})
	shWant(t, "max nan idx", i, []int{}, []float64{1})
	v, i = Min(FromFloat32([]float32{1, nan, -3}), 0, false)
	shWant(t, "min nan", v, []int{}, []float64{math.NaN()})
	shWant(t, "min nan idx", i, []int{}, []float64{1})

	m := FromFloat32([]float32{3, 1, 1, 7, 0, 7, 2, 2, 9}, 3, 3)
	v, i = Max(m, 0, true)
	shWant(t, "max dim 0", v, []int{1, 3}, []float64{7, 2, 9})
	shWant(t, "max dim 0 idx", i, []int{1, 3}, []float64{1, 2, 2})
	v, i = Min(m, -1, false)
	shWant(t, "min dim 1", v, []int{3}, []float64{1, 0, 2})
	shWant(t, "min dim 1 idx", i, []int{3}, []float64{1, 1, 0})
	shWant(t, "argmax", Argmax(m, 1, false), []int{3}, []float64{0, 0, 2})
	shWant(t, "argmin keep", Argmin(m, 0, true), []int{1, 3}, []float64{2, 1, 0})
	// Column-wise NaN handling (the strided path).
	c := FromFloat32([]float32{1, 5, nan, 2, 3, nan}, 3, 2)
	v, i = Max(c, 0, false)
	shWant(t, "max nan columns", v, []int{2}, []float64{math.NaN(), math.NaN()})
	shWant(t, "max nan columns idx", i, []int{2}, []float64{1, 2})

	for _, x := range shAllDTypes(shArange(4, 3)) {
		if x.DType() == Bool {
			shPanics(t, "bool", func() { Max(x, 0, false) })
			continue
		}
		v, i := Max(x, 0, false)
		if v.DType() != x.DType() || !shQPEqual(v.QParams(), x.QParams()) {
			t.Fatalf("Max %v changed dtype or qparams", x.DType())
		}
		shWant(t, "Max "+x.DType().String(), v, []int{3}, Slice(x, 0, 3, 4, 1).Float64s())
		shWant(t, "Max idx "+x.DType().String(), i, []int{3}, []float64{3, 3, 3})
	}
	shPanics(t, "empty", func() { Max(Zeros(0, 2), 0, false) })
	pc := NewQuantized(QInt8, make([]int8, 6), &QParams{Scheme: PerChannelSymmetric, Scale: []float32{1, 2, 3}, ZeroPoint: make([]int32, 3), Axis: 1}, 2, 3)
	shPanics(t, "per-channel", func() { Max(pc, 1, false) })
	if v, _ := Max(pc, 0, false); v.QParams().Axis != 0 || len(v.QParams().Scale) != 3 {
		t.Fatalf("Max over dim 0 of per-channel axis 1: %+v", v.QParams())
	}
}

func TestCumSum(t *testing.T) {
	x := shArange(2, 3)
	shWant(t, "cumsum dim 1", CumSum(x, 1), []int{2, 3}, []float64{0, 1, 3, 3, 7, 12})
	shWant(t, "cumsum dim 0", CumSum(x, -2), []int{2, 3}, []float64{0, 1, 2, 3, 5, 7})
	ci := CumSum(FromBool([]bool{true, false, true}), 0)
	if ci.DType() != Int64 {
		t.Fatalf("cumsum of bool is %v", ci.DType())
	}
	shWant(t, "cumsum bool", ci, []int{3}, []float64{1, 1, 2})
	shWant(t, "cumsum scalar", CumSum(Scalar(3), 0), []int{}, []float64{3})
	shWant(t, "cumsum empty", CumSum(Zeros(0), 0), []int{0}, nil)
}

func TestSoftmax(t *testing.T) {
	// torch.softmax / log_softmax of [1000, 1001, 1002] (stable: no overflow).
	x := FromFloat32([]float32{1000, 1001, 1002})
	shClose(t, "softmax large", Softmax(x, 0), []float64{0.09003057, 0.24472847, 0.66524096}, 1e-6)
	shClose(t, "log_softmax large", LogSoftmax(x, 0), []float64{-2.40760596, -1.40760596, -0.40760596}, 1e-6)
	shClose(t, "softmax -inf", Softmax(FromFloat32([]float32{0, float32(math.Inf(-1))}), 0), []float64{1, 0}, 0)

	g := NewRNG(4)
	for _, sh := range [][]int{{3, 7}, {2, 5, 4}, {4, 1, 3}, {6}} {
		x := RandUniform(g, -20, 20, sh...)
		for dim := -len(sh); dim < len(sh); dim++ {
			d := (dim + len(sh)) % len(sh)
			o, n, in := shOIN(sh, d)
			want, wantLog := make([]float64, x.Numel()), make([]float64, x.Numel())
			for a := 0; a < o; a++ {
				for j := 0; j < in; j++ {
					s := 0.0
					for i := 0; i < n; i++ {
						s += math.Exp(float64(x.F32()[(a*n+i)*in+j]))
					}
					for i := 0; i < n; i++ {
						p := (a*n+i)*in + j
						want[p] = math.Exp(float64(x.F32()[p])) / s
						wantLog[p] = float64(x.F32()[p]) - math.Log(s)
					}
				}
			}
			shClose(t, fmt.Sprintf("softmax %v dim %d", sh, dim), Softmax(x, dim), want, 1e-6)
			shClose(t, fmt.Sprintf("log_softmax %v dim %d", sh, dim), LogSoftmax(x, dim), wantLog, 1e-6)
		}
	}
	shWant(t, "softmax scalar", Softmax(Scalar(7), 0), []int{}, []float64{1})
	shWant(t, "softmax empty", Softmax(Zeros(2, 0), 1), []int{2, 0}, nil)
}

// BenchmarkReduce measures reductions and softmax (bytes = input read).
func BenchmarkReduce(b *testing.B) {
	cases := []struct {
		name string
		in   []int
		fn   func(x *Tensor)
	}{
		{"sum_last/1024x1024", []int{1024, 1024}, func(x *Tensor) { Sum(x, []int{1}, false) }},
		{"sum_first/1024x1024", []int{1024, 1024}, func(x *Tensor) { Sum(x, []int{0}, false) }},
		{"sum_nhw/32x64x28x28", []int{32, 64, 28, 28}, func(x *Tensor) { Sum(x, []int{0, 2, 3}, false) }},
		{"var_nhw/32x64x28x28", []int{32, 64, 28, 28}, func(x *Tensor) { Var(x, []int{0, 2, 3}, false, false) }},
		{"max_last/1024x1024", []int{1024, 1024}, func(x *Tensor) { Max(x, 1, false) }},
		{"max_first/1024x1024", []int{1024, 1024}, func(x *Tensor) { Max(x, 0, false) }},
		{"softmax_last/256x1000", []int{256, 1000}, func(x *Tensor) { Softmax(x, 1) }},
		{"log_softmax_last/256x1000", []int{256, 1000}, func(x *Tensor) { LogSoftmax(x, 1) }},
		{"softmax_first/1000x256", []int{1000, 256}, func(x *Tensor) { Softmax(x, 0) }},
	}
	for _, c := range cases {
		x := Rand(NewRNG(1), c.in...)
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(4 * x.Numel()))
			for b.Loop() {
				c.fn(x)
			}
		})
	}
}
