//go:build !purego

package sgemm

import "testing"

// BenchmarkFMAPeak measures the single-core fp32 FMA peak with twelve
// independent multiply-add chains, for the GEMM ratio to peak.
func BenchmarkFMAPeak(b *testing.B) {
	const iters = 1 << 20
	b.Run("zmm", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			fmaPeakZMM(iters)
		}
		b.ReportMetric(384*iters/(b.Elapsed().Seconds()/float64(b.N))/1e9, "GFLOP/s")
	})
	b.Run("ymm", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			fmaPeakYMM(iters)
		}
		b.ReportMetric(192*iters/(b.Elapsed().Seconds()/float64(b.N))/1e9, "GFLOP/s")
	})
}
