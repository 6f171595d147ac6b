package observer

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// benchData is the tensor the calibration benchmarks observe: the raw
// little-endian float32 file named by QUANTA_BENCH_DATA (how
// scripts/bench_observers.py hands PyTorch's data over, so both sides time
// the same values), or 2^20 standard normal values.
func benchData(b *testing.B) *tensor.Tensor {
	if p := os.Getenv("QUANTA_BENCH_DATA"); p != "" {
		raw, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		d := make([]float32, len(raw)/4)
		for i := range d {
			d[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return tensor.FromFloat32(d)
	}
	return tensor.Randn(tensor.NewRNG(1), 1<<20)
}

// BenchmarkObserve measures calibration throughput in elements per second
// on a 1M-element tensor: MinMax and per-channel observe, Histogram's
// first observe (min/max and binning) and a later observe that widens the
// range (re-binning the old histogram), the power-of-two histogram
// observers, and Histogram's qparams search (per call, not per element).
// scripts/bench_observers.py runs PyTorch's observers on the same data
// and reports the ratios.
func BenchmarkObserve(b *testing.B) {
	x := benchData(b)
	n := x.Numel()
	half := x.Clone()
	for i, v := range half.F32() {
		half.F32()[i] = v * 0.5
	}
	perChannel := x.Reshape(64, n/64)
	report := func(b *testing.B) {
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Melem/s")
	}
	for _, threads := range []int{1, 2} {
		prev := parallel.SetNumThreads(threads)
		name := fmt.Sprintf("threads=%d", threads)
		b.Run("MinMax/"+name, func(b *testing.B) {
			o := NewMinMax(Config{})
			for i := 0; i < b.N; i++ {
				if err := o.Observe(x); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
		b.Run("PerChannelMinMax/"+name, func(b *testing.B) {
			o := NewPerChannelMinMax(Config{})
			for i := 0; i < b.N; i++ {
				if err := o.Observe(perChannel); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
		b.Run("HistogramFirst/"+name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				o := NewHistogram(HistogramConfig{})
				if err := o.Observe(x); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
		b.Run("HistogramCombine/"+name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				o := NewHistogram(HistogramConfig{})
				_ = o.Observe(half)
				b.StartTimer()
				if err := o.Observe(x); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
		b.Run("Percentile/"+name, func(b *testing.B) {
			o := NewPercentile(PercentileConfig{})
			for i := 0; i < b.N; i++ {
				if err := o.Observe(x); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
		parallel.SetNumThreads(prev)
	}
	b.Run("HistogramQParams", func(b *testing.B) {
		o := NewHistogram(HistogramConfig{})
		_ = o.Observe(x)
		for i := 0; i < b.N; i++ {
			if _, err := o.CalculateQParams(); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, kind := range []string{"Entropy", "MSE"} {
		b.Run(kind+"QParams", func(b *testing.B) {
			var o Observer = NewEntropy(EntropyConfig{})
			if kind == "MSE" {
				o = NewMSE(MSEConfig{})
			}
			_ = o.Observe(x)
			for i := 0; i < b.N; i++ {
				if _, err := o.CalculateQParams(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
