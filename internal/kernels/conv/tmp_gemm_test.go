package conv

import (
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/kernels/sgemm"
)

func BenchmarkTmpGemm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{160, 320, 640, 3136} {
		a := randSlice(r, 64*576)
		bb := randSlice(r, 576*n)
		c := make([]float32, 64*n)
		b.Run(string(rune('0'+n/1000))+"_"+itoa(n), func(b *testing.B) {
			withThreads(1, func() {
				start := cpuTime()
				for b.Loop() {
					sgemm.Sgemm(false, false, 64, n, 576, 1, a, 576, bb, n, 0, c, n)
				}
				reportGFLOPS(b, float64(64*n*576), start)
			})
		})
	}
}

func itoa(n int) string {
	s := ""
	for n > 0 {
		s = string(rune('0'+n%10)) + s
		n /= 10
	}
	return s
}

func BenchmarkTmpBudget(b *testing.B) {
	p := benchShapes[0].p
	r := rand.New(rand.NewPCG(1, 1))
	x := randSlice(r, p.InputLen())
	w := randSlice(r, p.WeightLen())
	y := make([]float32, p.OutputLen())
	for _, cb := range []int{48, 96, 192, 384, 768, 4096} {
		b.Run(itoa(cb), func(b *testing.B) {
			old := colBudget
			colBudget = cb * 1024
			defer func() { colBudget = old }()
			withThreads(1, func() {
				start := cpuTime()
				for b.Loop() {
					Conv2D(p, x, w, nil, y)
				}
				reportGFLOPS(b, macs(p), start)
			})
		})
	}
}

func BenchmarkTmpTap(b *testing.B) {
	for _, s := range benchShapes[:2] {
		p := s.p
		r := rand.New(rand.NewPCG(1, 1))
		x := randSlice(r, p.InputLen())
		w := randSlice(r, p.WeightLen())
		y := make([]float32, p.OutputLen())
		for _, cols := range []int{320, 640, 960, 1280} {
			b.Run(s.name+"/"+itoa(cols), func(b *testing.B) {
				old := wideCols
				wideCols = cols
				defer func() { wideCols = old }()
				withThreads(1, func() {
					start := cpuTime()
					for b.Loop() {
						Conv2D(p, x, w, nil, y)
					}
					reportGFLOPS(b, macs(p), start)
				})
			})
		}
	}
}

func BenchmarkTmpPaths(b *testing.B) {
	for _, s := range benchShapes[6:] {
		p := s.p
		r := rand.New(rand.NewPCG(1, 1))
		x := randSlice(r, p.InputLen())
		w := randSlice(r, p.WeightLen())
		bias := randSlice(r, p.OutC)
		y := make([]float32, p.OutputLen())
		g := p.geom()
		for _, path := range []string{"tiles", "batched"} {
			for _, th := range []int{1, 2} {
				b.Run(s.name+"/"+path+"/t"+itoa(th), func(b *testing.B) {
					withThreads(th, func() {
						start := cpuTime()
						for b.Loop() {
							if path == "tiles" {
								convForwardTiles(&g, x, w, bias, y)
							} else {
								convForwardBatched(&g, x, w, bias, y, max(1, g.batchImages(0)))
							}
						}
						reportGFLOPS(b, macs(p), start)
					})
				})
			}
		}
	}
}
