package embbag

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/parallel"
)

// BenchmarkBag measures sum bags (256 bags of 20 random indices) over a
// 100000×128 table per tier, bit width and thread count, reporting rows
// gathered per second (Mlookups/s). The float32 sub-benchmark is the
// anchor: the same bags summed from the float32 table with a plain loop.
func BenchmarkBag(b *testing.B) {
	const rows, dim, bags, per = 100000, 128, 256, 20
	r := rand.New(rand.NewPCG(1, 1))
	w := make([]float32, rows*dim)
	for i := range w {
		w[i] = float32(r.NormFloat64())
	}
	idx := make([]int64, bags*per)
	for i := range idx {
		idx[i] = int64(r.IntN(rows))
	}
	offsets := make([]int64, bags)
	for i := range offsets {
		offsets[i] = int64(i * per)
	}
	out := make([]float32, bags*dim)
	report := func(b *testing.B) {
		b.ReportMetric(float64(len(idx))*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mlookups/s")
	}
	tables := map[int]*Table{8: Pack8(w, rows, dim), 4: Pack4(w, rows, dim)}
	for _, th := range []int{1, 2} {
		b.Run(fmt.Sprintf("float32/t%d", th), func(b *testing.B) {
			defer parallel.SetNumThreads(parallel.SetNumThreads(th))
			for i := 0; i < b.N; i++ {
				parallel.For(bags, 16, func(s, e int) {
					for bg := s; bg < e; bg++ {
						o := out[bg*dim : (bg+1)*dim]
						clear(o)
						for _, ix := range idx[bg*per : (bg+1)*per] {
							for j, x := range w[int(ix)*dim : (int(ix)+1)*dim] {
								o[j] += x
							}
						}
					}
				})
			}
			report(b)
		})
		for _, v := range variants {
			if v.level > cpu.Hardware {
				continue
			}
			for _, bits := range []int{8, 4} {
				b.Run(fmt.Sprintf("%s/%dbit/t%d", v.name, bits, th), func(b *testing.B) {
					defer cpu.SetMax(cpu.SetMax(v.level))
					defer parallel.SetNumThreads(parallel.SetNumThreads(th))
					for i := 0; i < b.N; i++ {
						Bag(tables[bits], Sum, idx, offsets, len(idx), nil, out)
					}
					report(b)
				})
			}
		}
	}
}
