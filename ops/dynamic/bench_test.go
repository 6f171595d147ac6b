package dynamic

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// BenchmarkLinear times the tensor-level layers on batch-16 and batch-1
// transformer shapes (m×out×in), reporting GOP/s (2 ops per multiply-add):
// dynamic int8 Linear into a preallocated output (RuleTorch, per-channel
// weights) and the fp16-weight Linear. internal/kernels/qdyn's
// BenchmarkDynamicLinear compares the kernel with float32 sgemm.
func BenchmarkLinear(b *testing.B) {
	for _, th := range []int{1, 2} {
		for _, s := range [][3]int{{16, 768, 768}, {1, 768, 768}, {1, 3072, 768}} {
			m, n, k := s[0], s[1], s[2]
			r := rand.New(rand.NewPCG(1, 1))
			w, bias, x := randTensor(r, 0.05, n, k), randTensor(r, 1, n), randTensor(r, 1, m, k)
			y := tensor.New(tensor.Float32, m, n)
			ops := 2 * float64(m*n*k)
			p, err := PackLinear(w, bias, PerChannel)
			if err != nil {
				b.Fatal(err)
			}
			p16, err := PackLinearFP16(w, bias)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("int8/t%d/%dx%dx%d", th, m, n, k), func(b *testing.B) {
				defer parallel.SetNumThreads(parallel.SetNumThreads(th))
				for i := 0; i < b.N; i++ {
					if err := LinearInto(y, x, p, RuleTorch); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(ops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
			})
			b.Run(fmt.Sprintf("fp16/t%d/%dx%dx%d", th, m, n, k), func(b *testing.B) {
				defer parallel.SetNumThreads(parallel.SetNumThreads(th))
				for i := 0; i < b.N; i++ {
					if err := LinearFP16Into(y, x, p16); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(ops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
