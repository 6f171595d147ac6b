package conv

import (
	"math/rand/v2"
	"testing"
)

// convCases returns hand-picked shapes (1x1, depthwise, multiplier,
// strides, dilation, tiles) followed by random valid ones.
func convCases(r *rand.Rand, nRandom int) []Conv2DParams {
	cs := []Conv2DParams{
		{N: 1, C: 1, H: 1, W: 1, OutC: 1, KH: 1, KW: 1},
		{N: 2, C: 5, H: 7, W: 9, OutC: 3, KH: 1, KW: 1},                                                        // pointwise GEMM
		{N: 1, C: 4, H: 6, W: 6, OutC: 6, KH: 1, KW: 1, Groups: 2},                                             // grouped pointwise
		{N: 1, C: 3, H: 9, W: 8, OutC: 4, KH: 1, KW: 1, StrideH: 2, StrideW: 2},                                // strided 1x1
		{N: 2, C: 3, H: 8, W: 7, OutC: 5, KH: 3, KW: 3, PadH: 1, PadW: 1},                                      // 3x3 same
		{N: 1, C: 8, H: 11, W: 13, OutC: 8, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 8},                         // depthwise
		{N: 2, C: 4, H: 10, W: 9, OutC: 12, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, Groups: 4}, // multiplier 3, stride 2
		{N: 1, C: 3, H: 12, W: 12, OutC: 3, KH: 5, KW: 5, PadH: 4, PadW: 4, DilH: 2, DilW: 2, Groups: 3},
		{N: 1, C: 2, H: 9, W: 40, OutC: 2, KH: 3, KW: 3, StrideW: 3, PadW: 2, Groups: 2},
		{N: 1, C: 2, H: 5, W: 70, OutC: 2, KH: 1, KW: 3, PadW: 1, Groups: 2},                      // row longer than one vector block
		{N: 1, C: 1, H: 1, W: 17, OutC: 1, KH: 1, KW: 5, PadW: 2},                                 // conv1d-shaped
		{N: 1, C: 64, H: 19, W: 21, OutC: 16, KH: 3, KW: 3, PadH: 1, PadW: 1},                     // several im2col tiles
		{N: 2, C: 1, H: 9, W: 10, OutC: 12, KH: 3, KW: 3, PadH: 1, PadW: 1},                       // one input channel, 12 outputs: GEMM
		{N: 1, C: 2, H: 7, W: 7, OutC: 16, KH: 3, KW: 3, PadH: 1, PadW: 1, StrideW: 2, Groups: 2}, // multiplier 8: GEMM
		{N: 2, C: 6, H: 7, W: 5, OutC: 4, KH: 2, KW: 4, StrideH: 3, StrideW: 1, PadH: 0, PadW: 3, DilH: 3, DilW: 1, Groups: 2},
	}
	for nRandom > 0 {
		g := 1 + r.IntN(3)
		p := Conv2DParams{
			N: 1 + r.IntN(3), C: g * (1 + r.IntN(4)), H: 1 + r.IntN(12), W: 1 + r.IntN(12),
			OutC: g * (1 + r.IntN(4)), KH: 1 + r.IntN(4), KW: 1 + r.IntN(4),
			StrideH: 1 + r.IntN(3), StrideW: 1 + r.IntN(3), PadH: r.IntN(3), PadW: r.IntN(3),
			DilH: 1 + r.IntN(2), DilW: 1 + r.IntN(2), Groups: g,
		}
		if r.IntN(4) == 0 { // depthwise with a multiplier
			p.C = g
		}
		if p.Validate() != nil {
			continue
		}
		cs = append(cs, p)
		nRandom--
	}
	return cs
}

// convTol bounds the difference between a fast path and its reference
// relative to the sum of the magnitudes of the terms: about 16 float32 ulps,
// far below the size of any single wrong or missing term.
const convTol = 1e-6

func TestConv2DMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, p := range convCases(r, 150) {
		x := randSlice(r, p.InputLen())
		w := randSlice(r, p.WeightLen())
		b := randSlice(r, p.OutC)
		for _, bias := range [][]float32{nil, b} {
			want := make([]float32, p.OutputLen())
			Conv2DReference(p, x, w, bias, want)
			mag := make([]float32, p.OutputLen())
			Conv2DReference(p, absOf(x), absOf(w), absOf(bias), mag)
			got := guarded(p.OutputLen())
			Conv2D(p, x, w, bias, got)
			checkGuard(t, p.String(), got)
			assertCloseMag(t, p.String(), got, want, mag, convTol)
		}
	}
}

func TestConv2DBackwardMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, p := range convCases(r, 150) {
		x := randSlice(r, p.InputLen())
		w := randSlice(r, p.WeightLen())
		gy := randSlice(r, p.OutputLen())

		wantX := make([]float32, p.InputLen())
		Conv2DBackwardInputReference(p, w, gy, wantX)
		magX := make([]float32, p.InputLen())
		Conv2DBackwardInputReference(p, absOf(w), absOf(gy), magX)
		gotX := guarded(p.InputLen())
		Conv2DBackwardInput(p, w, gy, gotX)
		checkGuard(t, p.String(), gotX)
		assertCloseMag(t, p.String()+" dx", gotX, wantX, magX, convTol)

		wantW := make([]float32, p.WeightLen())
		Conv2DBackwardWeightReference(p, x, gy, wantW)
		magW := make([]float32, p.WeightLen())
		Conv2DBackwardWeightReference(p, absOf(x), absOf(gy), magW)
		gotW := guarded(p.WeightLen())
		Conv2DBackwardWeight(p, x, gy, gotW)
		checkGuard(t, p.String(), gotW)
		assertCloseMag(t, p.String()+" dw", gotW, wantW, magW, convTol)

		wantB := make([]float32, p.OutC)
		Conv2DBackwardBiasReference(p, gy, wantB)
		gotB := guarded(p.OutC)
		Conv2DBackwardBias(p, gy, gotB)
		checkGuard(t, p.String(), gotB)
		assertBits(t, p.String()+" db", gotB, wantB)
	}
}

// TestConv2DReferenceAdjoint checks the references against each other by
// the adjoint identities <conv(x), gy> = <x, dx(gy)> = <w, dw(x, gy)>,
// evaluated in float64, so a wrong index in either loop nest shows.
func TestConv2DReferenceAdjoint(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, p := range convCases(r, 60) {
		x := randSlice(r, p.InputLen())
		w := randSlice(r, p.WeightLen())
		gy := randSlice(r, p.OutputLen())
		y := make([]float32, p.OutputLen())
		Conv2DReference(p, x, w, nil, y)
		dx := make([]float32, p.InputLen())
		Conv2DBackwardInputReference(p, w, gy, dx)
		dw := make([]float32, p.WeightLen())
		Conv2DBackwardWeightReference(p, x, gy, dw)
		lhs := dot64(y, gy)
		for _, rhs := range []float64{dot64(x, dx), dot64(w, dw)} {
			if d := lhs - rhs; d > 1e-4*(1+abs(lhs)) || -d > 1e-4*(1+abs(lhs)) {
				t.Fatalf("%v: <conv(x), gy> = %v, adjoint gives %v", p, lhs, rhs)
			}
		}
	}
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// TestConv2DHandValues pins the reference to values computed by hand.
func TestConv2DHandValues(t *testing.T) {
	// 1x1x3x3 input 1..9, 2x2 kernel [1 0; 0 -1], stride 1, pad 0:
	// y[i,j] = x[i,j] - x[i+1,j+1] = -4 everywhere.
	p := Conv2DParams{N: 1, C: 1, H: 3, W: 3, OutC: 1, KH: 2, KW: 2}
	x := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}
	w := []float32{1, 0, 0, -1}
	for _, f := range []func(Conv2DParams, []float32, []float32, []float32, []float32){Conv2DReference, Conv2D} {
		y := make([]float32, 4)
		f(p, x, w, []float32{0.5}, y)
		assertBits(t, "hand", y, []float32{-3.5, -3.5, -3.5, -3.5})
	}
	// Pad 1, stride 2, 3x3 all-ones kernel: corner sums of the padded image.
	p = Conv2DParams{N: 1, C: 1, H: 3, W: 3, OutC: 1, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}
	w = []float32{1, 1, 1, 1, 1, 1, 1, 1, 1}
	want := []float32{1 + 2 + 4 + 5, 2 + 3 + 5 + 6, 4 + 5 + 7 + 8, 5 + 6 + 8 + 9}
	for _, f := range []func(Conv2DParams, []float32, []float32, []float32, []float32){Conv2DReference, Conv2D} {
		y := make([]float32, 4)
		f(p, x, w, nil, y)
		assertBits(t, "hand stride 2", y, want)
	}
}

// TestConv2DFiniteDifferences checks the backward references against
// central differences of the forward reference on a small problem.
func TestConv2DFiniteDifferences(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	p := Conv2DParams{N: 2, C: 4, H: 5, W: 6, OutC: 4, KH: 3, KW: 2, StrideH: 2, PadH: 1, PadW: 1, DilW: 2, Groups: 2}
	x := randSlice(r, p.InputLen())
	w := randSlice(r, p.WeightLen())
	b := randSlice(r, p.OutC)
	gy := randSlice(r, p.OutputLen())
	loss := func() float64 {
		y := make([]float32, p.OutputLen())
		Conv2DReference(p, x, w, b, y)
		return dot64(y, gy)
	}
	dx := make([]float32, p.InputLen())
	Conv2DBackwardInput(p, w, gy, dx)
	dw := make([]float32, p.WeightLen())
	Conv2DBackwardWeight(p, x, gy, dw)
	db := make([]float32, p.OutC)
	Conv2DBackwardBias(p, gy, db)
	const h = 1e-2
	for _, v := range []struct {
		name string
		val  []float32
		grad []float32
	}{{"x", x, dx}, {"w", w, dw}, {"b", b, db}} {
		for i := range v.val {
			old := v.val[i]
			v.val[i] = old + h
			lp := loss()
			v.val[i] = old - h
			lm := loss()
			v.val[i] = old
			fd := (lp - lm) / (2 * h)
			if d := fd - float64(v.grad[i]); abs(d) > 2e-3*(1+abs(fd)) {
				t.Fatalf("d%s[%d] = %v, finite difference %v", v.name, i, v.grad[i], fd)
			}
		}
	}
}

func TestConv2DThreadInvariant(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	cases := []Conv2DParams{
		{N: 3, C: 16, H: 20, W: 18, OutC: 24, KH: 3, KW: 3, PadH: 1, PadW: 1},
		{N: 1, C: 64, H: 23, W: 23, OutC: 32, KH: 3, KW: 3, PadH: 1, PadW: 1},
		{N: 2, C: 32, H: 9, W: 9, OutC: 40, KH: 1, KW: 1},
		{N: 2, C: 12, H: 17, W: 15, OutC: 24, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, Groups: 12},
		{N: 1, C: 6, H: 12, W: 12, OutC: 6, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 3},
		{N: 2, C: 1, H: 28, W: 28, OutC: 20, KH: 5, KW: 5, PadH: 2, PadW: 2},  // one input channel: multiplier 20
		{N: 1, C: 16, H: 60, W: 61, OutC: 16, KH: 3, KW: 3, PadH: 1, PadW: 1}, // tile count depends on threads
	}
	for _, p := range cases {
		x := randSlice(r, p.InputLen())
		w := randSlice(r, p.WeightLen())
		b := randSlice(r, p.OutC)
		gy := randSlice(r, p.OutputLen())
		run := func(n int) [4][]float32 {
			var out [4][]float32
			withThreads(n, func() {
				out[0] = make([]float32, p.OutputLen())
				Conv2D(p, x, w, b, out[0])
				out[1] = make([]float32, p.InputLen())
				Conv2DBackwardInput(p, w, gy, out[1])
				out[2] = make([]float32, p.WeightLen())
				Conv2DBackwardWeight(p, x, gy, out[2])
				out[3] = make([]float32, p.OutC)
				Conv2DBackwardBias(p, gy, out[3])
			})
			return out
		}
		one := run(1)
		for _, n := range []int{2, 3} {
			got := run(n)
			for k := range got {
				assertBits(t, p.String(), got[k], one[k])
			}
		}
	}
}

func TestConv1D(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	p := Conv1DParams{N: 2, C: 4, L: 19, OutC: 6, K: 3, Stride: 2, Pad: 1, Dil: 2, Groups: 2}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	x := randSlice(r, p.N*p.C*p.L)
	w := randSlice(r, p.OutC*p.C/p.Groups*p.K)
	got := make([]float32, p.N*p.OutC*p.OutL())
	Conv1D(p, x, w, nil, got)
	// Direct 1-D definition.
	for n := 0; n < p.N; n++ {
		for o := 0; o < p.OutC; o++ {
			grp := o / (p.OutC / p.Groups)
			for l := 0; l < p.OutL(); l++ {
				var s float32
				for ci := 0; ci < p.C/p.Groups; ci++ {
					for k := 0; k < p.K; k++ {
						i := l*p.Stride - p.Pad + k*p.Dil
						if i >= 0 && i < p.L {
							s += x[(n*p.C+grp*(p.C/p.Groups)+ci)*p.L+i] * w[(o*(p.C/p.Groups)+ci)*p.K+k]
						}
					}
				}
				g := got[(n*p.OutC+o)*p.OutL()+l]
				if d := float64(g - s); abs(d) > 1e-5 {
					t.Fatalf("y[%d,%d,%d] = %v, want %v", n, o, l, g, s)
				}
			}
		}
	}
}

func TestValidate(t *testing.T) {
	good := Conv2DParams{N: 1, C: 4, H: 5, W: 5, OutC: 2, KH: 3, KW: 3, Groups: 2}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid params rejected: %v", err)
	}
	if good.OutH() != 3 || good.OutW() != 3 {
		t.Fatalf("OutH, OutW = %d, %d, want 3, 3", good.OutH(), good.OutW())
	}
	bad := []Conv2DParams{
		{N: -1, C: 1, H: 1, W: 1, OutC: 1, KH: 1, KW: 1},
		{N: 1, C: 0, H: 1, W: 1, OutC: 1, KH: 1, KW: 1},
		{N: 1, C: 1, H: 1, W: 1, OutC: 1, KH: 0, KW: 1},
		{N: 1, C: 1, H: 1, W: 1, OutC: 1, KH: 1, KW: 1, StrideH: -1},
		{N: 1, C: 1, H: 1, W: 1, OutC: 1, KH: 1, KW: 1, PadW: -1},
		{N: 1, C: 3, H: 1, W: 1, OutC: 2, KH: 1, KW: 1, Groups: 2},
		{N: 1, C: 2, H: 1, W: 1, OutC: 3, KH: 1, KW: 1, Groups: 2},
		{N: 1, C: 1, H: 2, W: 2, OutC: 1, KH: 3, KW: 3},
		{N: 1, C: 1, H: 3, W: 3, OutC: 1, KH: 2, KW: 2, DilH: 3},
	}
	for _, p := range bad {
		if p.Validate() == nil {
			t.Errorf("%v: invalid params accepted", p)
		}
	}
	tb := []ConvTranspose2DParams{
		{N: 1, C: 1, H: 3, W: 3, OutC: 1, KH: 3, KW: 3, StrideH: 2, StrideW: 2, OutPadH: 2},
		{N: 1, C: 1, H: 3, W: 3, OutC: 1, KH: 3, KW: 3, OutPadW: 1},
		{N: 1, C: 1, H: 1, W: 1, OutC: 1, KH: 1, KW: 1, PadH: 1},
	}
	for _, p := range tb {
		if p.Validate() == nil {
			t.Errorf("%v: invalid params accepted", p)
		}
	}
}

// TestConvForwardWide runs the wide stride-1 path on every stride-1 case,
// whether or not dispatch would choose it, with one-row and default tiles,
// against the reference, and checks 1, 2 and 3 threads agree bit for bit.
func TestConvForwardWide(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	cases := append(convCases(r, 200),
		Conv2DParams{N: 1, C: 16, H: 30, W: 33, OutC: 24, KH: 3, KW: 3, PadH: 1, PadW: 1},
		Conv2DParams{N: 5, C: 32, H: 12, W: 12, OutC: 6, KH: 5, KW: 5, PadH: 2, PadW: 2, Groups: 2})
	n := 0
	for _, p := range cases {
		p.StrideH, p.StrideW = 1, 1
		if p.Validate() != nil {
			continue
		}
		q := p.Norm()
		if q.StrideH != 1 || q.StrideW != 1 || (q.KH == 1 && q.KW == 1 && q.PadH == 0 && q.PadW == 0) || q.C == q.Groups {
			continue
		}
		n++
		x := randSlice(r, p.InputLen())
		w := randSlice(r, p.WeightLen())
		b := randSlice(r, p.OutC)
		want := make([]float32, p.OutputLen())
		Conv2DReference(p, x, w, b, want)
		mag := make([]float32, p.OutputLen())
		Conv2DReference(p, absOf(x), absOf(w), absOf(b), mag)
		plane := (q.H + 2*q.PadH) * (q.W + 2*q.PadW) * (q.C / q.Groups)
		for _, v := range []struct{ cols, chunk int }{{1, 2 * plane}, {768, 1}, {768, 512 * 1024}} {
			old, oldChunk := wideCols, wideChunkElems
			wideCols, wideChunkElems = v.cols, v.chunk
			var first []float32
			for _, th := range []int{1, 2, 3} {
				got := guarded(p.OutputLen())
				withThreads(th, func() {
					g := p.geom()
					convForwardWide(&g, x, w, nil, b, got)
				})
				checkGuard(t, p.String(), got)
				assertCloseMag(t, p.String(), got, want, mag, convTol)
				if first == nil {
					first = got
				} else {
					assertBits(t, p.String()+" threads", got, first)
				}
			}
			wideCols, wideChunkElems = old, oldChunk
		}
	}
	if n < 20 {
		t.Fatalf("only %d stride-1 cases", n)
	}
}

// TestConvBackwardWide runs the wide stride-1 backward paths on every
// stride-1 case they can serve, whether or not dispatch would choose them,
// against the references, checking 1, 2 and 3 threads agree bit for bit.
func TestConvBackwardWide(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	cases := append(convCases(r, 200),
		Conv2DParams{N: 3, C: 16, H: 30, W: 33, OutC: 24, KH: 3, KW: 3, PadH: 1, PadW: 1},
		Conv2DParams{N: 2, C: 4, H: 12, W: 12, OutC: 6, KH: 5, KW: 5, PadH: 2, PadW: 2, Groups: 2})
	nx, nw := 0, 0
	for _, p := range cases {
		p.StrideH, p.StrideW = 1, 1
		if p.Validate() != nil {
			continue
		}
		g := p.geom()
		if g.pointwise() || g.direct() {
			continue
		}
		x := randSlice(r, p.InputLen())
		w := randSlice(r, p.WeightLen())
		gy := randSlice(r, p.OutputLen())
		wantX := make([]float32, p.InputLen())
		Conv2DBackwardInputReference(p, w, gy, wantX)
		magX := make([]float32, p.InputLen())
		Conv2DBackwardInputReference(p, absOf(w), absOf(gy), magX)
		wantW := make([]float32, p.WeightLen())
		Conv2DBackwardWeightReference(p, x, gy, wantW)
		magW := make([]float32, p.WeightLen())
		Conv2DBackwardWeightReference(p, absOf(x), absOf(gy), magW)
		f, _ := g.flipGeom()
		flipOK := f.OH == g.H // flipGeom found a convolution
		plane := (g.H + 2*g.PH) * (g.W + 2*g.PW) * g.cg()
		fplane := 0
		if flipOK {
			fplane = (f.H + 2*f.PH) * (f.W + 2*f.PW) * f.cg()
		}
		for _, chunk := range []int{1, 2 * max(plane, fplane), 512 * 1024} {
			for _, tq := range []int{7, 1024} {
				oldChunk, oldTq := wideChunkElems, wideGradCols
				wideChunkElems, wideGradCols = chunk, tq
				testBackwardWide(t, p, &g, &f, flipOK, x, w, gy, wantX, magX, wantW, magW, &nx, &nw)
				wideChunkElems, wideGradCols = oldChunk, oldTq
			}
		}
	}
	if nx < 20 || nw < 20 {
		t.Fatalf("only %d input and %d weight cases", nx, nw)
	}
}

func testBackwardWide(t *testing.T, p Conv2DParams, g, f *geom, flipOK bool, x, w, gy, wantX, magX, wantW, magW []float32, nx, nw *int) {
	t.Helper()
	{
		var firstX, firstW []float32
		for _, th := range []int{1, 2, 3} {
			withThreads(th, func() {
				if flipOK {
					gx := guarded(p.InputLen())
					adjointWide(g, f, w, gy, gx)
					checkGuard(t, p.String(), gx)
					assertCloseMag(t, p.String()+" dx", gx, wantX, magX, convTol)
					if firstX == nil {
						firstX = gx
						*nx++
					} else {
						assertBits(t, p.String()+" dx threads", gx, firstX)
					}
				}
				gw := guarded(p.WeightLen())
				weightGradWide(g, x, gy, gw)
				checkGuard(t, p.String(), gw)
				assertCloseMag(t, p.String()+" dw", gw, wantW, magW, convTol)
				if firstW == nil {
					firstW = gw
					*nw++
				} else {
					assertBits(t, p.String()+" dw threads", gw, firstW)
				}
			})
		}
	}
}
