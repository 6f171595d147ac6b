package qdyn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/internal/parallel"
)

var tailSizes = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 1000}

var nan32 = float32(math.NaN())

// special values the scans and quantizers must handle.
var specials = []float32{0, float32(math.Copysign(0, -1)), inf32, -inf32, 1e-45, -1e-45, 1.17549435e-38, 3.4028235e38, -3.4028235e38, 0.5, -0.5, 1.5, 2.5, -2.5, 127.5, 255.5}

func randFloats(r *rand.Rand, n int, special bool) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * 3)
		if special && r.IntN(4) == 0 {
			x[i] = specials[r.IntN(len(specials))]
		}
	}
	return x
}

// naiveMinMax is the test's own scan, in float64.
func naiveMinMax(x []float32) (lo, hi float64, nan bool) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range x {
		if v != v {
			nan = true
			continue
		}
		lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
	}
	return lo, hi, nan
}

func TestMinMaxTiers(t *testing.T) {
	forEachVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 1))
		for trial := 0; trial < 20; trial++ {
			for _, n := range tailSizes {
				x := randFloats(r, n+2, trial%2 == 1)
				// Guard elements around the scanned run hold extremes that
				// must not be seen.
				x[0], x[n+1] = -1e30, 1e30
				if trial%5 == 4 && n > 0 {
					x[1+r.IntN(n)] = nan32
				}
				lo, hi, nan := MinMax(x[1 : n+1])
				wlo, whi, wnan := naiveMinMax(x[1 : n+1])
				if nan != wnan {
					t.Fatalf("n=%d: nan = %v, want %v", n, nan, wnan)
				}
				if nan {
					continue
				}
				if float64(lo) != wlo || float64(hi) != whi {
					t.Fatalf("n=%d: got (%v, %v), want (%v, %v)", n, lo, hi, wlo, whi)
				}
				if (lo == 0 && math.Signbit(float64(lo))) || (hi == 0 && math.Signbit(float64(hi))) {
					t.Fatalf("n=%d: zero returned with a sign: (%v, %v)", n, lo, hi)
				}
			}
		}
	})
}

func TestMinMaxSignedZeros(t *testing.T) {
	negz := float32(math.Copysign(0, -1))
	forEachVariant(t, func(t *testing.T) {
		for _, n := range []int{1, 7, 16, 40, 100} {
			x := make([]float32, n)
			for i := range x {
				if i%2 == 0 {
					x[i] = negz
				}
			}
			lo, hi, nan := MinMax(x)
			if nan || lo != 0 || hi != 0 || math.Signbit(float64(lo)) || math.Signbit(float64(hi)) {
				t.Fatalf("n=%d: (%v, %v, %v), want +0, +0", n, lo, hi, nan)
			}
		}
	})
}

func TestMinMaxRowsStridedAndParallel(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	forEachVariant(t, func(t *testing.T) {
		for _, sh := range [][3]int{{3, 5, 9}, {7, 33, 40}, {1, 17, 17}, {40, 3000, 3001}, {5, 1 << 15, 1<<15 + 3}, {1, 300000, 300000}} {
			m, k, ld := sh[0], sh[1], sh[2]
			x := randFloats(r, (m-1)*ld+k, false)
			// Values in the gaps between rows are outside every row's range.
			for i := 0; i < m-1; i++ {
				for j := k; j < ld; j++ {
					x[i*ld+j] = 1e30
				}
			}
			var want []float32
			for i := 0; i < m; i++ {
				want = append(want, x[i*ld:i*ld+k]...)
			}
			wlo, whi, _ := naiveMinMax(want)
			for _, th := range []int{1, 2, 3} {
				old := parallel.SetNumThreads(th)
				lo, hi, nan := MinMaxRows(m, k, x, ld)
				parallel.SetNumThreads(old)
				if nan || float64(lo) != wlo || float64(hi) != whi {
					t.Fatalf("%v threads %d: (%v, %v, %v), want (%v, %v)", sh, th, lo, hi, nan, wlo, whi)
				}
			}
			// A NaN in the last row is found at every thread count.
			x[(m-1)*ld+k-1] = nan32
			for _, th := range []int{1, 2, 3} {
				old := parallel.SetNumThreads(th)
				_, _, nan := MinMaxRows(m, k, x, ld)
				parallel.SetNumThreads(old)
				if !nan {
					t.Fatalf("%v threads %d: NaN missed", sh, th)
				}
			}
		}
	})
	if lo, hi, nan := MinMax(nil); !math.IsInf(float64(lo), 1) || !math.IsInf(float64(hi), -1) || nan {
		t.Fatalf("empty: (%v, %v, %v)", lo, hi, nan)
	}
}

func TestQuantizeTiers(t *testing.T) {
	forEachVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 3))
		ranges := [][3]int32{{0, 255, 128}, {0, 255, 0}, {0, 255, 255}, {0, 127, 64}, {0, 127, 0}, {10, 200, 37}}
		for trial := 0; trial < 30; trial++ {
			for _, n := range tailSizes {
				rg := ranges[r.IntN(len(ranges))]
				lo, hi, zp := rg[0], rg[1], rg[2]
				scale := float32(math.Exp(r.NormFloat64() * 2))
				if trial%7 == 6 {
					scale = 1 // many exact ties
				}
				x := randFloats(r, n, trial%2 == 1)
				for i := range x {
					if trial%3 == 0 {
						// Values near ties of x/scale.
						x[i] = (float32(r.IntN(600)-300) + 0.5) * scale
					}
					if r.IntN(50) == 0 {
						x[i] = nan32
					}
				}
				dst := make([]uint8, n+2)
				dst[0], dst[n+1] = 0xAB, 0xCD
				Quantize(dst[1:n+1], x, scale, zp, lo, hi)
				if dst[0] != 0xAB || dst[n+1] != 0xCD {
					t.Fatalf("n=%d: guard bytes overwritten", n)
				}
				for i, v := range x {
					want := uint8(qmath.Quantize(v, scale, zp, lo, hi))
					if dst[1+i] != want {
						t.Fatalf("n=%d: Quantize(%v / %v, zp %d, [%d, %d]) = %d, want %d", n, v, scale, zp, lo, hi, dst[1+i], want)
					}
				}
			}
		}
	})
}

func TestQuantizeHand(t *testing.T) {
	forEachVariant(t, func(t *testing.T) {
		// scale 0.5, zp 10: x/0.5 = 2x, RNE, +10, clamp to [0, 255].
		x := []float32{0, 0.25, 0.75, 1.25, -0.25, -5, -6, 200, nan32, inf32, -inf32, 1e30, 122.75}
		want := []uint8{10, 10, 12, 12, 10, 0, 0, 255, 10, 255, 0, 255, 255}
		// 17 copies so vector bodies and tails all see them.
		var xs []float32
		var ws []uint8
		for i := 0; i < 17; i++ {
			xs = append(xs, x...)
			ws = append(ws, want...)
		}
		got := make([]uint8, len(xs))
		Quantize(got, xs, 0.5, 10, 0, 255)
		for i := range ws {
			if got[i] != ws[i] {
				t.Fatalf("x=%v: got %d, want %d", xs[i], got[i], ws[i])
			}
		}
	})
}

func TestQuantizeRowsStridedParallel(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	forEachVariant(t, func(t *testing.T) {
		for _, sh := range [][3]int{{4, 9, 13}, {300, 200, 257}, {2, 1 << 16, 1<<16 + 5}} {
			m, k, ld := sh[0], sh[1], sh[2]
			x := randFloats(r, (m-1)*ld+k, true)
			var ref []uint8
			for _, th := range []int{1, 2, 3} {
				old := parallel.SetNumThreads(th)
				got := make([]uint8, m*k)
				QuantizeRows(m, k, x, ld, got, 0.03, 100, 0, 255)
				parallel.SetNumThreads(old)
				if ref == nil {
					ref = got
					for i := 0; i < m; i++ {
						for j := 0; j < k; j++ {
							if w := uint8(qmath.Quantize(x[i*ld+j], 0.03, 100, 0, 255)); got[i*k+j] != w {
								t.Fatalf("%v: [%d][%d] = %d, want %d", sh, i, j, got[i*k+j], w)
							}
						}
					}
				} else if string(got) != string(ref) {
					t.Fatalf("%v: result depends on the thread count", sh)
				}
			}
		}
	})
}
