package qgemm

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/parallel"
)

// BenchmarkQGemm reports int8 GOP/s (2 ops per multiply-add) of the raw
// int32 product (ONNX MatMulInteger's contract) and of the requantizing
// u8 product, per tier, at 1 and 2 threads.
func BenchmarkQGemm(b *testing.B) {
	shapes := [][3]int{{1, 768, 768}, {1, 3072, 768}, {16, 768, 768}, {128, 1024, 1024}, {512, 512, 512}, {1024, 1024, 1024}}
	for _, v := range variants {
		if v.level > cpu.Hardware {
			continue
		}
		for _, th := range []int{1, 2} {
			for _, s := range shapes {
				m, n, k := s[0], s[1], s[2]
				if v.level == cpu.Generic && m*n*k > 1<<28 {
					continue
				}
				r := rand.New(rand.NewPCG(1, 1))
				a, w := randCase(r, m, n, k, false)
				p := Pack(n, k, w, k, []int32{0})
				c := make([]int32, m*n)
				c8 := make([]uint8, m*n)
				mult := make([]float32, n)
				bias := make([]int32, n)
				for j := range mult {
					mult[j] = 1e-4 * float32(1+j%7)
					bias[j] = int32(j*37%2001) - 1000
				}
				rq := &Requant{Bias: bias, Multiplier: mult, ZeroPoint: 128, Min: 0, Max: 255}
				for _, out := range []string{"s32", "u8"} {
					b.Run(fmt.Sprintf("%s/t%d/%s/%dx%dx%d", v.name, th, out, m, n, k), func(b *testing.B) {
						old := cpu.SetMax(v.level)
						defer cpu.SetMax(old)
						oldT := parallel.SetNumThreads(th)
						defer parallel.SetNumThreads(oldT)
						b.ResetTimer()
						for i := 0; i < b.N; i++ {
							if out == "s32" {
								GemmS32(m, a, k, 3, p, c, n)
							} else {
								GemmU8(m, a, k, 3, p, rq, c8, n)
							}
						}
						b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
					})
				}
			}
		}
	}
}
