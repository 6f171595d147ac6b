package sgemm

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/parallel"
)

// runInPlace runs inPlaceVariant on p (not transposed, alpha 1) with the
// given epilogue and returns C with guards. p.c holds the bias-filled
// (bias mode) or old (accumulate mode) C.
func (p *problem) runInPlace(v *variant, bias []float32, acc bool) []float32 {
	full, c := p.out()
	inPlaceVariant(v, p.m, p.n, p.k, p.a, p.lda, p.b, p.ldb, bias, acc, c, p.ldc)
	return full
}

// inPlaceCase makes the problem SgemmInPlace is equivalent to for one
// epilogue: mode 0 is beta 0; mode 1 accumulates into C (beta 1); mode 2
// adds a bias (beta 1 on C filled with the bias).
func inPlaceCase(rng *rand.Rand, m, n, k, padA, padB, padC, mode int) (*problem, []float32) {
	beta := float32(0)
	if mode > 0 {
		beta = 1
	}
	p := newProblem(rng, false, false, m, n, k, padA, padB, padC, 1, beta)
	var bias []float32
	if mode == 2 {
		bias = randSlice(rng, m)
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				p.c[guard+i*p.ldc+j] = bias[i]
			}
		}
	}
	return p, bias
}

// TestInPlaceTails checks SgemmInPlace on every tail size and epilogue
// against Reference, bit for bit against the packed product it equals,
// and the guards around C.
func TestInPlaceTails(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			n := 0
			for im, m := range tailSizes {
				for in, nn := range tailSizes {
					n++
					k := tailSizes[(im*5+in*3)%len(tailSizes)]
					mode := n % 3
					p, bias := inPlaceCase(rng, m, nn, k, n%3, (n/3)%3, (n/2)%4, mode)
					got := p.runInPlace(v, bias, mode == 1)
					p.verify(t, v.name+"/inplace", got)
					sameBits(t, fmt.Sprintf("%s in place vs packed %v mode %d", v.name, p, mode), got, p.run(v))
				}
			}
		})
	}
}

// TestInPlaceK crosses the k blocks (the bias is added once, in the first).
func TestInPlaceK(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			for i, k := range []int{1, 3, 4, 5, v.kc - 1, v.kc, v.kc + 1, 2*v.kc + 3} {
				for _, mn := range [][2]int{{2, 37}, {v.mr + 1, v.nr + 3}, {2*v.mr - 1, 1}, {3*v.mr + 2, 3*v.nr + 5}} {
					for mode := 0; mode < 3; mode++ {
						p, bias := inPlaceCase(rng, mn[0], mn[1], k, 1, i%3, 2, mode)
						got := p.runInPlace(v, bias, mode == 1)
						p.verify(t, v.name+"/inplace", got)
						sameBits(t, fmt.Sprintf("%s in place vs packed %v mode %d", v.name, p, mode), got, p.run(v))
					}
				}
			}
		})
	}
}

// TestInPlaceThreads checks that the thread count changes no bit.
func TestInPlaceThreads(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	defer parallel.SetNumThreads(parallel.SetNumThreads(1))
	for _, v := range variants {
		for mode := 0; mode < 6; mode++ {
			// Wide products split over column panels, narrow ones over
			// row tiles too.
			m, n := 45, 1000
			if mode >= 3 {
				m, n = 100, 40
			}
			p, bias := inPlaceCase(rng, m, n, 300, 1, 3, 2, mode%3)
			parallel.SetNumThreads(1)
			one := p.runInPlace(v, bias, mode%3 == 1)
			p.verify(t, v.name+"/inplace", one)
			for _, th := range []int{2, 3} {
				parallel.SetNumThreads(th)
				sameBits(t, fmt.Sprintf("%s in place, %d threads vs 1, mode %d", v.name, th, mode), p.runInPlace(v, bias, mode%3 == 1), one)
			}
		}
	}
}

// TestInPlacePacked checks that packing A once changes no bit, on every
// variant, epilogue and tail.
func TestInPlacePacked(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	for _, v := range variants {
		for i, sh := range [][3]int{{1, 5, 7}, {2, 37, 1}, {v.mr, v.nr, v.kc + 1}, {v.mr + 3, 2*v.nr + 5, 2*v.kc + 3}, {45, 9, 195}, {3, 0, 4}, {3, 4, 0}} {
			for mode := 0; mode < 3; mode++ {
				p, bias := inPlaceCase(rng, sh[0], sh[1], sh[2], i%3, 1, 2, mode)
				want := p.runInPlace(v, bias, mode == 1)
				full, c := p.out()
				pa := packAVariant(v, p.m, p.k, p.a, p.lda)
				SgemmInPlacePacked(pa, p.n, p.b, p.ldb, bias, mode == 1, c, p.ldc)
				sameBits(t, fmt.Sprintf("%s packed A vs in place %v mode %d", v.name, p, mode), full, want)
				p.verify(t, v.name+"/inplace-packed", full)
			}
		}
	}
}

// TestInPlaceExact checks a hand-computed product with a bias.
func TestInPlaceExact(t *testing.T) {
	a := []float32{1, 2, 3, 4, 5, 6}    // 2×3
	b := []float32{7, 8, 9, 10, 11, 12} // 3×2
	want := []float32{58 + 1, 64 + 1, 139 - 2, 154 - 2}
	for _, v := range variants {
		c := []float32{0, 0, 0, 0}
		inPlaceVariant(v, 2, 2, 3, a, 3, b, 2, []float32{1, -2}, false, c, 2)
		for i := range c {
			if c[i] != want[i] {
				t.Fatalf("%s: C = %v, want %v", v.name, c, want)
			}
		}
	}
}

// BenchmarkInPlace compares SgemmInPlace with the packed Sgemm on the
// shapes of 1x1 convolutions (m output channels, k input channels, n
// positions), one thread.
func BenchmarkInPlace(b *testing.B) {
	defer parallel.SetNumThreads(parallel.SetNumThreads(1))
	rng := rand.New(rand.NewPCG(1, 1))
	for _, sh := range [][3]int{{16, 25600, 96}, {96, 25600, 16}, {64, 6400, 64}, {200, 192, 32}, {32, 192, 200}, {480, 400, 96}} {
		m, n, k := sh[0], sh[1], sh[2]
		a, bm, c := randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n)
		bias := randSlice(rng, m)
		flops := 2 * float64(m*n*k)
		b.Run(fmt.Sprintf("inplace/%dx%dx%d", m, n, k), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				SgemmInPlace(m, n, k, a, k, bm, n, bias, false, c, n)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(fmt.Sprintf("packed/%dx%dx%d", m, n, k), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				for r := 0; r < m; r++ {
					row := c[r*n : (r+1)*n]
					for j := range row {
						row[j] = bias[r]
					}
				}
				Sgemm(false, false, m, n, k, 1, a, k, bm, n, 1, c, n)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
