package conv

import (
	"math/rand/v2"
	"testing"
)

// FuzzConv2D compares Conv2D and its gradients with the references on
// shapes decoded from the fuzzer's bytes (invalid shapes are skipped, as
// Validate rejects them).
func FuzzConv2D(f *testing.F) {
	f.Add(uint64(1), uint8(1), uint8(2), uint8(3), uint8(7), uint8(9), uint8(3), uint8(3), uint8(0x11), uint8(0x11), uint8(0))
	f.Add(uint64(2), uint8(2), uint8(3), uint8(1), uint8(5), uint8(6), uint8(5), uint8(2), uint8(0x21), uint8(0x20), uint8(0x12))
	f.Add(uint64(3), uint8(1), uint8(4), uint8(9), uint8(6), uint8(6), uint8(3), uint8(3), uint8(0x11), uint8(0x11), uint8(0))
	f.Fuzz(func(t *testing.T, seed uint64, n, groups, mult, h, w, kh, kw, stride, pad, dil uint8) {
		g := 1 + int(groups%3)
		p := Conv2DParams{
			N: 1 + int(n%3), C: g * (1 + int(mult>>4)%3), H: 1 + int(h%12), W: 1 + int(w%12),
			OutC: g * (1 + int(mult%10)), KH: 1 + int(kh%4), KW: 1 + int(kw%4),
			StrideH: 1 + int(stride>>4)%3, StrideW: 1 + int(stride%3),
			PadH: int(pad>>4) % 3, PadW: int(pad % 3),
			DilH: 1 + int(dil>>4)%2, DilW: 1 + int(dil%2), Groups: g,
		}
		if p.Validate() != nil {
			return
		}
		r := rand.New(rand.NewPCG(seed, 99))
		x := randSlice(r, p.InputLen())
		wt := randSlice(r, p.WeightLen())
		b := randSlice(r, p.OutC)
		gy := randSlice(r, p.OutputLen())

		want, mag := make([]float32, p.OutputLen()), make([]float32, p.OutputLen())
		Conv2DReference(p, x, wt, b, want)
		Conv2DReference(p, absOf(x), absOf(wt), absOf(b), mag)
		got := guarded(p.OutputLen())
		Conv2D(p, x, wt, b, got)
		checkGuard(t, p.String(), got)
		assertCloseMag(t, p.String()+" y", got, want, mag, convTol)

		wantX, magX := make([]float32, p.InputLen()), make([]float32, p.InputLen())
		Conv2DBackwardInputReference(p, wt, gy, wantX)
		Conv2DBackwardInputReference(p, absOf(wt), absOf(gy), magX)
		gotX := guarded(p.InputLen())
		Conv2DBackwardInput(p, wt, gy, gotX)
		checkGuard(t, p.String(), gotX)
		assertCloseMag(t, p.String()+" dx", gotX, wantX, magX, convTol)

		wantW, magW := make([]float32, p.WeightLen()), make([]float32, p.WeightLen())
		Conv2DBackwardWeightReference(p, x, gy, wantW)
		Conv2DBackwardWeightReference(p, absOf(x), absOf(gy), magW)
		gotW := guarded(p.WeightLen())
		Conv2DBackwardWeight(p, x, gy, gotW)
		checkGuard(t, p.String(), gotW)
		assertCloseMag(t, p.String()+" dw", gotW, wantW, magW, convTol)
	})
}
