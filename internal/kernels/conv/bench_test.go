package conv

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/kernels/sgemm"
	"github.com/quanta-go/quanta/internal/parallel"
)

var benchShapes = []struct {
	name string
	p    Conv2DParams
}{
	{"3x3_64-64_56x56", Conv2DParams{N: 1, C: 64, H: 56, W: 56, OutC: 64, KH: 3, KW: 3, PadH: 1, PadW: 1}},
	{"3x3_128-128_28x28", Conv2DParams{N: 1, C: 128, H: 28, W: 28, OutC: 128, KH: 3, KW: 3, PadH: 1, PadW: 1}},
	{"1x1_256-256_14x14", Conv2DParams{N: 1, C: 256, H: 14, W: 14, OutC: 256, KH: 1, KW: 1}},
	{"dw3x3_144_56x56", Conv2DParams{N: 1, C: 144, H: 56, W: 56, OutC: 144, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 144}},
	{"dw3x3s2_144_56x56", Conv2DParams{N: 1, C: 144, H: 56, W: 56, OutC: 144, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, Groups: 144}},
	{"3x3s2_64-128_56x56", Conv2DParams{N: 1, C: 64, H: 56, W: 56, OutC: 128, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}},
	// A small CNN's layers at training batch size.
	{"b64_5x5_1-32_28x28", Conv2DParams{N: 64, C: 1, H: 28, W: 28, OutC: 32, KH: 5, KW: 5, PadH: 2, PadW: 2}},
	{"b64_3x3_32-64_14x14", Conv2DParams{N: 64, C: 32, H: 14, W: 14, OutC: 64, KH: 3, KW: 3, PadH: 1, PadW: 1}},
}

func macs(p Conv2DParams) float64 {
	return float64(p.OutputLen()) * float64(p.WeightLen()/p.OutC)
}

// reportGFLOPS records 2*MACs per second of wall time as GFLOP/s, and per
// second of process CPU time (user+system, all threads, since the
// benchmark's cpuStart) as GFLOP/cpu-s, which stays meaningful when other
// processes share the cores.
func reportGFLOPS(b *testing.B, m float64, start time.Duration) {
	flop := 2 * m * float64(b.N)
	b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu := cpuTime() - start; cpu > 0 {
		b.ReportMetric(flop/cpu.Seconds()/1e9, "GFLOP/cpu-s")
	}
}

// cpuTime returns the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchThreads(b *testing.B, f func(b *testing.B)) {
	for _, t := range []int{1, 2} {
		b.Run(fmt.Sprintf("t%d", t), func(b *testing.B) {
			old := parallel.SetNumThreads(t)
			defer parallel.SetNumThreads(old)
			f(b)
		})
	}
}

func BenchmarkConv2D(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(s.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			x := randSlice(r, s.p.InputLen())
			w := randSlice(r, s.p.WeightLen())
			bias := randSlice(r, s.p.OutC)
			y := make([]float32, s.p.OutputLen())
			benchThreads(b, func(b *testing.B) {
				start := cpuTime()
				for b.Loop() {
					Conv2D(s.p, x, w, bias, y)
				}
				reportGFLOPS(b, macs(s.p), start)
			})
		})
	}
}

// BenchmarkConv2DGemmAnchor times the bare GEMM each non-depthwise
// benchmark shape amounts to (OutC x N*OutH*OutW x C*KH*KW, operands
// already laid out, all images in one product), the bound an im2col-based
// convolution approaches.
func BenchmarkConv2DGemmAnchor(b *testing.B) {
	for _, s := range benchShapes {
		if s.p.Groups > 1 {
			continue
		}
		m, n, k := s.p.OutC, s.p.N*s.p.OutH()*s.p.OutW(), s.p.WeightLen()/s.p.OutC
		r := rand.New(rand.NewPCG(1, 1))
		a, bb, c := randSlice(r, m*k), randSlice(r, k*n), make([]float32, m*n)
		b.Run(s.name, func(b *testing.B) {
			benchThreads(b, func(b *testing.B) {
				start := cpuTime()
				for b.Loop() {
					sgemm.Sgemm(false, false, m, n, k, 1, a, k, bb, n, 0, c, n)
				}
				reportGFLOPS(b, macs(s.p), start)
			})
		})
	}
}

// BenchmarkDepthwiseLevels runs the depthwise forward at every CPU level on
// one thread, the generic Go kernel being the baseline.
func BenchmarkDepthwiseLevels(b *testing.B) {
	p := benchShapes[3].p
	r := rand.New(rand.NewPCG(1, 1))
	x := randSlice(r, p.InputLen())
	w := randSlice(r, p.WeightLen())
	y := make([]float32, p.OutputLen())
	for _, k := range rowKernels {
		if !cpu.Has(k.level) {
			continue
		}
		b.Run(k.name, func(b *testing.B) {
			old := cpu.SetMax(k.level)
			defer cpu.SetMax(old)
			start := cpuTime()
			withThreads(1, func() {
				for b.Loop() {
					Conv2D(p, x, w, nil, y)
				}
			})
			reportGFLOPS(b, macs(p), start)
		})
	}
}

func BenchmarkConv2DBackward(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(s.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			x := randSlice(r, s.p.InputLen())
			w := randSlice(r, s.p.WeightLen())
			gy := randSlice(r, s.p.OutputLen())
			gx := make([]float32, s.p.InputLen())
			gw := make([]float32, s.p.WeightLen())
			benchThreads(b, func(b *testing.B) {
				b.Run("input", func(b *testing.B) {
					start := cpuTime()
					for b.Loop() {
						Conv2DBackwardInput(s.p, w, gy, gx)
					}
					reportGFLOPS(b, macs(s.p), start)
				})
				b.Run("weight", func(b *testing.B) {
					start := cpuTime()
					for b.Loop() {
						Conv2DBackwardWeight(s.p, x, gy, gw)
					}
					reportGFLOPS(b, macs(s.p), start)
				})
			})
		})
	}
}
