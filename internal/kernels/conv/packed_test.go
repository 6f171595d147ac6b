package conv

import (
	"math/rand/v2"
	"testing"
)

// TestConv2DPacked checks that packing the weight once gives Conv2D's
// bits on every path (1x1, im2col tiles, batched, wide, depthwise, and the
// transposed product of narrow outputs), with
// and without a bias, and that a weight that does not fit panics.
func TestConv2DPacked(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for _, p := range []Conv2DParams{
		{N: 1, C: 24, H: 7, W: 9, OutC: 30, KH: 1, KW: 1},
		{N: 1, C: 65, H: 1, W: 9, OutC: 128, KH: 1, KW: 3, PadW: 1},
		{N: 1, C: 128, H: 1, W: 9, OutC: 64, KH: 1, KW: 3, StrideW: 2, PadW: 1},
		{N: 3, C: 8, H: 6, W: 5, OutC: 12, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1},
		{N: 2, C: 32, H: 12, W: 14, OutC: 20, KH: 3, KW: 3, PadH: 1, PadW: 1},
		{N: 1, C: 16, H: 20, W: 40, OutC: 17, KH: 3, KW: 3, PadH: 1, PadW: 1},
		{N: 1, C: 32, H: 6, W: 60, OutC: 8, KH: 1, KW: 3, PadW: 1, Groups: 2},
		{N: 2, C: 40, H: 1, W: 1, OutC: 20, KH: 1, KW: 1},
		{N: 1, C: 300, H: 1, W: 3, OutC: 70, KH: 1, KW: 1},
		{N: 1, C: 64, H: 2, W: 4, OutC: 64, KH: 1, KW: 1, Groups: 2},
		{N: 1, C: 6, H: 9, W: 9, OutC: 6, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 6},
		{N: 2, C: 8, H: 5, W: 7, OutC: 12, KH: 2, KW: 2, StrideH: 2, StrideW: 2, Groups: 2},
	} {
		x, w, b := randSlice(r, p.InputLen()), randSlice(r, p.WeightLen()), randSlice(r, p.OutC)
		wp := PackWeights(w, p.OutC, p.Norm().Groups)
		for _, bias := range [][]float32{nil, b} {
			want, got := make([]float32, p.OutputLen()), guarded(p.OutputLen())
			Conv2D(p, x, w, bias, want)
			Conv2DPacked(p, x, wp, bias, got)
			checkGuard(t, p.String(), got)
			assertBits(t, p.String()+" packed", got[:p.OutputLen()], want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Conv2DPacked with a weight of the wrong shape did not panic")
		}
	}()
	p := Conv2DParams{N: 1, C: 4, H: 3, W: 3, OutC: 2, KH: 1, KW: 1}
	Conv2DPacked(p, make([]float32, 36), PackWeights(make([]float32, 6), 2, 1), nil, make([]float32, 18))
}
