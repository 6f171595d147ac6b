package qelem

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/kernels/pool"
	"github.com/quanta-go/quanta/internal/parallel"
)

func TestRowMaxVariants(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	sizes := append(append([]int(nil), tailSizes...), 191, 192, 193)
	for _, v := range rowMaxVariants {
		if !runnable(v) {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			for _, signed := range []bool{false, true} {
				for _, n := range sizes {
					off := r.IntN(4)
					src, a := randBytes(r, n), randBytes(r, n)
					dst, all := guarded(n, off, byte(guardByte))
					copy(dst, a)
					v.fn(dst, src, signed)
					for i := range dst {
						want := a[i]
						if valueOf(src[i], signed) > valueOf(a[i], signed) {
							want = src[i]
						}
						if dst[i] != want {
							t.Fatalf("signed %v n=%d: max(%d, %d) = %d", signed, n, a[i], src[i], dst[i])
						}
					}
					checkGuards(t, fmt.Sprintf("n=%d", n), all, off, n, byte(guardByte))
				}
			}
		})
	}
}

// TestAvgValueFast checks the float64 rounding shortcut against exact
// integer rounding, ties included.
func TestAvgValueFast(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	rq := []*Requant{
		{InScale: 0.1, InZero: 7, OutScale: 0.1, OutZero: 7, Min: 0, Max: 255},
		{InScale: 0.1, InZero: -3, OutScale: 0.1, OutZero: -3, Min: -128, Max: 127},
		{InScale: 0.1, InZero: 7, OutScale: 0.3, OutZero: 100, Min: 0, Max: 255},
	}
	for i := 0; i < 200000; i++ {
		d := int64(1 + r.IntN(1000))
		if i%3 == 0 {
			d = int64(2 * (1 + r.IntN(50)))
		}
		s := int64(r.IntN(int(256*d))) - 128*d
		if i%5 == 0 {
			s = (2*int64(r.IntN(300)-150) + 1) * d / 2 // exact ties when d is even
		}
		for _, q := range rq {
			if a, b := avgValue(s, d, q), avgValueFast(s, d, q); a != b {
				t.Fatalf("s=%d d=%d %+v: exact %d, fast %d", s, d, *q, a, b)
			}
		}
	}
	if roundDiv(5, 2) != 2 || roundDiv(7, 2) != 4 || roundDiv(-5, 2) != -2 || roundDiv(-7, 2) != -4 || roundDiv(-1, 3) != 0 || roundDiv(-2, 3) != -1 {
		t.Fatal("roundDiv is not round half to even")
	}
}

func randPoolParams(r *rand.Rand, avg bool) pool.Pool2DParams {
	for {
		p := pool.Pool2DParams{N: 1 + r.IntN(2), C: 1 + r.IntN(3), H: 1 + r.IntN(13), W: 1 + r.IntN(70),
			KH: 1 + r.IntN(4), KW: 1 + r.IntN(4), StrideH: r.IntN(4), StrideW: r.IntN(4),
			CeilMode: r.IntN(2) == 0, CountIncludePad: r.IntN(2) == 0}
		p.PadH, p.PadW = r.IntN(p.KH/2+1), r.IntN(p.KW/2+1)
		if !avg {
			p.DilH, p.DilW = 1+r.IntN(2), 1+r.IntN(3)
		} else if r.IntN(4) == 0 {
			p.Divisor = 1 + r.IntN(9)
		}
		if p.Validate() == nil {
			return p
		}
	}
}

func randRequant(r *rand.Rand, signed, same bool) *Requant {
	lo, hi := int32(0), int32(255)
	if signed {
		lo, hi = -128, 127
	}
	q := &Requant{InScale: 0.05, InZero: lo + int32(r.IntN(256)), Min: lo, Max: hi}
	q.OutScale, q.OutZero = q.InScale, q.InZero
	if !same {
		q.OutScale, q.OutZero = []float32{0.02, 0.1, 0.07}[r.IntN(3)], lo+int32(r.IntN(256))
	}
	return q
}

func bytesAs[T Byte](b []byte) []T {
	out := make([]T, len(b))
	for i, v := range b {
		out[i] = T(v)
	}
	return out
}

func equalSlices[T comparable](t *testing.T, what string, got, want []T) {
	t.Helper()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: element %d = %v, want %v", what, i, got[i], want[i])
		}
	}
}

func testPools[T Byte](t *testing.T, r *rand.Rand) {
	signed := isSigned[T]()
	for trial := 0; trial < 150; trial++ {
		p := randPoolParams(r, false)
		x := bytesAs[T](randBytes(r, p.InputLen()))
		want, got := make([]T, p.OutputLen()), make([]T, p.OutputLen()+3)
		MaxPool2DReference(p, x, want)
		MaxPool2D(p, x, got)
		equalSlices(t, fmt.Sprintf("MaxPool2D %+v", p), got, want)

		p = randPoolParams(r, true)
		x = bytesAs[T](randBytes(r, p.InputLen()))
		rq := randRequant(r, signed, trial%2 == 0)
		want, got = make([]T, p.OutputLen()), make([]T, p.OutputLen())
		AvgPool2DReference(p, rq, x, want)
		AvgPool2D(p, rq, x, got)
		equalSlices(t, fmt.Sprintf("AvgPool2D %+v %+v", p, *rq), got, want)

		a := pool.AdaptivePool2DParams{N: 1 + r.IntN(2), C: 1 + r.IntN(3), H: 1 + r.IntN(12), W: 1 + r.IntN(40), OutH: 1 + r.IntN(8), OutW: 1 + r.IntN(8)}
		if trial%7 == 0 {
			a.OutH, a.OutW = 1, 1
		}
		x = bytesAs[T](randBytes(r, a.InputLen()))
		want, got = make([]T, a.OutputLen()), make([]T, a.OutputLen())
		AdaptiveAvgPool2DReference(a, rq, x, want)
		AdaptiveAvgPool2D(a, rq, x, got)
		equalSlices(t, fmt.Sprintf("AdaptiveAvgPool2D %+v", a), got, want)
		GlobalAvgPool2DReference(a.N*a.C, a.H*a.W, rq, x, want[:a.N*a.C])
		GlobalAvgPool2D(a.N*a.C, a.H*a.W, rq, x, got[:a.N*a.C])
		equalSlices(t, "GlobalAvgPool2D", got[:a.N*a.C], want[:a.N*a.C])
	}
}

func TestPoolsMatchReference(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(25, 26))
		testPools[uint8](t, r)
		testPools[int8](t, r)
		testMaxPoolPairs[uint8](t, r)
		testMaxPoolPairs[int8](t, r)
	})
}

// testMaxPoolPairs checks MaxPool2D on windows two columns wide that tile
// the rows (maxPoolPairs), with 1-3 rows and row strides 1-3, short and
// long rows, up to pieces of several rows and planes; ceil mode makes
// some of them read past the last row, which maxPoolPairs leaves to the
// general path.
func testMaxPoolPairs[T Byte](t *testing.T, r *rand.Rand) {
	pairs := 0
	for trial := 0; trial < 120; trial++ {
		p := pool.Pool2DParams{N: 1 + r.IntN(2), C: 1 + r.IntN(40), H: 1 + r.IntN(9), W: 2 * (1 + r.IntN([]int{6, 60, 5000}[r.IntN(3)])),
			KH: 1 + r.IntN(3), KW: 2, StrideH: 1 + r.IntN(3), StrideW: 2, CeilMode: r.IntN(4) == 0}
		if p.Validate() != nil {
			continue
		}
		g := poolGeom("test", p, false)
		if g.pairs() {
			pairs++
		}
		x := bytesAs[T](randBytes(r, p.InputLen()))
		want, got := make([]T, p.OutputLen()), make([]T, p.OutputLen())
		MaxPool2DReference(p, x, want)
		MaxPool2D(p, x, got)
		equalSlices(t, fmt.Sprintf("MaxPool2D %+v", p), got, want)
	}
	if pairs < 60 {
		t.Fatalf("%d of 120 cases took the pairs path, want at least 60", pairs)
	}
}

func TestPoolHandValues(t *testing.T) {
	// 1x1x2x4, zero point 1: windows 2x2 stride 2.
	x := []uint8{1, 2, 10, 0, 4, 3, 7, 255}
	p := pool.Pool2DParams{N: 1, C: 1, H: 2, W: 4, KH: 2, KW: 2}
	y := make([]uint8, 2)
	MaxPool2D(p, x, y)
	if y[0] != 4 || y[1] != 255 {
		t.Errorf("MaxPool2D = %v, want [4 255]", y)
	}
	same := &Requant{InScale: 0.5, InZero: 1, OutScale: 0.5, OutZero: 1, Min: 0, Max: 255}
	// Raw means: (1+2+4+3)/4 = 2.5 -> 2 (ties to even); (10+0+7+255)/4 = 68.
	AvgPool2D(p, same, x, y)
	if y[0] != 2 || y[1] != 68 {
		t.Errorf("AvgPool2D = %v, want [2 68]", y)
	}
	// With padding 1 counted, 3x3 stride 2 windows over the left part:
	// window rows -1..1, cols -1..1 holds 1,2,4,3 and five pads (= zp 1):
	// raw sum 10 + 5 = 15, /9 = 1.67 -> 2.
	pp := pool.Pool2DParams{N: 1, C: 1, H: 2, W: 4, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, CountIncludePad: true}
	y2 := make([]uint8, pp.OutputLen())
	AvgPool2D(pp, same, x, y2)
	if y2[0] != 2 {
		t.Errorf("padded AvgPool2D[0] = %d, want 2", y2[0])
	}
	// Other output qparams: s = sum(q-1) = 6, d = 4, m = (0.5/0.25)/4 = 0.5 -> 3 + 10.
	other := &Requant{InScale: 0.5, InZero: 1, OutScale: 0.25, OutZero: 10, Min: 0, Max: 255}
	AvgPool2D(p, other, x, y)
	if y[0] != 13 {
		t.Errorf("requantizing AvgPool2D[0] = %d, want 13", y[0])
	}
	g := make([]int8, 1)
	GlobalAvgPool2D(1, 3, &Requant{InScale: 1, InZero: -3, OutScale: 1, OutZero: -3, Min: -128, Max: 127}, []int8{-128, 127, 2}, g)
	if g[0] != 0 { // 1/3 -> 0
		t.Errorf("GlobalAvgPool2D = %d, want 0", g[0])
	}
}

// TestMaxPoolFloatEquivalence: max pooling codes equals quantizing the
// float max pooling of the dequantized input (quantization is monotonic).
func TestMaxPoolFloatEquivalence(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	for trial := 0; trial < 20; trial++ {
		p := randPoolParams(r, false)
		x := randBytes(r, p.InputLen())
		fx := make([]float32, len(x))
		Dequantize(fx, x, 0.03, 77)
		fy := make([]float32, p.OutputLen())
		pool.MaxPool2D(p, fx, fy, make([]int32, len(fy)))
		want := make([]uint8, len(fy))
		Quantize(want, fy, 0.03, 77, 0, 255)
		got := make([]uint8, len(fy))
		MaxPool2D(p, x, got)
		equalSlices(t, fmt.Sprintf("%+v", p), got, want)
	}
}

func TestPoolThreads(t *testing.T) {
	r := rand.New(rand.NewPCG(29, 30))
	p := pool.Pool2DParams{N: 2, C: 16, H: 33, W: 41, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, CountIncludePad: true}
	a := pool.AdaptivePool2DParams{N: 2, C: 16, H: 33, W: 41, OutH: 5, OutW: 7}
	rz := ResizeParams{N: 2, C: 8, H: 17, W: 23, OutH: 40, OutW: 51}
	x := randBytes(r, p.InputLen())
	xr := randBytes(r, rz.N*rz.C*rz.H*rz.W)
	rq := &Requant{InScale: 0.1, InZero: 3, OutScale: 0.1, OutZero: 3, Min: 0, Max: 255}
	run := func() [][]uint8 {
		outs := [][]uint8{make([]uint8, p.OutputLen()), make([]uint8, p.OutputLen()), make([]uint8, a.OutputLen()),
			make([]uint8, 2*16), make([]uint8, 2*8*40*51), make([]uint8, 2*8*40*51)}
		MaxPool2D(p, x, outs[0])
		AvgPool2D(p, rq, x, outs[1])
		AdaptiveAvgPool2D(a, rq, x, outs[2])
		GlobalAvgPool2D(32, 33*41, rq, x, outs[3])
		UpsampleNearest2D(rz, xr, outs[4])
		UpsampleBilinear2D(rz, rq, xr, outs[5])
		return outs
	}
	var all [][][]uint8
	for _, th := range []int{1, 2, 3} {
		old := parallel.SetNumThreads(th)
		all = append(all, run())
		parallel.SetNumThreads(old)
	}
	for k := range all[0] {
		for th := 1; th < 3; th++ {
			equalSlices(t, fmt.Sprintf("output %d, %d threads", k, th+1), all[th][k], all[0][k])
		}
	}
}

func TestRowAccVariants(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	for _, v := range rowAccVariants {
		if !runnable(v) {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			for _, signed := range []bool{false, true} {
				for _, n := range tailSizes {
					off := r.IntN(4)
					src := randBytes(r, n)
					dst, all := guarded(n, off, int32(-77))
					init := make([]int32, n)
					for i := range dst {
						init[i] = int32(r.IntN(1 << 20))
						dst[i] = init[i]
					}
					v.fn(dst, src, signed)
					for i := range dst {
						if want := init[i] + valueOf(src[i], signed); dst[i] != want {
							t.Fatalf("signed %v n=%d: element %d = %d, want %d", signed, n, i, dst[i], want)
						}
					}
					checkGuards(t, fmt.Sprintf("n=%d", n), all, off, n, int32(-77))
				}
			}
		})
	}
}

func TestDeinterleaveVariants(t *testing.T) {
	r := rand.New(rand.NewPCG(35, 36))
	for _, v := range deinterleaveVariants {
		if !runnable(v) {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			for _, n := range tailSizes {
				src := randBytes(r, 2*n)
				off := r.IntN(4)
				even, allE := guarded(n, off, byte(guardByte))
				odd, allO := guarded(n, off, byte(guardByte))
				v.fn(even, odd, src)
				for i := 0; i < n; i++ {
					if even[i] != src[2*i] || odd[i] != src[2*i+1] {
						t.Fatalf("n=%d: pair %d = (%d, %d), want (%d, %d)", n, i, even[i], odd[i], src[2*i], src[2*i+1])
					}
				}
				checkGuards(t, "even", allE, off, n, byte(guardByte))
				checkGuards(t, "odd", allO, off, n, byte(guardByte))
			}
		})
	}
}
