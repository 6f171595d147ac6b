package quantized

import (
	"fmt"
	"testing"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// BenchmarkLinear measures quantized Linear calls (module overhead
// included) in GOPS (two ops per multiply-add).
func BenchmarkLinear(b *testing.B) {
	g := tensor.NewRNG(1)
	for _, sz := range [][3]int{{1, 1024, 1024}, {64, 768, 768}} {
		m, k, n := sz[0], sz[1], sz[2]
		b.Run(fmt.Sprintf("%dx%dx%d", m, k, n), func(b *testing.B) {
			f := tensor.RandUniform(g, -0.5, 0.5, n, k)
			w, err := QuantizeWeight(f, nil)
			if err != nil {
				b.Fatal(err)
			}
			l, err := NewLinear(w, tensor.RandUniform(g, -1, 1, n), 0.05, 128)
			if err != nil {
				b.Fatal(err)
			}
			x := randQ(g, 0.02, 128, m, k)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				l.Forward(x)
			}
			b.ReportMetric(2*float64(m*k*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOPS")
		})
	}
}

// BenchmarkConv2d measures a quantized 3x3 Conv2d call in GOPS.
func BenchmarkConv2d(b *testing.B) {
	g := tensor.NewRNG(2)
	c, h := 64, 56
	f := tensor.RandUniform(g, -0.5, 0.5, c, c, 3, 3)
	w, err := QuantizeWeight(f, nil)
	if err != nil {
		b.Fatal(err)
	}
	m, err := NewConv2d(w, tensor.RandUniform(g, -1, 1, c), ops.ConvAttrs{Padding: [2]int{1, 1}}, 0.05, 128)
	if err != nil {
		b.Fatal(err)
	}
	x := randQ(g, 0.02, 128, 1, c, h, h)
	m.Forward(x)
	b.Run("3x3/64to64/56x56", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			m.Forward(x)
		}
		b.ReportMetric(2*float64(c*c*9*h*h)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOPS")
	})
}
