package pool

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/parallel"
)

// reportRates records window elements visited per second (Gelem/s, each a
// compare or an add) and input bytes read per second (GB/s).
func reportRates(b *testing.B, visits, inBytes float64) {
	s := b.Elapsed().Seconds()
	b.ReportMetric(visits*float64(b.N)/s/1e9, "Gelem/s")
	b.ReportMetric(inBytes*float64(b.N)/s/1e9, "GB/s")
}

func benchThreads(b *testing.B, f func(b *testing.B)) {
	for _, t := range []int{1, 2} {
		b.Run(fmt.Sprintf("t%d", t), func(b *testing.B) {
			old := parallel.SetNumThreads(t)
			defer parallel.SetNumThreads(old)
			f(b)
		})
	}
}

func BenchmarkPool(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	mp := Pool2DParams{N: 1, C: 64, H: 112, W: 112, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}
	ap := Pool2DParams{N: 1, C: 64, H: 56, W: 56, KH: 2, KW: 2}
	gp := AdaptivePool2DParams{N: 1, C: 512, H: 7, W: 7, OutH: 1, OutW: 1}
	x := randFinite(r, mp.InputLen())
	y := make([]float32, mp.OutputLen())
	idx := make([]int32, mp.OutputLen())
	gx := make([]float32, mp.InputLen())
	b.Run("max3x3s2_64x112x112", func(b *testing.B) {
		benchThreads(b, func(b *testing.B) {
			for b.Loop() {
				MaxPool2D(mp, x, y, idx)
			}
			reportRates(b, float64(mp.OutputLen()*9), float64(4*mp.InputLen()))
		})
	})
	b.Run("max3x3s2_64x112x112_backward", func(b *testing.B) {
		benchThreads(b, func(b *testing.B) {
			for b.Loop() {
				MaxPool2DBackward(mp, y, idx, gx)
			}
			reportRates(b, float64(mp.OutputLen()), float64(4*mp.OutputLen()))
		})
	})
	b.Run("avg2x2_64x56x56", func(b *testing.B) {
		benchThreads(b, func(b *testing.B) {
			for b.Loop() {
				AvgPool2D(ap, x, y)
			}
			reportRates(b, float64(ap.OutputLen()*4), float64(4*ap.InputLen()))
		})
	})
	b.Run("global_512x7x7", func(b *testing.B) {
		benchThreads(b, func(b *testing.B) {
			for b.Loop() {
				AdaptiveAvgPool2D(gp, x, y)
			}
			reportRates(b, float64(gp.InputLen()), float64(4*gp.InputLen()))
		})
	})
}
