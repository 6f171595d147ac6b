package pool

import (
	"math/rand/v2"
	"testing"
)

// FuzzPool compares max and average pooling (forward and backward) with
// the references, bit for bit, on shapes and inputs (with NaN, infinities
// and signed zeros) decoded from the fuzzer's bytes.
func FuzzPool(f *testing.F) {
	f.Add(uint64(1), uint8(9), uint8(8), uint8(0x33), uint8(0x22), uint8(0x11), uint8(0x11), uint8(3))
	f.Add(uint64(2), uint8(5), uint8(5), uint8(0x22), uint8(0x22), uint8(0x11), uint8(0x12), uint8(1))
	f.Fuzz(func(t *testing.T, seed uint64, h, w, kernel, stride, pad, dil, flags uint8) {
		p := Pool2DParams{N: 1, C: 2, H: 1 + int(h%13), W: 1 + int(w%13),
			KH: 1 + int(kernel>>4)%4, KW: 1 + int(kernel%4),
			StrideH: int(stride>>4) % 4, StrideW: int(stride % 4),
			DilH: 1 + int(dil>>4)%3, DilW: 1 + int(dil%3),
			CeilMode: flags&1 != 0, CountIncludePad: flags&2 != 0}
		p.PadH = int(pad>>4) % (p.KH/2 + 1)
		p.PadW = int(pad%16) % (p.KW/2 + 1)
		if p.Validate() != nil {
			return
		}
		r := rand.New(rand.NewPCG(seed, 7))
		x := randInput(r, p.InputLen(), true)
		gy := randFinite(r, p.OutputLen())
		want, got := make([]float32, p.OutputLen()), guarded(p.OutputLen())
		wantIdx, gotIdx := make([]int32, p.OutputLen()), guardedIdx(p.OutputLen())
		MaxPool2DReference(p, x, want, wantIdx)
		MaxPool2D(p, x, got, gotIdx)
		checkGuard(t, p.String(), got)
		checkGuardIdx(t, p.String(), gotIdx)
		assertBits(t, p.String()+" max", got, want)
		assertIdx(t, p.String()+" max", gotIdx, wantIdx)
		wantX, gotX := make([]float32, p.InputLen()), guarded(p.InputLen())
		MaxPool2DBackwardReference(p, gy, wantIdx, wantX)
		MaxPool2DBackward(p, gy, gotIdx, gotX)
		checkGuard(t, p.String(), gotX)
		assertBits(t, p.String()+" max backward", gotX, wantX)

		p.DilH, p.DilW = 1, 1
		if p.ValidateAvg() != nil {
			return
		}
		want, got = make([]float32, p.OutputLen()), guarded(p.OutputLen())
		AvgPool2DReference(p, x, want)
		AvgPool2D(p, x, got)
		checkGuard(t, p.String(), got)
		assertBits(t, p.String()+" avg", got, want)
		gy = randFinite(r, p.OutputLen())
		wantX, gotX = make([]float32, p.InputLen()), guarded(p.InputLen())
		AvgPool2DBackwardReference(p, gy, wantX)
		AvgPool2DBackward(p, gy, gotX)
		checkGuard(t, p.String(), gotX)
		assertBits(t, p.String()+" avg backward", gotX, wantX)
	})
}
