package qelem

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/internal/parallel"
)

// ranges32 are 16-bit ranges (the uint16 and int16 codes of mixed
// precision), 8-bit ones, and a zero point outside its range.
var ranges32 = []qrange{
	{false, 0, 0, 65535}, {false, 30000, 0, 65535}, {false, 65535, 0, 65535},
	{true, 0, -32768, 32767}, {true, -32768, -32768, 32767}, {true, 1234, -32768, 32767},
	{false, 128, 0, 255}, {true, -3, -128, 127}, {false, 70000, 0, 65535},
}

// TestQuantize32Variants compares every tier of Quantize32 and
// Dequantize32 with qmath on every tail, offset, scale, zero point and
// range, with guard elements.
func TestQuantize32Variants(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, v := range quant32Variants {
		if !runnable(v) {
			continue
		}
		t.Run("quantize/"+v.name, func(t *testing.T) {
			for _, s := range quantScales {
				for _, q := range ranges32 {
					for _, n := range tailSizes {
						off := r.IntN(4)
						src := randFloats(r, n, s)
						for i := range src {
							if r.IntN(3) == 0 {
								src[i] *= 200 // reach the 16-bit limits too
							}
						}
						got, all := guarded(n, off, int32(-0x5a5a5a5b))
						v.fn(got, src, s, q.zp, q.lo, q.hi)
						for i, x := range src {
							if want := qmath.Quantize(x, s, q.zp, q.lo, q.hi); got[i] != want {
								t.Fatalf("scale %g %+v n=%d: x[%d]=%g gives %d, want %d", s, q, n, i, x, got[i], want)
							}
						}
						checkGuards(t, fmt.Sprintf("scale %g n=%d", s, n), all, off, n, int32(-0x5a5a5a5b))
					}
				}
			}
		})
	}
	for _, v := range dequant32Variants {
		if !runnable(v) {
			continue
		}
		t.Run("dequantize/"+v.name, func(t *testing.T) {
			for _, s := range quantScales {
				for _, q := range ranges32 {
					for _, n := range tailSizes {
						off := r.IntN(4)
						src := make([]int32, n)
						for i := range src {
							src[i] = q.lo + int32(r.IntN(int(q.hi-q.lo)+1))
						}
						if n > 3 {
							src[0], src[1], src[2], src[3] = q.lo, q.hi, math.MaxInt32, math.MinInt32
						}
						got, all := guarded(n, off, float32(-7.25))
						v.fn(got, src, s, q.zp)
						for i, c := range src {
							if want := qmath.Dequantize(c, q.zp, s); !sameBits(got[i], want) {
								t.Fatalf("scale %g zp %d n=%d: q[%d]=%d gives %g, want %g", s, q.zp, n, i, c, got[i], want)
							}
						}
						checkGuards(t, fmt.Sprintf("n=%d", n), all, off, n, float32(-7.25))
					}
				}
			}
		})
	}
}

// TestQuantize32HandValues pins the definition with hand-computed codes:
// ties to even, saturation at the 16-bit limits, NaN to the zero point.
func TestQuantize32HandValues(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	src := []float32{0, 0.25, 0.75, -0.25, 1e6, -1e6, nan, inf, -inf, 10}
	// scale 0.5, zp 30000, uint16: x/0.5 = 0, 0.5, 1.5, -0.5, 2e6, ...
	want := []int32{30000, 30000, 30002, 30000, 65535, 0, 30000, 65535, 0, 30020}
	forLevels(t, func(t *testing.T) {
		got := make([]int32, len(src))
		Quantize32(got, src, 0.5, 30000, 0, 65535)
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("Quantize32(%g) = %d, want %d", src[i], got[i], want[i])
			}
		}
		clear(got)
		Quantize32Serial(got, src, 0.5, 30000, 0, 65535)
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("Quantize32Serial(%g) = %d, want %d", src[i], got[i], want[i])
			}
		}
		f := make([]float32, 3)
		Dequantize32(f, []int32{-32768, 0, 32767}, 0.25, -1)
		if f[0] != -8191.75 || f[1] != 0.25 || f[2] != 8192 {
			t.Errorf("Dequantize32 = %v, want [-8191.75 0.25 8192]", f)
		}
		clear(f)
		Dequantize32Serial(f, []int32{-32768, 0, 32767}, 0.25, -1)
		if f[0] != -8191.75 || f[1] != 0.25 || f[2] != 8192 {
			t.Errorf("Dequantize32Serial = %v, want [-8191.75 0.25 8192]", f)
		}
	})
	defer func() {
		if recover() == nil {
			t.Error("Quantize32 accepted bounds that are not exact in float32")
		}
	}()
	Quantize32(make([]int32, 1), src[:1], 1, -1<<24, 0, 65535)
}

// TestQuantize32Threads checks that the split over threads changes
// nothing.
func TestQuantize32Threads(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	n := 5*grain + 77
	src := randFloats(r, n, 0.002)
	want := make([]int32, n)
	Quantize32Reference(want, src, 0.002, 100, -32768, 32767)
	wantF := make([]float32, n)
	Dequantize32Reference(wantF, want, 0.002, 100)
	for _, th := range []int{1, 2, 3} {
		old := parallel.SetNumThreads(th)
		q := make([]int32, n)
		Quantize32(q, src, 0.002, 100, -32768, 32767)
		f := make([]float32, n)
		Dequantize32(f, q, 0.002, 100)
		parallel.SetNumThreads(old)
		for i := range want {
			if q[i] != want[i] || !sameBits(f[i], wantF[i]) {
				t.Fatalf("%d threads: element %d differs", th, i)
			}
		}
	}
}

// FuzzQuantize32 compares every Quantize32 and Dequantize32 tier with
// qmath on inputs, scales and zero points drawn from the fuzzer.
func FuzzQuantize32(f *testing.F) {
	f.Add(float32(0.1), int32(30000), false, []byte{0, 0, 0xc0, 0x7f, 0, 0, 0x80, 0x7f, 1, 2, 3, 4})
	f.Add(float32(1e-40), int32(-5), true, []byte{0xff, 0xff, 0x7f, 0x7f, 0, 0, 0, 0x3f})
	f.Add(float32(3e-5), int32(0), true, []byte{0, 0, 0xc0, 0x3f, 0, 0, 0x20, 0x40})
	f.Fuzz(func(t *testing.T, scale float32, zp int32, signed bool, data []byte) {
		lo, hi := int32(0), int32(65535)
		if signed {
			lo, hi = -32768, 32767
		}
		zp = lo + int32(uint32(zp)%uint32(hi-lo+1))
		src := make([]float32, len(data)/4)
		codes := make([]int32, len(data)/4)
		for i := range src {
			b := uint32(data[4*i]) | uint32(data[4*i+1])<<8 | uint32(data[4*i+2])<<16 | uint32(data[4*i+3])<<24
			src[i], codes[i] = math.Float32frombits(b), int32(b)
		}
		for _, v := range quant32Variants {
			if !runnable(v) {
				continue
			}
			got := make([]int32, len(src))
			v.fn(got, src, scale, zp, lo, hi)
			for i, x := range src {
				if want := qmath.Quantize(x, scale, zp, lo, hi); got[i] != want {
					t.Fatalf("%s: Quantize32(%g, scale %g, zp %d) = %d, want %d", v.name, x, scale, zp, got[i], want)
				}
			}
		}
		for _, v := range dequant32Variants {
			if !runnable(v) {
				continue
			}
			got := make([]float32, len(codes))
			v.fn(got, codes, scale, zp)
			for i, c := range codes {
				if want := qmath.Dequantize(c, zp, scale); !sameBits(got[i], want) {
					t.Fatalf("%s: Dequantize32(%d, scale %g, zp %d) = %g, want %g", v.name, c, scale, zp, got[i], want)
				}
			}
		}
	})
}
