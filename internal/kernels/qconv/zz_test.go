package qconv

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/kernels/conv"
	"github.com/quanta-go/quanta/internal/parallel"
)

func BenchmarkZZConv(b *testing.B) {
	shapes := []struct {
		name string
		g    conv.Conv2DParams
	}{
		{"stem3x3s2_3to16_256", conv.Conv2DParams{N: 1, C: 3, H: 256, W: 256, OutC: 16, KH: 3, KW: 3, PadH: 1, PadW: 1, StrideH: 2, StrideW: 2}},
		{"stem3x3s2_3to8_48x192", conv.Conv2DParams{N: 1, C: 3, H: 48, W: 192, OutC: 8, KH: 3, KW: 3, PadH: 1, PadW: 1, StrideH: 2, StrideW: 2}},
		{"1x1_8to8_24x96", conv.Conv2DParams{N: 1, C: 8, H: 24, W: 96, OutC: 8, KH: 1, KW: 1}},
		{"1x1_16to88_3x96", conv.Conv2DParams{N: 1, C: 16, H: 3, W: 96, OutC: 88, KH: 1, KW: 1}},
		{"1x1_200to32_2x96", conv.Conv2DParams{N: 1, C: 200, H: 2, W: 96, OutC: 32, KH: 1, KW: 1}},
		{"1x1_96to24_64", conv.Conv2DParams{N: 1, C: 96, H: 64, W: 64, OutC: 24, KH: 1, KW: 1}},
		{"3x3_96to24_64", conv.Conv2DParams{N: 1, C: 96, H: 64, W: 64, OutC: 24, KH: 3, KW: 3, PadH: 1, PadW: 1}},
	}
	for _, th := range []int{1} {
		for _, s := range shapes {
			for _, direct := range []bool{true, false} {
				r := rand.New(rand.NewPCG(1, 1))
				p := Params{Conv2DParams: s.g, InZeroPoint: 5, WeightZeroPoints: []int32{0}}
				x, w, rq := randConv(r, p, false)
				pk, _ := Pack(p, w)
				if !direct {
					pk.direct = nil
				}
				y := make([]uint8, p.Norm().OutputLen())
				b.Run(fmt.Sprintf("t%d/%s/direct=%v", th, s.name, direct), func(b *testing.B) {
					old := parallel.SetNumThreads(th)
					defer parallel.SetNumThreads(old)
					for i := 0; i < b.N; i++ {
						Conv2D(pk, x, rq, y)
					}
				})
			}
		}
	}
}
