package qelem

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/kernels/pool"
	"github.com/quanta-go/quanta/internal/parallel"
)

// benchTiers runs f once per CPU level on one thread, then at the top
// level on two threads, naming sub-benchmarks "level/t1" and so on.
func benchTiers(b *testing.B, size string, f func(b *testing.B)) {
	levels := cpu.Levels()
	run := func(l cpu.Level, th int) {
		b.Run(fmt.Sprintf("%v/t%d/%s", l, th, size), func(b *testing.B) {
			oldL, oldT := cpu.SetMax(l), parallel.SetNumThreads(th)
			defer func() { cpu.SetMax(oldL); parallel.SetNumThreads(oldT) }()
			f(b)
		})
	}
	for _, l := range levels {
		if l == cpu.AVX512VNNI {
			continue // no kernel here uses VNNI
		}
		run(l, 1)
	}
	run(cpu.Hardware, 2)
}

func gbps(b *testing.B, bytes int) {
	b.ReportMetric(float64(bytes)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
}

var benchSizes = []struct {
	name string
	n    int
}{{"4K", 4 << 10}, {"1M", 1 << 20}}

// BenchmarkQuantize reports GB/s moved (4 bytes in, 1 out per element).
func BenchmarkQuantize(b *testing.B) {
	for _, s := range benchSizes {
		src := randFloats(rand.New(rand.NewPCG(1, 1)), s.n, 0.02)
		dst := make([]uint8, s.n)
		benchTiers(b, s.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				Quantize(dst, src, 0.02, 128, 0, 255)
			}
			gbps(b, 5*s.n)
		})
	}
}

// BenchmarkDequantize reports GB/s moved (1 byte in, 4 out per element).
func BenchmarkDequantize(b *testing.B) {
	for _, s := range benchSizes {
		src := randBytes(rand.New(rand.NewPCG(1, 1)), s.n)
		dst := make([]float32, s.n)
		benchTiers(b, s.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				Dequantize(dst, src, 0.02, 128)
			}
			gbps(b, 5*s.n)
		})
	}
}

// BenchmarkAdd reports GB/s moved (2 bytes in, 1 out per element).
func BenchmarkAdd(b *testing.B) {
	p := &BinaryParams{ScaleA: 0.02, ScaleB: 0.03, ScaleY: 0.04, ZeroA: 120, ZeroB: 130, ZeroY: 128, Min: 0, Max: 255}
	for _, s := range benchSizes {
		r := rand.New(rand.NewPCG(1, 1))
		x, y, dst := randBytes(r, s.n), randBytes(r, s.n), make([]uint8, s.n)
		benchTiers(b, s.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				Add(dst, x, y, p)
			}
			gbps(b, 3*s.n)
		})
	}
}

// BenchmarkLookup reports GB/s moved (1 byte in, 1 out per element).
func BenchmarkLookup(b *testing.B) {
	var t Table
	for i := range t {
		t[i] = byte(255 - i)
	}
	for _, s := range benchSizes {
		src, dst := randBytes(rand.New(rand.NewPCG(1, 1)), s.n), make([]uint8, s.n)
		benchTiers(b, s.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				Lookup(dst, src, &t)
			}
			gbps(b, 2*s.n)
		})
	}
}

var benchPool = pool.Pool2DParams{N: 1, C: 64, H: 112, W: 112, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, CountIncludePad: true}

// benchPairs is a 2x2/2 max pool on short rows (the PP-OCR direction
// classifier's last pool, 200x2x96), the case maxPoolPairs takes.
var benchPairs = pool.Pool2DParams{N: 1, C: 200, H: 2, W: 96, KH: 2, KW: 2, StrideH: 2, StrideW: 2}

// BenchmarkMaxPool reports GB/s of input read (ResNet's 3x3/2 max pool on
// 64x112x112, and a 2x2/2 pool on 200x2x96), with the reference loop as
// baseline.
func BenchmarkMaxPool(b *testing.B) {
	for _, c := range []struct {
		name string
		p    pool.Pool2DParams
	}{{"3x3s2_64x112x112", benchPool}, {"2x2s2_200x2x96", benchPairs}} {
		x := randBytes(rand.New(rand.NewPCG(1, 1)), c.p.InputLen())
		y := make([]uint8, c.p.OutputLen())
		b.Run("reference/"+c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				MaxPool2DReference(c.p, x, y)
			}
			gbps(b, len(x))
		})
		benchTiers(b, c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				MaxPool2D(c.p, x, y)
			}
			gbps(b, len(x))
		})
	}
}

// BenchmarkAvgPool reports GB/s of input read for a 3x3/2 average pool
// and a global average pool, with the reference loops as baseline.
func BenchmarkAvgPool(b *testing.B) {
	x := randBytes(rand.New(rand.NewPCG(1, 1)), benchPool.InputLen())
	y := make([]uint8, benchPool.OutputLen())
	rq := &Requant{InScale: 0.1, InZero: 3, OutScale: 0.1, OutZero: 3, Min: 0, Max: 255}
	for _, th := range []int{1, 2} {
		b.Run(fmt.Sprintf("t%d/3x3s2_64x112x112", th), func(b *testing.B) {
			old := parallel.SetNumThreads(th)
			defer parallel.SetNumThreads(old)
			for i := 0; i < b.N; i++ {
				AvgPool2D(benchPool, rq, x, y)
			}
			gbps(b, len(x))
		})
		b.Run(fmt.Sprintf("t%d/global_64x112x112", th), func(b *testing.B) {
			old := parallel.SetNumThreads(th)
			defer parallel.SetNumThreads(old)
			for i := 0; i < b.N; i++ {
				GlobalAvgPool2D(64, 112*112, rq, x, y)
			}
			gbps(b, len(x))
		})
	}
	b.Run("reference/3x3s2_64x112x112", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			AvgPool2DReference(benchPool, rq, x, y)
		}
		gbps(b, len(x))
	})
}
