package quantized

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// benchLevels runs f with cpu.Max capped at generic (the scalar baseline)
// and at the machine's level.
func benchLevels(b *testing.B, what string, f func(b *testing.B)) {
	for _, l := range []cpu.Level{cpu.Generic, cpu.Hardware} {
		b.Run(fmt.Sprintf("%v/%s", l, what), func(b *testing.B) {
			old := cpu.SetMax(l)
			defer cpu.SetMax(old)
			f(b)
		})
	}
}

func rate(b *testing.B, bytes int) {
	b.ReportMetric(float64(bytes)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
}

// BenchmarkQuantizePerTensor reports GB/s moved by ops.QuantizePerTensor
// and ops.Dequantize on a 64x112x112 activation (5 bytes per element).
func BenchmarkQuantizePerTensor(b *testing.B) {
	x := tensor.Randn(tensor.NewRNG(1), 1, 64, 112, 112)
	n := x.Numel()
	benchLevels(b, "quantize_1x64x112x112", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			ops.QuantizePerTensor(x, 0.02, 128, tensor.QUInt8)
		}
		rate(b, 5*n)
	})
	q := ops.QuantizePerTensor(x, 0.02, 128, tensor.QUInt8)
	benchLevels(b, "dequantize_1x64x112x112", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			ops.Dequantize(q)
		}
		rate(b, 5*n)
	})
}

// BenchmarkOps reports GB/s of quantized input read by Add, MaxPool2d,
// AvgPool2d and Hardswish on a 64x56x56 activation.
func BenchmarkOps(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	a := randQ(r, tensor.QUInt8, 0.05, 7, 1, 64, 56, 56)
	c := randQ(r, tensor.QUInt8, 0.03, 200, 1, 64, 56, 56)
	n := a.Numel()
	pa := ops.PoolAttrs{Kernel: [2]int{3, 3}, Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}
	benchLevels(b, "add_1x64x56x56", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			Add(a, c, 0.06, 100)
		}
		rate(b, 3*n)
	})
	benchLevels(b, "maxpool3x3s2_1x64x56x56", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			MaxPool2d(a, pa)
		}
		rate(b, n)
	})
	benchLevels(b, "avgpool3x3s2_1x64x56x56", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			AvgPool2d(a, pa)
		}
		rate(b, n)
	})
	benchLevels(b, "hardswish_1x64x56x56", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			Hardswish(a, 0.05, 10)
		}
		rate(b, 2*n)
	})
}
