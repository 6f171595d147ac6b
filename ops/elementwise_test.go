package ops

import (
	"fmt"
	"math"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/internal/gradcheck"
	"github.com/quanta-go/quanta/tensor"
)

func ewLeaf(v []float32, shape ...int) *tensor.Tensor {
	return tensor.FromFloat32(v, shape...).SetRequiresGrad(true)
}

// ewBackward runs Backward from y with upstream gradient ones.
func ewBackward(t *testing.T, y *tensor.Tensor) {
	t.Helper()
	if err := autograd.Backward(y, nil); err != nil {
		t.Fatal(err)
	}
}

func ewWant(t *testing.T, what string, x *tensor.Tensor, want string) {
	t.Helper()
	if x == nil {
		t.Fatalf("%s: nil, want %s", what, want)
	}
	if got := fmt.Sprint(x.F32()); got != want {
		t.Fatalf("%s = %s, want %s", what, got, want)
	}
}

func TestBinaryOpsHandGradients(t *testing.T) {
	// [2,3] + [3]: b's gradient sums over the broadcast rows.
	a := ewLeaf([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	b := ewLeaf([]float32{10, 20, 30}, 3)
	y := Add(a, b)
	ewWant(t, "Add", y, "[11 22 33 14 25 36]")
	ewBackward(t, y)
	ewWant(t, "dAdd/da", a.Grad(), "[1 1 1 1 1 1]")
	ewWant(t, "dAdd/db", b.Grad(), "[2 2 2]")

	a, b = ewLeaf([]float32{1, 2, 3, 4, 5, 6}, 2, 3), ewLeaf([]float32{10, 20, 30}, 3)
	ewBackward(t, Sub(a, b))
	ewWant(t, "dSub/db", b.Grad(), "[-2 -2 -2]")

	// [2,1,2] * [3,1] -> [2,3,2].
	x := ewLeaf([]float32{1, 2, 3, 4}, 2, 1, 2)
	w := ewLeaf([]float32{1, 10, 100}, 3, 1)
	y = Mul(x, w)
	ewBackward(t, y)
	ewWant(t, "dMul/dx", x.Grad(), "[111 111 111 111]")
	ewWant(t, "dMul/dw", w.Grad(), "[10 10 10]")

	// Scalar divisor: d(a/s)/ds = -sum(a)/s^2.
	a = ewLeaf([]float32{1, 2, 3}, 3)
	s := ewLeaf([]float32{2}) // shape [1]
	ewBackward(t, Div(a, s))
	ewWant(t, "dDiv/da", a.Grad(), "[0.5 0.5 0.5]")
	ewWant(t, "dDiv/ds", s.Grad(), "[-1.5]")

	// Maximum splits the gradient on ties.
	a, b = ewLeaf([]float32{1, 5, 3}, 3), ewLeaf([]float32{2, 4, 3}, 3)
	ewBackward(t, Maximum(a, b))
	ewWant(t, "dMax/da", a.Grad(), "[0 1 0.5]")
	ewWant(t, "dMax/db", b.Grad(), "[1 0 0.5]")
	a, b = ewLeaf([]float32{1, 5, 3}, 3), ewLeaf([]float32{2, 4, 3}, 3)
	ewBackward(t, Minimum(a, b))
	ewWant(t, "dMin/da", a.Grad(), "[1 0 0.5]")
	ewWant(t, "dMin/db", b.Grad(), "[0 1 0.5]")

	// Pow: 2^3 = 8; d/da = 3*2^2 = 12; d/db = 8*ln 2. Exponent 0 gives a
	// zero base gradient; base 0 with exponent >= 0 a zero exponent gradient.
	a, b = ewLeaf([]float32{2, 5, 0}, 3), ewLeaf([]float32{3, 0, 2}, 3)
	y = Pow(a, b)
	ewWant(t, "Pow", y, "[8 1 0]")
	ewBackward(t, y)
	ewWant(t, "dPow/da", a.Grad(), "[12 0 0]")
	ewWant(t, "dPow/db", b.Grad(), fmt.Sprint([]float32{8 * 0.6931472, float32(1 * 1.609438), 0}))

	x = ewLeaf([]float32{2, -1})
	ewBackward(t, PowScalar(x, 3))
	ewWant(t, "dPowScalar", x.Grad(), "[12 3]")
	x = ewLeaf([]float32{2, 0})
	ewBackward(t, PowScalar(x, 0))
	ewWant(t, "dPowScalar p=0", x.Grad(), "[0 0]")

	// Where: cond gets no gradient; a broadcast [1] operand sums its share.
	cond := tensor.FromBool([]bool{true, false, true})
	a, b = ewLeaf([]float32{1, 2, 3}, 3), ewLeaf([]float32{-1}, 1)
	y = Where(cond, a, b)
	ewWant(t, "Where", y, "[1 -1 3]")
	ewBackward(t, y)
	ewWant(t, "dWhere/da", a.Grad(), "[1 0 1]")
	ewWant(t, "dWhere/db", b.Grad(), "[1]")
	if cond.Grad() != nil {
		t.Fatal("Where gave the condition a gradient")
	}

	// Only inputs that require grad receive one.
	a, c := ewLeaf([]float32{1, 2}, 2), tensor.FromFloat32([]float32{3, 4})
	ewBackward(t, Mul(a, c))
	ewWant(t, "dMul/da (constant b)", a.Grad(), "[3 4]")
	if c.Grad() != nil {
		t.Fatal("constant operand received a gradient")
	}
}

func TestUnaryOpsHandGradients(t *testing.T) {
	cases := []struct {
		name        string
		f           func(x *tensor.Tensor) *tensor.Tensor
		x           []float32
		y, gradWant string
	}{
		{"Neg", Neg, []float32{1, -2}, "[-1 2]", "[-1 -1]"},
		{"Abs", Abs, []float32{-3, 2}, "[3 2]", "[-1 1]"},
		{"Exp", Exp, []float32{0, 1}, "[1 2.7182817]", "[1 2.7182817]"},
		{"Log", Log, []float32{1, 4}, "[0 1.3862944]", "[1 0.25]"},
		{"Sqrt", Sqrt, []float32{4, 0.25}, "[2 0.5]", "[0.25 1]"},
		{"Rsqrt", Rsqrt, []float32{4, 0.25}, "[0.5 2]", "[-0.0625 -4]"},
		{"Reciprocal", Reciprocal, []float32{2, -0.5}, "[0.5 -2]", "[-0.25 -4]"},
		{"AddScalar", func(x *tensor.Tensor) *tensor.Tensor { return AddScalar(x, 2) }, []float32{1, -1}, "[3 1]", "[1 1]"},
		{"MulScalar", func(x *tensor.Tensor) *tensor.Tensor { return MulScalar(x, -3) }, []float32{1, 2}, "[-3 -6]", "[-3 -3]"},
		{"Clamp", func(x *tensor.Tensor) *tensor.Tensor { return Clamp(x, 0, 1) }, []float32{-1, 0, 0.5, 1, 2}, "[0 0 0.5 1 1]", "[0 1 1 1 0]"},
	}
	for _, c := range cases {
		x := ewLeaf(append([]float32(nil), c.x...))
		y := c.f(x)
		ewWant(t, c.name, y, c.y)
		ewBackward(t, y)
		ewWant(t, c.name+"'", x.Grad(), c.gradWant)
	}
}

// ewSeparated returns a tensor requiring grad whose values are k+frac for
// random integers k in [-3, 3]: two tensors with different fracs never tie
// within gradcheck's step.
func ewSeparated(seed uint64, frac float32, shape ...int) *tensor.Tensor {
	x := tensor.New(tensor.Float32, shape...)
	rng := tensor.NewRNG(seed)
	for i := range x.F32() {
		x.F32()[i] = float32(rng.IntN(7)-3) + frac
	}
	return x.SetRequiresGrad(true)
}

func TestElementwiseGradcheck(t *testing.T) {
	rnd := func(seed uint64, lo, hi float32, shape ...int) *tensor.Tensor {
		return tensor.RandUniform(tensor.NewRNG(seed), lo, hi, shape...).SetRequiresGrad(true)
	}
	shapes := [][2][]int{
		{{2, 3}, {2, 3}}, // same shape
		{{2, 3}, {3}},    // row broadcast
		{{2, 1, 4}, {3, 1}},
		{{3}, {}}, // 0-dim scalar
		{{}, {2, 2}},
		{{4, 1}, {1, 5}},
	}
	binary := []struct {
		name string
		f    func(a, b *tensor.Tensor) *tensor.Tensor
		mk   func(seed uint64, first bool, shape []int) *tensor.Tensor
	}{
		{"Add", Add, func(s uint64, _ bool, sh []int) *tensor.Tensor { return rnd(s, -2, 2, sh...) }},
		{"Sub", Sub, func(s uint64, _ bool, sh []int) *tensor.Tensor { return rnd(s, -2, 2, sh...) }},
		{"Mul", Mul, func(s uint64, _ bool, sh []int) *tensor.Tensor { return rnd(s, -2, 2, sh...) }},
		{"Div", Div, func(s uint64, first bool, sh []int) *tensor.Tensor {
			if first {
				return rnd(s, -2, 2, sh...)
			}
			return rnd(s, 0.5, 2, sh...)
		}},
		{"Pow", Pow, func(s uint64, first bool, sh []int) *tensor.Tensor {
			if first {
				return rnd(s, 0.5, 2, sh...)
			}
			return rnd(s, -2, 2, sh...)
		}},
		{"Maximum", Maximum, func(s uint64, first bool, sh []int) *tensor.Tensor {
			if first {
				return ewSeparated(s, 0.25, sh...)
			}
			return ewSeparated(s, 0.75, sh...)
		}},
		{"Minimum", Minimum, func(s uint64, first bool, sh []int) *tensor.Tensor {
			if first {
				return ewSeparated(s, 0.25, sh...)
			}
			return ewSeparated(s, 0.75, sh...)
		}},
	}
	for i, op := range binary {
		for j, sh := range shapes {
			seed := uint64(10*i + j + 1)
			a, b := op.mk(seed, true, sh[0]), op.mk(seed+1000, false, sh[1])
			f := op.f
			err := gradcheck.Check(func(in []*tensor.Tensor) *tensor.Tensor { return f(in[0], in[1]) }, []*tensor.Tensor{a, b}, gradcheck.Options{})
			if err != nil {
				t.Errorf("%s %v %v: %v", op.name, sh[0], sh[1], err)
			}
		}
	}

	// Where with cond, a and b all broadcast.
	cond := tensor.FromBool([]bool{true, false, false, true, true, false}, 2, 1, 3)
	a, b := rnd(7, -1, 1, 4, 1), rnd(8, -1, 1, 3)
	if err := gradcheck.Check(func(in []*tensor.Tensor) *tensor.Tensor { return Where(in[0], in[1], in[2]) },
		[]*tensor.Tensor{cond, a, b}, gradcheck.Options{}); err != nil {
		t.Errorf("Where: %v", err)
	}

	unary := []struct {
		name   string
		f      func(x *tensor.Tensor) *tensor.Tensor
		lo, hi float32
		kinks  []float32
	}{
		{"Neg", Neg, -2, 2, nil},
		{"Abs", Abs, -2, 2, []float32{0}},
		{"Exp", Exp, -2, 2, nil},
		{"Log", Log, 0.5, 3, nil},
		{"Sqrt", Sqrt, 0.5, 3, nil},
		{"Rsqrt", Rsqrt, 0.5, 3, nil},
		{"Reciprocal", Reciprocal, 0.5, 3, nil},
		{"AddScalar", func(x *tensor.Tensor) *tensor.Tensor { return AddScalar(x, 1.5) }, -2, 2, nil},
		{"MulScalar", func(x *tensor.Tensor) *tensor.Tensor { return MulScalar(x, -2.5) }, -2, 2, nil},
		{"PowScalar", func(x *tensor.Tensor) *tensor.Tensor { return PowScalar(x, 2.5) }, 0.5, 2, nil},
		{"PowScalar3", func(x *tensor.Tensor) *tensor.Tensor { return PowScalar(x, 3) }, -2, 2, nil},
		{"Clamp", func(x *tensor.Tensor) *tensor.Tensor { return Clamp(x, -0.5, 1) }, -2, 2, []float32{-0.5, 1}},
	}
	for i, c := range unary {
		x := ewInput(uint64(200+i), c.lo, c.hi, c.kinks...)
		f := c.f
		if err := gradcheck.Check(func(in []*tensor.Tensor) *tensor.Tensor { return f(in[0]) }, []*tensor.Tensor{x}, gradcheck.Options{}); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestElementwiseChain checks a composite expression through autograd
// against its derivative computed by hand: y = sum(exp(a*b) + a/b) with
// a [2,2] and b [2].
func TestElementwiseChain(t *testing.T) {
	a := ewLeaf([]float32{0.1, 0.2, 0.3, 0.4}, 2, 2)
	b := ewLeaf([]float32{1, 2}, 2)
	y := Add(Exp(Mul(a, b)), Div(a, b))
	ewBackward(t, y)
	av, bv := a.F32(), b.F32()
	for i := 0; i < 4; i++ {
		bj := float64(bv[i%2])
		want := bj*math.Exp(float64(av[i])*bj) + 1/bj
		if d := float64(a.Grad().F32()[i]) - want; d > 1e-5 || d < -1e-5 {
			t.Fatalf("da[%d] = %v, want %v", i, a.Grad().F32()[i], want)
		}
	}
	for j := 0; j < 2; j++ {
		want := 0.0
		for r := 0; r < 2; r++ {
			x := float64(av[2*r+j])
			bj := float64(bv[j])
			want += x*math.Exp(x*bj) - x/(bj*bj)
		}
		if d := float64(b.Grad().F32()[j]) - want; d > 1e-5 || d < -1e-5 {
			t.Fatalf("db[%d] = %v, want %v", j, b.Grad().F32()[j], want)
		}
	}
}
