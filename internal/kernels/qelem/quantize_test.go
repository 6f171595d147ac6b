package qelem

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/internal/parallel"
)

type qrange struct {
	signed     bool
	zp, lo, hi int32
}

var quantRanges = []qrange{
	{false, 0, 0, 255}, {false, 128, 0, 255}, {false, 255, 0, 255}, {false, 37, 0, 127},
	{true, 0, -128, 127}, {true, -128, -128, 127}, {true, 127, -128, 127}, {true, -3, -64, 63},
	{false, 300, 0, 255}, {true, -200, -128, 127}, // zero points outside the range saturate
}

// TestQuantizeVariants compares every quantize tier with the reference on
// every tail, offset, scale, zero point and range, with guard elements.
func TestQuantizeVariants(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, v := range quantVariants {
		if !runnable(v) {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			for _, s := range quantScales {
				for _, q := range quantRanges {
					for _, n := range tailSizes {
						off := r.IntN(4)
						src := randFloats(r, n, s)
						want := make([]byte, n)
						for i, x := range src {
							want[i] = byte(qmath.Quantize(x, s, q.zp, q.lo, q.hi))
						}
						got, all := guarded(n, off, byte(guardByte))
						v.fn(got, src, s, q.zp, q.lo, q.hi)
						for i := range want {
							if got[i] != want[i] {
								t.Fatalf("scale %g %+v n=%d: x[%d]=%g gives %d, want %d", s, q, n, i, src[i], int8(got[i]), int8(want[i]))
							}
						}
						checkGuards(t, fmt.Sprintf("scale %g n=%d", s, n), all, off, n, byte(guardByte))
					}
				}
			}
		})
	}
}

// TestQuantizeHandValues pins the definition with hand-computed results.
func TestQuantizeHandValues(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	src := []float32{0, 0.05, 0.15, 0.25, -0.05, 12.75, 100, -100, nan, inf, -inf, 1e-45, 0.35}
	// scale 0.1, zp 10, quint8. In float32, x/0.1 is exactly 0.5, 1.5,
	// 2.5, -0.5, 127.5 and 3.5 for the ties below, which round to even:
	// 0, 2, 2, -0, 128, 4. NaN gives the zero point, ±Inf saturate.
	want := []uint8{10, 10, 12, 12, 10, 138, 255, 0, 10, 255, 0, 10, 14}
	forLevels(t, func(t *testing.T) {
		for _, quantize := range []func(dst []uint8, src []float32, scale float32, zp, lo, hi int32){Quantize[uint8], QuantizeSerial[uint8]} {
			got := make([]uint8, len(src))
			quantize(got, src, 0.1, 10, 0, 255)
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("Quantize(%g) = %d, want %d", src[i], got[i], want[i])
				}
			}
		}
		s8 := make([]int8, 4)
		Quantize(s8, []float32{-1, 1, 0.5, 1.5}, 0.5, -128, -128, 127)
		if s8[0] != -128 || s8[1] != -126 || s8[2] != -127 || s8[3] != -125 {
			t.Errorf("int8 Quantize = %v, want [-128 -126 -127 -125]", s8)
		}
	})
}

func TestDequantizeVariants(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, v := range dequantVariants {
		if !runnable(v) {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			for _, s := range quantScales {
				for _, signed := range []bool{false, true} {
					for _, n := range tailSizes {
						zp := int32(r.IntN(256))
						if signed {
							zp -= 128
						}
						off := r.IntN(4)
						src := make([]byte, n)
						for i := range src {
							src[i] = byte(r.IntN(256))
						}
						if n > 2 {
							src[0], src[1], src[2] = 0, 255, 128
						}
						got, all := guarded(n, off, float32(-7.25))
						v.fn(got, src, signed, s, zp)
						for i, b := range src {
							want := qmath.Dequantize(valueOf(b, signed), zp, s)
							if !sameBits(got[i], want) {
								t.Fatalf("scale %g zp %d signed %v n=%d: q[%d]=%d gives %g, want %g", s, zp, signed, n, i, b, got[i], want)
							}
						}
						checkGuards(t, fmt.Sprintf("n=%d", n), all, off, n, float32(-7.25))
					}
				}
			}
		})
	}
}

func TestDequantizeHandValues(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		got := make([]float32, 3)
		Dequantize(got, []uint8{0, 128, 255}, 0.5, 128)
		if got[0] != -64 || got[1] != 0 || got[2] != 63.5 {
			t.Errorf("uint8 Dequantize = %v", got)
		}
		Dequantize(got, []int8{-128, 0, 127}, 0.25, -1)
		if got[0] != -31.75 || got[1] != 0.25 || got[2] != 32 {
			t.Errorf("int8 Dequantize = %v", got)
		}
	})
}

// TestQuantizeThreads checks that the split over threads changes nothing.
func TestQuantizeThreads(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	n := 5*grain + 77
	src := randFloats(r, n, 0.02)
	var outs [][]int8
	var deqs [][]float32
	for _, th := range []int{1, 2, 3} {
		old := parallel.SetNumThreads(th)
		q := make([]int8, n)
		Quantize(q, src, 0.02, 3, -128, 127)
		f := make([]float32, n)
		Dequantize(f, q, 0.02, 3)
		parallel.SetNumThreads(old)
		outs, deqs = append(outs, q), append(deqs, f)
	}
	want := make([]int8, n)
	QuantizeReference(want, src, 0.02, 3, -128, 127)
	for i := range want {
		for k := range outs {
			if outs[k][i] != want[i] || !sameBits(deqs[k][i], deqs[0][i]) {
				t.Fatalf("element %d differs with %d threads", i, k+1)
			}
		}
	}
}

// FuzzQuantize compares every quantize and dequantize tier with qmath on
// inputs, scales and zero points drawn from the fuzzer.
func FuzzQuantize(f *testing.F) {
	f.Add(float32(0.1), int32(128), false, []byte{0, 0, 0xc0, 0x7f, 0, 0, 0x80, 0x7f, 1, 2, 3, 4})
	f.Add(float32(1e-40), int32(-5), true, []byte{0xff, 0xff, 0x7f, 0x7f, 0, 0, 0, 0x3f})
	f.Add(float32(3), int32(0), true, []byte{0, 0, 0xc0, 0x3f, 0, 0, 0x20, 0x40})
	f.Fuzz(func(t *testing.T, scale float32, zp int32, signed bool, data []byte) {
		lo, hi := int32(0), int32(255)
		if signed {
			lo, hi = -128, 127
		}
		zp = lo + int32(uint32(zp)%uint32(hi-lo+1))
		src := make([]float32, len(data)/4)
		for i := range src {
			src[i] = math.Float32frombits(uint32(data[4*i]) | uint32(data[4*i+1])<<8 | uint32(data[4*i+2])<<16 | uint32(data[4*i+3])<<24)
		}
		want := make([]byte, len(src))
		for i, x := range src {
			want[i] = byte(qmath.Quantize(x, scale, zp, lo, hi))
		}
		for _, v := range quantVariants {
			if !runnable(v) {
				continue
			}
			got := make([]byte, len(src))
			v.fn(got, src, scale, zp, lo, hi)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%s: Quantize(%g, scale %g, zp %d) = %d, want %d", v.name, src[i], scale, zp, got[i], want[i])
				}
			}
		}
		for _, v := range dequantVariants {
			if !runnable(v) {
				continue
			}
			got := make([]float32, len(data))
			v.fn(got, data, signed, scale, zp)
			for i, b := range data {
				if w := qmath.Dequantize(valueOf(b, signed), zp, scale); !sameBits(got[i], w) {
					t.Fatalf("%s: Dequantize(%d) = %g, want %g", v.name, b, got[i], w)
				}
			}
		}
	})
}
