package sgemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/parallel"
)

// tailSizes are the dimensions every variant is tested on.
var tailSizes = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129}

const guard = 7 // guard elements before and after every output buffer

// sentinel marks output elements that must not be written.
var sentinel = float32(math.Float32frombits(0x7fc0dead)) // a NaN payload

// problem is one product with its operands.
type problem struct {
	transA, transB bool
	m, n, k        int
	lda, ldb, ldc  int
	alpha, beta    float32
	a, b, c        []float32 // c includes guard elements at both ends
}

// newProblem makes random operands. Strides exceed the widths by padA,
// padB, padC. When beta is 0, C holds NaN so that reading it shows.
func newProblem(rng *rand.Rand, transA, transB bool, m, n, k, padA, padB, padC int, alpha, beta float32) *problem {
	p := &problem{transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	p.lda, p.ldb, p.ldc = ac+padA, bc+padB, n+padC
	p.a = randSlice(rng, span(ar, ac, p.lda))
	p.b = randSlice(rng, span(br, bc, p.ldb))
	p.c = make([]float32, span(m, n, p.ldc)+2*guard)
	for i := range p.c {
		p.c[i] = sentinel
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			if beta == 0 {
				p.c[guard+i*p.ldc+j] = float32(math.NaN())
			} else {
				p.c[guard+i*p.ldc+j] = rng.Float32()*2 - 1
			}
		}
	}
	return p
}

// span is the number of elements a rows×cols matrix with stride ld spans.
func span(rows, cols, ld int) int {
	if rows == 0 || cols == 0 {
		return 0
	}
	return (rows-1)*ld + cols
}

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = rng.Float32()*2 - 1
	}
	return s
}

// out returns a fresh copy of C (with guards) and the slice the product
// writes into.
func (p *problem) out() (full, c []float32) {
	full = append([]float32(nil), p.c...)
	return full, full[guard : len(full)-guard]
}

func (p *problem) String() string {
	return fmt.Sprintf("transA=%v transB=%v m=%d n=%d k=%d lda=%d ldb=%d ldc=%d alpha=%g beta=%g",
		p.transA, p.transB, p.m, p.n, p.k, p.lda, p.ldb, p.ldc, p.alpha, p.beta)
}

func (p *problem) run(v *variant) []float32 {
	full, c := p.out()
	sgemmVariant(v, p.transA, p.transB, p.m, p.n, p.k, p.alpha, p.a, p.lda, p.b, p.ldb, p.beta, c, p.ldc)
	return full
}

func (p *problem) runPacked(v *variant) []float32 {
	full, c := p.out()
	pb := packBVariant(v, p.transB, p.k, p.n, p.b, p.ldb)
	SgemmPackedB(p.transA, p.m, p.alpha, p.a, p.lda, pb, p.beta, c, p.ldc)
	return full
}

// opA and opB read op(A) and op(B).
func (p *problem) opA(i, q int) float32 {
	if p.transA {
		return p.a[q*p.lda+i]
	}
	return p.a[i*p.lda+q]
}

func (p *problem) opB(q, j int) float32 {
	if p.transB {
		return p.b[j*p.ldb+q]
	}
	return p.b[q*p.ldb+j]
}

// eps32 is the float32 machine epsilon.
const eps32 = 1.0 / (1 << 23)

// verify compares got (C with guards) with Reference within a rounding
// bound of (2k+8) ulps of alpha*sum|a*b| + |beta*c| per element, and checks
// that nothing outside C changed.
func (p *problem) verify(t *testing.T, name string, got []float32) {
	t.Helper()
	want, wc := p.out()
	Reference(p.transA, p.transB, p.m, p.n, p.k, p.alpha, p.a, p.lda, p.b, p.ldb, p.beta, wc, p.ldc)
	inside := func(idx int) (int, int, bool) {
		off := idx - guard
		if off < 0 || off >= span(p.m, p.n, p.ldc) {
			return 0, 0, false
		}
		i, j := off/p.ldc, off%p.ldc
		return i, j, j < p.n
	}
	bad := 0
	for idx := range got {
		i, j, in := inside(idx)
		if !in {
			if math.Float32bits(got[idx]) != math.Float32bits(p.c[idx]) {
				t.Errorf("%s %v: element %d outside C changed to %g", name, p, idx-guard, got[idx])
				bad++
			}
		} else {
			var bound float64
			for q := 0; q < p.k; q++ {
				bound += math.Abs(float64(p.opA(i, q)) * float64(p.opB(q, j)))
			}
			bound *= math.Abs(float64(p.alpha))
			if p.beta != 0 {
				bound += math.Abs(float64(p.beta) * float64(p.c[idx]))
			}
			tol := float64(2*p.k+8) * eps32 * bound
			g, w := float64(got[idx]), float64(want[idx])
			if math.IsNaN(g) || math.Abs(g-w) > tol {
				t.Errorf("%s %v: C[%d][%d] = %g, want %g (tolerance %g)", name, p, i, j, g, w, tol)
				bad++
			}
		}
		if bad > 5 {
			t.FailNow()
		}
	}
}

// sameBits fails unless x and y are bitwise equal.
func sameBits(t *testing.T, what string, x, y []float32) {
	t.Helper()
	for i := range x {
		if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
			t.Fatalf("%s: element %d differs: %g vs %g", what, i, x[i], y[i])
		}
	}
}

var scalings = [][2]float32{{1, 0}, {0.5, -1.5}, {-2, 1}, {1, 1}, {1.25, 0}}

func TestVariantsTails(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			n := 0
			for im, m := range tailSizes {
				for in, nn := range tailSizes {
					n++
					k := tailSizes[(im*7+in*3)%len(tailSizes)]
					s := scalings[n%len(scalings)]
					p := newProblem(rng, n%4 >= 2, n%2 == 1, m, nn, k, n%3, (n/3)%3, (n/2)%4, s[0], s[1])
					p.verify(t, v.name, p.run(v))
				}
			}
		})
	}
}

func TestVariantsK(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			for i, k := range append(tailSizes, v.kc-1, v.kc, v.kc+1, 2*v.kc+3) {
				for _, mn := range [][2]int{{1, 37}, {1, 300}, {5, 33}, {v.mr + 1, v.nr + 3}, {2*v.mr - 1, 1}} {
					for tr := 0; tr < 4; tr++ {
						s := scalings[(i+tr)%len(scalings)]
						p := newProblem(rng, tr&1 == 1, tr&2 == 2, mn[0], mn[1], k, 1, 2, 3, s[0], s[1])
						p.verify(t, v.name, p.run(v))
					}
				}
			}
		})
	}
}

// TestVariantsBlocks crosses the mc and nc cache-block boundaries.
func TestVariantsBlocks(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			shapes := [][3]int{
				{v.mc - 1, 19, 7}, {v.mc + 1, 35, 9}, {2*v.mc + v.mr + 1, 17, 3},
				{3, v.nc + 5, 4}, {1, v.nc + 17, 5}, {1, 3000, 70},
			}
			for i, sh := range shapes {
				s := scalings[i%len(scalings)]
				p := newProblem(rng, i%2 == 1, i%3 == 1, sh[0], sh[1], sh[2], 0, 1, 2, s[0], s[1])
				p.verify(t, v.name, p.run(v))
			}
		})
	}
}

func TestPackedB(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			for i, sh := range [][3]int{{1, 1, 1}, {1, 33, 17}, {1, 129, 300}, {1, 300, 513}, {2, 65, 31}, {17, 129, 257}, {v.mr, v.nr, v.kc + 1}, {40, 7, 5}, {3, 0, 4}, {3, 4, 0}} {
				for tr := 0; tr < 4; tr++ {
					s := scalings[(i+tr)%len(scalings)]
					p := newProblem(rng, tr&1 == 1, tr&2 == 2, sh[0], sh[1], sh[2], tr, 1, 2, s[0], s[1])
					got := p.runPacked(v)
					p.verify(t, v.name+"/packed", got)
					// Packing B changes nothing but speed.
					sameBits(t, fmt.Sprintf("%s packed vs unpacked %v", v.name, p), got, p.run(v))
				}
			}
		})
	}
}

// TestRowsIndependentOfM checks that a row of C is the same computed alone
// (the single-row path) or inside a larger product.
func TestRowsIndependentOfM(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, v := range variants {
		for _, transB := range []bool{false, true} {
			for _, sh := range [][3]int{{20, 300, 600}, {3, 47, 1000}, {15, 1000, 33}} {
				m, n, k := sh[0], sh[1], sh[2]
				p := newProblem(rng, false, transB, m, n, k, 1, 1, 1, 0.75, 0.5)
				pb := packBVariant(v, transB, k, n, p.b, p.ldb)
				whole := p.run(v)
				_, packedWhole := p.out()
				SgemmPackedB(false, m, p.alpha, p.a, p.lda, pb, p.beta, packedWhole, p.ldc)
				for i := 0; i < m; i++ {
					row := append([]float32(nil), p.c[guard+i*p.ldc:guard+i*p.ldc+n]...)
					SgemmPackedB(false, 1, p.alpha, p.a[i*p.lda:], p.lda, pb, p.beta, row, n)
					sameBits(t, fmt.Sprintf("%s row %d alone (packed) vs in %v", v.name, i, p), row, packedWhole[i*p.ldc:i*p.ldc+n])
					row = append(row[:0], p.c[guard+i*p.ldc:guard+i*p.ldc+n]...)
					sgemmVariant(v, false, transB, 1, n, k, p.alpha, p.a[i*p.lda:], p.lda, p.b, p.ldb, p.beta, row, n)
					sameBits(t, fmt.Sprintf("%s row %d alone vs in %v", v.name, i, p), row, whole[guard+i*p.ldc:guard+i*p.ldc+n])
				}
			}
		}
	}
}

func TestThreadCountInvariance(t *testing.T) {
	defer parallel.SetNumThreads(parallel.SetNumThreads(1))
	rng := rand.New(rand.NewPCG(11, 12))
	for _, v := range variants {
		for i, sh := range [][3]int{{1, 3072, 400}, {1, 1000, 1100}, {1, 5000, 9}, {200, 170, 300}, {37, 1500, 129}, {600, 40, 70}, {150, 150, 600}} {
			p := newProblem(rng, i%2 == 1, i%3 == 0, sh[0], sh[1], sh[2], 1, 0, 3, 1.5, -0.5)
			pb := packBVariant(v, p.transB, p.k, p.n, p.b, p.ldb)
			var ref, refPacked []float32
			for _, threads := range []int{1, 2, 3} {
				parallel.SetNumThreads(threads)
				got := p.run(v)
				full, c := p.out()
				SgemmPackedB(p.transA, p.m, p.alpha, p.a, p.lda, pb, p.beta, c, p.ldc)
				if ref == nil {
					ref, refPacked = got, full
					p.verify(t, v.name, got)
					continue
				}
				sameBits(t, fmt.Sprintf("%s %d threads vs 1 %v", v.name, threads, p), got, ref)
				sameBits(t, fmt.Sprintf("%s packed %d threads vs 1 %v", v.name, threads, p), full, refPacked)
			}
		}
	}
}

// TestSgemmDispatch checks that Sgemm and PackB follow cpu.Max.
func TestSgemmDispatch(t *testing.T) {
	defer cpu.SetMax(cpu.SetMax(cpu.Hardware))
	rng := rand.New(rand.NewPCG(13, 14))
	for _, v := range variants {
		if v.level > cpu.Hardware {
			continue
		}
		cpu.SetMax(v.level)
		if got := current(); got != v {
			t.Fatalf("cpu.Max=%v selects %s, want %s", v.level, got.name, v.name)
		}
		p := newProblem(rng, false, true, 19, 45, 70, 0, 0, 0, 1, 0.5)
		full, c := p.out()
		Sgemm(p.transA, p.transB, p.m, p.n, p.k, p.alpha, p.a, p.lda, p.b, p.ldb, p.beta, c, p.ldc)
		sameBits(t, "Sgemm vs "+v.name, full, p.run(v))
		if pb := PackB(true, p.k, p.n, p.b, p.ldb); pb.v != v || pb.K() != p.k || pb.N() != p.n {
			t.Fatalf("PackB under %v packed for %s, %d×%d", v.level, pb.v.name, pb.K(), pb.N())
		}
	}
}

// TestSpecialValues checks propagation of Inf and NaN from A and B, and
// that beta == 0 ignores NaN in C while beta != 0 propagates it.
func TestSpecialValues(t *testing.T) {
	for _, v := range variants {
		rng := rand.New(rand.NewPCG(15, 16))
		p := newProblem(rng, false, false, 9, 40, 20, 0, 0, 0, 1, 0)
		p.a[3*p.lda+4] = float32(math.Inf(1))
		p.b[7*p.ldb+5] = float32(math.NaN())
		_, c := p.out()
		sgemmVariant(v, false, false, p.m, p.n, p.k, 1, p.a, p.lda, p.b, p.ldb, 0, c, p.ldc)
		want := make([]float32, len(c))
		Reference(false, false, p.m, p.n, p.k, 1, p.a, p.lda, p.b, p.ldb, 0, want, p.ldc)
		for i := range c {
			gn, wn := math.IsNaN(float64(c[i])), math.IsNaN(float64(want[i]))
			gi, wi := math.IsInf(float64(c[i]), 0), math.IsInf(float64(want[i]), 0)
			if gn != wn || gi != wi || (gi && c[i] != want[i]) {
				t.Fatalf("%s: C[%d] = %g, want %g", v.name, i, c[i], want[i])
			}
		}
		// beta != 0 reads C: a NaN there must come out.
		for i := range c {
			c[i] = 1
		}
		c[2*p.ldc+3] = float32(math.NaN())
		sgemmVariant(v, false, false, p.m, p.n, p.k, 0.5, p.a, p.lda, p.b, p.ldb, 2, c, p.ldc)
		if !math.IsNaN(float64(c[2*p.ldc+3])) {
			t.Fatalf("%s: NaN in C with beta=2 gave %g", v.name, c[2*p.ldc+3])
		}
	}
}

func TestBadArgumentsPanic(t *testing.T) {
	a := make([]float32, 6)
	cases := map[string]func(){
		"short A":      func() { Sgemm(false, false, 2, 3, 3, 1, a[:5], 3, a, 3, 0, make([]float32, 6), 3) },
		"short C":      func() { Sgemm(false, false, 2, 2, 3, 1, a, 3, a, 2, 0, make([]float32, 3), 2) },
		"small lda":    func() { Sgemm(false, false, 2, 2, 3, 1, a, 2, a, 2, 0, make([]float32, 4), 2) },
		"negative m":   func() { Sgemm(false, false, -1, 2, 3, 1, a, 3, a, 2, 0, nil, 2) },
		"packed short": func() { SgemmPackedB(false, 2, 1, a, 3, PackB(false, 3, 2, a, 2), 0, make([]float32, 2), 2) },
	}
	for name, f := range cases {
		func() {
			defer func() {
				r := recover()
				if s, ok := r.(string); !ok || !strings.HasPrefix(s, "sgemm: ") {
					t.Errorf("%s: recovered %v, want a \"sgemm: \" panic", name, r)
				}
			}()
			f()
		}()
	}
}

// TestSmallExact checks a hand-computed product.
func TestSmallExact(t *testing.T) {
	a := []float32{1, 2, 3, 4, 5, 6}    // 2×3
	b := []float32{7, 8, 9, 10, 11, 12} // 3×2
	want := []float32{58, 64, 139, 154} // A·B
	for _, v := range variants {
		c := []float32{1, 1, 1, 1}
		sgemmVariant(v, false, false, 2, 2, 3, 2, a, 3, b, 2, -1, c, 2)
		for i := range c {
			if c[i] != 2*want[i]-1 {
				t.Fatalf("%s: C = %v, want 2*%v-1", v.name, c, want)
			}
		}
	}
}

func FuzzSgemm(f *testing.F) {
	f.Add(uint8(1), uint8(17), uint8(33), uint8(0), uint8(0), uint64(1))
	f.Add(uint8(14), uint8(32), uint8(5), uint8(3), uint8(7), uint64(2))
	f.Add(uint8(15), uint8(65), uint8(129), uint8(1), uint8(2), uint64(3))
	f.Add(uint8(0), uint8(3), uint8(0), uint8(2), uint8(1), uint64(4))
	f.Fuzz(func(t *testing.T, m, n, k, flags, pads uint8, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, 99))
		s := scalings[int(flags>>2)%len(scalings)]
		p := newProblem(rng, flags&1 == 1, flags&2 == 2, int(m)%40, int(n)%100, int(k)%140, int(pads&3), int(pads>>2&3), int(pads>>4&7), s[0], s[1])
		for _, v := range variants {
			p.verify(t, v.name, p.run(v))
			p.verify(t, v.name+"/packed", p.runPacked(v))
		}
	})
}
