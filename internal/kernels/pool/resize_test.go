package pool

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/internal/parallel"
)

func (p Upsample2DParams) String() string {
	return fmt.Sprintf("%dx%dx%dx%d->%dx%d scale %g,%g align=%v", p.N, p.C, p.H, p.W, p.OutH, p.OutW, p.ScaleH, p.ScaleW, p.AlignCorners)
}

// upsampleCases covers every size 1-17 on one axis against small and odd
// sizes on the other, up and down, by size and by (non-integer) scale
// factor, C = 1 (PyTorch's channels-last kernels) and C > 1, H = W = 1.
func upsampleCases(r *rand.Rand) []Upsample2DParams {
	var cs []Upsample2DParams
	for in := 1; in <= 17; in++ {
		for _, out := range []int{1, 2, 3, in, 2 * in, in + 1, 31, 33} {
			for _, c := range []int{1, 3} {
				for _, align := range []bool{false, true} {
					cs = append(cs,
						Upsample2DParams{N: 2, C: c, H: in, W: 5, OutH: out, OutW: 7, AlignCorners: align},
						Upsample2DParams{N: 1, C: c, H: 3, W: in, OutH: 4, OutW: out, AlignCorners: align})
				}
			}
		}
	}
	for range 200 {
		p := Upsample2DParams{N: 1 + r.IntN(2), C: 1 + r.IntN(4), H: 1 + r.IntN(9), W: 1 + r.IntN(9), AlignCorners: r.IntN(2) == 0}
		p.ScaleH, p.ScaleW = 0.3+3*r.Float64(), 0.3+3*r.Float64()
		p.OutH, p.OutW = max(1, int(float64(p.H)*p.ScaleH)), max(1, int(float64(p.W)*p.ScaleW))
		cs = append(cs, p)
	}
	cs = append(cs,
		Upsample2DParams{N: 1, C: 4, H: 1, W: 1, OutH: 3, OutW: 5},
		Upsample2DParams{N: 1, C: 4, H: 3, W: 4, OutH: 3, OutW: 4, ScaleH: 1.2, ScaleW: 1},
		Upsample2DParams{N: 1, C: 2, H: 1, W: 5, OutH: 1, OutW: 10, ScaleH: 1, ScaleW: 2.1},
		Upsample2DParams{N: 0, C: 2, H: 3, W: 3, OutH: 5, OutW: 5})
	return cs
}

func TestUpsampleMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, p := range upsampleCases(r) {
		name := p.String()
		x := randInput(r, p.InputLen(), true)
		gy := randInput(r, p.OutputLen(), false)
		for _, op := range []struct {
			name      string
			fast, ref func(Upsample2DParams, []float32, []float32)
			in        []float32
			outLen    int
		}{
			{"nearest", UpsampleNearest2D, UpsampleNearest2DReference, x, p.OutputLen()},
			{"bilinear", UpsampleBilinear2D, UpsampleBilinear2DReference, x, p.OutputLen()},
			{"nearest backward", UpsampleNearest2DBackward, UpsampleNearest2DBackwardReference, gy, p.InputLen()},
			{"bilinear backward", UpsampleBilinear2DBackward, UpsampleBilinear2DBackwardReference, gy, p.InputLen()},
		} {
			got, want := guarded(op.outLen), guarded(op.outLen)
			if strings.HasSuffix(op.name, "backward") {
				// Stale values must not leak into the gradient.
				for i := range got {
					got[i], want[i] = 7, -7
				}
			}
			op.fast(p, op.in, got)
			op.ref(p, op.in, want)
			assertBits(t, name+" "+op.name, got, want)
			checkGuard(t, name+" "+op.name, got)
		}
	}
}

// TestUpsampleAdjoint checks <up(x), g> = <x, up*(g)> in float64 for both
// modes, so the backward kernels are the transposes of the forward ones.
func TestUpsampleAdjoint(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, p := range upsampleCases(r) {
		x := randFinite(r, p.InputLen())
		g := randFinite(r, p.OutputLen())
		y, gx := make([]float32, p.OutputLen()), make([]float32, p.InputLen())
		for _, m := range []struct {
			name string
			fwd  func(Upsample2DParams, []float32, []float32)
			bwd  func(Upsample2DParams, []float32, []float32)
		}{{"nearest", UpsampleNearest2D, UpsampleNearest2DBackward}, {"bilinear", UpsampleBilinear2D, UpsampleBilinear2DBackward}} {
			m.fwd(p, x, y)
			m.bwd(p, g, gx)
			a, b := dot64(y, g), dot64(x, gx)
			if math.Abs(a-b) > 1e-4*(1+math.Abs(a)) {
				t.Fatalf("%v %s: <up(x), g> = %v, <x, up*(g)> = %v", p, m.name, a, b)
			}
		}
	}
}

func TestUpsampleIndexHand(t *testing.T) {
	// 3 -> 3 with scale factor 1.2: nearest_idx copies, the generic
	// formula floor(o/1.2) reads rows 0, 0, 1.
	for o, want := range []int{0, 0, 1} {
		if got := nearestIndex(o, 3, 3, 1.2, true); got != o {
			t.Errorf("nearestIndex(%d, shortcuts) = %d, want %d", o, got, o)
		}
		if got := nearestIndex(o, 3, 3, 1.2, false); got != want {
			t.Errorf("nearestIndex(%d) = %d, want %d", o, got, want)
		}
	}
	// 5 -> 10 with factor 2.1: o>>1 with the shortcut, floor(o/2.1)
	// without (8 -> 3 where 8>>1 = 4).
	if a, b := nearestIndex(8, 5, 10, 2.1, true), nearestIndex(8, 5, 10, 2.1, false); a != 4 || b != 3 {
		t.Errorf("nearestIndex(8, 5->10, 2.1) = %d (shortcut), %d; want 4, 3", a, b)
	}
	// Downsampling 7 -> 3 reads floor(o*7/3) = 0, 2, 4.
	for o, want := range []int{0, 2, 4} {
		if got := nearestIndex(o, 7, 3, 0, false); got != want {
			t.Errorf("nearestIndex(%d, 7->3) = %d, want %d", o, got, want)
		}
	}
	// align_corners 8 -> 4: s = float32(7/3); PyTorch computes s*3 in
	// float64 (6.99999976...), so output 3 reads input 6 with weight
	// 2.4e-7 and input 7 with the rest; float32 arithmetic would round the
	// product to 7.
	s := linearScale(8, 4, true, 0)
	if float32(s*3) != 7 {
		t.Fatalf("float32(s*3) = %v, the case no longer shows float64 indices", float32(s*3))
	}
	tap := linearAt(s, 3, 8, 4, true)
	r := float64(s) * 3
	if tap.i0 != 6 || tap.i1 != 7 || tap.l1 != float32(r-6) || tap.l0 != float32(1-float32(r-6)) || tap.l0 == 0 {
		t.Errorf("linearAt(3, 8->4, align) = %+v", tap)
	}
	// Without align_corners, 2 -> 3: sample points max((o+0.5)*2/3-0.5, 0)
	// = 0, 0.5, 1.1667; the last clips to input 1 on both taps.
	s = linearScale(2, 3, false, 0)
	for o, want := range []linearTap{{0, 1, 1, 0}, {0, 1, 0.5, 0.5}, {1, 1, float32(1 - float32(float64(s)*2.5-1.5)), float32(float64(s)*2.5 - 1.5)}} {
		if got := linearAt(s, o, 2, 3, false); got != want {
			t.Errorf("linearAt(%d, 2->3) = %+v, want %+v", o, got, want)
		}
	}
	// Equal sizes copy whatever the scale.
	if got := linearAt(linearScale(4, 4, false, 1.2), 2, 4, 4, false); got != (linearTap{2, 2, 1, 0}) {
		t.Errorf("linearAt(equal sizes) = %+v", got)
	}
}

func TestUpsampleHandValues(t *testing.T) {
	// One plane 2x2 -> 4x4, nearest and bilinear with align_corners.
	p := Upsample2DParams{N: 1, C: 1, H: 2, W: 2, OutH: 4, OutW: 4}
	x := []float32{1, 2, 3, 4}
	y := make([]float32, 16)
	UpsampleNearest2D(p, x, y)
	assertBits(t, "nearest", y, []float32{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4})
	gx := make([]float32, 4)
	UpsampleNearest2DBackward(p, y, gx)
	assertBits(t, "nearest backward", gx, []float32{4, 8, 12, 16})
	p.AlignCorners = true
	p.OutH, p.OutW = 3, 3
	UpsampleBilinear2D(p, x, y[:9])
	assertBits(t, "bilinear", y[:9], []float32{1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4})
	UpsampleBilinear2DBackward(p, []float32{1, 1, 1, 1, 1, 1, 1, 1, 1}, gx)
	assertBits(t, "bilinear backward", gx, []float32{2.25, 2.25, 2.25, 2.25})
}

func TestUpsampleThreadInvariant(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, p := range []Upsample2DParams{
		{N: 3, C: 37, H: 23, W: 19, OutH: 41, OutW: 29, ScaleH: 1.8, ScaleW: 1.55},
		{N: 5, C: 1, H: 23, W: 19, OutH: 12, OutW: 50, AlignCorners: true},
	} {
		x := randInput(r, p.InputLen(), false)
		gy := randFinite(r, p.OutputLen())
		run := func(n int) [][]float32 {
			old := parallel.SetNumThreads(n)
			defer parallel.SetNumThreads(old)
			out := [][]float32{make([]float32, p.OutputLen()), make([]float32, p.OutputLen()), make([]float32, p.InputLen()), make([]float32, p.InputLen())}
			UpsampleNearest2D(p, x, out[0])
			UpsampleBilinear2D(p, x, out[1])
			UpsampleNearest2DBackward(p, gy, out[2])
			UpsampleBilinear2DBackward(p, gy, out[3])
			return out
		}
		one := run(1)
		for _, n := range []int{2, 3} {
			for k, got := range run(n) {
				assertBits(t, fmt.Sprintf("%v op %d threads %d", p, k, n), got, one[k])
			}
		}
	}
}

func TestUpsampleValidate(t *testing.T) {
	bad := []Upsample2DParams{
		{N: -1, C: 1, H: 2, W: 2, OutH: 2, OutW: 2},
		{N: 1, C: 0, H: 2, W: 2, OutH: 2, OutW: 2},
		{N: 1, C: 1, H: 2, W: 0, OutH: 2, OutW: 2},
		{N: 1, C: 1, H: 2, W: 2, OutH: 0, OutW: 2},
		{N: 1, C: 1, H: 2, W: 2, OutH: 2, OutW: 2, ScaleH: -1},
		{N: 1, C: 1, H: 2, W: 2, OutH: 2, OutW: 2, ScaleW: math.NaN()},
		{N: 1, C: 1, H: 2, W: 2, OutH: 2, OutW: 2, ScaleW: math.Inf(1)},
	}
	for _, p := range bad {
		if p.Validate() == nil {
			t.Errorf("%v accepted", p)
		}
	}
	p := Upsample2DParams{N: 1, C: 2, H: 2, W: 2, OutH: 3, OutW: 3}
	for _, c := range []struct {
		want string
		fn   func()
	}{
		{"pool: UpsampleBilinear2D: output has 17 elements, need 18", func() { UpsampleBilinear2D(p, make([]float32, 8), make([]float32, 17)) }},
		{"pool: UpsampleNearest2D: input has 7 elements, need 8", func() { UpsampleNearest2D(p, make([]float32, 7), make([]float32, 18)) }},
		{"pool: UpsampleNearest2DBackward: input has 7 elements", func() { UpsampleNearest2DBackward(p, make([]float32, 18), make([]float32, 7)) }},
		{"pool: UpsampleBilinear2DReference: pool: upsample output size", func() {
			UpsampleBilinear2DReference(Upsample2DParams{N: 1, C: 1, H: 1, W: 1}, nil, nil)
		}},
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), c.want) {
					t.Errorf("panic %v, want %q", r, c.want)
				}
			}()
			c.fn()
		}()
	}
}

// BenchmarkUpsample measures 2x upsampling of a 64x56x56 feature map (an
// FPN/U-Net decoder step) with the references in the same run; rates are
// output elements per second.
func BenchmarkUpsample(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	p := Upsample2DParams{N: 1, C: 64, H: 56, W: 56, OutH: 112, OutW: 112, ScaleH: 2, ScaleW: 2}
	x := randFinite(r, p.InputLen())
	y := make([]float32, p.OutputLen())
	gx := make([]float32, p.InputLen())
	for _, op := range []struct {
		name string
		fn   func(Upsample2DParams, []float32, []float32)
		in   []float32
		out  []float32
	}{
		{"nearest", UpsampleNearest2D, x, y},
		{"nearest_reference", UpsampleNearest2DReference, x, y},
		{"bilinear", UpsampleBilinear2D, x, y},
		{"bilinear_reference", UpsampleBilinear2DReference, x, y},
		{"bilinear_align", func(p Upsample2DParams, x, y []float32) {
			p.AlignCorners = true
			UpsampleBilinear2D(p, x, y)
		}, x, y},
		{"nearest_backward", UpsampleNearest2DBackward, y, gx},
		{"bilinear_backward", UpsampleBilinear2DBackward, y, gx},
	} {
		b.Run(op.name+"_64x56x56_x2", func(b *testing.B) {
			benchThreads(b, func(b *testing.B) {
				for b.Loop() {
					op.fn(p, op.in, op.out)
				}
				reportRates(b, float64(p.OutputLen()), float64(4*len(op.in)))
			})
		})
	}
}
