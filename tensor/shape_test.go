package tensor

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// shArange returns 0, 1, ... as float32 with the given shape.
func shArange(shape ...int) *Tensor {
	if len(shape) == 0 {
		return Scalar(0)
	}
	n := shProd(shape)
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i)
	}
	return FromFloat32(v, shape...)
}

// shWant fails unless t has the shape and values given.
func shWant(t *testing.T, name string, got *Tensor, shape []int, vals []float64) {
	t.Helper()
	if !SameShape(got.Shape(), shape) {
		t.Fatalf("%s: shape %v, want %v", name, got.Shape(), shape)
	}
	g := got.Float64s()
	if len(g) != len(vals) {
		t.Fatalf("%s: %d values, want %d", name, len(g), len(vals))
	}
	for i := range g {
		if g[i] != vals[i] && !(math.IsNaN(g[i]) && math.IsNaN(vals[i])) {
			t.Fatalf("%s: values %v, want %v", name, g, vals)
		}
	}
}

// shPanics fails unless fn panics with a message containing want.
func shPanics(t *testing.T, want string, fn func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Fatalf("no panic, want %q", want)
		}
		if s := fmt.Sprint(r); !strings.Contains(s, want) {
			t.Fatalf("panic %q, want it to contain %q", s, want)
		}
	}()
	fn()
}

// shAllDTypes converts an arange-like float tensor to every storage dtype.
func shAllDTypes(f *Tensor) []*Tensor {
	var out []*Tensor
	for _, dt := range []DType{Float32, Int8, Uint8, Int32, Int64, Bool, QInt8, QUInt8, QInt32} {
		t := shNew(dt, f.Shape()...)
		for i, v := range f.F32() {
			shSetFlat(t, i, float64(v))
		}
		if dt.IsQuantized() {
			t.qparams = PerTensor(0.5, 3)
		}
		out = append(out, t)
	}
	return out
}

// shNaiveAt returns the element of t at the given coordinates as float64.
func shNaiveAt(t *Tensor, idx []int) float64 {
	off := 0
	for i, x := range idx {
		off = off*t.Shape()[i] + x
	}
	return t.flat(off)
}

// shEachIndex calls fn with every coordinate tuple of shape in row-major order.
func shEachIndex(shape []int, fn func(idx []int)) {
	n := shProd(shape)
	idx := make([]int, len(shape))
	for p := 0; p < n; p++ {
		fn(idx)
		for j := len(shape) - 1; j >= 0; j-- {
			idx[j]++
			if idx[j] < shape[j] {
				break
			}
			idx[j] = 0
		}
	}
}

func TestPermuteArange(t *testing.T) {
	x := shArange(2, 3, 4)
	// out[k][i][j] = x[i][j][k] = 12i + 4j + k.
	shWant(t, "Permute(2,0,1)", Permute(x, 2, 0, 1), []int{4, 2, 3}, []float64{
		0, 4, 8, 12, 16, 20,
		1, 5, 9, 13, 17, 21,
		2, 6, 10, 14, 18, 22,
		3, 7, 11, 15, 19, 23})
	shWant(t, "Permute(-1,0,-2)", Permute(x, -1, 0, -2), []int{4, 2, 3}, Permute(x, 2, 0, 1).Float64s())
	shWant(t, "Transpose(0,1)", Transpose(shArange(2, 3), 0, 1), []int{3, 2}, []float64{0, 3, 1, 4, 2, 5})
	shWant(t, "Transpose(-1,-1)", Transpose(shArange(2, 3), -1, -1), []int{2, 3}, []float64{0, 1, 2, 3, 4, 5})
	shPanics(t, "not a permutation", func() { Permute(x, 0, 0, 1) })
	shPanics(t, "permutation", func() { Permute(x, 0, 1) })
}

func TestPermuteMatchesNaive(t *testing.T) {
	cases := []struct {
		shape, perm []int
	}{
		{[]int{5, 7}, []int{1, 0}},
		{[]int{37, 41}, []int{1, 0}},       // tiled transpose with ragged tiles
		{[]int{3, 33, 65}, []int{0, 2, 1}}, // batched tiled transpose
		{[]int{2, 3, 4, 5}, []int{3, 1, 0, 2}},
		{[]int{2, 1, 4, 1, 3}, []int{4, 3, 2, 1, 0}},
		{[]int{4, 0, 3}, []int{2, 0, 1}},
		{[]int{}, []int{}},
		{[]int{64, 9, 16}, []int{2, 0, 1}},
		{[]int{9, 130}, []int{1, 0}},
		{[]int{2, 8, 8}, []int{0, 2, 1}},
	}
	for _, c := range cases {
		f := shArange(c.shape...)
		for _, x := range shAllDTypes(f) {
			got := Permute(x, c.perm...)
			if got.DType() != x.DType() {
				t.Fatalf("Permute changed dtype %v -> %v", x.DType(), got.DType())
			}
			want := make([]float64, 0, x.Numel())
			shape := make([]int, len(c.perm))
			for i, p := range c.perm {
				shape[i] = c.shape[p]
			}
			src := make([]int, len(c.shape))
			shEachIndex(shape, func(idx []int) {
				for i, p := range c.perm {
					src[p] = idx[i]
				}
				want = append(want, shNaiveAt(x, src))
			})
			shWant(t, fmt.Sprintf("Permute%v %v %v", c.perm, x.DType(), c.shape), got, shape, want)
		}
	}
}

func TestPermutePerChannelAxis(t *testing.T) {
	x := NewQuantized(QInt8, make([]int8, 24), &QParams{Scheme: PerChannelSymmetric, Scale: []float32{1, 2, 3}, ZeroPoint: []int32{0, 0, 0}, Axis: 1}, 2, 3, 4)
	if a := Permute(x, 2, 0, 1).QParams().Axis; a != 2 {
		t.Fatalf("axis after Permute(2,0,1) = %d, want 2", a)
	}
	if a := Transpose(x, 1, 2).QParams().Axis; a != 2 {
		t.Fatalf("axis after Transpose(1,2) = %d, want 2", a)
	}
	if x.QParams().Axis != 1 {
		t.Fatal("Permute modified the input's qparams")
	}
}

func TestSlice(t *testing.T) {
	x := shArange(10)
	shWant(t, "2:8:3", Slice(x, 0, 2, 8, 3), []int{2}, []float64{2, 5})
	shWant(t, "-3:", Slice(x, 0, -3, math.MaxInt, 1), []int{3}, []float64{7, 8, 9})
	shWant(t, "-100:3", Slice(x, -1, -100, 3, 1), []int{3}, []float64{0, 1, 2})
	shWant(t, "5:2", Slice(x, 0, 5, 2, 1), []int{0}, nil)
	shWant(t, "8:100:5", Slice(x, 0, 8, 100, 5), []int{1}, []float64{8})
	m := shArange(3, 4)
	shWant(t, "[:,1::2]", Slice(m, 1, 1, math.MaxInt, 2), []int{3, 2}, []float64{1, 3, 5, 7, 9, 11})
	shWant(t, "[1:,:]", Slice(m, 0, 1, 3, 1), []int{2, 4}, []float64{4, 5, 6, 7, 8, 9, 10, 11})
	shPanics(t, "step", func() { Slice(x, 0, 0, 5, 0) })
	shWant(t, "Narrow(-2,2)", Narrow(x, 0, -2, 2), []int{2}, []float64{8, 9})
	shWant(t, "Narrow(m,1,1,2)", Narrow(m, 1, 1, 2), []int{3, 2}, []float64{1, 2, 5, 6, 9, 10})
	shWant(t, "Narrow(10,0)", Narrow(x, 0, 10, 0), []int{0}, nil)
	shPanics(t, "outside", func() { Narrow(x, 0, 8, 3) })

	q := NewQuantized(QUInt8, []uint8{1, 2, 3, 4, 5, 6}, &QParams{Scheme: PerChannelAffine, Scale: []float32{1, 2, 3}, ZeroPoint: []int32{7, 8, 9}, Axis: 1}, 2, 3)
	s := Slice(q, 1, 0, 3, 2)
	shWant(t, "quantized slice", s, []int{2, 2}, []float64{1, 3, 4, 6})
	if sc, zp := s.QParams().Scale, s.QParams().ZeroPoint; len(sc) != 2 || sc[0] != 1 || sc[1] != 3 || zp[0] != 7 || zp[1] != 9 {
		t.Fatalf("sliced per-channel qparams %v %v", sc, zp)
	}
	if s := Slice(q, 0, 1, 2, 1); len(s.QParams().Scale) != 3 {
		t.Fatal("slice along another axis changed the per-channel qparams")
	}
}

func TestSliceScatter(t *testing.T) {
	m := shArange(3, 4)
	got := SliceScatter(m, FromFloat32([]float32{-1, -2, -3, -4, -5, -6}, 3, 2), 1, 0, math.MaxInt, 2)
	shWant(t, "SliceScatter", got, []int{3, 4}, []float64{-1, 1, -2, 3, -3, 5, -4, 7, -5, 9, -6, 11})
	if m.F32()[0] != 0 {
		t.Fatal("SliceScatter modified its input")
	}
	shPanics(t, "SliceScatter", func() { SliceScatter(m, Zeros(3, 3), 1, 0, math.MaxInt, 2) })
}

func TestConcatStack(t *testing.T) {
	a, b := shArange(2, 2), FromFloat32([]float32{10, 11, 12, 13, 14, 15}, 2, 3)
	shWant(t, "Concat dim 1", Concat([]*Tensor{a, b}, -1), []int{2, 5}, []float64{0, 1, 10, 11, 12, 2, 3, 13, 14, 15})
	c := FromFloat32([]float32{7, 8}, 1, 2)
	shWant(t, "Concat dim 0", Concat([]*Tensor{a, c, Zeros(0, 2)}, 0), []int{3, 2}, []float64{0, 1, 2, 3, 7, 8})
	shWant(t, "Concat skips [0]", Concat([]*Tensor{Zeros(0), a}, 0), []int{2, 2}, []float64{0, 1, 2, 3})
	shPanics(t, "Concat", func() { Concat([]*Tensor{a, b}, 0) })
	shPanics(t, "Concat", func() { Concat([]*Tensor{a, FromInt64([]int64{1, 2}, 1, 2)}, 0) })

	s := Stack([]*Tensor{FromFloat32([]float32{1, 2, 3}), FromFloat32([]float32{4, 5, 6})}, 1)
	shWant(t, "Stack dim 1", s, []int{3, 2}, []float64{1, 4, 2, 5, 3, 6})
	s = Stack([]*Tensor{FromFloat32([]float32{1, 2, 3}), FromFloat32([]float32{4, 5, 6})}, -2)
	shWant(t, "Stack dim -2", s, []int{2, 3}, []float64{1, 2, 3, 4, 5, 6})
	shWant(t, "Stack scalars", Stack([]*Tensor{Scalar(1), Scalar(2)}, 0), []int{2}, []float64{1, 2})

	for _, x := range shAllDTypes(shArange(2, 3)) {
		got := Concat([]*Tensor{x, x}, 0)
		if got.DType() != x.DType() || !shQPEqual(got.QParams(), x.QParams()) {
			t.Fatalf("Concat %v lost dtype or qparams", x.DType())
		}
		shWant(t, "Concat "+x.DType().String(), got, []int{4, 3}, append(x.Float64s(), x.Float64s()...))
	}

	q1 := NewQuantized(QInt8, []int8{1, 2}, &QParams{Scheme: PerChannelSymmetric, Scale: []float32{1, 2}, ZeroPoint: []int32{0, 0}, Axis: 0}, 2, 1)
	q2 := NewQuantized(QInt8, []int8{3}, &QParams{Scheme: PerChannelSymmetric, Scale: []float32{5}, ZeroPoint: []int32{0}, Axis: 0}, 1, 1)
	qc := Concat([]*Tensor{q1, q2}, 0)
	if sc := qc.QParams().Scale; len(sc) != 3 || sc[2] != 5 {
		t.Fatalf("per-channel Concat scales %v", sc)
	}
	shWant(t, "per-channel Concat other dim", Concat([]*Tensor{q1, q1}, 1), []int{2, 2}, []float64{1, 1, 2, 2})
	q3 := NewQuantized(QInt8, []int8{1, 2}, &QParams{Scheme: PerChannelSymmetric, Scale: []float32{1, 3}, ZeroPoint: []int32{0, 0}, Axis: 0}, 2, 1)
	shPanics(t, "quantization parameters", func() { Concat([]*Tensor{q1, q3}, 1) })
}

func TestSplitChunk(t *testing.T) {
	x := shArange(5, 2)
	parts := Split(x, []int{1, 0, 4}, 0)
	shWant(t, "Split 0", parts[0], []int{1, 2}, []float64{0, 1})
	shWant(t, "Split 1", parts[1], []int{0, 2}, nil)
	shWant(t, "Split 2", parts[2], []int{4, 2}, []float64{2, 3, 4, 5, 6, 7, 8, 9})
	shPanics(t, "add up", func() { Split(x, []int{2, 2}, 0) })

	for _, c := range []struct {
		n, chunks int
		want      []int
	}{{5, 3, []int{2, 2, 1}}, {6, 4, []int{2, 2, 2}}, {0, 3, []int{0, 0, 0}}, {1, 3, []int{1}}, {7, 1, []int{7}}} {
		if got := ChunkSizes(c.n, c.chunks); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Fatalf("ChunkSizes(%d, %d) = %v, want %v", c.n, c.chunks, got, c.want)
		}
	}
	ch := Chunk(x, 2, -1)
	shWant(t, "Chunk 0", ch[0], []int{5, 1}, []float64{0, 2, 4, 6, 8})
	shWant(t, "Chunk 1", ch[1], []int{5, 1}, []float64{1, 3, 5, 7, 9})
}

func TestSqueezeUnsqueezeFlatten(t *testing.T) {
	x := shArange(1, 3, 1, 2)
	shWant(t, "Squeeze()", Squeeze(x), []int{3, 2}, x.Float64s())
	shWant(t, "Squeeze(2)", Squeeze(x, 2), []int{1, 3, 2}, x.Float64s())
	shWant(t, "Squeeze(1) no-op", Squeeze(x, 1), []int{1, 3, 1, 2}, x.Float64s())
	shWant(t, "Squeeze(0,-2)", Squeeze(x, 0, -2), []int{3, 2}, x.Float64s())
	shWant(t, "Squeeze scalar", Squeeze(Scalar(4)), []int{}, []float64{4})
	shWant(t, "Squeeze [1]", Squeeze(Ones(1)), []int{}, []float64{1})
	shWant(t, "Unsqueeze(0)", Unsqueeze(shArange(2, 3), 0), []int{1, 2, 3}, shArange(6).Float64s())
	shWant(t, "Unsqueeze(-1)", Unsqueeze(shArange(2, 3), -1), []int{2, 3, 1}, shArange(6).Float64s())
	shWant(t, "Unsqueeze scalar", Unsqueeze(Scalar(3), 0), []int{1}, []float64{3})
	shPanics(t, "out of range", func() { Unsqueeze(shArange(2, 3), 3+1) })
	y := shArange(2, 3, 4, 5)
	shWant(t, "Flatten(1,2)", Flatten(y, 1, 2), []int{2, 12, 5}, y.Float64s())
	shWant(t, "Flatten(0,-1)", Flatten(y, 0, -1), []int{120}, y.Float64s())
	shWant(t, "Flatten(-1,-1)", Flatten(y, -1, -1), []int{2, 3, 4, 5}, y.Float64s())
	shWant(t, "Flatten scalar", Flatten(Scalar(2), 0, -1), []int{1}, []float64{2})
	shPanics(t, "after", func() { Flatten(y, 2, 1) })

	// The shape-only ops share storage, like Reshape.
	Squeeze(x).F32()[0] = 42
	if x.F32()[0] != 42 {
		t.Fatal("Squeeze does not share storage")
	}
	Unsqueeze(x, 0).F32()[1] = 43
	Flatten(x, 0, -1).F32()[2] = 44
	if x.F32()[1] != 43 || x.F32()[2] != 44 {
		t.Fatal("Unsqueeze/Flatten do not share storage")
	}

	// Scalar-shaped results of every dtype report shape [].
	sq := Squeeze(FromInt64([]int64{5}, 1))
	if sq.NDim() != 0 || sq.Item() != 5 {
		t.Fatalf("Squeeze int64 [1] -> %v", sq)
	}

	q := NewQuantized(QInt8, make([]int8, 6), &QParams{Scheme: PerChannelSymmetric, Scale: []float32{1, 2, 3}, ZeroPoint: make([]int32, 3), Axis: 2}, 2, 1, 3)
	if a := Squeeze(q).QParams().Axis; a != 1 {
		t.Fatalf("axis after Squeeze = %d, want 1", a)
	}
	if a := Unsqueeze(q, 0).QParams().Axis; a != 3 {
		t.Fatalf("axis after Unsqueeze(0) = %d, want 3", a)
	}
	if a := Unsqueeze(q, -1).QParams().Axis; a != 2 {
		t.Fatalf("axis after Unsqueeze(-1) = %d, want 2", a)
	}
	if a := Flatten(q, 1, 2).QParams().Axis; a != 1 {
		t.Fatalf("axis after Flatten(1,2) = %d, want 1", a)
	}
	shPanics(t, "per-channel", func() { Flatten(q, 0, 2) })
	q1 := NewQuantized(QInt8, make([]int8, 2), &QParams{Scheme: PerChannelSymmetric, Scale: []float32{1}, ZeroPoint: []int32{0}, Axis: 0}, 1, 2)
	shPanics(t, "per-channel axis", func() { Squeeze(q1) })
}

func TestRepeatTile(t *testing.T) {
	x := shArange(2, 3)
	want := []float64{0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5, 0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5}
	shWant(t, "Repeat(2,1,2)", Repeat(x, 2, 1, 2), []int{2, 2, 6}, want)
	shWant(t, "Repeat(2,1)", Repeat(x, 2, 1), []int{4, 3}, []float64{0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5})
	shWant(t, "Repeat(1,0)", Repeat(x, 1, 0), []int{2, 0}, nil)
	shWant(t, "Repeat column", Repeat(shArange(2, 1), 1, 3), []int{2, 3}, []float64{0, 0, 0, 1, 1, 1})
	shPanics(t, "repeats", func() { Repeat(x, 2) })
	shWant(t, "Tile(2)", Tile(x, 2), []int{2, 6}, []float64{0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5})
	shWant(t, "Tile(2,1,1)", Tile(x, 2, 1, 1), []int{2, 2, 3}, append(x.Float64s(), x.Float64s()...))

	q := NewQuantized(QUInt8, []uint8{1, 2}, &QParams{Scheme: PerChannelAffine, Scale: []float32{1, 2}, ZeroPoint: []int32{3, 4}, Axis: 0}, 2)
	r := Repeat(q, 3, 2)
	shWant(t, "Repeat quantized", r, []int{3, 4}, []float64{1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2})
	if qp := r.QParams(); qp.Axis != 1 || fmt.Sprint(qp.Scale) != "[1 2 1 2]" || fmt.Sprint(qp.ZeroPoint) != "[3 4 3 4]" {
		t.Fatalf("Repeat per-channel qparams %+v", qp)
	}
}

func TestPad(t *testing.T) {
	x := shArange(2, 3)
	// Values from torch.nn.functional.pad.
	shWant(t, "pad [1,2]", Pad(x, []int{1, 2}, 9), []int{2, 6}, []float64{9, 0, 1, 2, 9, 9, 9, 3, 4, 5, 9, 9})
	shWant(t, "pad [0,0,1,0]", Pad(x, []int{0, 0, 1, 0}, 0), []int{3, 3}, []float64{0, 0, 0, 0, 1, 2, 3, 4, 5})
	shWant(t, "pad [-1,1,0,-1]", Pad(x, []int{-1, 1, 0, -1}, 7), []int{1, 3}, []float64{1, 2, 7})
	shWant(t, "pad [-3,0]", Pad(x, []int{-3, 0}, 7), []int{2, 0}, nil)
	shWant(t, "pad [-2,-1,1,1]", Pad(x, []int{-2, -1, 1, 1}, 5), []int{4, 0}, nil)
	shWant(t, "pad none", Pad(x, nil, 5), []int{2, 3}, x.Float64s())
	shPanics(t, "negative size", func() { Pad(x, []int{-2, -2}, 0) })
	shPanics(t, "even", func() { Pad(x, []int{1}, 0) })
	shPanics(t, "at most", func() { Pad(x, []int{1, 1, 1, 1, 1, 1}, 0) })

	// 3-D: pads apply to the last dimension first.
	y := shArange(2, 2, 2)
	got := Pad(y, []int{0, 1, 0, 0, 1, 0}, -1)
	shWant(t, "pad 3-D", got, []int{3, 2, 3}, []float64{-1, -1, -1, -1, -1, -1, 0, 1, -1, 2, 3, -1, 4, 5, -1, 6, 7, -1})

	i := Pad(FromInt64([]int64{1, 2}), []int{1, 0}, -3.7)
	shWant(t, "pad int64", i, []int{3}, []float64{-3, 1, 2})
	b := Pad(FromBool([]bool{false}), []int{1, 1}, 1)
	shWant(t, "pad bool", b, []int{3}, []float64{1, 0, 1})

	q := NewQuantized(QUInt8, []uint8{20, 30}, &QParams{Scheme: PerTensorAffine, Scale: []float32{0.5}, ZeroPoint: []int32{10}}, 2)
	shWant(t, "pad quint8 1.0", Pad(q, []int{1, 1}, 1.0), []int{4}, []float64{12, 20, 30, 12})
	shWant(t, "pad quint8 saturates", Pad(q, []int{1, 0}, -100), []int{3}, []float64{0, 20, 30})
	shWant(t, "pad quint8 half to even", Pad(q, []int{1, 0}, 1.25), []int{3}, []float64{12, 20, 30})
	pc := NewQuantized(QInt8, []int8{1, 2, 3, 4}, &QParams{Scheme: PerChannelAffine, Scale: []float32{1, 0.5}, ZeroPoint: []int32{0, 3}, Axis: 0}, 2, 2)
	shWant(t, "pad per-channel", Pad(pc, []int{1, 0}, 2), []int{2, 3}, []float64{2, 1, 2, 7, 3, 4})
	shPanics(t, "per-channel", func() { Pad(pc, []int{0, 0, 1, 0}, 0) })
}

func TestShapeOpsEmpty(t *testing.T) {
	e := Zeros(0, 3)
	shWant(t, "Permute empty", Permute(e, 1, 0), []int{3, 0}, nil)
	shWant(t, "Slice empty", Slice(e, 1, 0, 2, 1), []int{0, 2}, nil)
	shWant(t, "Pad empty", Pad(e, []int{1, 1}, 3), []int{0, 5}, nil)
	shWant(t, "Pad empty rows", Pad(e, []int{0, 0, 1, 0}, 3), []int{1, 3}, []float64{3, 3, 3})
	shWant(t, "Repeat empty", Repeat(e, 2, 2), []int{0, 6}, nil)
	shWant(t, "Concat empties", Concat([]*Tensor{e, e}, 0), []int{0, 3}, nil)
	var z Tensor
	shWant(t, "zero value", Permute(&z, 0), []int{0}, nil)
}

// BenchmarkShapeCopy measures the strided-copy kernel behind the shape ops
// (bytes moved = read + written).
func BenchmarkShapeCopy(b *testing.B) {
	cases := []struct {
		name string
		in   []int
		fn   func(x *Tensor) *Tensor
	}{
		{"transpose/1024x1024", []int{1024, 1024}, func(x *Tensor) *Tensor { return Transpose(x, 0, 1) }},
		{"nchw_to_nhwc/32x64x28x28", []int{32, 64, 28, 28}, func(x *Tensor) *Tensor { return Permute(x, 0, 2, 3, 1) }},
		{"slice_rows/1024x1024", []int{1024, 1024}, func(x *Tensor) *Tensor { return Slice(x, 1, 1, 1023, 1) }},
		{"pad/32x64x28x28", []int{32, 64, 28, 28}, func(x *Tensor) *Tensor { return Pad(x, []int{1, 1, 1, 1}, 0) }},
		{"concat/2x32x64x28x28", []int{32, 64, 28, 28}, func(x *Tensor) *Tensor { return Concat([]*Tensor{x, x}, 1) }},
	}
	// The anchor allocates and copies 1024x1024 floats: the bandwidth
	// ceiling of any operation that returns a new tensor.
	b.Run("anchor/alloc_copy_1024x1024", func(b *testing.B) {
		src := make([]float32, 1<<20)
		b.SetBytes(8 << 20)
		for b.Loop() {
			dst := make([]float32, len(src))
			copy(dst, src)
		}
	})
	for _, c := range cases {
		x := Rand(NewRNG(1), c.in...)
		b.Run(c.name, func(b *testing.B) {
			out := c.fn(x)
			b.SetBytes(int64(4 * (x.Numel() + out.Numel())))
			for b.Loop() {
				c.fn(x)
			}
		})
	}
}
