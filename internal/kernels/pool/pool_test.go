package pool

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/quanta-go/quanta/internal/parallel"
)

const guardLen = 5

var guardVal = math.Float32frombits(0x7fc0beef)

func guarded(n int) []float32 {
	b := make([]float32, n+guardLen)
	for i := range b {
		b[i] = guardVal
	}
	return b[:n]
}

func guardedIdx(n int) []int32 {
	b := make([]int32, n+guardLen)
	for i := range b {
		b[i] = -77
	}
	return b[:n]
}

func checkGuard(t *testing.T, name string, s []float32) {
	t.Helper()
	for i, v := range s[len(s) : len(s)+guardLen] {
		if math.Float32bits(v) != math.Float32bits(guardVal) {
			t.Fatalf("%s: guard element %d overwritten", name, i)
		}
	}
}

func checkGuardIdx(t *testing.T, name string, s []int32) {
	t.Helper()
	for i, v := range s[len(s) : len(s)+guardLen] {
		if v != -77 {
			t.Fatalf("%s: index guard element %d overwritten", name, i)
		}
	}
}

// sameBits reports whether a and b are equal bit for bit, treating every
// NaN as equal to every NaN.
func sameBits(a, b float32) bool {
	if a != a && b != b {
		return true
	}
	return math.Float32bits(a) == math.Float32bits(b)
}

func assertBits(t *testing.T, name string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: length %d, want %d", name, len(got), len(want))
	}
	for i := range want {
		if !sameBits(got[i], want[i]) {
			t.Fatalf("%s: element %d = %v, want %v", name, i, got[i], want[i])
		}
	}
}

func assertIdx(t *testing.T, name string, got, want []int32) {
	t.Helper()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: index %d = %d, want %d", name, i, got[i], want[i])
		}
	}
}

// randInput returns n values, mostly uniform in [-1, 1), with some ties,
// signed zeros, infinities and (if nan) NaNs mixed in.
func randInput(r *rand.Rand, n int, nan bool) []float32 {
	s := make([]float32, n)
	for i := range s {
		switch k := r.IntN(40); {
		case k == 0:
			s[i] = float32(math.Inf(-1))
		case k == 1:
			s[i] = float32(math.Inf(1))
		case k == 2 && nan:
			s[i] = float32(math.NaN())
		case k == 3:
			s[i] = float32(math.Copysign(0, -1))
		case k < 8:
			s[i] = 0.5
		default:
			s[i] = r.Float32()*2 - 1
		}
	}
	return s
}

func randFinite(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = r.Float32()*2 - 1
	}
	return s
}

func poolCases(r *rand.Rand, n int, avg bool) []Pool2DParams {
	cs := []Pool2DParams{
		{N: 1, C: 1, H: 1, W: 1, KH: 1, KW: 1},
		{N: 2, C: 3, H: 8, W: 8, KH: 2, KW: 2},
		{N: 1, C: 4, H: 7, W: 9, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1},
		{N: 1, C: 2, H: 7, W: 9, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, CeilMode: true},
		{N: 1, C: 2, H: 5, W: 5, KH: 2, KW: 2, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, CeilMode: true, CountIncludePad: true},
		{N: 1, C: 1, H: 1, W: 17, KH: 1, KW: 4, StrideW: 3, PadW: 2, CeilMode: true},
	}
	for len(cs) < n {
		p := Pool2DParams{N: 1 + r.IntN(2), C: 1 + r.IntN(3), H: 1 + r.IntN(11), W: 1 + r.IntN(11),
			KH: 1 + r.IntN(4), KW: 1 + r.IntN(4), StrideH: r.IntN(4), StrideW: r.IntN(4),
			CeilMode: r.IntN(2) == 0, CountIncludePad: r.IntN(2) == 0}
		p.PadH, p.PadW = r.IntN(p.KH/2+1), r.IntN(p.KW/2+1)
		if !avg {
			p.DilH, p.DilW = r.IntN(3), r.IntN(3)
		} else if r.IntN(5) == 0 {
			p.Divisor = 1 + r.IntN(9)
		}
		if p.Validate() != nil {
			continue
		}
		cs = append(cs, p)
	}
	return cs
}

func (p Pool2DParams) String() string {
	q := p.Norm()
	return fmt.Sprintf("N%dC%d_%dx%d_k%dx%d_s%dx%d_p%dx%d_d%dx%d_ceil%v_cip%v_div%d",
		q.N, q.C, q.H, q.W, q.KH, q.KW, q.StrideH, q.StrideW, q.PadH, q.PadW, q.DilH, q.DilW, q.CeilMode, q.CountIncludePad, q.Divisor)
}

func TestMaxPoolMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, p := range poolCases(r, 300, false) {
		x := randInput(r, p.InputLen(), true)
		want := make([]float32, p.OutputLen())
		wantIdx := make([]int32, p.OutputLen())
		MaxPool2DReference(p, x, want, wantIdx)
		got := guarded(p.OutputLen())
		gotIdx := guardedIdx(p.OutputLen())
		MaxPool2D(p, x, got, gotIdx)
		checkGuard(t, p.String(), got)
		checkGuardIdx(t, p.String(), gotIdx)
		assertBits(t, p.String(), got, want)
		assertIdx(t, p.String(), gotIdx, wantIdx)
		noIdx := guarded(p.OutputLen())
		MaxPool2D(p, x, noIdx, nil)
		assertBits(t, p.String()+" without indices", noIdx, want)

		gy := randFinite(r, p.OutputLen())
		wantX := make([]float32, p.InputLen())
		MaxPool2DBackwardReference(p, gy, wantIdx, wantX)
		gotX := guarded(p.InputLen())
		MaxPool2DBackward(p, gy, gotIdx, gotX)
		checkGuard(t, p.String(), gotX)
		assertBits(t, p.String()+" backward", gotX, wantX)
	}
}

func TestAvgPoolMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, p := range poolCases(r, 300, true) {
		x := randInput(r, p.InputLen(), true)
		want := make([]float32, p.OutputLen())
		AvgPool2DReference(p, x, want)
		got := guarded(p.OutputLen())
		AvgPool2D(p, x, got)
		checkGuard(t, p.String(), got)
		assertBits(t, p.String(), got, want)

		gy := randFinite(r, p.OutputLen())
		wantX := make([]float32, p.InputLen())
		AvgPool2DBackwardReference(p, gy, wantX)
		gotX := guarded(p.InputLen())
		AvgPool2DBackward(p, gy, gotX)
		checkGuard(t, p.String(), gotX)
		assertBits(t, p.String()+" backward", gotX, wantX)

		// Adjoint identity in float64 on finite inputs: the backward is
		// the transpose of the (linear) forward.
		xf := randFinite(r, p.InputLen())
		yf := make([]float32, p.OutputLen())
		AvgPool2D(p, xf, yf)
		lhs, rhs := dot64(yf, gy), dot64(xf, gotX)
		if math.Abs(lhs-rhs) > 1e-5*(1+math.Abs(lhs)) {
			t.Fatalf("%v: <avg(x), g> = %v, <x, avg^T(g)> = %v", p, lhs, rhs)
		}
	}
}

func dot64(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func adaptiveCases(r *rand.Rand, n int) []AdaptivePool2DParams {
	cs := []AdaptivePool2DParams{
		{N: 1, C: 1, H: 1, W: 1, OutH: 1, OutW: 1},
		{N: 2, C: 3, H: 7, W: 7, OutH: 1, OutW: 1},
		{N: 1, C: 2, H: 10, W: 7, OutH: 3, OutW: 4},
		{N: 1, C: 2, H: 3, W: 2, OutH: 7, OutW: 5},
	}
	for len(cs) < n {
		cs = append(cs, AdaptivePool2DParams{N: 1 + r.IntN(2), C: 1 + r.IntN(3), H: 1 + r.IntN(13), W: 1 + r.IntN(13),
			OutH: 1 + r.IntN(9), OutW: 1 + r.IntN(9)})
	}
	return cs
}

func TestAdaptiveMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, p := range adaptiveCases(r, 200) {
		name := fmt.Sprintf("%+v", p)
		x := randInput(r, p.InputLen(), true)
		gy := randFinite(r, p.OutputLen())

		want := make([]float32, p.OutputLen())
		AdaptiveAvgPool2DReference(p, x, want)
		got := guarded(p.OutputLen())
		AdaptiveAvgPool2D(p, x, got)
		checkGuard(t, name, got)
		assertBits(t, name+" avg", got, want)
		wantX := make([]float32, p.InputLen())
		AdaptiveAvgPool2DBackwardReference(p, gy, wantX)
		gotX := guarded(p.InputLen())
		AdaptiveAvgPool2DBackward(p, gy, gotX)
		checkGuard(t, name, gotX)
		assertBits(t, name+" avg backward", gotX, wantX)

		avg := append([]float32(nil), want...)
		wantIdx := make([]int32, p.OutputLen())
		AdaptiveMaxPool2DReference(p, x, want, wantIdx)
		gotIdx := guardedIdx(p.OutputLen())
		AdaptiveMaxPool2D(p, x, got, gotIdx)
		checkGuardIdx(t, name, gotIdx)
		assertBits(t, name+" max", got, want)
		assertIdx(t, name+" max", gotIdx, wantIdx)
		AdaptiveMaxPool2D(p, x, got, nil)
		assertBits(t, name+" max without indices", got, want)
		AdaptiveMaxPool2DBackward(p, gy, gotIdx, gotX)
		var wantMX []float32 = make([]float32, p.InputLen())
		for pl := 0; pl < p.N*p.C; pl++ {
			for o := 0; o < p.OutH*p.OutW; o++ {
				wantMX[pl*p.H*p.W+int(wantIdx[pl*p.OutH*p.OutW+o])] += gy[pl*p.OutH*p.OutW+o]
			}
		}
		assertBits(t, name+" max backward", gotX, wantMX)

		if p.OutH == 1 && p.OutW == 1 {
			g := guarded(p.N * p.C)
			GlobalAvgPool2D(p.N*p.C, p.H*p.W, x, g)
			checkGuard(t, name, g)
			for i := range g {
				// sum/(H*W) vs sum/H/W: equal up to one rounding.
				if !sameBits(g[i], avg[i]) && math.Abs(float64(g[i]-avg[i])) > 1e-6*math.Abs(float64(avg[i])) {
					t.Fatalf("%s global: %v, want %v", name, g[i], avg[i])
				}
			}
			gx := guarded(p.InputLen())
			GlobalAvgPool2DBackward(p.N*p.C, p.H*p.W, gy, gx)
			checkGuard(t, name, gx)
			// Every window is the whole plane: gy/H/W vs gy/(H*W) may
			// differ in the last bit; compare with a relative bound.
			wantG := make([]float32, p.InputLen())
			AdaptiveAvgPool2DBackwardReference(p, gy, wantG)
			for i, v := range gx {
				w := wantG[i]
				if math.Abs(float64(v-w)) > 1e-6*math.Abs(float64(w)) {
					t.Fatalf("%s global backward: %v, want %v", name, v, w)
				}
			}
		}
	}
}

// TestHandValues pins PyTorch's NaN and -Inf rules and the ceil-mode and
// divisor rules to hand-computed values.
func TestHandValues(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	// 1x1x2x4, kernel 2x2 stride 2: windows {1,nan,5,2} and {-inf x4}.
	x := []float32{1, nan, -inf, -inf, 5, 2, -inf, -inf}
	p := Pool2DParams{N: 1, C: 1, H: 2, W: 4, KH: 2, KW: 2}
	for name, f := range map[string]func(Pool2DParams, []float32, []float32, []int32){"ref": MaxPool2DReference, "fast": MaxPool2D} {
		y := make([]float32, 2)
		idx := make([]int32, 2)
		f(p, x, y, idx)
		if y[0] == y[0] || idx[0] != 1 {
			t.Errorf("%s: NaN window gave %v at %d, want NaN at 1", name, y[0], idx[0])
		}
		if y[1] != -inf || idx[1] != 2 {
			t.Errorf("%s: all -Inf window gave %v at %d, want -Inf at 2", name, y[1], idx[1])
		}
	}
	// 5x5 all ones, kernel 2, stride 2, pad 1, ceil mode: output 3x3
	// (the fourth window would start in the right padding).
	p = Pool2DParams{N: 1, C: 1, H: 5, W: 5, KH: 2, KW: 2, PadH: 1, PadW: 1, CeilMode: true}
	if p.OutH() != 3 || p.OutW() != 3 {
		t.Fatalf("ceil-mode output %dx%d, want 3x3", p.OutH(), p.OutW())
	}
	ones := []float32{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	y := make([]float32, 9)
	AvgPool2D(p, ones, y)
	assertBits(t, "exclude pad", y, []float32{1, 1, 1, 1, 1, 1, 1, 1, 1})
	p.CountIncludePad = true
	AvgPool2D(p, ones, y)
	// Corner windows hold 1 image element of 4 positions; edge windows 2.
	assertBits(t, "include pad", y, []float32{0.25, 0.5, 0.5, 0.5, 1, 1, 0.5, 1, 1})
	p.Divisor = 3
	AvgPool2D(p, ones, y)
	third := float32(1) / 3
	assertBits(t, "divisor", y, []float32{third, float32(2) / 3, float32(2) / 3, float32(2) / 3, float32(4) / 3, float32(4) / 3, float32(2) / 3, float32(4) / 3, float32(4) / 3})
	// Adaptive 5 -> 3: windows [0,2), [1,4), [3,5).
	ap := AdaptivePool2DParams{N: 1, C: 1, H: 1, W: 5, OutH: 1, OutW: 3}
	ya := make([]float32, 3)
	AdaptiveAvgPool2D(ap, []float32{1, 2, 3, 4, 5}, ya)
	assertBits(t, "adaptive", ya, []float32{1.5, 3, 4.5})
	// Global pooling of a plane holding +Inf and -Inf is NaN; of +Inf, +Inf.
	g := make([]float32, 2)
	GlobalAvgPool2D(2, 2, []float32{inf, -inf, inf, 1}, g)
	if g[0] == g[0] || g[1] != inf {
		t.Errorf("global pooling of infinities: %v", g)
	}
}

func TestThreadInvariant(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	p := Pool2DParams{N: 3, C: 37, H: 23, W: 19, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, CeilMode: true}
	ap := AdaptivePool2DParams{N: 3, C: 37, H: 23, W: 19, OutH: 5, OutW: 7}
	x := randInput(r, p.InputLen(), true)
	gy := randFinite(r, p.OutputLen())
	gya := randFinite(r, ap.OutputLen())
	run := func(n int) [][]float32 {
		old := parallel.SetNumThreads(n)
		defer parallel.SetNumThreads(old)
		out := make([][]float32, 8)
		for i := range out {
			out[i] = make([]float32, max(p.InputLen(), p.OutputLen()))
		}
		idx := make([]int32, p.OutputLen())
		MaxPool2D(p, x, out[0], idx)
		MaxPool2DBackward(p, gy, idx, out[1])
		AvgPool2D(p, x, out[2])
		AvgPool2DBackward(p, gy, out[3])
		AdaptiveAvgPool2D(ap, x, out[4])
		AdaptiveAvgPool2DBackward(ap, gya, out[5])
		GlobalAvgPool2D(ap.N*ap.C, ap.H*ap.W, x, out[6])
		GlobalAvgPool2DBackward(ap.N*ap.C, ap.H*ap.W, gya, out[7])
		return out
	}
	one := run(1)
	for _, n := range []int{2, 3} {
		got := run(n)
		for k := range got {
			assertBits(t, fmt.Sprintf("op %d threads %d", k, n), got[k], one[k])
		}
	}
}

func TestValidate(t *testing.T) {
	bad := []Pool2DParams{
		{N: 1, C: 1, H: 4, W: 4, KH: 0, KW: 2},
		{N: 1, C: 1, H: 4, W: 4, KH: 2, KW: 2, PadH: 2},
		{N: 1, C: 1, H: 4, W: 4, KH: 2, KW: 2, StrideW: -1},
		{N: 1, C: 1, H: 1, W: 1, KH: 3, KW: 3},
		{N: -1, C: 1, H: 4, W: 4, KH: 2, KW: 2},
		{N: 1, C: 1, H: 4, W: 4, KH: 2, KW: 2, Divisor: -1},
	}
	for _, p := range bad {
		if p.Validate() == nil {
			t.Errorf("%v accepted", p)
		}
	}
	if (Pool2DParams{N: 1, C: 1, H: 5, W: 5, KH: 3, KW: 3, DilH: 2}).ValidateAvg() == nil {
		t.Error("dilated average pooling accepted")
	}
	if (AdaptivePool2DParams{N: 1, C: 1, H: 3, W: 3, OutH: 0, OutW: 1}).Validate() == nil {
		t.Error("empty adaptive output accepted")
	}
}

type torchCase struct {
	Kind               string
	N, C, H, W, OH, OW int
	K, S, P, D, O      []int
	Ceil, Cip          bool
	Div                int
	X, Y, GY, GX       []float32
	Idx                []int32
}

// TestTorchParity compares outputs, indices and input gradients with
// PyTorch's on the golden cases of testdata/torch_pool.json.
func TestTorchParity(t *testing.T) {
	data, err := os.ReadFile("testdata/torch_pool.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Cases []torchCase }
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("testdata/torch_pool.json: %v", err)
	}
	if len(f.Cases) == 0 {
		t.Fatal("testdata/torch_pool.json: no cases")
	}
	for i, c := range f.Cases {
		name := fmt.Sprintf("case %d (%s)", i, c.Kind)
		y := make([]float32, len(c.Y))
		gx := make([]float32, len(c.X))
		switch c.Kind {
		case "max", "avg":
			p := Pool2DParams{N: c.N, C: c.C, H: c.H, W: c.W, KH: c.K[0], KW: c.K[1], StrideH: c.S[0], StrideW: c.S[1],
				PadH: c.P[0], PadW: c.P[1], CeilMode: c.Ceil, CountIncludePad: c.Cip, Divisor: c.Div}
			if c.D != nil {
				p.DilH, p.DilW = c.D[0], c.D[1]
			}
			if p.OutH() != c.OH || p.OutW() != c.OW {
				t.Fatalf("%s: output %dx%d, torch %dx%d", name, p.OutH(), p.OutW(), c.OH, c.OW)
			}
			if c.Kind == "max" {
				idx := make([]int32, len(c.Y))
				MaxPool2D(p, c.X, y, idx)
				assertIdx(t, name, idx, c.Idx)
				MaxPool2DBackward(p, c.GY, idx, gx)
			} else {
				AvgPool2D(p, c.X, y)
				AvgPool2DBackward(p, c.GY, gx)
			}
		case "aavg", "amax":
			p := AdaptivePool2DParams{N: c.N, C: c.C, H: c.H, W: c.W, OutH: c.O[0], OutW: c.O[1]}
			if c.Kind == "amax" {
				idx := make([]int32, len(c.Y))
				AdaptiveMaxPool2D(p, c.X, y, idx)
				assertIdx(t, name, idx, c.Idx)
				AdaptiveMaxPool2DBackward(p, c.GY, idx, gx)
			} else {
				AdaptiveAvgPool2D(p, c.X, y)
				AdaptiveAvgPool2DBackward(p, c.GY, gx)
			}
		default:
			t.Fatalf("%s: unknown kind", name)
		}
		// Torch computes adaptive average pooling to 1x1 as a mean, which
		// sums in another order; every other case matches bit for bit.
		mean := c.Kind == "aavg" && c.O[0] == 1 && c.O[1] == 1
		assertTorch(t, name+" y", y, c.Y, mean)
		assertTorch(t, name+" gx", gx, c.GX, mean)
	}
}

func assertTorch(t *testing.T, name string, got, want []float32, approx bool) {
	t.Helper()
	for i := range want {
		if approx && math.Abs(float64(got[i]-want[i])) <= 1e-6*math.Abs(float64(want[i])) {
			continue
		}
		if !sameBits(got[i], want[i]) {
			t.Fatalf("%s: element %d = %v, torch %v", name, i, got[i], want[i])
		}
	}
}
