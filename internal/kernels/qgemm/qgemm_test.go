package qgemm

import (
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/kernels/qmath"

	"github.com/quanta-go/quanta/internal/parallel"
)

func randCase(r *rand.Rand, m, n, k int, extremes bool) (a []uint8, w []int8) {
	a = make([]uint8, m*k)
	w = make([]int8, n*k)
	for i := range a {
		a[i] = uint8(r.IntN(256))
		if extremes && r.IntN(2) == 0 {
			a[i] = 255
		}
	}
	for i := range w {
		w[i] = int8(r.IntN(256) - 128)
		if extremes && r.IntN(2) == 0 {
			w[i] = -128
		}
	}
	return a, w
}

var sizes = []int{1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129}

// forEachVariant runs f once per tier this machine supports, with
// cpu.Max capped to that tier.
func forEachVariant(t *testing.T, f func(t *testing.T)) {
	for _, v := range variants {
		if v.level > cpu.Hardware {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			old := cpu.SetMax(v.level)
			defer cpu.SetMax(old)
			if got := pick().name; got != v.name {
				t.Fatalf("dispatch picked %s, want %s", got, v.name)
			}
			f(t)
		})
	}
}

func TestGemmMatchesReference(t *testing.T) { forEachVariant(t, testGemmMatchesReference) }

func testGemmMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 300; trial++ {
		m := sizes[r.IntN(len(sizes))]
		n := sizes[r.IntN(len(sizes))]
		k := sizes[r.IntN(len(sizes))]
		if trial < 20 {
			m = 1
		}
		a, w := randCase(r, m, n, k, trial%5 == 0)
		var zps []int32
		if trial%2 == 0 {
			zps = []int32{int32(r.IntN(256) - 128)}
		} else {
			zps = make([]int32, n)
			for j := range zps {
				zps[j] = int32(r.IntN(21) - 10)
			}
		}
		za := int32(r.IntN(256))
		p := Pack(n, k, w, k, zps)
		want := make([]int32, m*n)
		ReferenceS32(m, a, k, za, p, want, n)
		got := make([]int32, m*n+3)
		got[m*n], got[m*n+1], got[m*n+2] = 7, 7, 7
		GemmS32(m, a, k, za, p, got, n)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%dx%dx%d: acc[%d] = %d, want %d", m, n, k, i, got[i], want[i])
			}
		}
		if got[m*n] != 7 || got[m*n+2] != 7 {
			t.Fatalf("guard elements overwritten")
		}
		mult := make([]float32, n)
		bias := make([]int32, n)
		for j := range mult {
			mult[j] = r.Float32() * 1e-3
			bias[j] = int32(r.IntN(20001) - 10000)
		}
		rq := &Requant{Bias: bias, Multiplier: mult, ZeroPoint: int32(r.IntN(256)), Min: 0, Max: 255}
		wantU := make([]uint8, m*n)
		ReferenceU8(m, a, k, za, p, rq, wantU, n)
		gotU := make([]uint8, m*n)
		GemmU8(m, a, k, za, p, rq, gotU, n)
		for i := range wantU {
			if gotU[i] != wantU[i] {
				t.Fatalf("%dx%dx%d: u8[%d] = %d, want %d", m, n, k, i, gotU[i], wantU[i])
			}
		}
		dq := &Dequant{ScaleA: 0.02, ScaleW: mult, Bias: []float32(nil)}
		wantF := make([]float32, m*n)
		ReferenceF32(m, a, k, za, p, dq, wantF, n)
		gotF := make([]float32, m*n)
		GemmF32(m, a, k, za, p, dq, gotF, n)
		for i := range wantF {
			if gotF[i] != wantF[i] {
				t.Fatalf("%dx%dx%d: f32[%d] = %v, want %v", m, n, k, i, gotF[i], wantF[i])
			}
		}
	}
}

func TestGemmThreadIndependent(t *testing.T) { forEachVariant(t, testGemmThreadIndependent) }

func testGemmThreadIndependent(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	m, n, k := 37, 300, 129
	a, w := randCase(r, m, n, k, false)
	p := Pack(n, k, w, k, []int32{3})
	var results [][]int32
	for _, th := range []int{1, 2, 3} {
		old := parallel.SetNumThreads(th)
		c := make([]int32, m*n)
		GemmS32(m, a, k, 17, p, c, n)
		parallel.SetNumThreads(old)
		results = append(results, c)
	}
	for i := range results[0] {
		if results[1][i] != results[0][i] || results[2][i] != results[0][i] {
			t.Fatalf("element %d depends on thread count", i)
		}
	}
}

func TestS8ToU8(t *testing.T) {
	src := []int8{-128, -1, 0, 1, 127}
	dst := make([]uint8, len(src))
	S8ToU8(dst, src)
	want := []uint8{0, 127, 128, 129, 255}
	for i := range want {
		if dst[i] != want[i] {
			t.Fatalf("S8ToU8 = %v", dst)
		}
	}
}

func TestReluClampEpilogue(t *testing.T) { forEachVariant(t, testReluClampEpilogue) }

func testReluClampEpilogue(t *testing.T) {
	// 1x2x2: a = [10, 20], za = 10 -> (0, 10); w rows [1,2], [-3,1].
	p := Pack(2, 2, []int8{1, 2, -3, 1}, 2, []int32{0})
	rq := &Requant{Multiplier: []float32{0.5}, ZeroPoint: 100, Min: 100, Max: 255} // ReLU at zp
	c := make([]uint8, 2)
	GemmU8(1, []uint8{10, 20}, 2, 10, p, rq, c, 2)
	// acc0 = 0*1 + 10*2 = 20 -> 10 + 100 = 110; acc1 = 0*-3 + 10*1 = 10 -> 5 + 100 = 105
	if c[0] != 110 || c[1] != 105 {
		t.Fatalf("got %v", c)
	}
	rq.Multiplier = []float32{-1}
	GemmU8(1, []uint8{10, 20}, 2, 10, p, rq, c, 2)
	if c[0] != 100 || c[1] != 100 { // negative results clamp at the ReLU bound
		t.Fatalf("relu clamp got %v", c)
	}
}

func TestRequantizeRow(t *testing.T) {
	forEachVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(4, 4))
		for _, n := range []int{1, 7, 8, 15, 16, 17, 33, 100} {
			src := make([]int32, n)
			mult := make([]float32, n)
			for j := range src {
				src[j] = int32(r.IntN(1<<20) - 1<<19)
				mult[j] = r.Float32() * 1e-3
			}
			for _, rg := range [][3]int32{{0, 255, 128}, {-128, 127, -5}, {10, 200, 10}} {
				got := make([]byte, n+1)
				got[n] = 0xAA
				RequantizeRow(src, mult, rg[2], rg[0], rg[1], got[:n])
				for j := range src {
					want := byte(qmath.Requantize(src[j], mult[j], rg[2], rg[0], rg[1]))
					if got[j] != want {
						t.Fatalf("n=%d range %v: [%d] = %d, want %d", n, rg, j, got[j], want)
					}
				}
				if got[n] != 0xAA {
					t.Fatal("wrote past dst")
				}
			}
		}
	})
}

func TestGemmEmptyK(t *testing.T) {
	forEachVariant(t, func(t *testing.T) {
		p := Pack(3, 0, nil, 0, []int32{0})
		c := []float32{9, 9, 9, 9, 9, 9}
		GemmF32(2, nil, 0, 5, p, &Dequant{ScaleA: 1, ScaleW: []float32{1}, Bias: []float32{1, 2, 3}}, c, 3)
		want := []float32{1, 2, 3, 1, 2, 3}
		for i := range want {
			if c[i] != want[i] {
				t.Fatalf("K=0 output %v, want %v", c, want)
			}
		}
	})
}

// TestGemmLongK covers reductions long enough that the weights are walked
// in several chunks of panels (and K not a multiple of 4), with every
// epilogue, per-channel and zero weight zero points, at 1, 2 and 3 threads.
func TestGemmLongK(t *testing.T) { forEachVariant(t, testGemmLongK) }

func testGemmLongK(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, c := range [][3]int{{30, 200, 4100}, {17, 97, 4099}, {3, 260, 2050}} {
		m, n, k := c[0], c[1], c[2]
		a, w := randCase(r, m, n, k, false)
		for _, perCh := range []bool{false, true} {
			zps := []int32{0}
			if perCh {
				zps = make([]int32, n)
				for j := range zps {
					zps[j] = int32(r.IntN(9) - 4)
				}
			}
			p := Pack(n, k, w, k, zps)
			mult := make([]float32, n)
			bias := make([]int32, n)
			for j := range mult {
				mult[j] = r.Float32() * 1e-4
				bias[j] = int32(r.IntN(2001) - 1000)
			}
			rq := &Requant{Bias: bias, Multiplier: mult, ZeroPoint: 120, Min: 0, Max: 255}
			dq := &Dequant{ScaleA: 0.01, ScaleW: mult, Bias: make([]float32, n)}
			wantS := make([]int32, m*n)
			ReferenceS32(m, a, k, 7, p, wantS, n)
			wantU := make([]uint8, m*n)
			ReferenceU8(m, a, k, 7, p, rq, wantU, n)
			wantF := make([]float32, m*n)
			ReferenceF32(m, a, k, 7, p, dq, wantF, n)
			for _, th := range []int{1, 2, 3} {
				old := parallel.SetNumThreads(th)
				gotS := make([]int32, m*n)
				GemmS32(m, a, k, 7, p, gotS, n)
				gotU := make([]uint8, m*n)
				GemmU8(m, a, k, 7, p, rq, gotU, n)
				gotF := make([]float32, m*n)
				GemmF32(m, a, k, 7, p, dq, gotF, n)
				parallel.SetNumThreads(old)
				for i := range wantS {
					if gotS[i] != wantS[i] || gotU[i] != wantU[i] || gotF[i] != wantF[i] {
						t.Fatalf("%dx%dx%d zp per channel %v, %d threads, element %d: s32 %d/%d u8 %d/%d f32 %v/%v",
							m, n, k, perCh, th, i, gotS[i], wantS[i], gotU[i], wantU[i], gotF[i], wantF[i])
					}
				}
			}
		}
	}
}
