package sgemm

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/parallel"
)

// benchShapes are m×n×k products; the single-row ones are batch-1 linear
// layers (768→3072 and 768→768).
var benchShapes = [][3]int{{512, 512, 512}, {1024, 1024, 1024}, {1, 3072, 768}, {1, 768, 768}}

// BenchmarkSgemm measures every variant on every shape with one and two
// threads, B unpacked (k×n). Single-row products also report the rate at
// which B is streamed (GB/s of k*n*4 bytes).
func BenchmarkSgemm(b *testing.B) {
	for _, v := range variants {
		for _, sh := range benchShapes {
			for _, threads := range []int{1, 2} {
				name := fmt.Sprintf("%s/%dx%dx%d/t%d", v.name, sh[0], sh[1], sh[2], threads)
				b.Run(name, func(b *testing.B) {
					benchGemm(b, v, sh[0], sh[1], sh[2], threads, false, false)
				})
			}
		}
	}
}

// BenchmarkSgemmPackedB measures products with B packed once by PackB from
// the n×k layout of a linear layer's weight (transB).
func BenchmarkSgemmPackedB(b *testing.B) {
	for _, v := range variants {
		for _, sh := range benchShapes {
			for _, threads := range []int{1, 2} {
				name := fmt.Sprintf("%s/%dx%dx%d/t%d", v.name, sh[0], sh[1], sh[2], threads)
				b.Run(name, func(b *testing.B) {
					benchGemm(b, v, sh[0], sh[1], sh[2], threads, true, true)
				})
			}
		}
	}
}

// BenchmarkSgemmTransB measures single-row products with an unpacked n×k B.
func BenchmarkSgemmTransB(b *testing.B) {
	for _, v := range variants {
		for _, sh := range benchShapes[2:] {
			name := fmt.Sprintf("%s/%dx%dx%d/t1", v.name, sh[0], sh[1], sh[2])
			b.Run(name, func(b *testing.B) {
				benchGemm(b, v, sh[0], sh[1], sh[2], 1, true, false)
			})
		}
	}
}

func benchGemm(b *testing.B, v *variant, m, n, k, threads int, transB, packed bool) {
	defer parallel.SetNumThreads(parallel.SetNumThreads(threads))
	rng := rand.New(rand.NewPCG(1, 1))
	a := randSlice(rng, m*k)
	bm := randSlice(rng, k*n)
	c := make([]float32, m*n)
	ldb := n
	if transB {
		ldb = k
	}
	var pb *PackedB
	if packed {
		pb = packBVariant(v, transB, k, n, bm, ldb)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if packed {
			SgemmPackedB(false, m, 1, a, k, pb, 0, c, n)
		} else {
			sgemmVariant(v, false, transB, m, n, k, 1, a, k, bm, ldb, 0, c, n)
		}
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(2*float64(m)*float64(n)*float64(k)/sec/1e9, "GFLOP/s")
	if m == 1 {
		b.ReportMetric(float64(k)*float64(n)*4/sec/1e9, "GB/s")
	}
}

// memcopyBytes is the size of a 3072×768 float32 weight.
const memcopyBytes = 3072 * 768 * 4

// BenchmarkMemcopy copies a weight-sized buffer, the bandwidth the
// single-row products are compared with (GB/s of bytes copied).
func BenchmarkMemcopy(b *testing.B) {
	src := make([]byte, memcopyBytes)
	dst := make([]byte, memcopyBytes)
	for i := range src {
		src[i] = byte(i)
	}
	b.SetBytes(memcopyBytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		copy(dst, src)
	}
	b.ReportMetric(memcopyBytes/(b.Elapsed().Seconds()/float64(b.N))/1e9, "GB/s")
}
