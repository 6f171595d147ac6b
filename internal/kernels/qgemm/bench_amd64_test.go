//go:build !purego

package qgemm

import (
	"testing"

	"github.com/quanta-go/quanta/internal/cpu"
)

// BenchmarkVNNIPeak measures the vpdpbusd multiply-add peak of one core.
func BenchmarkVNNIPeak(b *testing.B) {
	if cpu.Hardware < cpu.AVX512VNNI {
		b.Skip("no AVX-512 VNNI on this CPU")
	}
	const iters = 1 << 16
	for i := 0; i < b.N; i++ {
		vnniPeak(iters)
	}
	b.ReportMetric(2*24*64*float64(iters)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
}
