package conv

import (
	"math/rand/v2"
	"testing"
)

func transposeCases(r *rand.Rand, nRandom int) []ConvTranspose2DParams {
	cs := []ConvTranspose2DParams{
		{N: 1, C: 1, H: 1, W: 1, OutC: 1, KH: 1, KW: 1},
		{N: 2, C: 3, H: 4, W: 5, OutC: 2, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, OutPadH: 1, OutPadW: 1},
		{N: 1, C: 4, H: 5, W: 3, OutC: 6, KH: 2, KW: 3, StrideH: 1, StrideW: 3, PadW: 2, OutPadW: 2, Groups: 2},
		{N: 1, C: 2, H: 4, W: 4, OutC: 2, KH: 3, KW: 3, DilH: 3, DilW: 2, OutPadH: 2, Groups: 2}, // depthwise, outpad < dilation
		{N: 2, C: 6, H: 5, W: 6, OutC: 3, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, Groups: 3},
		{N: 1, C: 8, H: 6, W: 6, OutC: 4, KH: 1, KW: 1},
		{N: 1, C: 3, H: 3, W: 3, OutC: 6, KH: 4, KW: 4, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, Groups: 3}, // depthwise x2
	}
	for nRandom > 0 {
		g := 1 + r.IntN(3)
		p := ConvTranspose2DParams{
			N: 1 + r.IntN(2), C: g * (1 + r.IntN(3)), H: 1 + r.IntN(7), W: 1 + r.IntN(7),
			OutC: g * (1 + r.IntN(3)), KH: 1 + r.IntN(4), KW: 1 + r.IntN(4),
			StrideH: 1 + r.IntN(3), StrideW: 1 + r.IntN(3), PadH: r.IntN(3), PadW: r.IntN(3),
			DilH: 1 + r.IntN(2), DilW: 1 + r.IntN(2), Groups: g,
		}
		p.OutPadH = r.IntN(max(p.StrideH, p.DilH))
		p.OutPadW = r.IntN(max(p.StrideW, p.DilW))
		if r.IntN(4) == 0 {
			p.OutC = g
		}
		if p.Validate() != nil {
			continue
		}
		cs = append(cs, p)
		nRandom--
	}
	return cs
}

func TestConvTranspose2DMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, p := range transposeCases(r, 150) {
		x := randSlice(r, p.InputLen())
		w := randSlice(r, p.WeightLen())
		b := randSlice(r, p.OutC)
		gy := randSlice(r, p.OutputLen())

		want := make([]float32, p.OutputLen())
		ConvTranspose2DReference(p, x, w, b, want)
		mag := make([]float32, p.OutputLen())
		ConvTranspose2DReference(p, absOf(x), absOf(w), absOf(b), mag)
		got := guarded(p.OutputLen())
		ConvTranspose2D(p, x, w, b, got)
		checkGuard(t, p.String(), got)
		assertCloseMag(t, p.String()+" y", got, want, mag, convTol)

		wantX := make([]float32, p.InputLen())
		ConvTranspose2DBackwardInputReference(p, w, gy, wantX)
		magX := make([]float32, p.InputLen())
		ConvTranspose2DBackwardInputReference(p, absOf(w), absOf(gy), magX)
		gotX := guarded(p.InputLen())
		ConvTranspose2DBackwardInput(p, w, gy, gotX)
		checkGuard(t, p.String(), gotX)
		assertCloseMag(t, p.String()+" dx", gotX, wantX, magX, convTol)

		wantW := make([]float32, p.WeightLen())
		ConvTranspose2DBackwardWeightReference(p, x, gy, wantW)
		magW := make([]float32, p.WeightLen())
		ConvTranspose2DBackwardWeightReference(p, absOf(x), absOf(gy), magW)
		gotW := guarded(p.WeightLen())
		ConvTranspose2DBackwardWeight(p, x, gy, gotW)
		checkGuard(t, p.String(), gotW)
		assertCloseMag(t, p.String()+" dw", gotW, wantW, magW, convTol)

		wantB := make([]float32, p.OutC)
		ConvTranspose2DBackwardBiasReference(p, gy, wantB)
		gotB := guarded(p.OutC)
		ConvTranspose2DBackwardBias(p, gy, gotB)
		checkGuard(t, p.String(), gotB)
		assertBits(t, p.String()+" db", gotB, wantB)
	}
}

// TestConvTranspose2DFiniteDifferences checks the transposed-convolution
// gradients against central differences of its forward reference.
func TestConvTranspose2DFiniteDifferences(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	p := ConvTranspose2DParams{N: 2, C: 4, H: 3, W: 4, OutC: 2, KH: 3, KW: 2, StrideH: 2, StrideW: 3,
		PadH: 1, OutPadH: 1, OutPadW: 2, Groups: 2}
	x := randSlice(r, p.InputLen())
	w := randSlice(r, p.WeightLen())
	b := randSlice(r, p.OutC)
	gy := randSlice(r, p.OutputLen())
	loss := func() float64 {
		y := make([]float32, p.OutputLen())
		ConvTranspose2DReference(p, x, w, b, y)
		return dot64(y, gy)
	}
	dx := make([]float32, p.InputLen())
	ConvTranspose2DBackwardInput(p, w, gy, dx)
	dw := make([]float32, p.WeightLen())
	ConvTranspose2DBackwardWeight(p, x, gy, dw)
	db := make([]float32, p.OutC)
	ConvTranspose2DBackwardBias(p, gy, db)
	const h = 1e-2
	for _, v := range []struct {
		name      string
		val, grad []float32
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

func TestConvTranspose2DThreadInvariant(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, p := range []ConvTranspose2DParams{
		{N: 3, C: 16, H: 9, W: 11, OutC: 8, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, OutPadH: 1, OutPadW: 1},
		{N: 1, C: 24, H: 14, W: 14, OutC: 12, KH: 4, KW: 4, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1},
		{N: 2, C: 8, H: 12, W: 10, OutC: 8, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 8},
	} {
		x := randSlice(r, p.InputLen())
		w := randSlice(r, p.WeightLen())
		b := randSlice(r, p.OutC)
		gy := randSlice(r, p.OutputLen())
		run := func(n int) [3][]float32 {
			var out [3][]float32
			withThreads(n, func() {
				out[0] = make([]float32, p.OutputLen())
				ConvTranspose2D(p, x, w, b, out[0])
				out[1] = make([]float32, p.InputLen())
				ConvTranspose2DBackwardInput(p, w, gy, out[1])
				out[2] = make([]float32, p.WeightLen())
				ConvTranspose2DBackwardWeight(p, x, gy, out[2])
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
