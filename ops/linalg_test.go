package ops

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/internal/gradcheck"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// nnopRandT returns a float32 tensor with values uniform in [-1, 1) that
// requires grad.
func nnopRandT(seed uint64, shape ...int) *tensor.Tensor {
	return tensor.RandUniform(tensor.NewRNG(seed), -1, 1, shape...).SetRequiresGrad(true)
}

// nnopCheckClose fails when got and want differ by more than tol (absolute
// plus relative).
func nnopCheckClose(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(float64(got[i]) - want[i]); d > tol*(1+math.Abs(want[i])) || math.IsNaN(float64(got[i])) != math.IsNaN(want[i]) {
			t.Fatalf("%s: element %d = %v, want %v", what, i, got[i], want[i])
		}
	}
}

// nnopCheckShape fails when t's shape is not want.
func nnopCheckShape(t *testing.T, what string, x *tensor.Tensor, want ...int) {
	t.Helper()
	if !tensor.SameShape(x.Shape(), want) {
		t.Fatalf("%s: shape %v, want %v", what, x.Shape(), want)
	}
}

// nnopGradcheck runs gradcheck.Check with default options.
func nnopGradcheck(t *testing.T, what string, f func(in []*tensor.Tensor) *tensor.Tensor, in ...*tensor.Tensor) {
	t.Helper()
	if err := gradcheck.Check(f, in, gradcheck.Options{}); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// nnopPanics fails unless fn panics with a message containing substr.
func nnopPanics(t *testing.T, substr string, fn func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Fatalf("no panic, want one containing %q", substr)
		}
		if !strings.Contains(fmt.Sprint(r), substr) {
			t.Fatalf("panic %q does not contain %q", r, substr)
		}
	}()
	fn()
}

// nnopThreads runs fn with 1, 2 and 3 threads and fails unless every
// returned slice is bit-identical.
func nnopThreads(t *testing.T, what string, fn func() [][]float32) {
	t.Helper()
	prev := parallel.SetNumThreads(1)
	defer parallel.SetNumThreads(prev)
	ref := fn()
	for _, n := range []int{2, 3} {
		parallel.SetNumThreads(n)
		got := fn()
		for k := range ref {
			for i := range ref[k] {
				if math.Float32bits(got[k][i]) != math.Float32bits(ref[k][i]) {
					t.Fatalf("%s: result %d element %d differs with %d threads: %v vs %v", what, k, i, n, got[k][i], ref[k][i])
				}
			}
		}
	}
}

func TestMatMulHand(t *testing.T) {
	a := tensor.FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	b := tensor.FromFloat32([]float32{7, 8, 9, 10, 11, 12}, 3, 2)
	y := MatMul(a, b)
	nnopCheckShape(t, "2-D", y, 2, 2)
	nnopCheckClose(t, "2-D", y.F32(), []float64{58, 64, 139, 154}, 0)

	v := tensor.FromFloat32([]float32{1, -1, 2}, 3)
	d := MatMul(v, v)
	nnopCheckShape(t, "dot", d)
	nnopCheckClose(t, "dot", d.F32(), []float64{6}, 0)

	// [3] x [3,2] -> [2]; [2,3] x [3] -> [2].
	vm := MatMul(v, b)
	nnopCheckShape(t, "vec-mat", vm, 2)
	nnopCheckClose(t, "vec-mat", vm.F32(), []float64{7 - 9 + 22, 8 - 10 + 24}, 0)
	mv := MatMul(a, v)
	nnopCheckShape(t, "mat-vec", mv, 2)
	nnopCheckClose(t, "mat-vec", mv.F32(), []float64{1 - 2 + 6, 4 - 5 + 12}, 0)
}

// nnopNaiveMatMul is torch.matmul by definition: promote 1-D operands,
// broadcast batch dimensions index by index, and drop promoted dimensions.
func nnopNaiveMatMul(a, b *tensor.Tensor) ([]float64, []int) {
	as, bs := append([]int(nil), a.Shape()...), append([]int(nil), b.Shape()...)
	aVec, bVec := len(as) == 1, len(bs) == 1
	if aVec {
		as = []int{1, as[0]}
	}
	if bVec {
		bs = []int{bs[0], 1}
	}
	m, k, n := as[len(as)-2], as[len(as)-1], bs[len(bs)-1]
	ab, bb := as[:len(as)-2], bs[:len(bs)-2]
	nd := max(len(ab), len(bb))
	batch := make([]int, nd)
	for i := range batch {
		da, db := 1, 1
		if j := i - (nd - len(ab)); j >= 0 {
			da = ab[j]
		}
		if j := i - (nd - len(bb)); j >= 0 {
			db = bb[j]
		}
		batch[i] = max(da, db)
	}
	nbat := nnopProd(batch)
	out := make([]float64, nbat*m*n)
	av, bv := a.F32(), b.F32()
	for bi := 0; bi < nbat; bi++ {
		idx := make([]int, nd)
		r := bi
		for d := nd - 1; d >= 0; d-- {
			idx[d] = r % batch[d]
			r /= batch[d]
		}
		flat := func(sh []int) int {
			o := 0
			for j := range sh {
				x := idx[j+nd-len(sh)]
				if sh[j] == 1 {
					x = 0
				}
				o = o*sh[j] + x
			}
			return o
		}
		ao, bo := flat(ab), flat(bb)
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				var s float64
				for p := 0; p < k; p++ {
					s += float64(av[ao*m*k+i*k+p]) * float64(bv[bo*k*n+p*n+j])
				}
				out[bi*m*n+i*n+j] = s
			}
		}
	}
	shape := append([]int(nil), batch...)
	if !aVec {
		shape = append(shape, m)
	}
	if !bVec {
		shape = append(shape, n)
	}
	return out, shape
}

func TestMatMulBroadcastAgainstNaive(t *testing.T) {
	cases := [][2][]int{
		{{4}, {4}},
		{{3, 4}, {4}},
		{{4}, {4, 5}},
		{{2, 3, 4}, {4, 5}},
		{{3, 4}, {2, 4, 5}},
		{{2, 1, 3, 4}, {3, 4, 5}},
		{{4}, {2, 4, 3}},
		{{2, 3, 4}, {4}},
		{{1, 3, 4}, {2, 4, 2}},
		{{2, 0, 4}, {4, 3}},
		{{2, 3, 0}, {0, 3}},
	}
	for ci, c := range cases {
		a, b := nnopRandT(uint64(10+ci), c[0]...), nnopRandT(uint64(50+ci), c[1]...)
		want, shape := nnopNaiveMatMul(a, b)
		y := MatMul(a, b)
		nnopCheckShape(t, fmt.Sprint(c), y, shape...)
		nnopCheckClose(t, fmt.Sprint(c), y.F32(), want, 1e-5)
		if a.Numel() > 0 && b.Numel() > 0 {
			nnopGradcheck(t, fmt.Sprint("MatMul ", c), func(in []*tensor.Tensor) *tensor.Tensor { return MatMul(in[0], in[1]) }, a, b)
		}
	}
}

func TestMatMulThreads(t *testing.T) {
	a, b := nnopRandT(1, 6, 1, 5, 7), nnopRandT(2, 3, 7, 4)
	nnopThreads(t, "MatMul", func() [][]float32 {
		a.SetGrad(nil)
		b.SetGrad(nil)
		y := MatMul(a, b)
		if err := nnopBackward(y); err != nil {
			t.Fatal(err)
		}
		return [][]float32{y.F32(), a.Grad().F32(), b.Grad().F32()}
	})
}

func TestMatMulPanics(t *testing.T) {
	nnopPanics(t, "inner dimensions", func() { MatMul(tensor.Zeros(2, 3), tensor.Zeros(4, 2)) })
	nnopPanics(t, "do not broadcast", func() { MatMul(tensor.Zeros(2, 2, 3), tensor.Zeros(3, 3, 2)) })
	nnopPanics(t, "at least one dimension", func() { MatMul(tensor.Scalar(1), tensor.Zeros(2)) })
	nnopPanics(t, "want float32", func() { MatMul(tensor.New(tensor.Int64, 2), tensor.Zeros(2)) })
}

func TestLinear(t *testing.T) {
	x := tensor.FromFloat32([]float32{1, 2, 3, -1, 0, 1}, 2, 3)
	w := tensor.FromFloat32([]float32{1, 0, -1, 2, 1, 0.5}, 2, 3)
	b := tensor.FromFloat32([]float32{0.5, -1}, 2)
	y := Linear(x, w, b)
	nnopCheckShape(t, "Linear", y, 2, 2)
	// row 0: [1-3, 2+2+1.5] + b; row 1: [-1-1, -2+0+0.5] + b.
	nnopCheckClose(t, "Linear", y.F32(), []float64{-1.5, 4.5, -1.5, -2.5}, 0)
	y = Linear(x, w, nil)
	nnopCheckClose(t, "Linear no bias", y.F32(), []float64{-2, 5.5, -2, -1.5}, 0)
	v := Linear(tensor.FromFloat32([]float32{1, 2, 3}), w, b)
	nnopCheckShape(t, "Linear 1-D", v, 2)
	nnopCheckClose(t, "Linear 1-D", v.F32(), []float64{-1.5, 4.5}, 0)

	// Leading dimensions: [2,3,4] x [5,4]^T == MatMul with W^T, plus bias.
	x3, w3, b3 := nnopRandT(3, 2, 3, 4), nnopRandT(4, 5, 4), nnopRandT(5, 5)
	y3 := Linear(x3, w3, b3)
	nnopCheckShape(t, "Linear 3-D", y3, 2, 3, 5)
	xv, wv, bv := x3.F32(), w3.F32(), b3.F32()
	want := make([]float64, 30)
	for r := 0; r < 6; r++ {
		for o := 0; o < 5; o++ {
			s := float64(bv[o])
			for i := 0; i < 4; i++ {
				s += float64(xv[r*4+i]) * float64(wv[o*4+i])
			}
			want[r*5+o] = s
		}
	}
	nnopCheckClose(t, "Linear 3-D", y3.F32(), want, 1e-5)
	f := func(in []*tensor.Tensor) *tensor.Tensor { return Linear(in[0], in[1], in[2]) }
	nnopGradcheck(t, "Linear", f, x3, w3, b3)
	nnopGradcheck(t, "Linear 1-D", f, nnopRandT(6, 4), w3, b3)
	nnopGradcheck(t, "Linear no bias", func(in []*tensor.Tensor) *tensor.Tensor { return Linear(in[0], in[1], nil) }, x3, w3)
	nnopPanics(t, "does not fit weight", func() { Linear(tensor.Zeros(2, 3), tensor.Zeros(2, 4), nil) })
	nnopPanics(t, "bias", func() { Linear(tensor.Zeros(2, 3), tensor.Zeros(2, 3), tensor.Zeros(3)) })
}

// nnopSeq returns a float32 tensor of values sin(0.7*i+off)*scale
// computed in float64: the inputs from which the PyTorch 1.13 reference
// values in these tests were computed, as
// torch.tensor([math.sin(0.7*i+off)*scale for i in range(n)]).
func nnopSeq(off, scale float64, shape ...int) *tensor.Tensor {
	n := nnopProd(shape)
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(math.Sin(0.7*float64(i)+off) * scale)
	}
	return tensor.FromFloat32(v, shape...)
}

// nnopBackwardSeq backpropagates from sum(y * nnopSeq(1.1, 1, y.Shape())),
// the weighting the PyTorch reference gradients use.
func nnopBackwardSeq(t *testing.T, y *tensor.Tensor) {
	t.Helper()
	if err := autograd.Backward(y, nnopSeq(1.1, 1, y.Shape()...)); err != nil {
		t.Fatal(err)
	}
}

// nnopBackwardWith backpropagates g from y.
func nnopBackwardWith(y, g *tensor.Tensor) error {
	return autograd.Backward(y, g)
}

// nnopBackward backpropagates ones from y.
func nnopBackward(y *tensor.Tensor) error {
	return autograd.Backward(y, nil)
}

func BenchmarkLinear(b *testing.B) {
	for _, s := range [][3]int{{64, 784, 128}, {1, 512, 512}, {256, 512, 512}} {
		m, in, out := s[0], s[1], s[2]
		x, w, bias := nnopRandT(1, m, in), nnopRandT(2, out, in), nnopRandT(3, out)
		flops := 2 * float64(m*in*out)
		b.Run(fmt.Sprintf("forward/%dx%dx%d", m, in, out), func(b *testing.B) {
			for b.Loop() {
				autograd.NoGrad(func() { Linear(x, w, bias) })
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(fmt.Sprintf("train/%dx%dx%d", m, in, out), func(b *testing.B) {
			for b.Loop() {
				x.SetGrad(nil)
				w.SetGrad(nil)
				bias.SetGrad(nil)
				if err := nnopBackward(Linear(x, w, bias)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(3*flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

func BenchmarkMatMul(b *testing.B) {
	// Attention-like batched products: [batch, m, k] x [batch, k, n].
	for _, s := range [][4]int{{32, 64, 64, 64}, {4, 256, 64, 256}} {
		bt, m, k, n := s[0], s[1], s[2], s[3]
		x, y := nnopRandT(1, bt, m, k), nnopRandT(2, bt, k, n)
		flops := 2 * float64(bt*m*k*n)
		b.Run(fmt.Sprintf("%dx%dx%dx%d", bt, m, k, n), func(b *testing.B) {
			for b.Loop() {
				autograd.NoGrad(func() { MatMul(x, y) })
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
