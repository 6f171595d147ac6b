package qdyn

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/kernels/qgemm"
	"github.com/quanta-go/quanta/internal/kernels/sgemm"
	"github.com/quanta-go/quanta/internal/parallel"
)

var linearShapes = [][3]int{{16, 768, 768}, {1, 768, 768}, {1, 3072, 768}}

// BenchmarkDynamicLinear measures the whole dynamic linear product
// (min/max scan, activation quantization, int8 GEMM, float epilogue) per
// CPU tier and thread count, reporting GOP/s (2 ops per multiply-add) and
// its speedup over sgemm.Sgemm (float32, weights n×k as a linear layer
// stores them) on the same shape, tier cap and threads, timed in the same
// sub-benchmark. The sgemm and sgemm-packed sub-benchmarks time the
// float32 anchors alone.
func BenchmarkDynamicLinear(b *testing.B) {
	for _, lv := range cpu.Levels() {
		for _, th := range []int{1, 2} {
			for _, s := range linearShapes {
				m, n, k := s[0], s[1], s[2]
				if lv == cpu.Generic && m*n*k > 1<<24 {
					continue
				}
				r := rand.New(rand.NewPCG(1, 1))
				x := randFloats(r, m*k, false)
				wf := randFloats(r, n*k, false)
				w := qgemm.Pack(n, k, randWeights(r, n, k), k, []int32{0})
				bias := randFloats(r, n, false)
				y := make([]float32, m*n)
				ops := 2 * float64(m*n*k)
				setup := func() func() {
					oldL := cpu.SetMax(lv)
					oldT := parallel.SetNumThreads(th)
					return func() { cpu.SetMax(oldL); parallel.SetNumThreads(oldT) }
				}
				name := fmt.Sprintf("%s/t%d/%dx%dx%d", lv, th, m, n, k)
				b.Run("dynamic/"+name, func(b *testing.B) {
					defer setup()()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						Linear(Torch, m, x, k, w, []float32{0.01}, bias, y, n)
					}
					b.StopTimer()
					dyn := b.Elapsed().Seconds() / float64(b.N)
					start := time.Now()
					iters := 0
					for time.Since(start) < 200*time.Millisecond || iters < 3 {
						sgemm.Sgemm(false, true, m, n, k, 1, x, k, wf, k, 0, y, n)
						iters++
					}
					anchor := time.Since(start).Seconds() / float64(iters)
					b.ReportMetric(ops/dyn/1e9, "GOP/s")
					b.ReportMetric(anchor/dyn, "x-sgemm")
				})
				b.Run("sgemm/"+name, func(b *testing.B) {
					defer setup()()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						sgemm.Sgemm(false, true, m, n, k, 1, x, k, wf, k, 0, y, n)
					}
					b.ReportMetric(ops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
				b.Run("sgemm-packed/"+name, func(b *testing.B) {
					defer setup()()
					pb := sgemm.PackB(true, k, n, wf, k)
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						sgemm.SgemmPackedB(false, m, 1, x, k, pb, 0, y, n)
					}
					b.ReportMetric(ops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// BenchmarkScanQuantize measures MinMax and Quantize per tier on a
// 16×768 activation and on 1M values, in GB/s of float32 read.
func BenchmarkScanQuantize(b *testing.B) {
	for _, v := range variants {
		if v.level > cpu.Hardware {
			continue
		}
		for _, n := range []int{16 * 768, 1 << 20} {
			r := rand.New(rand.NewPCG(2, 2))
			x := randFloats(r, n, false)
			dst := make([]uint8, n)
			b.Run(fmt.Sprintf("minmax/%s/%d", v.name, n), func(b *testing.B) {
				defer cpu.SetMax(cpu.SetMax(v.level))
				defer parallel.SetNumThreads(parallel.SetNumThreads(1))
				b.SetBytes(int64(4 * n))
				for i := 0; i < b.N; i++ {
					MinMax(x)
				}
			})
			b.Run(fmt.Sprintf("quantize/%s/%d", v.name, n), func(b *testing.B) {
				defer cpu.SetMax(cpu.SetMax(v.level))
				defer parallel.SetNumThreads(parallel.SetNumThreads(1))
				b.SetBytes(int64(4 * n))
				for i := 0; i < b.N; i++ {
					Quantize(dst, x, 0.05, 128, 0, 255)
				}
			})
		}
	}
}
