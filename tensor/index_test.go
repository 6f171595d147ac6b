package tensor

import (
	"fmt"
	"math"
	"testing"
)

// shRandIdx returns an int64 tensor of the given shape with values in
// [-n, n) (negative ones exercising wrap-around) from a fixed seed.
func shRandIdx(g *RNG, n int, neg bool, shape ...int) *Tensor {
	v := make([]int64, shProd(shape))
	for i := range v {
		v[i] = int64(g.IntN(n))
		if neg && g.IntN(2) == 0 {
			v[i] -= int64(n)
		}
	}
	return FromInt64(v, shape...)
}

// shScalarI64 returns a 0-dimensional int64 tensor.
func shScalarI64(v int64) *Tensor {
	t := shNew(Int64)
	t.I64()[0] = v
	return t
}

func shWrap(i, n int) int {
	if i < 0 {
		return i + n
	}
	return i
}

func TestIndexSelect(t *testing.T) {
	x := shArange(3, 4)
	shWant(t, "rows", IndexSelect(x, 0, FromInt64([]int64{2, 0, 2})), []int{3, 4}, []float64{8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11})
	shWant(t, "cols", IndexSelect(x, -1, FromInt64([]int64{-1, 1})), []int{3, 2}, []float64{3, 1, 7, 5, 11, 9})
	shWant(t, "int32 index", IndexSelect(x, 1, FromInt32([]int32{0})), []int{3, 1}, []float64{0, 4, 8})
	shWant(t, "empty index", IndexSelect(x, 0, FromInt64([]int64{})), []int{0, 4}, nil)
	shWant(t, "0-d index", IndexSelect(x, 0, shScalarI64(1)), []int{1, 4}, []float64{4, 5, 6, 7})
	shPanics(t, "out of range", func() { IndexSelect(x, 0, FromInt64([]int64{3})) })
	shPanics(t, "out of range", func() { IndexSelect(x, 0, FromInt64([]int64{-4})) })
	shPanics(t, "int64 or int32", func() { IndexSelect(x, 0, FromFloat32([]float32{0})) })

	g := NewRNG(3)
	shape := []int{3, 5, 4}
	for dim := 0; dim < 3; dim++ {
		idx := shRandIdx(g, shape[dim], true, 7)
		for _, xt := range shAllDTypes(shArange(shape...)) {
			got := IndexSelect(xt, dim, idx)
			out := append([]int(nil), shape...)
			out[dim] = 7
			var want []float64
			src := make([]int, 3)
			shEachIndex(out, func(p []int) {
				copy(src, p)
				src[dim] = shWrap(int(idx.I64()[p[dim]]), shape[dim])
				want = append(want, shNaiveAt(xt, src))
			})
			shWant(t, fmt.Sprintf("IndexSelect dim %d %v", dim, xt.DType()), got, out, want)
		}
	}

	q := NewQuantized(QInt8, []int8{1, 2, 3}, &QParams{Scheme: PerChannelSymmetric, Scale: []float32{1, 2, 3}, ZeroPoint: []int32{0, 0, 0}, Axis: 0}, 3)
	if sc := IndexSelect(q, 0, FromInt64([]int64{2, 2, 0})).QParams().Scale; fmt.Sprint(sc) != "[3 3 1]" {
		t.Fatalf("per-channel IndexSelect scales %v", sc)
	}
}

func TestIndexAdd(t *testing.T) {
	x := Zeros(3, 2)
	src := shArange(4, 2)
	got := IndexAdd(x, 0, FromInt64([]int64{0, 2, 0, -1}), src)
	// row 0 += rows 0 and 2 of src; row 2 += rows 1 and 3.
	shWant(t, "IndexAdd", got, []int{3, 2}, []float64{4, 6, 0, 0, 8, 10})
	if x.F32()[0] != 0 {
		t.Fatal("IndexAdd modified its input")
	}
	gi := IndexAdd(FromInt64([]int64{1, 1}), 0, FromInt64([]int64{1, 1}), FromInt64([]int64{5, 6}))
	shWant(t, "IndexAdd int64", gi, []int{2}, []float64{1, 12})
	shPanics(t, "source shape", func() { IndexAdd(x, 0, FromInt64([]int64{0}), src) })
}

func TestGather(t *testing.T) {
	// torch.gather(torch.tensor([[1,2],[3,4]]), 1, torch.tensor([[0,0],[1,0]])) = [[1,1],[4,3]]
	x := FromFloat32([]float32{1, 2, 3, 4}, 2, 2)
	shWant(t, "gather dim 1", Gather(x, 1, FromInt64([]int64{0, 0, 1, 0}, 2, 2)), []int{2, 2}, []float64{1, 1, 4, 3})
	shWant(t, "gather dim 0", Gather(x, 0, FromInt64([]int64{1, 0, 0, 0, 1, 1}, 3, 2)), []int{3, 2}, []float64{3, 2, 1, 2, 3, 4})
	shWant(t, "gather smaller", Gather(shArange(3, 4), 1, FromInt64([]int64{3, -4}, 2, 1)), []int{2, 1}, []float64{3, 4})
	shWant(t, "gather 0-d", Gather(Scalar(5), 0, shScalarI64(0)), []int{}, []float64{5})
	shPanics(t, "larger", func() { Gather(x, 1, FromInt64([]int64{0, 0, 0}, 3, 1)) })
	shPanics(t, "rank", func() { Gather(x, 1, FromInt64([]int64{0})) })

	g := NewRNG(5)
	shape := []int{4, 3, 5}
	ishape := []int{3, 2, 5}
	for dim := 0; dim < 3; dim++ {
		is := append([]int(nil), ishape...)
		is[dim] = 6
		idx := shRandIdx(g, shape[dim], true, is...)
		for _, xt := range shAllDTypes(shArange(shape...)) {
			got := Gather(xt, dim, idx)
			var want []float64
			src := make([]int, 3)
			p := 0
			shEachIndex(is, func(c []int) {
				copy(src, c)
				src[dim] = shWrap(int(idx.I64()[p]), shape[dim])
				want = append(want, shNaiveAt(xt, src))
				p++
			})
			shWant(t, fmt.Sprintf("Gather dim %d %v", dim, xt.DType()), got, is, want)
		}
	}
}

func TestScatterAdd(t *testing.T) {
	// torch.zeros(2,3).scatter_add(1, torch.tensor([[0,0,2],[1,1,1]]), torch.arange(1.,7.).view(2,3))
	got := ScatterAdd(Zeros(2, 3), 1, FromInt64([]int64{0, 0, 2, 1, 1, 1}, 2, 3), FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 2, 3))
	shWant(t, "scatter_add", got, []int{2, 3}, []float64{3, 0, 3, 0, 15, 0})

	g := NewRNG(9)
	shape := []int{4, 3, 5}
	for dim := 0; dim < 3; dim++ {
		is := []int{3, 2, 4}
		is[dim] = 7
		ss := []int{3, 3, 5}
		ss[dim] = 8
		idx := shRandIdx(g, shape[dim], true, is...)
		src := RandUniform(g, -1, 1, ss...)
		base := RandUniform(g, -1, 1, shape...)
		got := ScatterAdd(base, dim, idx, src)
		want := base.Float64s()
		st := Strides(shape)
		p := 0
		shEachIndex(is, func(c []int) {
			off := 0
			for d := range c {
				x := c[d]
				if d == dim {
					x = shWrap(int(idx.I64()[p]), shape[dim])
				}
				off += x * st[d]
			}
			want[off] = float64(float32(want[off]) + float32(shNaiveAt(src, c)))
			p++
		})
		shWant(t, fmt.Sprintf("ScatterAdd dim %d", dim), got, shape, want)

		// Adjoint of Gather: <Gather(x), y> == <x, ScatterAdd(0, y)>.
		x := RandUniform(g, -1, 1, shape...)
		y := RandUniform(g, -1, 1, is...)
		lhs, rhs := 0.0, 0.0
		for i, v := range Gather(x, dim, idx).F32() {
			lhs += float64(v) * float64(y.F32()[i])
		}
		for i, v := range ScatterAdd(Zeros(shape...), dim, idx, y).F32() {
			rhs += float64(v) * float64(x.F32()[i])
		}
		if math.Abs(lhs-rhs) > 1e-4 {
			t.Fatalf("dim %d: <Gather(x),y> = %g, <x,ScatterAdd(y)> = %g", dim, lhs, rhs)
		}
	}
	shPanics(t, "bool", func() { ScatterAdd(FromBool([]bool{true}), 0, FromInt64([]int64{0}), FromBool([]bool{true})) })
}

func TestTopK(t *testing.T) {
	nan := float32(math.NaN())
	v := FromFloat32([]float32{1, nan, 3, 3, -1})
	// Values and indices from torch.topk.
	vals, idx := TopK(v, 3, 0, true)
	shWant(t, "topk largest", vals, []int{3}, []float64{math.NaN(), 3, 3})
	shWant(t, "topk largest idx", idx, []int{3}, []float64{1, 2, 3})
	vals, idx = TopK(v, 3, 0, false)
	shWant(t, "topk smallest", vals, []int{3}, []float64{-1, 1, 3})
	shWant(t, "topk smallest idx", idx, []int{3}, []float64{4, 0, 2})

	m := FromFloat32([]float32{5, 1, 4, 2, 8, 0}, 3, 2)
	vals, idx = TopK(m, 2, 0, true)
	shWant(t, "topk dim 0", vals, []int{2, 2}, []float64{8, 2, 5, 1})
	shWant(t, "topk dim 0 idx", idx, []int{2, 2}, []float64{2, 1, 0, 0})
	vals, _ = TopK(m, 0, 1, true)
	shWant(t, "topk k=0", vals, []int{3, 0}, nil)
	vi, ii := TopK(FromInt64([]int64{4, 9, 9, 1}), 2, 0, true)
	shWant(t, "topk int64", vi, []int{2}, []float64{9, 9})
	shWant(t, "topk int64 idx", ii, []int{2}, []float64{1, 2})
	shPanics(t, "out of range", func() { TopK(m, 4, 0, true) })
}
