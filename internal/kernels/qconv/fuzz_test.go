package qconv

import (
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/kernels/conv"
)

// FuzzQConv2D compares Conv2D on every tier with Reference on geometries,
// zero points and multipliers drawn from the fuzzer: grouped, depthwise,
// strided, padded and dilated convolutions, fused ReLU and saturation.
func FuzzQConv2D(f *testing.F) {
	f.Add(uint8(3), uint8(5), uint8(7), uint8(9), uint8(3), uint8(0), uint8(1), uint8(0), uint8(0), uint64(1))
	f.Add(uint8(16), uint8(16), uint8(20), uint8(20), uint8(3), uint8(1), uint8(1), uint8(16), uint8(7), uint64(2))
	f.Add(uint8(32), uint8(48), uint8(9), uint8(21), uint8(3), uint8(0), uint8(1), uint8(1), uint8(2), uint64(3))
	f.Add(uint8(8), uint8(8), uint8(5), uint8(33), uint8(5), uint8(2), uint8(2), uint8(8), uint8(4), uint64(4))
	f.Add(uint8(15), uint8(9), uint8(7), uint8(30), uint8(0), uint8(0), uint8(0), uint8(0), uint8(0), uint64(5)) // NCHW pointwise
	f.Fuzz(func(t *testing.T, c, oc, h, w, k, stride, dil, groups, flags uint8, seed uint64) {
		r := rand.New(rand.NewPCG(seed, 7))
		g := conv.Conv2DParams{N: 1 + int(flags>>6)%2, C: 1 + int(c)%40, H: 1 + int(h)%24, W: 1 + int(w)%40,
			KH: 1 + int(k)%5, KW: 1 + int(k>>3)%5, StrideH: 1 + int(stride)%3, StrideW: 1 + int(stride>>2)%3,
			DilH: 1 + int(dil)%2, DilW: 1 + int(dil>>1)%3, PadH: int(flags) % 3, PadW: int(flags>>2) % 3}
		g.Groups = 1
		if groups%3 == 1 {
			g.Groups = g.C // depthwise
		} else if groups%3 == 2 && g.C%2 == 0 {
			g.Groups = 2
		}
		g.OutC = g.Groups * (1 + int(oc)%(48/g.Groups+1))
		if g.Groups == g.C {
			g.OutC = g.C
		}
		if g.Validate() != nil || g.OutH() == 0 || g.OutW() == 0 {
			return
		}
		p := Params{Conv2DParams: g, InZeroPoint: int32(r.IntN(256)), WeightZeroPoints: []int32{0}}
		if flags&0x20 != 0 {
			p.WeightZeroPoints = make([]int32, g.OutC)
			for i := range p.WeightZeroPoints {
				p.WeightZeroPoints[i] = int32(r.IntN(9) - 4)
			}
		}
		x, wts, rq := randConv(r, p, false)
		if flags&0x10 != 0 {
			for i := range rq.Multiplier {
				rq.Multiplier[i] *= 100 // saturate
			}
		}
		pk, want := packRef(t, p, x, wts, rq)
		n := len(want)
		for _, l := range cpu.Levels() {
			old := cpu.SetMax(l)
			got := make([]uint8, n)
			Conv2D(pk, x, rq, got)
			cpu.SetMax(old)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%v %+v zp %v: y[%d] = %d, want %d", l, g, p.WeightZeroPoints, i, got[i], want[i])
				}
			}
		}
	})
}
